"""distnn.optim.swa_utils against torch.optim.swa_utils: the same MLP (torch's weights copied in) trained by SGD
with an AveragedModel updated after each step gives torch's averaged parameters, buffers and n_averaged (SWA and
EMA, avg_fn and multi_avg_fn, use_buffers both ways, float64 tight and float32 loose); update_bn recomputes
BatchNorm statistics as torch's on the same batches; the averages of data-parallel ranks stay identical and
equal one process's."""
import pickle

import numpy as np
import pytest
import torch
import torch.optim.swa_utils as tswa

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn.distributed import DataParallel, simulate
from distnn.optim import SGD, swa_utils
from torch_twins import twin_models

TOL = {np.float64: dict(rtol=1e-12, atol=1e-13), np.float32: dict(rtol=2e-5, atol=2e-6)}
STEPS = 6


def models(dtype, bn=True, seed=0):
    """The same MLP in torch and distnn (torch's initial weights and buffers copied into distnn's)."""
    return twin_models(lambda nn: nn.Sequential(nn.Linear(5, 8), *([nn.BatchNorm1d(8, momentum=0.3)] if bn else []),
                                                nn.Tanh(), nn.Linear(8, 3)), seed, dtype)


def batches(dtype, n=STEPS, size=10, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(size, 5)).astype(dtype), rng.normal(size=(size, 3)).astype(dtype)) for _ in range(n)]


def train_and_average(tm, dm, data, t_kwargs, d_kwargs):
    """SGD steps on both models, each followed by update_parameters of both averages (built at the start)."""
    t_avg, d_avg = tswa.AveragedModel(tm, **t_kwargs), swa_utils.AveragedModel(dm, **d_kwargs)
    topt = torch.optim.SGD(tm.parameters(), lr=0.1, momentum=0.9)
    dopt = SGD(dm.parameters(), lr=0.1, momentum=0.9)
    for x, y in data:
        topt.zero_grad()
        torch.nn.functional.mse_loss(tm(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        topt.step()
        dopt.zero_grad()
        F.mse_loss(dm(distnn.Tensor(x)), distnn.Tensor(y)).backward()
        dopt.step()
        t_avg.update_parameters(tm)
        d_avg.update_parameters(dm)
    return t_avg, d_avg


def assert_state_matches(d_state, t_state, tol, where=""):
    assert list(d_state) == list(t_state), where
    for k, tv in t_state.items():
        tv, dv = tv.detach().numpy(), np.asarray(d_state[k])
        assert dv.shape == tv.shape and dv.dtype == tv.dtype, (where, k, dv.dtype, tv.dtype)
        if tv.dtype.kind in "iu":
            assert np.array_equal(dv, tv), (where, k, dv, tv)
        else:
            np.testing.assert_allclose(dv, tv, err_msg=f"{where}: {k}", **tol)


AVERAGERS = {  # name -> (torch kwargs, distnn kwargs)
    "swa-default": (dict(), dict()),
    "swa-avg_fn": (dict(avg_fn=tswa.get_swa_avg_fn()), dict(avg_fn=swa_utils.get_swa_avg_fn())),
    "ema-avg_fn": (dict(avg_fn=tswa.get_ema_avg_fn(0.7)), dict(avg_fn=swa_utils.get_ema_avg_fn(0.7))),
    "ema-multi": (dict(multi_avg_fn=tswa.get_ema_multi_avg_fn(0.7)),
                  dict(multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.7))),
    "ema-multi-heavy": (dict(multi_avg_fn=tswa.get_ema_multi_avg_fn(0.2)),  # lerp's other branch (weight >= 0.5)
                        dict(multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.2))),
    "custom-avg_fn": (dict(avg_fn=lambda a, m, n: a * 0.25 + m * 0.75),
                      dict(avg_fn=lambda a, m, n: a * 0.25 + m * 0.75)),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("use_buffers", [False, True])
@pytest.mark.parametrize("name", sorted(AVERAGERS))
def test_averaged_model_matches_torch(name, use_buffers, dtype):
    tm, dm = models(dtype)
    t_kw, d_kw = AVERAGERS[name]
    t_avg, d_avg = train_and_average(tm, dm, batches(dtype), dict(t_kw, use_buffers=use_buffers),
                                     dict(d_kw, use_buffers=use_buffers))
    where = f"{name} use_buffers={use_buffers}"
    assert_state_matches(d_avg.state_dict(), t_avg.state_dict(), TOL[dtype], where)
    assert int(d_avg.n_averaged.item()) == STEPS
    # the averages moved away from the live model (the test sees an average, not a copy)
    live = dm.state_dict()
    assert not np.allclose(d_avg.state_dict()["module.0.weight"], live["0.weight"])
    # forward is the averaged copy's, in both modes
    x = batches(dtype, n=1, seed=7)[0][0]
    for mode in (True, False):
        t_avg.train(mode)
        d_avg.train(mode)
        with torch.no_grad():
            want = t_avg(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(d_avg(distnn.Tensor(x)).numpy(), want, **TOL[dtype])


def test_swa_multi_avg_fn_matches_torch_on_float_tensors():
    """torch's get_swa_multi_avg_fn lerps by a float32 1/(n+1) (and refuses integer tensors): no BatchNorm here."""
    for dtype in (np.float64, np.float32):
        tm, dm = models(dtype, bn=False)
        t_avg, d_avg = train_and_average(tm, dm, batches(dtype), dict(multi_avg_fn=tswa.get_swa_multi_avg_fn()),
                                         dict(multi_avg_fn=swa_utils.get_swa_multi_avg_fn()))
        assert_state_matches(d_avg.state_dict(), t_avg.state_dict(), TOL[dtype], str(dtype))


def test_buffers_follow_the_model_without_use_buffers():
    tm, dm = models(np.float64)
    _, d_avg = train_and_average(tm, dm, batches(np.float64), {}, {})
    live = dm.state_dict()
    for k in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
        assert np.array_equal(d_avg.state_dict()["module." + k], live[k])


def test_first_update_copies_and_the_copy_is_independent():
    _, dm = models(np.float64)
    avg = swa_utils.AveragedModel(dm)
    assert int(avg.n_averaged.item()) == 0 and avg.n_averaged.data.dtype == np.int64
    w0 = dm[0].weight.data.copy()
    avg.module[0].weight.data[...] = 0.0  # the copy shares no memory with the model
    assert np.array_equal(dm[0].weight.data, w0)
    avg.update_parameters(dm)
    assert np.array_equal(avg.module[0].weight.data, w0) and int(avg.n_averaged.item()) == 1


def test_state_dict_keys_and_round_trip():
    tm, dm = models(np.float64)
    t_avg, d_avg = train_and_average(tm, dm, batches(np.float64, n=3), {}, {})
    state = d_avg.state_dict()
    assert list(state) == list(t_avg.state_dict())  # n_averaged first, then module.-prefixed entries
    assert list(state)[0] == "n_averaged" and all(k.startswith("module.") for k in list(state)[1:])
    _, other = models(np.float64, seed=5)
    fresh = swa_utils.AveragedModel(other)
    fresh.load_state_dict(pickle.loads(pickle.dumps(state)))
    assert int(fresh.n_averaged.item()) == 3
    x = distnn.Tensor(batches(np.float64, n=1, seed=3)[0][0])
    fresh.eval()
    d_avg.eval()
    np.testing.assert_array_equal(fresh(x).numpy(), d_avg(x).numpy())
    # torch's own state dict loads too, and the next update continues its count
    fresh2 = swa_utils.AveragedModel(other)
    fresh2.load_state_dict(t_avg.state_dict())
    fresh2.update_parameters(dm)
    t_avg.update_parameters(tm)
    assert_state_matches(fresh2.state_dict(), t_avg.state_dict(), TOL[np.float64])


def test_refusals_match_torch():
    tm, dm = models(np.float64)
    for mod, m in ((tswa, tm), (swa_utils, dm)):
        with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
            mod.AveragedModel(m, avg_fn=mod.get_swa_avg_fn(), multi_avg_fn=mod.get_swa_multi_avg_fn())
        for fn in (mod.get_ema_avg_fn, mod.get_ema_multi_avg_fn):
            for bad in (-0.1, 1.5):
                with pytest.raises(ValueError, match="Invalid decay value"):
                    fn(bad)


def test_a_different_model_is_refused_by_name():
    _, dm = models(np.float64)
    avg = swa_utils.AveragedModel(dm)
    with pytest.raises(ValueError, match="parameters"):
        avg.update_parameters(nn.Sequential(nn.Linear(5, 8)))
    with pytest.raises(ValueError, match=r"shape \(8, 4\)"):
        avg.update_parameters(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 3)))
    with pytest.raises(TypeError, match="device"):
        swa_utils.AveragedModel(dm, device="float64")


def test_update_parameters_invalidates_graphs_through_the_average():
    """An in-place change of the averaged weights must stop a backward through a graph built before it."""
    _, dm = models(np.float64, bn=False)
    avg = swa_utils.AveragedModel(dm)
    out = avg(distnn.Tensor(np.ones((2, 5)))).sum()
    avg.update_parameters(dm)
    with pytest.raises(RuntimeError):
        out.backward()


# ------------------------------------------------------------------------------------------ update_bn
def loader_kinds(data):
    xs = [x for x, _ in data]
    return {"tensors": [torch.from_numpy(x) for x in xs],
            "tuples": [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data],
            "lists": [[torch.from_numpy(x), torch.from_numpy(y)] for x, y in data]}, \
        {"tensors": [distnn.Tensor(x) for x in xs],
         "tuples": [(distnn.Tensor(x), distnn.Tensor(y)) for x, y in data],
         "lists": [[distnn.Tensor(x), y] for x, y in data]}


@pytest.mark.parametrize("kind", ["tensors", "tuples", "lists"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_update_bn_matches_torch(kind, dtype):
    tm, dm = models(dtype)
    t_avg, d_avg = train_and_average(tm, dm, batches(dtype, n=3), {}, {})
    t_loaders, d_loaders = loader_kinds(batches(dtype, n=5, size=7, seed=11))
    t_avg.eval()
    d_avg.eval()
    tswa.update_bn(t_loaders[kind], t_avg)
    swa_utils.update_bn(d_loaders[kind], d_avg, device="cpu" if kind == "lists" else None)
    assert_state_matches(d_avg.state_dict(), t_avg.state_dict(), TOL[dtype], kind)
    assert int(d_avg.module[1].num_batches_tracked.item()) == 5
    assert not d_avg.training and not d_avg.module[1].training  # the mode comes back
    assert d_avg.module[1].momentum == 0.3  # and so does the momentum
    assert not d_avg.module[0].weight.requires_grad or d_avg.module[0].weight.grad is None  # no backward ran


def test_update_bn_in_training_mode_and_without_batchnorm():
    tm, dm = models(np.float64, bn=False)
    before = dm.state_dict()
    swa_utils.update_bn([distnn.Tensor(np.ones((3, 5)))], dm)
    after = dm.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    tm, dm = models(np.float64)
    t_loaders, d_loaders = loader_kinds(batches(np.float64, n=2))
    tswa.update_bn(t_loaders["tuples"], tm)
    swa_utils.update_bn(d_loaders["tuples"], dm)
    assert dm.training
    assert_state_matches(dm.state_dict(), tm.state_dict(), TOL[np.float64])


# ----------------------------------------------------------------------------------- data parallelism
def _train_averaged(comm, start, data, ema):
    """SGD on the MLP (no BatchNorm: its batch statistics would differ per shard) from the weights ``start`` with
    an average updated after each step; ``comm`` None: one process on whole batches, else this rank's equal
    shard through DataParallel."""
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).to(np.float64)
    model.load_state_dict(start)
    forward = model if comm is None else DataParallel(model, comm)
    avg = swa_utils.AveragedModel(model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.6) if ema else None,
                                  use_buffers=ema)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    for x, y in data:
        mine = slice(rank * len(x) // size, (rank + 1) * len(x) // size)
        opt.zero_grad()
        F.mse_loss(forward(distnn.Tensor(x[mine])), distnn.Tensor(y[mine])).backward()
        opt.step()
        avg.update_parameters(model)
    return avg.state_dict()


@pytest.mark.parametrize("ema", [False, True])
def test_data_parallel_ranks_average_identically_and_as_one_process(ema):
    """Equal shards and a mean loss: the ranks' averaged gradient is one process's, so their averages are too."""
    data = batches(np.float64, size=12)
    start = models(np.float64, bn=False)[1].state_dict()  # (here: torch's generator is not per thread)
    one = _train_averaged(None, start, data, ema)
    for n in (2, 3):
        states = simulate(n, _train_averaged, start, data, ema)
        for state in states[1:]:
            for k in states[0]:
                assert np.array_equal(state[k], states[0][k]), (n, k)
        assert list(states[0]) == list(one)
        for k in one:
            np.testing.assert_allclose(states[0][k], one[k], rtol=1e-10, atol=1e-12, err_msg=f"{n} ranks: {k}")
        assert int(states[0]["n_averaged"]) == STEPS
