"""Division-like ops against PyTorch 2.13 as the oracle: ``Tensor.div``/``distnn.div``/``divide`` and ``div_`` with
``rounding_mode`` (values, dtypes, zero gradients, refusals), the ops PyTorch has no derivative for
(``floor_divide``/``//``/``floor_divide_``, ``remainder`` of a number by a tensor: the result requires grad and a
backward through it is refused by name), and ``pow`` at -0.0 (PyTorch's ``rsqrt`` for a number exponent -0.5)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402

SHAPES = [((3, 4), (3, 4)), ((2, 1, 4), (3, 1)), ((5,), ()), ((), (2, 3)), ((0, 3), (3,))]
MODES = [None, "trunc", "floor"]


def _pair(array, grad):
    return (distnn.tensor(array.copy(), requires_grad=grad), torch.tensor(array.copy(), requires_grad=grad))


def _same(ours, theirs, rtol=0.0):
    """Same dtype, values (NaN where NaN; within ``rtol`` elsewhere) and the sign of every zero and infinity."""
    ours, theirs = np.asarray(ours), theirs.detach().numpy()
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=0, equal_nan=True)
    edge = (theirs == 0) | np.isinf(theirs)
    np.testing.assert_array_equal(np.signbit(ours[edge]), np.signbit(theirs[edge]))


def _divisor(rng, shape, dtype):
    b = rng.uniform(0.5, 3, shape) * rng.choice([-1, 1], shape)
    return b.astype(dtype) if dtype != np.int64 else np.where(b > 0, 1, -1) * rng.integers(1, 5, shape)


# ------------------------------------------------------------------------------------- rounding_mode
@pytest.mark.parametrize("form", ["Tensor.div", "distnn.div", "distnn.divide", "Tensor.divide"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64], ids=["f64", "f32", "i64"])
@pytest.mark.parametrize("shapes", SHAPES, ids=[str(s) for s in SHAPES])
def test_div_rounding_modes_match_pytorch_values_dtypes_and_gradients(form, mode, dtype, shapes):
    rng = np.random.default_rng(len(form) + 7 * MODES.index(mode))
    a = (rng.standard_normal(shapes[0]) * 9).astype(dtype)
    b = _divisor(rng, shapes[1], dtype)
    grad = a.dtype.kind == "f"
    (xd, xt), (yd, yt) = _pair(a, grad), _pair(b, grad)
    lib, owner = form.split(".")
    call = (lambda m, x, y: getattr(x, owner)(y, rounding_mode=mode)) if lib == "Tensor" else (
        lambda m, x, y: getattr(m, owner)(x, y, rounding_mode=mode))
    zd, zt = call(distnn, xd, yd), call(torch, xt, yt)
    if mode is None:  # (true division: float results, exact for float64, float32's rounding for float32)
        np.testing.assert_allclose(np.asarray(zd.data), zt.detach().numpy(), rtol=1e-6 if dtype != np.float64
                                   else 1e-15)
        assert np.asarray(zd.data).dtype == zt.detach().numpy().dtype
    else:
        _same(zd.data, zt)
    if grad:
        u = rng.standard_normal(tuple(zt.shape)).astype(dtype)
        (zd * distnn.tensor(u)).sum().backward()
        (zt * torch.tensor(u)).sum().backward()
        for d, t in ((xd, xt), (yd, yt)):
            np.testing.assert_allclose(np.asarray(d.grad), t.grad.numpy(), rtol=1e-5, atol=1e-6)
            if mode is not None:  # (rounded: a step function, zero gradients)
                assert not np.asarray(d.grad).any()


@pytest.mark.parametrize("mode", ["trunc", "floor"])
@pytest.mark.parametrize("other", [2, -3, 2.5, "tensor"])
def test_div_in_place_with_rounding_mode_keeps_integers_as_pytorch(mode, other):
    for values, name in (([7, -7, 9, 0], "int64"), ([7.5, -7.5, 9.0, -0.0], "float64")):
        d, t = distnn.tensor(np.array(values, name)), torch.tensor(np.array(values, name))
        od, ot = (distnn.tensor([2, -3, 4, 5]), torch.tensor([2, -3, 4, 5])) if other == "tensor" else (other, other)
        try:
            t.div_(ot, rounding_mode=mode)
        except RuntimeError as e:  # (an int64 tensor rounded by 2.5 is float: refused, as there)
            with pytest.raises(RuntimeError, match="can't be cast"):
                d.div_(od, rounding_mode=mode)
            assert "can't be cast" in str(e)
            continue
        assert d.div_(od, rounding_mode=mode) is d
        _same(d.data, t)


@pytest.mark.parametrize("call", [
    lambda m: m.tensor([1.0]).div(2.0, rounding_mode="round"),
    lambda m: m.div(m.tensor([1.0]), 2.0, rounding_mode="Floor"),
    lambda m: m.tensor([1.0]).div_(2.0, rounding_mode="round"),
], ids=["Tensor.div", "div", "div_"])
def test_an_unknown_rounding_mode_is_refused_as_pytorch(call):
    with pytest.raises(RuntimeError, match="div expected rounding_mode to be one of None, 'trunc', or 'floor'"):
        call(torch)
    with pytest.raises(RuntimeError, match="div expected rounding_mode to be one of None, 'trunc', or 'floor'"):
        call(distnn)


@pytest.mark.parametrize("mode", ["trunc", "floor"])
def test_integer_division_by_zero_with_a_rounding_mode_is_refused_and_true_division_gives_inf(mode):
    for lib in (torch, distnn):
        a, b = lib.tensor([3, -4, 5]), lib.tensor([1, 0, 2])
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            a.div(b, rounding_mode=mode)
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            lib.div(a, 0, rounding_mode=mode)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _same(distnn.tensor([3, -4, 0]).div(distnn.tensor([0, 0, 0])).data,
              torch.tensor([3, -4, 0]).div(torch.tensor([0, 0, 0])))


def test_true_divide_takes_no_rounding_mode_as_pytorch():
    for lib in (torch, distnn):
        with pytest.raises(TypeError):
            lib.true_divide(lib.tensor([1.0]), 2.0, rounding_mode="floor")


# ------------------------------------------------------------------------------------- no derivative
NO_DERIVATIVE = {  # PyTorch 2.13: the result requires grad; its backward is refused
    "x // y": (lambda x, y: x // y, "floor_divide"),
    "x // 2": (lambda x, y: x // 2.0, "floor_divide"),
    "7 // x": (lambda x, y: 7 // x, "floor_divide"),
    "floor_divide": (lambda x, y: torch_or_distnn(x).floor_divide(x, y), "floor_divide"),
    "floor_divide_": (lambda x, y: (x * 1).floor_divide_(y), "floor_divide_"),
    "floor_divide_(2)": (lambda x, y: (x * 1).floor_divide_(2.0), "floor_divide_"),
    "x //= y": (lambda x, y: _ifloordiv(x * 1, y), "floor_divide_"),
    "(x //= y) * y": (lambda x, y: _ifloordiv(x * 1, y) * y, "floor_divide_"),
    "(x // y) + x": (lambda x, y: x // y + x, "floor_divide"),
    "5 % x": (lambda x, y: 5 % x, "remainder"),
    "remainder(5, x)": (lambda x, y: torch_or_distnn(x).remainder(5.0, x), "remainder"),
    "-2.5 % x * y": (lambda x, y: (-2.5 % x) * y, "remainder"),
}


def _ifloordiv(x, y):
    x //= y  # (PyTorch's floor_divide_, in place)
    return x


def torch_or_distnn(t):
    return torch if isinstance(t, torch.Tensor) else distnn


def test_floor_divide_assignment_is_in_place_as_pytorchs():
    """``//=`` is ``floor_divide_``: it writes through a view, refuses a float result in an integer tensor and a
    leaf that requires grad, as PyTorch's."""
    for lib in (torch, distnn):
        base = lib.tensor(np.array([5.0, 7.0, -3.0]))
        view = base[1:]
        view //= 2
        np.testing.assert_array_equal(np.asarray(base.tolist()), [5.0, 3.0, -2.0])
        ints = lib.tensor(np.array([5, 7, -3]))
        with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type Long"):
            ints //= 2.0
        leaf = lib.tensor(np.array([5.0, 7.0]), requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            leaf //= 2


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(NO_DERIVATIVE))
def test_ops_without_a_derivative_require_grad_and_refuse_backward_as_pytorch(name, dtype):
    op, kernel = NO_DERIVATIVE[name]
    rng = np.random.default_rng(1)
    (xd, xt), (yd, yt) = _pair(rng.uniform(-4, 4, (3, 4)).astype(dtype), True), _pair(
        _divisor(rng, (4,), dtype), True)
    zd, zt = op(xd, yd), op(xt, yt)
    _same(zd.data, zt)
    assert zd.requires_grad and zt.requires_grad
    message = f"derivative for aten::{kernel} is not implemented"  # (the in-place op is named floor_divide_)
    with pytest.raises(RuntimeError, match=message):
        zt.sum().backward()
    with pytest.raises(RuntimeError, match=message):
        zd.sum().backward()


def test_rounded_div_and_tensor_remainders_keep_their_gradients_as_pytorch():
    """``div(rounding_mode='floor')`` differentiates (zero), unlike ``floor_divide``; ``Tensor % Tensor`` (a 0-d
    dividend too) and ``Tensor % number`` differentiate, unlike ``number % Tensor``."""
    rng = np.random.default_rng(2)
    a, b = rng.uniform(-4, 4, (3, 4)), _divisor(rng, (4,), np.float64)
    for op in (lambda m, x, y: m.div(x, y, rounding_mode="floor"), lambda m, x, y: x % y,
               lambda m, x, y: m.remainder(m.tensor(5.0, dtype=x.dtype), y), lambda m, x, y: x % 1.5,
               lambda m, x, y: m.remainder(x, -2.0), lambda m, x, y: m.fmod(x, y) + (x % y)):
        (xd, xt), (yd, yt) = _pair(a, True), _pair(b, True)
        zd, zt = op(distnn, xd, yd), op(torch, xt, yt)
        _same(zd.data, zt)
        zd.sum().backward()
        zt.sum().backward()
        for d, t in ((xd, xt), (yd, yt)):
            want = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
            np.testing.assert_array_equal(np.zeros(t.shape) if d.grad is None else np.asarray(d.grad), want)


# ------------------------------------------------------------------------------------- pow at -0.0
EDGE = np.array([-0.0, 0.0, 1e-30, -1e-30, 0.25, 4.0, -1.0, np.inf, -np.inf, np.nan])


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("exponent", [-0.5, 0.5, 1.5, -1.5, -1.0, 2.0, 3.0, 0.25])
def test_pow_with_a_number_exponent_matches_pytorch_at_signed_zeros(exponent, dtype):
    """PyTorch takes ``rsqrt`` for ``x ** -0.5`` (-inf at -0.0, where C's pow gives +inf), so ``x ** 0.5``'s
    gradient ``0.5 * x ** -0.5`` is -inf there, and ``x ** 1.5``'s second derivative too."""
    xd, xt = _pair(EDGE.astype(dtype), True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zd = xd ** exponent
        (gd,) = distnn.autograd.grad(zd, xd, distnn.ones_like(zd), create_graph=True)
        (hd,) = distnn.autograd.grad(gd, xd, distnn.ones_like(gd))
    zt = xt ** exponent
    (gt,) = torch.autograd.grad(zt, xt, torch.ones_like(zt), create_graph=True)
    (ht,) = torch.autograd.grad(gt, xt, torch.ones_like(gt))
    for ours, theirs in ((zd, zt), (gd, gt), (hd, ht)):
        _same(ours.data, theirs, rtol=1e-6)


def test_pow_with_a_tensor_exponent_keeps_cs_pow_at_signed_zero_as_pytorch():
    """A tensor exponent takes C's pow in PyTorch (no ``rsqrt``): +inf at -0.0 for -0.5, in the value and in
    ``x ** 0.5``'s gradient. (Its value ``(-0.0) ** 0.5`` is -0.0 here, numpy's ``sqrt`` path, and +0.0 there.)"""
    for e in (-0.5, 0.5):
        xd, xt = _pair(np.array([-0.0, 0.0]), True)
        zd, zt = xd ** distnn.tensor(e, dtype=xd.dtype), xt ** torch.tensor(e, dtype=xt.dtype)
        if e == -0.5:
            _same(zd.data, zt)
        zd.sum().backward()
        zt.sum().backward()
        _same(xd.grad, xt.grad)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_pow_minus_one_half_and_the_square_roots_gradient_are_pytorchs_bits(dtype):
    """PyTorch's rsqrt is ``1 / sqrt(x)`` (two correctly rounded steps); C's pow differed in the last bit of about
    a third of float32 values."""
    a = np.random.default_rng(5).uniform(0.01, 100, 2000).astype(dtype)
    (xd, xt) = _pair(a, True)
    np.testing.assert_array_equal(np.asarray((xd ** -0.5).data), (xt ** -0.5).detach().numpy())
    (xd ** 0.5).sum().backward()
    (xt ** 0.5).sum().backward()
    np.testing.assert_array_equal(np.asarray(xd.grad), xt.grad.numpy())
