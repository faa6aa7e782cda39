"""FractionalMaxPool2d/3d and F.fractional_max_pool2d/3d (+ ``_with_indices``) against PyTorch (the oracle).

Given the same ``_random_samples`` both libraries must pick the same windows (aten's interval arithmetic, in
the input's dtype), so outputs, indices and input gradients are compared exactly in float32 as in float64:
a seeded fuzz with layer_fuzz_harness.py's harness over shapes, kernels, output sizes or ratios, ties and NaN;
a float32 stress of the interval arithmetic; refusals as PyTorch's; unbatched inputs; the modules' repr and
state_dict. Without ``_random_samples`` the samples are distnn's draws: in [0, 1), reproducible with
``manual_seed``, per (sample, channel) (N ranks == 1 process is in test_dropout_variants_ranks.py).
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

from layer_fuzz_harness import G, C, batch_shape as _batch, op_registry, run_cases  # noqa: E402

TF = torch.nn.functional
OPS, op = op_registry()


def _samples(c, n, ch, nd):
    """(n', ch, nd) samples in [0, 1) (n' >= n: PyTorch takes the first n), with the edges now and then."""
    s = c.rng.random((max(n, 1) + c.pick(0, 0, 1), ch, nd))
    if c.coin(0.3):
        s.flat[c.rng.integers(0, s.size, 2)] = c.pick(0.0, np.nextafter(1.0, 0.0), 0.5)
    return s


def _fractional_case(c, nd):
    name = f"FractionalMaxPool{nd}d"
    k = c.pick(c.int(1, 3), tuple(c.int(1, 3) for _ in range(nd)))
    kk = (k,) * nd if isinstance(k, int) else k
    shape = _batch(c, c.int(1, 3), *(c.int(kk[a], kk[a] + 7 - nd) for a in range(nd)))
    strict = nd == 3  # (PyTorch's 3-D check wants output + kernel - 1 < input)
    spatial = shape[-nd:]
    if c.coin():  # output_size: any size the kernel allows (0 too, now and then)
        sizes = tuple(c.int(0 if c.coin(0.1) else 1, max(s - k_ + 1 - strict, 1)) for s, k_ in zip(spatial, kk))
        size, ratio = c.pick(sizes, sizes[0]) if len(set(sizes)) == 1 else sizes, None
    else:
        size, ratio = None, c.pick(c.rng.uniform(0.3, 0.95), tuple(c.rng.uniform(0.3, 0.95, nd)))
    ri = c.coin()
    n = shape[0] if len(shape) == nd + 2 else 1
    s = _samples(c, n, shape[-nd - 1], nd)
    c.draw(k=k, shape=shape, output_size=size, output_ratio=ratio, return_indices=ri)
    x = c.normal(*shape, ties=True)
    if x.size and c.coin(0.1):  # NaN: the last NaN of a window wins, as PyTorch's
        x.flat[c.rng.integers(0, x.size, 3)] = np.nan
    kw = dict(output_size=size, output_ratio=ratio, return_indices=ri)
    if c.draw(functional=c.coin()):
        if isinstance(ratio, float):  # (PyTorch's F. functions take len() of the ratio: a sequence)
            kw["output_ratio"] = (ratio,) * nd
        fname = f"fractional_max_pool{nd}d" + c.pick("", "_with_indices")
        return c.run(lambda a, b: getattr(DF, fname)(a, k, _random_samples=b, **kw),
                     lambda a, b: getattr(TF, fname)(a, k, _random_samples=b, **kw), [G(x), C(s)])
    dm = getattr(dnn, name)(k, _random_samples=s, **kw)
    tm = getattr(torch.nn, name)(k, _random_samples=torch.from_numpy(s), **kw)
    return c.run(dm, tm, [G(x)])


@op("FractionalMaxPool2d")
def _frac2d(c):
    return _fractional_case(c, 2)


@op("FractionalMaxPool3d")
def _frac3d(c):
    return _fractional_case(c, 3)


@pytest.mark.parametrize("name", list(OPS))
def test_fractional_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])


def _pair(nd, dtype, shape, k, size, seed):
    """distnn's and PyTorch's (output, indices, input gradient) for the same input and samples."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    s = rng.random(shape[:2] + (nd,)).astype(dtype)
    g = rng.standard_normal(shape[:2] + size).astype(dtype)
    fname = f"fractional_max_pool{nd}d"
    xd, xt = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    od, idd = getattr(DF, fname)(xd, k, size, return_indices=True, _random_samples=s)
    ot, it = getattr(TF, fname)(xt, k, size, return_indices=True, _random_samples=torch.from_numpy(s))
    (od * distnn.tensor(g)).sum().backward()
    ot.backward(torch.from_numpy(g))
    return (od.numpy(), idd.numpy(), xd.grad), (ot.detach().numpy(), it.numpy(), xt.grad.numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("nd, shape, k, size", [
    (2, (3, 64, 50, 37), (2, 3), (17, 11)),   # many planes: many samples through the float arithmetic
    (2, (2, 40, 97, 8), 3, (31, 6)),
    (3, (2, 16, 21, 9, 13), (2, 1, 3), (7, 8, 5)),
])
def test_same_samples_give_pytorchs_windows_exactly(dtype, nd, shape, k, size):
    d, t = _pair(nd, dtype, shape, k, size, seed=sum(shape))
    np.testing.assert_array_equal(d[1], t[1])  # the same winners: the same windows
    assert d[0].dtype == dtype and d[1].dtype == np.int64 and d[2].dtype == dtype
    np.testing.assert_array_equal(d[0], t[0])
    np.testing.assert_allclose(d[2], t[2], rtol=1e-6 if dtype == np.float32 else 1e-13, atol=0)


def test_float32_windows_are_computed_in_float32_as_pytorchs():
    """A float32 input's window starts are aten's float32 arithmetic: samples for which float64 arithmetic would
    truncate to another start (found here with the formula in float64) pick PyTorch's windows all the same."""
    size, k, out = 44, 1, 11
    # candidates: float32 samples within 32 ulps of those putting (i + u) * alpha on an integer (where rounding
    # decides the truncation)
    alpha = (size - k) / (out - 1)
    near = np.array([n / alpha - i for i in range(out - 1) for n in range(size) if 0 <= n / alpha - i < 1])
    u = (near.astype(np.float32).view(np.int32)[:, None] + np.arange(-32, 33)).ravel().view(np.float32)
    u = u[(u >= 0) & (u < 1)]

    def starts(v, t):
        alpha = t(size - k) / t(out - 1)
        i = np.arange(out - 1).astype(t)
        return np.trunc((i + v.astype(t)[:, None]) * alpha) - np.trunc(v.astype(t) * alpha)[:, None]

    differ = np.nonzero((starts(u, np.float32) != starts(u, np.float64)).any(axis=1))[0]
    assert len(differ) >= 4  # (the test needs such samples)
    s = np.stack([u[differ], u[differ[::-1]]], axis=-1)[None]  # (1, C, 2): both axes take a differing sample
    x = np.random.default_rng(10).standard_normal((1, len(differ), size, size)).astype(np.float32)
    od, idd = DF.fractional_max_pool2d(x, k, out, return_indices=True, _random_samples=s)
    ot, it = TF.fractional_max_pool2d(torch.from_numpy(x), k, out, return_indices=True,
                                      _random_samples=torch.from_numpy(s))
    np.testing.assert_array_equal(idd.numpy(), it.numpy())
    np.testing.assert_array_equal(od.numpy(), ot.numpy())


def test_windows_follow_the_sample_and_each_axis_takes_its_own():
    """Samples (W, H) per plane: changing only the first moves only the columns (PyTorch's order)."""
    x = np.arange(2 * 13 * 12, dtype=np.float64).reshape(1, 2, 13, 12)  # increasing: a window's max is its corner
    base = np.array([[[0.1, 0.2], [0.7, 0.9]]])
    _, i0 = DF.fractional_max_pool2d(x, 2, (5, 4), return_indices=True, _random_samples=base)
    moved = base.copy()
    moved[0, 0, 0] = 0.8  # plane 0's width sample
    _, i1 = DF.fractional_max_pool2d(x, 2, (5, 4), return_indices=True, _random_samples=moved)
    rows0, cols0 = np.divmod(i0.numpy(), 12)
    rows1, cols1 = np.divmod(i1.numpy(), 12)
    np.testing.assert_array_equal(rows0, rows1)
    assert not np.array_equal(cols0[0, 0], cols1[0, 0])
    np.testing.assert_array_equal(cols0[0, 1], cols1[0, 1])
    # the last window ends at the input's end, whatever the sample
    assert (cols0[..., -1] == 11).all() and (rows0[..., -1, :] == 12).all()


def test_gradient_checker_agrees():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 9, 8))
    s = rng.random((2, 3, 2))
    check_grad(lambda a: DF.fractional_max_pool2d(a, (3, 2), output_ratio=0.6, _random_samples=s), x)
    x3 = rng.standard_normal((2, 2, 5, 6, 7))
    s3 = rng.random((2, 2, 3))
    check_grad(lambda a: DF.fractional_max_pool3d(a, 2, (3, 4, 4), _random_samples=s3), x3)


def test_unbatched_input_is_a_batch_of_one():
    rng = np.random.default_rng(5)
    for nd, shape in ((2, (3, 9, 7)), (3, (2, 6, 5, 7))):
        x, s = rng.standard_normal(shape), rng.random((1, shape[0], nd))
        fname = f"fractional_max_pool{nd}d_with_indices"
        od, idd = getattr(DF, fname)(x, 2, output_ratio=(0.5,) * nd, _random_samples=s)
        ot, it = getattr(TF, fname)(torch.from_numpy(x), 2, output_ratio=(0.5,) * nd,
                                    _random_samples=torch.from_numpy(s))
        np.testing.assert_array_equal(od.numpy(), ot.numpy())
        np.testing.assert_array_equal(idd.numpy(), it.numpy())
        batched = getattr(DF, fname)(x[None], 2, output_ratio=(0.5,) * nd, _random_samples=s)[0]
        np.testing.assert_array_equal(batched.numpy()[0], od.numpy())


X2 = np.random.default_rng(0).standard_normal((2, 3, 7, 8))
S2 = np.random.default_rng(1).random((2, 3, 2))


@pytest.mark.parametrize("kind, call", [
    ("no size", lambda F, x, s: F.fractional_max_pool2d(x, 3)),
    ("too large", lambda F, x, s: F.fractional_max_pool2d(x, 3, output_size=6)),
    ("3d too large", lambda F, x, s: F.fractional_max_pool3d(x[..., None].expand(2, 3, 7, 8, 4) if hasattr(x, "expand")
                                                             else np.broadcast_to(x[..., None], (2, 3, 7, 8, 4)),
                                                             (3, 2, 2), output_size=(6, 2, 2))),
    ("output_size triple", lambda F, x, s: F.fractional_max_pool2d(x, 2, output_size=(2, 2, 2))),
    ("kernel triple", lambda F, x, s: F.fractional_max_pool2d(x, (2, 2, 2), output_size=2)),
    ("ratio triple", lambda F, x, s: F.fractional_max_pool2d(x, 2, output_ratio=(0.5, 0.5, 0.5))),
    ("empty plane", lambda F, x, s: F.fractional_max_pool2d(x[:, :, :0], 1, output_size=3)),
    ("empty channels", lambda F, x, s: F.fractional_max_pool2d(x[:, :0], 1, output_size=3)),
    ("samples dtype", lambda F, x, s: F.fractional_max_pool2d(x, 2, 3, _random_samples=s.float() if hasattr(s, "float")
                                                              else s.astype(np.float32))),
    ("samples batch", lambda F, x, s: F.fractional_max_pool2d(x, 2, 3, _random_samples=s[:1])),
    ("samples channels", lambda F, x, s: F.fractional_max_pool2d(x, 2, 3, _random_samples=s[:, :2])),
    ("samples last", lambda F, x, s: F.fractional_max_pool2d(x, 2, 3, _random_samples=s[:, :, :1])),
    ("samples rank", lambda F, x, s: F.fractional_max_pool2d(x, 2, 3, _random_samples=s[0])),
    ("3d samples last", lambda F, x, s: F.fractional_max_pool3d(x[None], 2, 1, _random_samples=s[:1, :2])),
    ("negative size", lambda F, x, s: F.fractional_max_pool2d(x, 2, output_size=-3)),
    ("float kernel", lambda F, x, s: F.fractional_max_pool2d(x, 2.5, output_size=3)),
])
def test_refusals_are_pytorchs(kind, call):
    with pytest.raises(Exception) as theirs:
        call(TF, torch.from_numpy(X2), torch.from_numpy(S2))
    with pytest.raises(type(theirs.value)) as ours:
        call(DF, distnn.tensor(X2), S2)
    gist = {"no size": "either an output_size or an output_ratio", "too large": "pool height 3 too large",
            "3d too large": "pool time 3 too large", "samples dtype": "same dtype", "samples batch": "batch size",
            "samples channels": "channel", "samples last": "equals to 2", "samples rank": "3 dimensions",
            "3d samples last": "equals to 3", "empty plane": "non-zero size", "empty channels": "non-zero size",
            "ratio triple": "output_ratio"}.get(kind, "")
    assert gist in str(ours.value), str(ours.value)


def test_distnn_refuses_what_pytorch_reads_out_of_bounds_or_pools_empty():
    x = distnn.tensor(X2)
    with pytest.raises(RuntimeError, match="kernel_size must be positive"):  # PyTorch: windows of -inf
        DF.fractional_max_pool2d(x, 0, output_size=3)
    for bad in (np.nan, np.inf):  # PyTorch: an index past the plane
        s = S2.copy()
        s[1, 2, 0] = bad
        with pytest.raises(RuntimeError, match=r"must be finite, in \[0, 1\)"):
            DF.fractional_max_pool2d(x, 2, output_size=3, _random_samples=s)
    with pytest.raises(RuntimeError, match="non-empty 3D or 4D"):
        DF.fractional_max_pool2d(x[0, 0], 2, output_size=3)


@pytest.mark.parametrize("nd", [2, 3])
def test_module_refusals_repr_and_state_dict_are_pytorchs(nd):
    name = f"FractionalMaxPool{nd}d"
    D, T = getattr(dnn, name), getattr(torch.nn, name)
    for kw, msg in [({}, "either an output size, or a pooling ratio"),
                    ({"output_size": 3, "output_ratio": 0.5}, "only one of"),
                    ({"output_ratio": 1.0}, "between 0 and 1"), ({"output_ratio": 0}, "between 0 and 1")]:
        with pytest.raises(ValueError, match=msg):
            T(2, **kw)
        with pytest.raises(ValueError, match=msg):
            D(2, **kw)
    dm, tm = D(2, output_ratio=0.5), T(2, output_ratio=0.5)
    assert repr(dm) == repr(tm) == f"{name}()"
    assert (dm.kernel_size, dm.output_ratio, dm.output_size) == (tm.kernel_size, tm.output_ratio, tm.output_size)
    assert list(dm.state_dict()) == list(tm.state_dict()) == []
    s = np.random.default_rng(2).random((2, 3, nd))
    dm, tm = D(2, output_size=2, _random_samples=s), T(2, output_size=2, _random_samples=torch.from_numpy(s))
    assert list(dm.state_dict()) == list(tm.state_dict()) == ["_random_samples"]
    np.testing.assert_array_equal(np.asarray(dm.state_dict()["_random_samples"]), s)
    other = D(2, output_size=2, _random_samples=np.zeros((2, 3, nd)))
    other.load_state_dict(dm.state_dict())
    x = np.random.default_rng(3).standard_normal((2, 3) + (5,) * nd)
    np.testing.assert_array_equal(other(distnn.tensor(x)).numpy(), tm(torch.from_numpy(x)).numpy())


def test_default_samples_are_distnns_draws_in_the_unit_interval():
    x = distnn.tensor(np.random.default_rng(6).standard_normal((4, 5, 30, 30)))
    distnn.manual_seed(11)
    a = DF.fractional_max_pool2d(x, 2, output_size=12)
    b = DF.fractional_max_pool2d(x, 2, output_size=12)
    assert not np.array_equal(a.numpy(), b.numpy())  # fresh samples each call
    distnn.manual_seed(11)
    np.testing.assert_array_equal(DF.fractional_max_pool2d(x, 2, output_size=12).numpy(), a.numpy())
    # they are the generator's uniform numbers, one per (sample, channel, axis), in the input's dtype
    distnn.manual_seed(11)
    s = distnn.random.default_generator().random((4, 5, 2), dtype=np.float64)
    np.testing.assert_array_equal(DF.fractional_max_pool2d(x, 2, output_size=12, _random_samples=s).numpy(),
                                  a.numpy())
    # the trainer's per-sample generator is asked for one number per (sample, channel, axis), samples on axis 0
    calls = []

    class Recording:
        def unit_uniform(self, shape, batch_dim=None):
            calls.append((shape, batch_dim))
            return np.random.default_rng(0).random(shape)

    with distnn.random.use_generator(Recording()):
        o32 = DF.fractional_max_pool3d(np.zeros((3, 2, 6, 5, 7), np.float32), 2, output_ratio=0.5)
        DF.fractional_max_pool2d(np.zeros((2, 6, 5), np.float32), 2, output_size=2)  # unbatched: (1, C, 2)
    assert o32.dtype == np.float32 and calls == [((3, 2, 3), 0), ((1, 2, 2), 0)]


def test_default_samples_lie_in_the_unit_interval():
    """Samples of 0 and just below 1 are the extremes; windows stay inside the input for any draw."""
    distnn.manual_seed(3)
    x = np.random.default_rng(8).standard_normal((64, 16, 13, 10)).astype(np.float32)
    _, idx = DF.fractional_max_pool2d(x, (3, 2), (5, 7), return_indices=True)
    assert idx.numpy().min() >= 0 and idx.numpy().max() < 13 * 10
    distnn.manual_seed(3)
    s = distnn.random.default_generator().random((64, 16, 2), dtype=np.float32)
    assert s.min() >= 0 and s.max() < 1


def test_float32_samples_stay_below_one():
    """The trainer's per-sample draws are multiples of 2**-32: the largest would round to 1.0 in float32."""
    class Top:
        def unit_uniform(self, shape, batch_dim=None):
            return np.full(shape, 1.0 - 2.0 ** -32)

    x = np.arange(2 * 9 * 9, dtype=np.float32).reshape(1, 2, 9, 9)
    with distnn.random.use_generator(Top()):
        out, idx = DF.fractional_max_pool2d(distnn.tensor(x), 2, 4, return_indices=True)
    s = np.full((1, 2, 2), np.nextafter(np.float32(1), np.float32(0)))
    ot, it = TF.fractional_max_pool2d(torch.from_numpy(x), 2, 4, return_indices=True,
                                      _random_samples=torch.from_numpy(s))
    np.testing.assert_array_equal(idx.numpy(), it.numpy())
    np.testing.assert_array_equal(out.numpy(), ot.numpy())
