"""Seeded fuzz of LP pooling and the 1-D and 3-D max unpooling against PyTorch (the oracle), with
tests/layer_fuzz_harness.py: random valid arguments and shapes, float64, outputs and input gradients compared.

Covered: LPPool1d/2d/3d and F.lp_pool1d/2d/3d (integer, fractional, infinite norm types; stride, ceil_mode;
windows of zeros, whose gradient is PyTorch's zero); MaxUnpool1d/3d and F.max_unpool1d/3d (stride, padding,
output_size, after PyTorch's own max pool's indices); F.max_pool1d/2d/3d_with_indices and
F.adaptive_max_pool1d/2d/3d_with_indices. Also: float32 against PyTorch, reprs, refusals like PyTorch's, the
gradient checker on LP pooling, and an LP-pooled classifier trained through the public API.

``DISTNN_LAYER_FUZZ_CASES`` sets the number of cases per op (default 4), ``DISTNN_LAYER_FUZZ_START`` the
first seed, as for tests/layer_fuzz_harness.py.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

from layer_fuzz_harness import C, G, batch_shape as _batch, float32_pair, op_registry, run_cases  # noqa: E402
from test_layer_fuzz_more_layers import _module_or_functional, classifier_losses  # noqa: E402

TF = torch.nn.functional
OPS, op = op_registry()


def _size_or_tuple(c, nd, lo, hi):
    return c.pick(c.int(lo, hi), tuple(c.int(lo, hi) for _ in range(nd))) if nd > 1 else c.int(lo, hi)


def _spatial(c, nd):
    return _batch(c, c.int(1, 2), *[c.int(1, 7 if nd < 3 else 5) for _ in range(nd)])


def _lp_input(c, shape, p):
    """Signed values for an integer p (negative sums, exact zeros); for a fractional one, non-negative values
    (a negative base is NaN in both libraries), zeros among them; whole windows of zeros now and then."""
    x = c.normal(*shape, ties=True)
    if math.isfinite(p) and p != int(p):
        x = np.abs(x)
    if x.size and c.coin(0.3):
        x[..., : max(1, shape[-1] // 2)] = 0.0
    return x


def _lp_case(c, nd):
    module, functional = f"LPPool{nd}d", f"lp_pool{nd}d"
    p = c.draw(norm_type=c.pick(1, 2, 3, 1.5, 0.75, 2.0, math.inf, -math.inf))
    k = c.draw(kernel_size=_size_or_tuple(c, nd, 1, 3))
    stride, ceil, shape = c.draw(stride=c.pick(None, _size_or_tuple(c, nd, 1, 3)), ceil_mode=c.coin(),
                                 shape=_spatial(c, nd))
    dm, tm = _module_or_functional(c, module, functional, p, k, stride=stride, ceil_mode=ceil)
    return c.run(dm, tm, [G(_lp_input(c, shape, p))])


for _nd in (1, 2, 3):
    op(f"LPPool{_nd}d")(lambda c, nd=_nd: _lp_case(c, nd))


def _unpool_case(c, nd):
    k = c.draw(kernel_size=_size_or_tuple(c, nd, 1, 3))
    kk = (k,) * nd if isinstance(k, int) else k
    stride = c.draw(stride=c.pick(None, _size_or_tuple(c, nd, 1, 3)))
    padding = c.draw(padding=c.pick(0, tuple(c.int(0, a // 2) for a in kk)))
    shape = c.draw(shape=_spatial(c, nd))
    pool = getattr(TF, f"max_pool{nd}d")
    x = torch.from_numpy(c.normal(*shape, ties=True))
    try:
        pooled, idx = pool(x, k, stride, padding, return_indices=True)
    except RuntimeError:
        return False
    ss = kk if stride is None else ((stride,) * nd if isinstance(stride, int) else stride)
    pp = (padding,) * nd if isinstance(padding, int) else padding
    size = None
    if c.coin(0.4):
        size = c.draw(output_size=tuple(x.shape[-nd:]) if c.coin() or x.ndim == nd + 1 else tuple(x.shape))
    elif min((pooled.shape[d - nd] - 1) * s - 2 * q + a for d, s, q, a in zip(range(nd), ss, pp, kk)) <= 0:
        return False  # (an empty default output: PyTorch skips the indices, distnn refuses; as test_layer_fuzz.py)
    kw = dict(stride=stride, padding=padding)
    if c.draw(functional=c.coin()):
        fd = lambda a, i: getattr(DF, f"max_unpool{nd}d")(a, i, k, output_size=size, **kw)  # noqa: E731
        ft = lambda a, i: getattr(TF, f"max_unpool{nd}d")(a, i, k, output_size=size, **kw)  # noqa: E731
    else:
        dm, tm = getattr(dnn, f"MaxUnpool{nd}d")(k, **kw), getattr(torch.nn, f"MaxUnpool{nd}d")(k, **kw)
        fd, ft = (lambda a, i: dm(a, i, size)), (lambda a, i: tm(a, i, size))
    return c.run(fd, ft, [G(c.normal(*pooled.shape)), C(idx.numpy())])


for _nd in (1, 3):
    op(f"MaxUnpool{_nd}d")(lambda c, nd=_nd: _unpool_case(c, nd))


def _with_indices_case(c, nd):
    name = f"max_pool{nd}d_with_indices"
    k, shape = c.draw(kernel_size=c.int(1, 3), shape=_spatial(c, nd))
    stride, padding, ceil = c.draw(stride=c.pick(None, c.int(1, 3)), padding=c.int(0, k // 2), ceil_mode=c.coin())
    return c.run(lambda x: getattr(DF, name)(x, k, stride, padding, 1, ceil),
                 lambda x: getattr(TF, name)(x, k, stride, padding, 1, ceil), [G(c.normal(*shape, ties=True))])


def _adaptive_with_indices_case(c, nd):
    name = f"adaptive_max_pool{nd}d_with_indices"
    shape, size = c.draw(shape=_spatial(c, nd), output_size=_size_or_tuple(c, nd, 1, 5))
    return c.run(lambda x: getattr(DF, name)(x, size), lambda x: getattr(TF, name)(x, size),
                 [G(c.normal(*shape, ties=True))])


for _nd in (1, 2, 3):
    op(f"F.max_pool{_nd}d_with_indices")(lambda c, nd=_nd: _with_indices_case(c, nd))
    op(f"F.adaptive_max_pool{_nd}d_with_indices")(lambda c, nd=_nd: _adaptive_with_indices_case(c, nd))


@pytest.mark.parametrize("name", sorted(OPS))
def test_lp_unpool_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])


# ---------------------------------------------------------------------------- fixed cases
@pytest.mark.parametrize("layer, args, shape", [
    ("LPPool1d", (2, 3, 2), (2, 3, 10)),
    ("LPPool2d", (1.5, (2, 3), 2, True), (2, 3, 7, 8)),
    ("LPPool3d", (3, 2), (2, 2, 4, 5, 6)),
])
def test_lp_pool_float32_matches_pytorch(layer, args, shape):
    x = np.abs(np.random.default_rng(0).standard_normal(shape)).astype(np.float32) + 0.1
    float32_pair(getattr(dnn, layer)(*args), getattr(torch.nn, layer)(*args), x)


@pytest.mark.parametrize("nd", [1, 3])
def test_max_unpool_float32_round_trip_matches_pytorch(nd):
    shape = (2, 3) + (9, 7, 6)[:nd] if nd == 3 else (2, 3, 9)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    pool, unpool = f"MaxPool{nd}d", f"MaxUnpool{nd}d"
    dp, di = getattr(dnn, pool)(2, return_indices=True)(distnn.tensor(x))
    tp, ti = getattr(torch.nn, pool)(2, return_indices=True)(torch.from_numpy(x))
    np.testing.assert_array_equal(np.asarray(di.data), ti.numpy())
    d = distnn.tensor(np.asarray(dp.data), requires_grad=True)
    t = tp.detach().clone().requires_grad_(True)
    dout = getattr(dnn, unpool)(2)(d, di, output_size=shape[2:])
    tout = getattr(torch.nn, unpool)(2)(t, ti, output_size=shape[2:])
    assert dout.dtype == np.float32 and dout.shape == tuple(tout.shape) == shape
    np.testing.assert_array_equal(np.asarray(dout.data), tout.detach().numpy())
    kept = np.asarray(dout.data) != 0  # each window's maximum back where it was, zeros elsewhere
    np.testing.assert_array_equal(np.asarray(dout.data)[kept], x[kept])
    g = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    (dout * distnn.tensor(g)).sum().backward()
    (tout * torch.from_numpy(g)).sum().backward()
    np.testing.assert_array_equal(np.asarray(d.grad.data), t.grad.numpy())


def test_lp_pool_gradient_passes_the_checker_and_is_zero_for_a_window_of_zeros():
    x = np.abs(np.random.default_rng(3).standard_normal((2, 2, 6, 6))) + 0.2
    for p in (2, 1.5, 3):
        check_grad(lambda a, p=p: DF.lp_pool2d(a, p, 2, 1), x)
    z = np.zeros((1, 1, 4))
    z[0, 0, 2:] = [1.0, -2.0]
    d = distnn.tensor(z, requires_grad=True)
    t = torch.tensor(z, requires_grad=True)
    DF.lp_pool1d(d, 2, 2).sum().backward()
    TF.lp_pool1d(t, 2, 2).sum().backward()
    np.testing.assert_allclose(np.asarray(d.grad.data), t.grad.numpy(), rtol=1e-14)
    assert d.grad.data[0, 0, 0] == d.grad.data[0, 0, 1] == 0.0 and np.isfinite(d.grad.data).all()



@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("p", [2, 1.5, 3])
def test_lp_pool_over_windows_of_zeros_is_silent_and_its_gradient_is_pytorchs(nd, p):
    # After a ReLU whole windows are 0: the power's gradient there is inf and inf * 0 is NaN before relu's
    # backward masks it. PyTorch says nothing; numpy warned ("divide by zero", "invalid value"). p = 3 of
    # signed values also has negative sums, NaN both ways (a cube root of a negative base, as PyTorch's pow).
    x = np.random.default_rng(4).standard_normal((2, 3) + (6, 4, 4)[:nd])
    x[..., :2] = -np.abs(x[..., :2])  # ReLU zeroes every window over the first two columns
    g = np.random.default_rng(5).standard_normal((2, 3) + (3, 2, 2)[:nd])
    for signed in (False, True) if p == 3 else (False,):
        d = distnn.tensor(x, requires_grad=True)
        t = torch.tensor(x, requires_grad=True)
        dr, tr = (d, t) if signed else (DF.relu(d), TF.relu(t))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            dout = getattr(DF, f"lp_pool{nd}d")(dr, p, 2)
            (dout * distnn.tensor(g)).sum().backward()
        tout = getattr(TF, f"lp_pool{nd}d")(tr, p, 2)
        (tout * torch.from_numpy(g)).sum().backward()
        np.testing.assert_allclose(np.asarray(dout.data), tout.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(d.grad.data), t.grad.numpy(), rtol=1e-12, atol=1e-15)
        if signed:
            assert np.isnan(np.asarray(dout.data)).any()  # (the negative sums are there)
        else:
            assert (np.asarray(d.grad.data)[..., :2] == 0).all()  # the zero windows' gradient: 0, not NaN

def test_reprs_are_pytorchs():
    pairs = [(dnn.LPPool1d(2, 3), torch.nn.LPPool1d(2, 3)), (dnn.LPPool2d(1.5, (2, 3), 2, True),
                                                           torch.nn.LPPool2d(1.5, (2, 3), 2, True)),
             (dnn.LPPool3d(math.inf, 2), torch.nn.LPPool3d(math.inf, 2)),
             (dnn.MaxUnpool1d(3), torch.nn.MaxUnpool1d(3)), (dnn.MaxUnpool1d(2, 1, 1), torch.nn.MaxUnpool1d(2, 1, 1)),
             (dnn.MaxUnpool3d((1, 2, 3)), torch.nn.MaxUnpool3d((1, 2, 3))),
             (dnn.MaxUnpool3d(2, (1, 2, 1), 1), torch.nn.MaxUnpool3d(2, (1, 2, 1), 1))]
    for d, t in pairs:
        assert repr(d) == repr(t)


def test_bad_arguments_are_refused_as_pytorch_refuses_them():
    x1 = distnn.tensor(np.ones((1, 1, 2), np.float32))
    ok1 = np.zeros((1, 1, 2), np.int64)
    with pytest.raises(ValueError, match=r"^max_unpool1d: indices out of range.*\[0, 4\].*\(4,\) has 4 cells"):
        DF.max_unpool1d(x1, np.array([0, 4]).reshape(1, 1, 2), 2)
    with pytest.raises(ValueError, match=r"^max_unpool1d: indices have shape \(1, 1, 3\)"):
        DF.max_unpool1d(x1, np.zeros((1, 1, 3), np.int64), 2)
    with pytest.raises(ValueError, match=r"^max_unpool1d: output_size must be \(L\) or \(N, C, L\), got \(1, 4\)"):
        DF.max_unpool1d(x1, ok1, 2, output_size=(1, 4))
    with pytest.raises(ValueError, match=r"^max_unpool1d: invalid output_size \(6,\): dim 0 must be strictly "
                                         r"between 2 and 6"):
        DF.max_unpool1d(x1, ok1, 2, output_size=(6,))
    with pytest.raises(ValueError, match=r"^max_unpool1d: expected a 3-D input"):
        DF.max_unpool1d(distnn.tensor(np.ones(2, np.float32)), np.zeros(2, np.int64), 2)
    with pytest.raises(TypeError, match="indices must be integers"):
        DF.max_unpool1d(x1, ok1.astype(np.float32), 2)
    x3 = distnn.tensor(np.ones((1, 1, 1, 1, 2), np.float32))
    ok3 = np.zeros((1, 1, 1, 1, 2), np.int64)
    with pytest.raises(ValueError, match=r"^max_unpool3d: output_size must be \(D, H, W\) or \(N, C, D, H, W\)"):
        DF.max_unpool3d(x3, ok3, 2, output_size=(2, 4))
    with pytest.raises(ValueError, match=r"^max_unpool3d: indices out of range.*\(2, 2, 4\) has 16 cells"):
        DF.max_unpool3d(x3, ok3 + 16, 2)
    with pytest.raises(ValueError, match=r"MaxUnpool3d.*expected a 5-D input"):
        dnn.MaxUnpool3d(2)(distnn.tensor(np.ones((2, 2), np.float32)), np.zeros((2, 2), np.int64))
    # PyTorch refuses these too
    for fd, ft, a in ((DF.max_unpool1d, TF.max_unpool1d, (2,)), (DF.max_unpool3d, TF.max_unpool3d, (2,))):
        x = x1 if fd is DF.max_unpool1d else x3
        i = (ok1 if fd is DF.max_unpool1d else ok3) + 100
        with pytest.raises((ValueError, RuntimeError)):
            ft(torch.from_numpy(np.asarray(x.data)), torch.from_numpy(i), *a)
        with pytest.raises(ValueError, match="out of range"):
            fd(x, i, *a)
    with pytest.raises(ZeroDivisionError, match="lp_pool2d: norm_type must not be 0"):
        DF.lp_pool2d(distnn.tensor(np.ones((1, 1, 2, 2))), 0, 2)
    with pytest.raises(ZeroDivisionError):
        TF.lp_pool2d(torch.ones(1, 1, 2, 2), 0, 2)
    with pytest.raises(ValueError, match="^avg_pool3d: .*larger than the padded input"):  # (as PyTorch's avg pool)
        DF.lp_pool3d(distnn.tensor(np.ones((1, 1, 2, 2, 2))), 2, 3)
    with pytest.raises(RuntimeError):
        TF.lp_pool3d(torch.ones(1, 1, 2, 2, 2), 2, 3)


def test_with_indices_ignore_return_indices_as_pytorchs():
    x = np.random.default_rng(4).standard_normal((2, 3, 8))
    for name, args in (("max_pool1d_with_indices", (2,)), ("adaptive_max_pool1d_with_indices", (3,))):
        d = getattr(DF, name)(distnn.tensor(x), *args, return_indices=False)
        t = getattr(TF, name)(torch.from_numpy(x), *args, return_indices=False)
        assert isinstance(d, tuple) and isinstance(t, tuple) and len(d) == len(t) == 2
        np.testing.assert_array_equal(np.asarray(d[1].data), t[1].numpy())


def test_an_lp_pooled_classifier_trains():
    """Images holding one horizontal (label 0) or vertical (label 1) bar: conv, LP pooling, a linear head."""
    distnn.manual_seed(0)
    rng = np.random.default_rng(0)
    n = 48
    x = np.zeros((n, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 2, n)
    for img, label in zip(x, y):
        r, a = rng.integers(0, 8), rng.integers(0, 3)
        if label:
            img[0, a:a + 5, r] = 1.0
        else:
            img[0, r, a:a + 5] = 1.0
    model = dnn.Sequential(dnn.Conv2d(1, 4, 3, padding=1), dnn.LPPool2d(2, 2), dnn.LPPool2d(2, (4, 1)),
                           dnn.Flatten(), dnn.Linear(16, 2))
    losses = classifier_losses(model, x, y)
    assert losses[-1] < 0.5 * losses[0], losses
