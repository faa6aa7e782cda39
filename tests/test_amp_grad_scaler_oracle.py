"""distnn.amp.GradScaler against torch.amp.GradScaler("cpu") on the same script: scales, skipped steps, the
growth/backoff sequence with injected infs, unscale_ + clip_grad_norm_ + step, state_dict; its refusals; N
data-parallel ranks (one injecting inf) deciding alike and as one process; an exact resume."""
import json
import pickle

import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn.amp import GradScaler
from distnn.distributed import DataParallel, simulate
from distnn.optim import SGD, Adam
from distnn.train.checkpoint.state import decode_state, encode_state
from torch_twins import twin_models

torch = pytest.importorskip("torch")

TOL = {np.float64: dict(rtol=1e-12, atol=1e-13), np.float32: dict(rtol=2e-5, atol=2e-6)}


def models(dtype, seed=0):
    return twin_models(lambda nn: nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)), seed, dtype)


def batches(dtype, n, size=6, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(size, 5)).astype(dtype), rng.normal(size=(size, 3)).astype(dtype)) for _ in range(n)]


def run_both(dtype, steps, bad_steps, clip=None, opt="sgd", **scaler_kw):
    """The same loop in torch and distnn; at ``bad_steps`` one gradient entry is set to inf (NaN at odd steps)
    after backward. Returns per step (torch, distnn) records and the two models."""
    tm, dm = models(dtype)
    make_t = (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)) if opt == "sgd" else \
        (lambda p: torch.optim.Adam(p, lr=0.01))
    make_d = (lambda p: SGD(p, lr=0.1, momentum=0.9)) if opt == "sgd" else (lambda p: Adam(p, lr=0.01))
    topt, dopt = make_t(tm.parameters()), make_d(dm.parameters())
    ts, ds = torch.amp.GradScaler("cpu", **scaler_kw), GradScaler("cpu", **scaler_kw)
    records = []
    for step, (x, y) in enumerate(batches(dtype, steps)):
        bad = np.inf if step % 2 == 0 else np.nan
        topt.zero_grad()
        tl = ts.scale(torch.nn.functional.mse_loss(tm(torch.from_numpy(x)), torch.from_numpy(y)))
        tl.backward()
        dopt.zero_grad()
        dl = ds.scale(F.mse_loss(dm(distnn.Tensor(x)), distnn.Tensor(y)))
        dl.backward()
        if step in bad_steps:
            next(tm.parameters()).grad.view(-1)[3] = bad
            next(dm.parameters()).grad.reshape(-1)[3] = bad
        if clip is not None:
            ts.unscale_(topt)
            tn = float(torch.nn.utils.clip_grad_norm_(tm.parameters(), clip))
            ds.unscale_(dopt)
            dn = float(nn.utils.clip_grad_norm_(dm.parameters(), clip))
            if np.isfinite(tn):
                np.testing.assert_allclose(dn, tn, **TOL[dtype])
            else:
                assert not np.isfinite(dn)
        tw, dw = next(tm.parameters()).detach().clone(), next(dm.parameters()).data.copy()
        ts.step(topt)
        ds.step(dopt)
        ts.update()
        ds.update()
        t_stepped = not torch.equal(next(tm.parameters()).detach(), tw)
        d_stepped = not np.array_equal(next(dm.parameters()).data, dw)
        records.append(((tl.item(), t_stepped, ts.get_scale(), ts._get_growth_tracker()),
                        (float(dl.item()), d_stepped, ds.get_scale(), ds._get_growth_tracker())))
    return records, tm, dm


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("clip", [None, 0.5])
@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_scale_sequence_skips_and_weights_match_torch(dtype, clip, opt):
    """growth_interval 3 with infs/NaNs at steps 1, 2 and 9: scales, growth trackers, skips and weights as torch's."""
    records, tm, dm = run_both(dtype, 14, {1, 2, 9}, clip=clip, opt=opt, init_scale=2.0 ** 10, growth_interval=3)
    scales = []
    for step, ((tl, t_stepped, tsc, tg), (dl, d_stepped, dsc, dg)) in enumerate(records):
        np.testing.assert_allclose(dl, tl, **TOL[dtype], err_msg=f"scaled loss, step {step}")
        assert (dsc, dg) == (tsc, tg), step
        assert type(dsc) is float and type(dg) is int
        assert d_stepped == t_stepped == (step not in {1, 2, 9}), step
        scales.append(dsc)
    # the sequence itself: backoff at 1 and 2, growth after 3 clean steps (5, 8), backoff at 9, growth at 12
    assert scales[:3] == [2.0 ** 10, 2.0 ** 9, 2.0 ** 8] and scales[5] == 2.0 ** 9 and scales[9] == 2.0 ** 9
    for (k, tv), dv in zip(tm.state_dict().items(), dm.state_dict().values()):
        np.testing.assert_allclose(np.asarray(dv), tv.numpy(), **TOL[dtype], err_msg=k)
        assert np.isfinite(np.asarray(dv)).all(), k


def test_step_returns_the_optimizers_value_or_none_when_skipped():
    class Counting(SGD):
        def step(self, *args, **kwargs):
            super().step()
            return ("stepped", args, kwargs)

    m = nn.Linear(2, 1)
    opt, s = Counting(m.parameters(), lr=0.1), GradScaler("cpu")
    s.scale(m(distnn.ones(3, 2)).sum()).backward()
    assert s.step(opt, 1, k=2) == ("stepped", (1,), {"k": 2})
    s.update()
    opt.zero_grad()
    s.scale(m(distnn.ones(3, 2)).sum()).backward()
    m.weight.grad.reshape(-1)[0] = np.inf
    before = m.weight.data.copy()
    assert s.step(opt) is None
    assert np.array_equal(m.weight.data, before)
    s.update()
    assert s.get_scale() == 2.0 ** 15


def test_backoff_and_growth_factors_other_than_two_round_as_torch():
    """A float32 scale times a double factor, rounded to float32 (torch's kernel): 0.3 and 1.7 over many updates."""
    kw = dict(init_scale=1000.0, growth_factor=1.7, backoff_factor=0.3, growth_interval=2)
    records, _, _ = run_both(np.float32, 16, {0, 3, 4, 11}, **kw)
    for step, (t, d) in enumerate(records):
        assert d[2:] == t[2:], step


def test_growth_stops_at_float32_overflow_as_torch():
    records, _, _ = run_both(np.float64, 4, set(), init_scale=2.0 ** 126, growth_interval=1)
    for step, (t, d) in enumerate(records):
        assert d[2:] == t[2:], step
    assert records[-1][1][2] == 2.0 ** 127  # (2**128 is inf in float32: the growth is not taken)


def test_nested_outputs_are_scaled_in_their_containers():
    ts, ds = torch.amp.GradScaler("cpu", init_scale=4.0), GradScaler("cpu", init_scale=4.0)
    a = np.arange(3.0, dtype=np.float32)
    tout = ts.scale([torch.from_numpy(a), (torch.from_numpy(a), torch.from_numpy(a[:1]))])
    dout = ds.scale([distnn.Tensor(a), (distnn.Tensor(a), distnn.Tensor(a[:1]))])
    assert type(dout) is list and type(dout[1]) is tuple
    np.testing.assert_array_equal(dout[1][1].data, tout[1][1].numpy())
    assert dout[0].dtype == np.float32
    half = ds.scale(distnn.Tensor(a.astype(np.float16)))
    assert half.dtype == np.float16 == ts.scale(torch.from_numpy(a.astype(np.float16))).numpy().dtype
    with pytest.raises(ValueError, match="outputs must be a Tensor or an iterable of Tensors"):
        ds.scale(3.0)


def _one_step_scaler():
    m = nn.Linear(2, 1)
    opt, s = SGD(m.parameters(), lr=0.1), GradScaler("cpu")
    s.scale(m(distnn.ones(3, 2)).sum()).backward()
    return m, opt, s


def test_refusals_match_torch():
    m, opt, s = _one_step_scaler()
    s.unscale_(opt)
    with pytest.raises(RuntimeError, match=r"unscale_\(\) has already been called on this optimizer since the "
                                           r"last update\(\)\."):
        s.unscale_(opt)
    s.step(opt)
    with pytest.raises(RuntimeError, match=r"step\(\) has already been called since the last update\(\)\."):
        s.step(opt)
    with pytest.raises(RuntimeError, match=r"unscale_\(\) is being called after step\(\)\."):
        s.unscale_(opt)
    s.update()
    with pytest.raises(RuntimeError, match="Closure use is not currently supported"):
        s.step(opt, closure=lambda: 0.0)
    with pytest.raises(AssertionError, match="No inf checks were recorded prior to update"):
        s.update()
    fresh = GradScaler("cpu")
    for call in (lambda: fresh.unscale_(opt), lambda: fresh.step(opt), fresh.update):
        with pytest.raises(AssertionError, match="but _scale is None.*did not use scaler.scale"):
            call()
    with pytest.raises(AssertionError, match="The growth factor must be > 1.0."):
        GradScaler("cpu", growth_factor=1.0)
    with pytest.raises(AssertionError, match="The backoff factor must be < 1.0."):
        GradScaler("cpu", backoff_factor=1.0)
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        GradScaler("tpu")
    m16 = nn.Linear(2, 1).to(np.float16)
    opt16, s16 = SGD(m16.parameters(), lr=0.1), GradScaler("cpu", init_scale=1.0)
    s16.scale(m16(distnn.ones(3, 2, dtype=np.float16)).sum()).backward()
    with pytest.raises(ValueError, match="Attempting to unscale FP16 gradients."):
        s16.unscale_(opt16)
    with pytest.raises(RuntimeError, match="saved from a disabled instance"):
        GradScaler("cpu").load_state_dict({})


def test_disabled_is_a_pass_through_and_cuda_without_gpu_disables_with_a_warning():
    m, opt, _ = _one_step_scaler()
    off = GradScaler("cpu", enabled=False)
    loss = m(distnn.ones(3, 2)).sum()
    assert off.scale(loss) is loss and off.get_scale() == 1.0 and off.state_dict() == {} and not off.is_enabled()
    before = m.weight.data.copy()
    assert off.step(opt) is None and not np.array_equal(m.weight.data, before)
    off.update()
    if not distnn.backend.gpu_available():
        with pytest.warns(UserWarning, match="CUDA is not available"):
            assert not GradScaler("cuda").is_enabled()


def test_update_with_new_scale_and_setters():
    m, opt, s = _one_step_scaler()
    s.step(opt)
    s.update(new_scale=8.0)
    assert s.get_scale() == 8.0
    s.set_growth_factor(3.0)
    s.set_backoff_factor(0.25)
    s.set_growth_interval(7)
    assert (s.get_growth_factor(), s.get_backoff_factor(), s.get_growth_interval()) == (3.0, 0.25, 7)
    opt.zero_grad()
    s.scale(m(distnn.ones(3, 2)).sum()).backward()
    s.step(opt)
    s.update(distnn.tensor([16.0]))
    assert s.get_scale() == 16.0
    with pytest.raises(AssertionError, match="new_scale should be a float or a 1-element"):
        s.update(distnn.tensor([1.0, 2.0]))


def test_state_dict_keys_values_as_torch_and_round_trips_bitwise_through_a_checkpoint():
    records, _, _ = run_both(np.float32, 7, {1}, init_scale=3.0 ** 9, growth_interval=2, backoff_factor=0.3)
    ts, ds = torch.amp.GradScaler("cpu"), GradScaler("cpu")
    # (the scalers of run_both are gone: redo their end state by loading torch's sequence's last values)
    t_state = {"scale": records[-1][0][2], "growth_factor": 2.0, "backoff_factor": 0.3, "growth_interval": 2,
               "_growth_tracker": records[-1][0][3]}
    ts.load_state_dict(t_state)
    ds.load_state_dict(t_state)
    assert ds.state_dict() == ts.state_dict() and list(ds.state_dict()) == list(ts.state_dict())
    assert list(GradScaler("cpu").state_dict()) == ["scale", "growth_factor", "backoff_factor", "growth_interval",
                                                     "_growth_tracker"]
    # distnn's checkpoint encoding (a JSON skeleton and arrays) and pickle give back the same bits
    skeleton, arrays = encode_state({"scaler": ds.state_dict()})
    back = decode_state(json.loads(json.dumps(skeleton)), arrays)["scaler"]
    for again in (back, pickle.loads(pickle.dumps(ds.state_dict()))):
        assert again == ds.state_dict()
        assert np.float64(again["scale"]).tobytes() == np.float64(ds.get_scale()).tobytes()


def _train(comm, start, data, bad, state_at=None, resume=None):
    """SGD + GradScaler on the MLP from weights ``start``; ``comm`` None: one process on whole batches, else this
    rank's shard through DataParallel. At step ``bad`` the LAST rank's shard (one process: the same rows) holds an
    inf input. ``state_at``: also return the (model, optimizer, scaler) state after that many steps;
    ``resume``: start from such a state, at its step."""
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).to(np.float64)
    model.load_state_dict(start)
    forward = model if comm is None else DataParallel(model, comm)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    scaler = GradScaler("cpu", init_scale=2.0 ** 8, growth_interval=2)
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    first = 0
    if resume is not None:
        first = resume[3]
        model.load_state_dict(resume[0])
        opt.load_state_dict(resume[1])
        scaler.load_state_dict(resume[2])
    log, saved = [], None
    for step, (x, y) in enumerate(data):
        if step < first:
            continue
        x = x.copy()
        if step == bad:
            x[-1, 0] = np.inf  # a row of the last rank's shard
        mine = slice(rank * len(x) // size, (rank + 1) * len(x) // size)
        local_finite = bool(np.isfinite(x[mine]).all())
        opt.zero_grad()
        scaler.scale(F.mse_loss(forward(distnn.Tensor(x[mine])), distnn.Tensor(y[mine]))).backward()
        before = next(model.parameters()).data.copy()
        scaler.step(opt)
        scaler.update()
        stepped = not np.array_equal(next(model.parameters()).data, before)
        log.append((step, local_finite, stepped, scaler.get_scale()))
        if state_at is not None and step + 1 == state_at:
            saved = (pickle.loads(pickle.dumps(model.state_dict())), pickle.loads(pickle.dumps(opt.state_dict())),
                     pickle.loads(pickle.dumps(scaler.state_dict())), step + 1)
    return model.state_dict(), log, saved


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # (the inf input)
def test_data_parallel_ranks_agree_on_an_inf_of_one_rank_and_match_one_process():
    """The gradient average carries one rank's inf to every rank: all skip the same step, keep the same scale
    sequence and bitwise-equal weights, and equal one process on the whole batch. No extra agreement needed."""
    data = batches(np.float64, 8, size=12)
    start = models(np.float64)[1].state_dict()
    one_w, one_log, _ = _train(None, start, data, bad=3)
    assert [s for _, _, s, _ in one_log] == [i != 3 for i in range(8)]
    for n in (2, 3):
        results = simulate(n, _train, start, data, 3)
        for rank, (w, log, _) in enumerate(results):
            # rank 0's own input was finite at step 3, yet it skipped with the others
            assert [(s, sc) for _, _, s, sc in log] == [(s, sc) for _, _, s, sc in one_log], (n, rank)
            assert log[3][1] == (rank != n - 1), (n, rank)
            for k in w:
                assert np.array_equal(w[k], results[0][0][k]), (n, rank, k)
                np.testing.assert_allclose(w[k], one_w[k], rtol=1e-10, atol=1e-12, err_msg=f"{n} ranks: {k}")


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # (the inf input)
def test_resumed_run_equals_the_uninterrupted_one_bitwise():
    data = batches(np.float64, 9, size=12)
    start = models(np.float64)[1].state_dict()
    full_w, full_log, saved = _train(None, start, data, bad=2, state_at=5)
    res_w, res_log, _ = _train(None, start, data, bad=2, resume=saved)
    assert res_log == full_log[5:]
    for k in full_w:
        assert np.array_equal(res_w[k], full_w[k]), k


@pytest.mark.mpi(min_size=2)
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # (the inf input)
def test_mpi_ranks_agree_on_an_inf_of_the_last_rank_and_match_one_process():
    import distnn.distributed as dist

    comm = dist.init()
    data = batches(np.float64, 8, size=12)
    start = models(np.float64)[1].state_dict()
    one_w, one_log, _ = _train(None, start, data, bad=3)
    w, log, _ = _train(comm, start, data, bad=3)
    assert [(s, sc) for _, _, s, sc in log] == [(s, sc) for _, _, s, sc in one_log]
    assert log[3][1] == (comm.rank != comm.size - 1)
    every = comm.allgather_object(w)
    for k in w:
        assert all(np.array_equal(e[k], w[k]) for e in every), k
        np.testing.assert_allclose(w[k], one_w[k], rtol=1e-10, atol=1e-12, err_msg=k)
