"""distnn.autocast against torch.autocast("cpu", dtype=torch.float16): the dtype every op returns inside the
region (float32 and float16 inputs), values close to torch's float16 results, float32 gradients reaching the
parameters, nesting, enabled=False, threads, the decorator, refusals, and GradScaler + autocast training."""
import threading

import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn.amp import GradScaler
from distnn.optim import SGD
from torch_twins import twin_models

torch = pytest.importorskip("torch")
TF = torch.nn.functional

DRAW_PER_TEST = True  # (R: each test draws from its own generator, conftest's per_test_rng)
R = np.random.default_rng(0)  # (the module-level CASES below draw from this one, at import)


def _r(*shape):
    return R.standard_normal(shape).astype(np.float32)


def _labels(n, c):
    return R.integers(0, c, n)


# name: (numpy inputs, the call with (library namespace, functional namespace, *inputs)); both libraries spell
# each call alike. The first input is the one given as float16 too (where the op takes a float first input).
X, W, B = _r(4, 8), _r(3, 8), _r(3)
IMG, CW = _r(2, 3, 6, 6), _r(4, 3, 3, 3)
VOL, CW3 = _r(1, 2, 4, 4, 4), _r(3, 2, 2, 2, 2)
LAB = _labels(4, 3)
CASES = {
    # the lower-precision list: float16 out
    "linear": ([X, W, B], lambda L, f, x, w, b: f.linear(x, w, b)),
    "matmul": ([X, W.T.copy()], lambda L, f, x, w: x @ w),
    "mm": ([X, W.T.copy()], lambda L, f, x, w: L.mm(x, w)),
    "bmm": ([X[None], W.T.copy()[None]], lambda L, f, x, w: L.bmm(x, w)),
    "baddbmm": ([_r(1, 4, 3), X[None], W.T.copy()[None]], lambda L, f, i, x, w: L.baddbmm(i, x, w)),
    "addmm": ([_r(4, 3), X, W.T.copy()], lambda L, f, i, x, w: L.addmm(i, x, w)),
    "addbmm": ([_r(4, 3), X[None], W.T.copy()[None]], lambda L, f, i, x, w: L.addbmm(i, x, w)),
    "conv1d": ([IMG[:, :, 0], CW[:, :, 0]], lambda L, f, x, w: f.conv1d(x, w)),
    "conv2d": ([IMG, CW, _r(4)], lambda L, f, x, w, b: f.conv2d(x, w, b, padding=1)),
    "conv3d": ([VOL, CW3], lambda L, f, x, w: f.conv3d(x, w)),
    "conv_transpose1d": ([IMG[:, :, 0], _r(3, 2, 3)], lambda L, f, x, w: f.conv_transpose1d(x, w, stride=2)),
    "conv_transpose2d": ([IMG, _r(3, 2, 3, 3)], lambda L, f, x, w: f.conv_transpose2d(x, w)),
    "conv_transpose3d": ([VOL, _r(2, 3, 2, 2, 2)], lambda L, f, x, w: f.conv_transpose3d(x, w)),
    "conv_tbc": ([_r(5, 2, 3), _r(3, 3, 4), _r(4)], lambda L, f, x, w, b: f.conv_tbc(x, w, b, 1)),
    "prelu": ([IMG, np.full(3, 0.25, np.float32)], lambda L, f, x, w: f.prelu(x, w)),
    "sdpa": ([_r(2, 4, 5, 8), _r(2, 4, 6, 8), _r(2, 4, 6, 8), _r(5, 6)],
             lambda L, f, q, k, v, m: f.scaled_dot_product_attention(q, k, v, attn_mask=m)),
    # the float32 list: float32 out
    "cross_entropy": ([_r(4, 3), LAB], lambda L, f, x, t: f.cross_entropy(x, t)),
    "cross_entropy_probs": ([_r(4, 3), np.full((4, 3), 1 / 3, np.float32)], lambda L, f, x, t: f.cross_entropy(x, t)),
    "nll_loss": ([_r(4, 3), LAB], lambda L, f, x, t: f.nll_loss(x, t)),
    "mse_loss": ([_r(4, 3), _r(4, 3)], lambda L, f, x, t: f.mse_loss(x, t)),
    "l1_loss": ([_r(4, 3), _r(4, 3)], lambda L, f, x, t: f.l1_loss(x, t)),
    "huber_loss": ([_r(4, 3), _r(4, 3)], lambda L, f, x, t: f.huber_loss(x, t)),
    "smooth_l1_loss": ([_r(4, 3), _r(4, 3)], lambda L, f, x, t: f.smooth_l1_loss(x, t)),
    "kl_div": ([_r(4, 3), np.abs(_r(4, 3))], lambda L, f, x, t: f.kl_div(x, t, reduction="batchmean")),
    "binary_cross_entropy": ([np.abs(_r(4)) / 4, np.ones(4, np.float32)],
                             lambda L, f, x, t: f.binary_cross_entropy(x, t)),
    "bce_with_logits": ([_r(4), np.ones(4, np.float32)], lambda L, f, x, t: f.binary_cross_entropy_with_logits(x, t)),
    "soft_margin_loss": ([_r(4), np.sign(_r(4))], lambda L, f, x, t: f.soft_margin_loss(x, t)),
    "hinge_embedding_loss": ([_r(4), np.sign(_r(4))], lambda L, f, x, t: f.hinge_embedding_loss(x, t)),
    "margin_ranking_loss": ([_r(4), _r(4), np.sign(_r(4))], lambda L, f, a, b, t: f.margin_ranking_loss(a, b, t)),
    "cosine_embedding_loss": ([_r(4, 3), _r(4, 3), np.sign(_r(4))],
                              lambda L, f, a, b, t: f.cosine_embedding_loss(a, b, t)),
    "triplet_margin_loss": ([_r(4, 3), _r(4, 3), _r(4, 3)], lambda L, f, a, p, n: f.triplet_margin_loss(a, p, n)),
    "multi_margin_loss": ([_r(4, 3), LAB], lambda L, f, x, t: f.multi_margin_loss(x, t)),
    "poisson_nll_loss": ([_r(4, 3), np.abs(_r(4, 3))], lambda L, f, x, t: f.poisson_nll_loss(x, t)),
    "cdist": ([_r(4, 3), _r(5, 3)], lambda L, f, a, b: L.cdist(a, b)),
    "prod": ([_r(4, 3)], lambda L, f, x: L.prod(x)),
    # neither list on the CPU: the inputs' dtype (float16 stays float16; float16 with float32 gives float32)
    "softmax": ([_r(4, 3)], lambda L, f, x: f.softmax(x, dim=-1)),
    "log_softmax": ([_r(4, 3)], lambda L, f, x: f.log_softmax(x, dim=-1)),
    "exp": ([_r(4, 3)], lambda L, f, x: L.exp(x)),
    "sum": ([_r(4, 3)], lambda L, f, x: x.sum()),
    "relu": ([_r(4, 3)], lambda L, f, x: f.relu(x)),
    "layer_norm": ([_r(4, 3)], lambda L, f, x: f.layer_norm(x, (3,))),
    "add_mixed": ([_r(4, 3), _r(4, 3)], lambda L, f, a, b: a + b),
}


def _as(lib, a, half):
    """``a`` for ``lib`` (torch or distnn); float inputs as float16 where ``half``."""
    if a.dtype.kind == "f" and half:
        a = a.astype(np.float16)
    return torch.from_numpy(a.copy()) if lib == "torch" else distnn.Tensor(a.copy())


def _run(name, half_first, lib):
    arrays, call = CASES[name]
    xs = [_as(lib, a, half_first and i == 0) for i, a in enumerate(arrays)]
    if lib == "torch":
        with torch.autocast("cpu", dtype=torch.float16):
            return call(torch, TF, *xs)
    with distnn.autocast("cpu"):
        return call(distnn, F, *xs)


def _tdtype(t):
    return np.dtype(str(t.dtype).replace("torch.", ""))


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("half_first", [False, True])
@pytest.mark.parametrize("name", sorted(CASES))
def test_output_dtype_and_values_as_torch_cpu_autocast(name, half_first):
    t, d = _run(name, half_first, "torch"), _run(name, half_first, "distnn")
    assert d.dtype == _tdtype(t), (name, d.dtype, t.dtype)
    tv = t.detach().float().numpy()
    # float16 results: within a few float16 ulps of torch's (both round a float32-accumulated result)
    tol = dict(rtol=4e-3, atol=4e-3) if d.dtype == np.float16 or half_first else dict(rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(np.asarray(d.data, np.float32), tv, **tol, err_msg=name)


def test_every_op_is_back_to_its_own_dtype_outside_the_region():
    x, w = distnn.Tensor(X), distnn.Tensor(W)
    with distnn.autocast("cpu"):
        assert F.linear(x, w).dtype == np.float16
    assert F.linear(x, w).dtype == np.float32
    assert F.mse_loss(x.half(), x.half()).dtype == np.float16  # (no float32 policy outside either)


def test_float64_is_never_cast():
    x, w = distnn.Tensor(X.astype(np.float64)), distnn.Tensor(W.astype(np.float64))
    with distnn.autocast("cpu"), torch.autocast("cpu", dtype=torch.float16):
        assert F.linear(x, w).dtype == np.float64 == _tdtype(TF.linear(torch.from_numpy(X.astype(np.float64)),
                                                                         torch.from_numpy(W.astype(np.float64))))
        # float32 is cast to float16, float64 is not: the two no longer match, and both refuse
        gist = r"expected m1 and m2 to have the same dtype, but got: double != c10::Half"
        with pytest.raises(RuntimeError, match=gist):
            F.linear(x, distnn.Tensor(W))
        with pytest.raises(RuntimeError, match=gist):
            TF.linear(torch.from_numpy(X.astype(np.float64)), torch.from_numpy(W))


def _mlp_pair():
    return twin_models(lambda nn: nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)))


def test_float32_gradients_reach_the_parameters_close_to_torchs():
    tm, dm = _mlp_pair()
    x, y = _r(6, 8), _labels(6, 3)
    with torch.autocast("cpu", dtype=torch.float16):
        th = tm(torch.from_numpy(x))
        tl = TF.cross_entropy(th, torch.from_numpy(y))
    with distnn.autocast("cpu"):
        dh = dm(distnn.Tensor(x))
        dl = F.cross_entropy(dh, distnn.Tensor(y))
    assert dh.dtype == np.float16 and dl.dtype == np.float32 == _tdtype(tl)
    tl.backward()
    dl.backward()
    np.testing.assert_allclose(dl.item(), tl.item(), rtol=2e-3)
    for (k, tp), dp in zip(tm.named_parameters(), dm.parameters()):
        assert dp.grad.dtype == np.float32 == _tdtype(tp.grad), k
        np.testing.assert_allclose(np.asarray(dp.grad.data if hasattr(dp.grad, "data") else dp.grad),
                                   tp.grad.numpy(), rtol=1e-2, atol=2e-3, err_msg=k)


def test_conv_model_gradients_in_float32():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    with distnn.autocast("cpu"):
        out = m(distnn.Tensor(IMG))
        loss = F.cross_entropy(out, distnn.Tensor(np.array([0, 1])))
    assert out.dtype == np.float16
    loss.backward()
    for p in m.parameters():
        assert p.grad.dtype == np.float32 and np.isfinite(np.asarray(p.grad.data if hasattr(p.grad, "data")
                                                                      else p.grad)).all()


def test_attention_and_prelu_model_gradients_in_float32():
    q = distnn.Tensor(_r(2, 5, 8))
    mha, prelu, head = nn.MultiheadAttention(8, 2, batch_first=True), nn.PReLU(), nn.Linear(8, 3)
    with distnn.autocast("cpu"):
        h = prelu(mha(q, q, q)[0])
        loss = F.mse_loss(head(h), distnn.zeros(2, 5, 3))
    assert h.dtype == np.float16 and loss.dtype == np.float32
    loss.backward()
    for p in [*mha.parameters(), *prelu.parameters(), *head.parameters()]:
        g = np.asarray(p.grad.data if hasattr(p.grad, "data") else p.grad)
        assert g.dtype == np.float32 and np.isfinite(g).all() and np.abs(g).sum() > 0


def test_nesting_enabled_false_and_the_decorator():
    x, w = distnn.Tensor(X), distnn.Tensor(W)
    outer = distnn.autocast("cpu")
    with outer:
        assert distnn.amp.is_autocast_enabled("cpu")
        with distnn.autocast("cpu", enabled=False):
            assert F.linear(x, w).dtype == np.float32 and not distnn.amp.is_autocast_enabled("cpu")
            with distnn.amp.autocast("cpu"):
                assert F.linear(x, w).dtype == np.float16
            assert F.linear(x, w).dtype == np.float32
        assert F.linear(x, w).dtype == np.float16
        with outer:  # the same instance entered again
            assert F.linear(x, w).dtype == np.float16
        assert F.linear(x, w).dtype == np.float16
    assert F.linear(x, w).dtype == np.float32 and not distnn.amp.is_autocast_enabled("cpu")

    @distnn.autocast("cpu")
    def forward(a, b):
        return F.linear(a, b)

    assert forward(x, w).dtype == np.float16 and F.linear(x, w).dtype == np.float32
    with pytest.raises(KeyError):
        with distnn.autocast("cpu"):
            raise KeyError("inside")
    assert F.linear(x, w).dtype == np.float32  # (restored on an exception too)


def test_autocast_is_thread_local():
    x, w = distnn.Tensor(X), distnn.Tensor(W)
    seen = []
    started, release = threading.Event(), threading.Event()

    def other():
        started.wait()
        seen.append(F.linear(x, w).dtype)
        release.set()

    t = threading.Thread(target=other)
    t.start()
    with distnn.autocast("cpu"):
        started.set()
        release.wait()
        assert F.linear(x, w).dtype == np.float16
    t.join()
    assert seen == [np.float32]


def test_refusals():
    with pytest.raises(TypeError, match="bfloat16 is not supported"):
        distnn.autocast("cpu", dtype="bfloat16")
    with pytest.raises(TypeError, match="bfloat16 is not supported"):
        distnn.autocast("cpu", dtype=torch.bfloat16)
    with pytest.raises(TypeError, match="dtype must be float16"):
        distnn.autocast("cpu", dtype="not-a-dtype")
    with pytest.raises(ValueError, match="Expected `device_type` of type `str`"):
        distnn.autocast(0)
    with pytest.raises(RuntimeError, match="unsupported autocast device_type 'tpu'"):
        distnn.autocast("tpu")
    with pytest.raises(TypeError, match="requires a callable"):
        distnn.autocast("cpu")(3)
    # a dtype autocast cannot lower to: disabled with a warning, as torch
    with pytest.warns(UserWarning, match="target dtype is not supported. Disabling autocast"):
        ac = distnn.autocast("cpu", dtype=np.float32)
    with pytest.warns(UserWarning, match="target dtype is not supported"):
        torch.autocast("cpu", dtype=torch.float32)
    with ac:
        assert F.linear(distnn.Tensor(X), distnn.Tensor(W)).dtype == np.float32
    assert distnn.autocast("cpu", dtype=torch.float16).fast_dtype == np.float16
    if not distnn.backend.gpu_available():
        with pytest.warns(UserWarning, match="CUDA is not available"):
            with distnn.autocast("cuda"):
                assert F.linear(distnn.Tensor(X), distnn.Tensor(W)).dtype == np.float32


def test_cuda_autocast_leaves_cpu_tensors_alone():
    """Only tensors on the autocast's device are cast (torch's eligibility), whatever the policy says."""
    from distnn.autograd import autocast_state

    prev = autocast_state.enter("cuda", np.dtype(np.float16))  # (as a GPU run's autocast("cuda") would)
    try:
        assert F.linear(distnn.Tensor(X), distnn.Tensor(W)).dtype == np.float32
    finally:
        autocast_state.restore(prev)
    assert autocast_state.active == 0


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_grad_scaler_with_autocast_trains_as_torch():
    """The documented loop (autocast forward, scaled backward, unscale_, clip, step, update) for a few steps:
    losses, scales and weights close to torch's on the same data, through one skipped step and two growths.

    The scales are chosen so that whether a step overflows never rests on rounding. Step 0, at 2**24, overflows
    for certain: the float16 cast of the scaled loss gradient, 2**24 * (softmax - onehot) / 6, is over 65504 as
    soon as one |softmax - onehot| > 0.024 (with 3 classes, some is at least 1/3). The back-off to 2**12 and two
    growths (every 2 clean steps) reach 2**14 at most: the output's gradients are then at most 2**14 / 6 each, a
    sum over the 6 samples (the bias gradient, the tanh-bounded weight gradient) at most 2**14, and the largest
    gradient element over 200 seeds' runs was 8944, 7 times below float16's 65504. (The defaults, 2**16 grown
    to 2**18, put gradient sums within a rounding of 65504: distnn's float16 sum over the batch axis, which
    accumulates in float16, overflowed where torch's did not, and the scales parted for 1 seed in 7.) Tanh, not ReLU:
    a ReLU gate whose float16 input rounds to either side of 0 in the two libraries switches a hidden unit's
    whole gradient on in one and off in the other, and a weight then differed by more than any rounding."""
    tm, dm = twin_models(lambda nn: nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3)))
    topt, dopt = torch.optim.SGD(tm.parameters(), lr=0.1), SGD(dm.parameters(), lr=0.1)
    settings = dict(init_scale=2.0 ** 24, backoff_factor=2.0 ** -12, growth_interval=2)
    ts, ds = torch.amp.GradScaler("cpu", **settings), GradScaler("cpu", **settings)
    scales = []
    for step in range(6):
        x, y = _r(6, 8), _labels(6, 3)
        with torch.autocast("cpu", dtype=torch.float16):
            tl = TF.cross_entropy(tm(torch.from_numpy(x)), torch.from_numpy(y))
        with distnn.autocast("cpu"):
            dl = F.cross_entropy(dm(distnn.Tensor(x)), distnn.Tensor(y))
        topt.zero_grad()
        dopt.zero_grad()
        ts.scale(tl).backward()
        ds.scale(dl).backward()
        ts.unscale_(topt)
        ds.unscale_(dopt)
        torch.nn.utils.clip_grad_norm_(tm.parameters(), 1.0)
        nn.utils.clip_grad_norm_(dm.parameters(), 1.0)
        ts.step(topt)
        ds.step(dopt)
        ts.update()
        ds.update()
        np.testing.assert_allclose(dl.item(), tl.item(), rtol=5e-3, err_msg=f"step {step}")
        assert ds.get_scale() == ts.get_scale(), step
        scales.append(ts.get_scale())
    assert scales == [2.0 ** 12, 2.0 ** 12, 2.0 ** 13, 2.0 ** 13, 2.0 ** 14, 2.0 ** 14]  # (the path meant)
    for (k, tv), dv in zip(tm.state_dict().items(), dm.state_dict().values()):
        assert np.asarray(dv).dtype == np.float32
        np.testing.assert_allclose(np.asarray(dv), tv.numpy(), rtol=1e-2, atol=2e-3, err_msg=k)


@pytest.mark.skipif(not distnn.backend.gpu_available(), reason="needs cupy and a CUDA device (none here)")
def test_cuda_autocast_on_cupy_tensors_matches_the_cpu_policy():
    """autocast("cuda") casts cupy tensors as autocast("cpu") casts numpy ones; GradScaler("cuda") unscales them."""
    tm, dm = _mlp_pair()
    x, y = _r(6, 8), _labels(6, 3)
    with distnn.autocast("cpu"):
        cpu = F.cross_entropy(dm(distnn.Tensor(x)), distnn.Tensor(y))
    dm.to("cuda")
    scaler, opt = GradScaler("cuda"), SGD(dm.parameters(), lr=0.1)
    with distnn.autocast("cuda"):
        h = dm(distnn.Tensor(x).to("cuda"))
        gpu = F.cross_entropy(h, distnn.Tensor(y).to("cuda"))
    assert h.dtype == np.float16 and gpu.dtype == np.float32
    np.testing.assert_allclose(gpu.item(), cpu.item(), rtol=5e-3)
    scaler.scale(gpu).backward()
    scaler.step(opt)
    scaler.update()
    assert scaler.get_scale() == 2.0 ** 16 and all(p.grad.dtype == np.float32 for p in dm.parameters())


def _train_mixed(comm, start, data):
    """autocast + GradScaler on an MLP (float32 master weights); ``comm`` None: one process on whole batches, else
    this rank's equal shard through DataParallel."""
    from distnn.distributed import DataParallel

    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    model.load_state_dict(start)
    forward = model if comm is None else DataParallel(model, comm)
    # (a scale that overflows neither: a rank's float16 gradients are those of its smaller shard's mean, larger
    # than one process's, so near the edge the ranks may back off where one process does not, as with torch's DDP)
    opt, scaler = SGD(model.parameters(), lr=0.1, momentum=0.9), GradScaler("cpu", init_scale=2.0 ** 8,
                                                                            growth_interval=2)
    rank, size = (0, 1) if comm is None else (comm.rank, comm.size)
    for x, y in data:
        mine = slice(rank * len(x) // size, (rank + 1) * len(x) // size)
        opt.zero_grad()
        with distnn.autocast("cpu"):
            loss = F.cross_entropy(forward(distnn.Tensor(x[mine])), distnn.Tensor(y[mine]))
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    return model.state_dict(), scaler.get_scale()


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_data_parallel_autocast_ranks_stay_identical_and_close_to_one_process():
    """The float16 forward per shard, float32 gradients averaged over ranks: every rank's weights are the same
    bits, and within float16 rounding of one process on the whole batches."""
    from distnn.distributed import simulate

    _, dm = _mlp_pair()
    start = dm.state_dict()
    data = [(_r(12, 8), _labels(12, 3)) for _ in range(5)]
    one_w, one_scale = _train_mixed(None, start, data)
    results = simulate(2, _train_mixed, start, data)
    assert one_scale == 2.0 ** 10
    for w, scale in results:
        assert scale == one_scale
        for k in w:
            assert w[k].dtype == np.float32 and np.array_equal(w[k], results[0][0][k]), k
            np.testing.assert_allclose(w[k], one_w[k], rtol=1e-2, atol=2e-3, err_msg=k)
