"""``add``/``sub`` with ``alpha`` (and ``add_``/``sub_``, ``out=``) against PyTorch: PyTorch computes
``a + alpha * b`` in one kernel, a fused multiply-add rounded once (float16 in float32 with alpha rounded to
float16, then rounded to float16; float64 distnn rounds twice, compared within an ulp), the operands first cast to the result's dtype (a Python number too); integers
wrap, bools are a logical or; alpha is checked against the result's dtype. Values are compared bitwise on
contiguous operands (PyTorch's vector loop; the scalar loop it leaves the end of a broadcast row to is not
followed), gradients in float64 with respect to both operands."""
import numpy as np
import pytest
import torch

import distnn

SHAPE = (8, 64)
ALPHAS = (0.1, 3, -2.5, 1e-3, 7)
FLOATS = ("float16", "float32", "float64")


def _pair(dtype, seed, shape=SHAPE):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "b":
        return rng.random(shape) < 0.5, rng.random(shape) < 0.5
    if np.dtype(dtype).kind in "iu":
        low = 0 if np.dtype(dtype).kind == "u" else -100
        return tuple(rng.integers(low, 100, shape).astype(dtype) for _ in range(2))
    return tuple((rng.standard_normal(shape) * 4).astype(dtype) for _ in range(2))


def _same(got, expected):
    """Bitwise, but float64 values within an ulp of the operands' size: distnn's float64 ``a + alpha * b`` rounds
    twice where PyTorch's fma rounds once (an emulated fma cost 5-14x; see distnn/functional/scaled_sum.py)."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    if got.dtype == np.float64:
        np.testing.assert_allclose(got, expected, rtol=4e-16, atol=1e-13)
        return
    assert np.array_equal(got, expected, equal_nan=got.dtype.kind == "f"), np.argwhere(got != expected)[:5]


def _np(t):
    """A tensor's values (distnn's ``.grad`` is an array already)."""
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _call(lib, op, a, b, alpha):
    return getattr(lib, op)(lib.tensor(a) if isinstance(a, np.ndarray) else a,
                            lib.tensor(b) if isinstance(b, np.ndarray) else b, alpha=alpha)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("op", ("add", "sub"))
def test_float_values_bitwise(dtype, alpha, op):
    a, b = _pair(dtype, 1)
    _same(_call(distnn, op, a, b, alpha).numpy(), _call(torch, op, a, b, alpha).numpy())


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", ("add_", "sub_"))
@pytest.mark.parametrize("grad", (False, True))
def test_in_place_bitwise(dtype, op, grad):
    """The direct in-place path (no grad) and the recorded one (a non-leaf that requires grad)."""
    a, b = _pair(dtype, 2)
    for alpha in ALPHAS:
        expected = getattr(torch.tensor(a), op)(torch.tensor(b), alpha=alpha)
        x = distnn.tensor(a.copy(), requires_grad=grad)
        target = x * 1 if grad else x
        got = getattr(target, op)(distnn.tensor(b), alpha=alpha)
        assert got is target
        _same(got.detach().numpy(), expected.numpy())


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("number", (0.1, 3, 2.5, -7, True))
def test_python_number_cast_to_the_dtype_first(dtype, number):
    a, _ = _pair(dtype, 3)
    for alpha in ALPHAS:
        for op in ("add",) if number is True else ("add", "sub"):  # (sub of a bool: refused by both)
            _same(_call(distnn, op, a, number, alpha).numpy(), _call(torch, op, a, number, alpha).numpy())
        expected = torch.tensor(a).add_(number, alpha=alpha)
        _same(distnn.tensor(a.copy()).add_(number, alpha=alpha).numpy(), expected.numpy())


@pytest.mark.parametrize("dtypes", [("float16", "float32"), ("float32", "float16"), ("int64", "float32"),
                                    ("uint8", "float16"), ("bool", "float64"), ("float32", "float64"),
                                    ("int32", "float16"), ("float16", "int64"), ("int8", "int64"), ("uint8", "bool")])
@pytest.mark.parametrize("alpha", (0.1, 3, -2))
def test_mixed_dtypes(dtypes, alpha):
    a, b = _pair(dtypes[0], 4)[0], _pair(dtypes[1], 5)[1]
    for op in ("add", "sub"):
        outcomes = []
        for lib in (torch, distnn):
            try:
                outcomes.append(("ok", _call(lib, op, a, b, alpha).numpy()))
            except RuntimeError as e:
                outcomes.append(("error", str(e).split("\n")[0]))
        assert outcomes[0][0] == outcomes[1][0], outcomes
        if outcomes[0][0] == "ok":
            _same(outcomes[1][1], outcomes[0][1])
        else:
            assert outcomes[1][1] == outcomes[0][1]


@pytest.mark.parametrize("dtype", ("int64", "int32", "int8", "uint8"))
@pytest.mark.parametrize("alpha", (3, -2, 100))
def test_integers_wrap_as_torch(dtype, alpha):
    a, b = _pair(dtype, 6)
    for op in ("add", "sub"):
        _same(_call(distnn, op, a, b, alpha).numpy(), _call(torch, op, a, b, alpha).numpy())
    _same(distnn.tensor(a.copy()).add_(distnn.tensor(b), alpha=alpha).numpy(),
          torch.tensor(a).add_(torch.tensor(b), alpha=alpha).numpy())


@pytest.mark.parametrize("alpha", (True, False, 2, 0))
@pytest.mark.parametrize("other", ("tensor", True, False))
def test_bool_results_are_a_logical_or(alpha, other):
    a, b = _pair("bool", 7)
    b = b if other == "tensor" else other
    _same(_call(distnn, "add", a, b, alpha).numpy(), _call(torch, "add", a, b, alpha).numpy())


@pytest.mark.parametrize("dtype, other, alpha", [
    ("int64", "int64", 0.5), ("int32", 3, 2.0), ("uint8", "uint8", 1.5), ("bool", "bool", 0.5),
    ("float32", "float32", True), ("float32", 2.0, False), ("int64", "int64", True), ("float32", "float32", 1j),
    ("int64", "int64", 2j), ("int8", "int8", 300), ("uint8", "uint8", -256), ("int8", "int8", -129)])
@pytest.mark.parametrize("op", ("add", "sub", "add_", "sub_"))
def test_refusals_as_torch(dtype, other, alpha, op):
    a = _pair(dtype, 8)[0]
    b = _pair(other, 9)[1] if isinstance(other, str) else other
    messages = []
    for lib in (torch, distnn):
        x, y = lib.tensor(a), lib.tensor(b) if isinstance(b, np.ndarray) else b
        with pytest.raises(RuntimeError) as info:
            getattr(x, op)(y, alpha=alpha) if op.endswith("_") else getattr(lib, op)(x, y, alpha=alpha)
        messages.append(str(info.value).split("\n")[0])
    assert messages[1] == messages[0]


@pytest.mark.parametrize("op", ("add", "sub"))
@pytest.mark.parametrize("shapes", [((4, 5), (4, 5)), ((4, 5), (5,)), ((3, 1), (1, 6)), ((2, 64), ())])
@pytest.mark.parametrize("alpha", (0.1, -3))
def test_gradients_float64_both_operands(op, shapes, alpha):
    rng = np.random.default_rng(10)
    a, b = (rng.standard_normal(s) for s in shapes)
    weight = rng.standard_normal(np.broadcast_shapes(*shapes))
    grads = []
    for lib in (torch, distnn):
        x, y = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
        z = getattr(lib, op)(x, y, alpha=alpha)
        (z * lib.tensor(weight)).sum().backward()
        grads.append((_np(z), _np(x.grad), _np(y.grad), z.grad_fn.name()))
    for got, expected in zip(grads[1][:3], grads[0][:3]):
        if got.shape == weight.shape:
            _same(got, expected)
        else:  # (a broadcast operand's gradient is a sum: numpy's order of adding is not PyTorch's)
            assert got.dtype == expected.dtype and got.shape == expected.shape
            np.testing.assert_allclose(got, expected, rtol=1e-13)
    assert grads[1][3] == grads[0][3]


@pytest.mark.parametrize("dtype", ("float16", "float32"))
def test_gradients_low_precision_and_mixed(dtype):
    """``other``'s gradient is ``grad * alpha`` in its dtype; a float16 operand of a float32 sum gets its gradient
    cast back to float16."""
    a, b = _pair(dtype, 11)
    c = _pair("float32", 12)[0]
    grads = []
    for lib in (torch, distnn):
        x, y, w = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True), lib.tensor(c)
        (lib.sub(x, y, alpha=0.1) * w.to(x.dtype)).sum().backward()
        u = lib.tensor(a, requires_grad=True)
        (lib.add(w, u, alpha=0.3) * w).sum().backward()
        grads.append((_np(x.grad), _np(y.grad), _np(u.grad)))
    for got, expected in zip(*reversed(grads)):
        _same(got, expected)


@pytest.mark.parametrize("op", ("add", "sub"))
def test_in_place_gradients_float64(op):
    rng = np.random.default_rng(13)
    a, b, w = (rng.standard_normal((3, 4)) for _ in range(3))
    grads = []
    for lib in (torch, distnn):
        x, y = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
        z = x * 2
        getattr(z, op + "_")(y, alpha=0.7)
        (z * lib.tensor(w)).sum().backward()
        grads.append((_np(z), _np(x.grad), _np(y.grad)))
    for got, expected in zip(grads[1], grads[0]):
        _same(got, expected)


@pytest.mark.parametrize("dtype", FLOATS)
def test_out_written_as_torch(dtype):
    a, b = _pair(dtype, 14)
    results = []
    for lib in (torch, distnn):
        out = lib.empty(0, dtype=getattr(lib, dtype))
        returned = lib.add(lib.tensor(a), lib.tensor(b), alpha=0.3, out=out)
        assert returned is out
        results.append(out.numpy())
    _same(results[1], results[0])


def test_rounding_edges():
    """Ties of the float32 rounding (the float64 sum exactly halfway: its round-to-odd path), subnormal
    results, overflow to inf, inf - inf, NaN operands."""
    rng = np.random.default_rng(15)
    ties_a = (rng.integers(-2 ** 23, 2 ** 23, 512) * 2.0).astype(np.float32)
    ties_b = rng.integers(-8, 8, 512).astype(np.float32)
    tiny = (rng.standard_normal(512) * 1e-39).astype(np.float32)
    big = np.full(512, 3e38, np.float32)
    special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1.0, np.inf, 2.0] * 64, np.float32)
    cases = [(ties_a, ties_b, 0.5), (ties_a, ties_b, 1.5), (ties_a, ties_b, 3), (tiny, tiny[::-1].copy(), 0.3),
             (big, big, 2), (special, special[::-1].copy(), -1.5), (special, special, 0.1)]
    for a, b, alpha in cases:
        for dtype in FLOATS:
            with np.errstate(over="ignore"):  # (3e38 is inf in float16)
                x, y = a.astype(dtype), b.astype(dtype)
            for op in ("add", "sub"):
                _same(_call(distnn, op, x, y, alpha).numpy(), _call(torch, op, x, y, alpha).numpy())


@pytest.mark.parametrize("op", ("add", "sub"))
def test_double_backward_float64(op):
    """``create_graph=True`` through the scaled sum: the gradient's own gradient, as PyTorch's."""
    rng = np.random.default_rng(16)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    results = []
    for lib in (torch, distnn):
        x, y = lib.tensor(a, requires_grad=True), lib.tensor(b, requires_grad=True)
        z = getattr(lib, op)(x * x, y * x, alpha=0.3).sum()
        (gx,) = lib.autograd.grad(z, x, create_graph=True)
        (gy,) = lib.autograd.grad((gx * gx).sum(), y)
        results.append((_np(gx), _np(gy)))
    for got, expected in zip(*reversed(results)):
        np.testing.assert_allclose(got, expected, rtol=1e-14)
