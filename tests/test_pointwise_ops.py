"""PyTorch's pointwise math on distnn tensors (distnn.sin, Tensor.atan2, distnn.isnan, ...) against PyTorch 2.13
as the oracle: values and gradients in float64 (tight) and float32 (loose) over a fuzz of shapes with
broadcasting, edge points (0, -0.0, inf, NaN, ties, domain ends) where PyTorch's derivative formulas have their
conventions, result dtypes for integer and bool inputs, and PyTorch's refusals."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

SHAPES = [((3, 4), (3, 4)), ((2, 1, 4), (3, 1)), ((5,), ()), ((), (2, 3)), ((1, 3), (4, 1)), ((0, 3), (3,))]
EDGE = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 1e-300, -1e-12, 40.0, math.inf, -math.inf, math.nan])


def _run(fd, ft, arrays, grad=True, seed=3):
    """``fd`` on distnn tensors and ``ft`` on torch tensors of the same arrays (float ones require grad), and
    backpropagated with one random upstream gradient: (outputs, gradients) of each, as numpy."""
    floats = [a.dtype.kind == "f" and grad for a in arrays]
    d = [distnn.tensor(a.copy(), requires_grad=f) for a, f in zip(arrays, floats)]
    t = [torch.tensor(a.copy(), requires_grad=f) for a, f in zip(arrays, floats)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yd, yt = fd(*d), ft(*t)
        gd = gt = []
        if grad and any(floats) and yt.requires_grad:
            u = np.random.default_rng(seed).standard_normal(tuple(yt.shape)).astype(yd.data.dtype)
            (yd * distnn.tensor(u)).sum().backward()
            (yt * torch.tensor(u)).sum().backward()
            gd = [np.asarray(x.grad) if x.grad is not None else np.zeros(x.shape) for x, f in zip(d, floats) if f]
            gt = [x.grad.numpy(force=True) if x.grad is not None else np.zeros(x.shape) for x, f in zip(t, floats) if f]
    return (np.asarray(yd.data), gd), (yt.detach().numpy(), gt)


def _same(a, b, rtol, atol=None):
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    if a.dtype.kind in "biu":
        np.testing.assert_array_equal(a, b)
        return
    finite = np.isfinite(b)
    scale = np.max(np.abs(b[finite]), initial=1.0)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale * 1e-3 if atol is None else atol, equal_nan=True)
    np.testing.assert_array_equal(np.signbit(a[b == 0]), np.signbit(b[b == 0]))  # (-0.0 where PyTorch has it)


def _compare(fd, ft, arrays, rtol, grad=True, atol=None):
    (od, gd), (ot, gt) = _run(fd, ft, arrays, grad)
    _same(od, ot, rtol, atol)
    assert len(gd) == len(gt)
    for a, b in zip(gd, gt):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.max(np.abs(b[np.isfinite(b)]), initial=1.0),
                                   equal_nan=True)


# ---------------------------------------------------------------------------------------------- unary
R = np.random.default_rng(0)
# name -> sampler of the domain (where torch is finite: gradients compare everywhere)
UNARY = {
    "sin": R.standard_normal, "cos": R.standard_normal, "tan": lambda s: R.uniform(-1.4, 1.4, s),
    "asin": lambda s: R.uniform(-0.99, 0.99, s), "arcsin": lambda s: R.uniform(-0.99, 0.99, s),
    "acos": lambda s: R.uniform(-0.99, 0.99, s), "arccos": lambda s: R.uniform(-0.99, 0.99, s),
    "atan": R.standard_normal, "arctan": R.standard_normal, "sinh": R.standard_normal, "cosh": R.standard_normal,
    "asinh": R.standard_normal, "arcsinh": R.standard_normal, "acosh": lambda s: R.uniform(1.01, 5, s),
    "arccosh": lambda s: R.uniform(1.01, 5, s), "atanh": lambda s: R.uniform(-0.99, 0.99, s),
    "arctanh": lambda s: R.uniform(-0.99, 0.99, s), "log1p": lambda s: R.uniform(-0.9, 5, s),
    "expm1": R.standard_normal, "log2": lambda s: R.uniform(0.01, 9, s), "log10": lambda s: R.uniform(0.01, 9, s),
    "exp2": R.standard_normal, "erf": lambda s: R.standard_normal(s) * 3, "erfc": lambda s: R.standard_normal(s) * 3,
    "erfinv": lambda s: R.uniform(-0.999, 0.999, s), "rsqrt": lambda s: R.uniform(0.1, 4, s),
    "reciprocal": lambda s: R.uniform(0.1, 4, s) * R.choice([-1, 1], s), "square": R.standard_normal,
    "neg": R.standard_normal, "negative": R.standard_normal, "sgn": R.standard_normal,
    "frac": lambda s: R.standard_normal(s) * 4, "logit": lambda s: R.uniform(0.01, 0.99, s),
    "sinc": lambda s: R.standard_normal(s) * 2, "deg2rad": lambda s: R.standard_normal(s) * 90,
    "rad2deg": R.standard_normal, "nan_to_num": R.standard_normal, "positive": R.standard_normal,
}
INT_REFUSED = {"frac"}  # (PyTorch: not implemented for integers)
BOOL_REFUSED = {"frac", "neg", "negative", "positive"}


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("shape", [(3, 4), (2, 1, 3), (), (0, 2)], ids=str)
def test_unary_value_and_gradient_in_float64_match_pytorch(name, shape):
    x = np.asarray(UNARY[name](shape), dtype=np.float64)
    _compare(getattr(distnn, name), getattr(torch, name), [x], 1e-12)


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_at_edge_points_matches_pytorch_value_and_gradient(name):
    """0, -0.0, +-1, 2, tiny, large, +-inf, NaN: the values (NaN and -0.0 where PyTorch gives them) and the
    gradients of PyTorch's formulas there (erfinv at +-1, logit outside [0, 1], sinc at 0, ...)."""
    _compare(getattr(distnn, name), getattr(torch, name), [EDGE.copy()], 1e-12)


@pytest.mark.parametrize("name", list(UNARY))
def test_unary_in_float32_matches_pytorch_loosely_and_stays_float32(name):
    x = np.asarray(UNARY[name]((4, 5)), dtype=np.float32)
    _compare(getattr(distnn, name), getattr(torch, name), [x], 2e-5)


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_], ids=["int64", "int32", "bool"])
def test_unary_of_integers_and_bools_has_pytorchs_dtype_or_its_refusal(name, dtype):
    x = np.array([0, 1, 2, -3, 5])
    x = (x > 0) if dtype is np.bool_ else x.astype(dtype)
    if name in (BOOL_REFUSED if dtype is np.bool_ else INT_REFUSED):
        with pytest.raises(Exception) as torch_error:
            getattr(torch, name)(torch.tensor(x))
        with pytest.raises(type(torch_error.value)):
            getattr(distnn, name)(distnn.tensor(x))
        return
    if name in ("acosh", "arccosh", "atanh", "arctanh", "erfinv", "logit", "log2", "log10", "rsqrt",
                "reciprocal", "log1p"):
        x = x[:3] if dtype is not np.bool_ else x  # (values inside the domain where it matters little)
    _compare(getattr(distnn, name), getattr(torch, name), [x], 2e-6, grad=False)


@pytest.mark.parametrize("eps", [None, 0.0, 1e-3, 0.2])
def test_logit_eps_clamps_and_its_gradient_is_zero_outside_as_pytorch(eps):
    x = np.array([-0.5, 0.0, 1e-4, 0.1, 0.5, 0.85, 0.9999, 1.0, 1.5, math.nan])
    _compare(lambda t: distnn.logit(t, eps), lambda t: torch.logit(t, eps), [x], 1e-12)


@pytest.mark.parametrize("kw", [{}, {"nan": 1.5}, {"nan": 2.0, "posinf": 7.0, "neginf": -9.0}])
def test_nan_to_num_replacements_and_gradient_mask_match_pytorch(kw):
    x = np.array([1.0, math.nan, math.inf, -math.inf, -0.0, 3.5])
    for dtype, rtol in ((np.float64, 1e-15), (np.float32, 1e-7)):
        _compare(lambda t: distnn.nan_to_num(t, **kw), lambda t: torch.nan_to_num(t, **kw), [x.astype(dtype)], rtol)


def test_erf_erfc_erfinv_are_precise_over_their_whole_range():
    """numpy has no erf: distnn's series and continued fraction give float64 precision everywhere, the
    tails of erfc included (where 1 - erf would be 0), and erfinv inverts them to the ends of (-1, 1)."""
    x = np.concatenate([np.linspace(-27, 27, 20001), [1.4999999, 1.5, 1.5000001, 5e-324, 1e-200]])
    for name in ("erf", "erfc"):
        got = getattr(distnn, name)(distnn.tensor(x)).data
        want = getattr(torch, name)(torch.tensor(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-320)  # (subnormals: absolute precision)
    y = np.concatenate([np.linspace(-1, 1, 20001), [1 - 2**-53, -1 + 2**-53, 1e-300, 0.5 - 1e-16]])
    np.testing.assert_allclose(distnn.erfinv(distnn.tensor(y)).data, torch.erfinv(torch.tensor(y)).numpy(),
                               rtol=1e-13, atol=0)


# ---------------------------------------------------------------------------------------------- binary
def _pos(s):
    return R.uniform(0.2, 3.0, s)


# name -> (sampler of input, sampler of other)
BINARY = {
    "atan2": (R.standard_normal, R.standard_normal), "arctan2": (R.standard_normal, R.standard_normal),
    "hypot": (R.standard_normal, R.standard_normal),
    "remainder": (lambda s: R.standard_normal(s) * 4, lambda s: _pos(s) * R.choice([-1, 1], s)),
    "fmod": (lambda s: R.standard_normal(s) * 4, lambda s: _pos(s) * R.choice([-1, 1], s)),
    "true_divide": (R.standard_normal, _pos), "divide": (R.standard_normal, _pos),
    "floor_divide": (lambda s: R.standard_normal(s) * 4, _pos),
    "multiply": (R.standard_normal, R.standard_normal), "subtract": (R.standard_normal, R.standard_normal),
    "logaddexp": (lambda s: R.standard_normal(s) * 5, lambda s: R.standard_normal(s) * 5),
    "logaddexp2": (lambda s: R.standard_normal(s) * 5, lambda s: R.standard_normal(s) * 5),
    "xlogy": (R.standard_normal, _pos), "copysign": (R.standard_normal, R.standard_normal),
    "fmax": (R.standard_normal, R.standard_normal), "fmin": (R.standard_normal, R.standard_normal),
    "clamp_min": (R.standard_normal, R.standard_normal), "clamp_max": (R.standard_normal, R.standard_normal),
    "float_power": (_pos, R.standard_normal),
}
NO_GRADIENT = {"floor_divide"}


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_binary_value_and_both_gradients_in_float64_with_broadcasting_match_pytorch(name, shapes):
    fa, fb = BINARY[name]
    a, b = np.asarray(fa(shapes[0]), np.float64), np.asarray(fb(shapes[1]), np.float64)
    _compare(getattr(distnn, name), getattr(torch, name), [a, b], 1e-12, grad=name not in NO_GRADIENT)


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_on_a_grid_of_edge_points_matches_pytorch(name):
    """Every pair of edge points (0 with 0: atan2 and hypot at the origin, xlogy at x = 0, ties and NaNs for
    fmax/fmin, infinities for logaddexp): values and PyTorch's gradient conventions there."""
    a, b = np.meshgrid(EDGE, EDGE)
    if name in ("remainder", "fmod", "floor_divide"):
        keep = b != 0  # (PyTorch's remainder by 0 differs from its own fmod; its gradients there are NaN)
        a, b = a[keep], b[keep]
    _compare(getattr(distnn, name), getattr(torch, name), [a.ravel().copy(), b.ravel().copy()], 1e-12,
             grad=name not in NO_GRADIENT)


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_float32_with_mixed_dtypes_matches_pytorch(name):
    """float32 against float64 gives float64, against int64 (either side) float32 (PyTorch's promotion), values
    and gradients loosely."""
    fa, fb = BINARY[name]
    a32, b = np.asarray(fa((3, 4)), np.float32), np.asarray(fb((3, 4)))
    bi = np.where(np.abs(b) < 1, 2, np.round(b)).astype(np.int64)
    for pair in ([a32, b.astype(np.float32)], [a32, b.astype(np.float64)], [a32, bi], [bi, b.astype(np.float32)]):
        _compare(getattr(distnn, name), getattr(torch, name), pair, 2e-5, grad=name not in NO_GRADIENT)


def test_floor_divide_backward_is_refused_as_pytorchs_which_has_no_derivative():
    x = distnn.tensor(np.array([3.5, -2.0]), requires_grad=True)
    assert distnn.floor_divide(x, 2.0).requires_grad and (x // 2.0).requires_grad  # (as PyTorch's)
    with pytest.raises(RuntimeError, match="derivative for aten::floor_divide is not implemented"):
        torch.floor_divide(torch.tensor([3.5, -2.0], requires_grad=True), 2.0).sum().backward()
    with pytest.raises(RuntimeError, match="derivative for aten::floor_divide is not implemented"):
        distnn.floor_divide(x, 2.0).sum().backward()


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_of_integers_and_bools_has_pytorchs_dtype_or_its_refusal(name):
    a, b = np.array([[7, -7, 0, 5]]), np.array([[2], [-3], [4]])
    for x, y in ((a, b), (a.astype(np.int32), b), (a > 0, b < 0)):
        try:
            want = getattr(torch, name)(torch.tensor(x), torch.tensor(y)).numpy()
        except (RuntimeError, NotImplementedError, TypeError) as e:
            with pytest.raises(type(e)):
                getattr(distnn, name)(distnn.tensor(x), distnn.tensor(y))
            continue
        _same(np.asarray(getattr(distnn, name)(distnn.tensor(x), distnn.tensor(y)).data), want, 1e-6)


@pytest.mark.parametrize("mode", [None, "trunc", "floor"])
def test_divide_rounding_modes_match_pytorch_for_floats_integers_and_numbers(mode):
    a = np.array([7.5, -7.5, 7.0, -7.0, 0.0, -0.0, 1e300, 3.0])
    b = np.array([2.0, 2.0, -2.0, -2.0, 3.0, 3.0, 1e-300, 0.0])
    _compare(lambda x, y: distnn.divide(x, y, rounding_mode=mode), lambda x, y: torch.divide(x, y, rounding_mode=mode),
             [a, b], 1e-15)
    ai, bi = np.array([7, -7, 7, -7, 0, 2**62 + 1]), np.array([2, 2, -2, -2, 3, -3])
    _compare(lambda x, y: x.divide(y, rounding_mode=mode), lambda x, y: x.divide(y, rounding_mode=mode), [ai, bi],
             1e-15)
    _compare(lambda x: distnn.divide(x, 2, rounding_mode=mode), lambda x: torch.divide(x, 2, rounding_mode=mode),
             [ai], 1e-15)


@pytest.mark.parametrize("name", ["remainder", "fmod", "floor_divide"])
def test_integer_division_by_zero_is_refused_as_pytorch(name):
    a, b = np.array([1, 2]), np.array([1, 0])
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        getattr(torch, name)(torch.tensor(a), torch.tensor(b))
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        getattr(distnn, name)(distnn.tensor(a), distnn.tensor(b))


def test_number_first_operands_as_pytorchs_scalar_overloads():
    x = np.array([0.5, -2.0, 3.0])
    _compare(lambda t: distnn.remainder(5.0, t), lambda t: torch.remainder(5.0, t), [x], 1e-15, grad=False)
    _compare(lambda t: distnn.xlogy(2, t.abs()), lambda t: torch.xlogy(2, t.abs()), [x], 1e-15)
    _compare(lambda t: distnn.xlogy(t, 3.0), lambda t: torch.xlogy(t, 3.0), [x], 1e-15)
    _compare(lambda t: distnn.float_power(2, t), lambda t: torch.float_power(2, t), [x], 1e-15)
    _compare(lambda t: t.subtract(t * t, alpha=2.5), lambda t: t.subtract(t * t, alpha=2.5), [x], 1e-15)


@pytest.mark.parametrize("weight_kind", ["number", "number_large", "tensor", "tensor_broadcast"])
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-14), (np.float32, 1e-6)], ids=["f64", "f32"])
def test_lerp_with_number_or_tensor_weight_matches_pytorch(weight_kind, dtype, rtol, per_test_rng):
    rng = per_test_rng  # (draws of its own: the module's R gave draws that depended on test order)
    s, e = rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal((3, 4)).astype(dtype)
    # torch's CPU kernel fuses a multiply-add, distnn rounds twice: where start and end cancel, the results differ
    # by an ulp of the operands, not of the (small) result
    atol = 4 * np.finfo(dtype).eps * max(np.abs(s).max(), np.abs(e).max())
    if weight_kind.startswith("number"):
        w = 0.3 if weight_kind == "number" else 0.75
        _compare(lambda a, b: distnn.lerp(a, b, w), lambda a, b: torch.lerp(a, b, w), [s, e], rtol, atol=atol)
        return
    w = rng.uniform(-0.5, 1.5, (3, 4) if weight_kind == "tensor" else (4,)).astype(dtype)
    w[..., 0] = 0.5
    atol *= 2  # (a weight up to 1.5: |w (e - s)| up to 3 max(|s|, |e|))
    _compare(lambda a, b, c: a.lerp(b, c), lambda a, b, c: a.lerp(b, c), [s, e, w], rtol, atol=atol)


@pytest.mark.parametrize("value", [1, 0.5, -2])
def test_addcmul_addcdiv_match_pytorch_with_broadcasting(value):
    a, b, c = R.standard_normal((3, 1)), R.standard_normal((1, 4)), R.uniform(0.5, 2, (3, 4))
    for name in ("addcmul", "addcdiv"):
        _compare(lambda x, y, z: getattr(distnn, name)(x, y, z, value=value),
                 lambda x, y, z: getattr(torch, name)(x, y, z, value=value), [a, b, c], 1e-14)
    ints = [np.array([1, 2]), np.array([3, 4]), np.array([2, 2])]
    _compare(lambda x, y, z: distnn.addcmul(x, y, z, value=3), lambda x, y, z: torch.addcmul(x, y, z, value=3), ints,
             0, grad=False)


# ---------------------------------------------------------------------------------------------- predicates
PRED_X = np.array([0.0, -0.0, 1.5, -2.0, math.inf, -math.inf, math.nan, -math.nan, 1e-310])
UNARY_PREDICATES = ["isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit", "isreal", "logical_not"]
BINARY_PREDICATES = ["eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal",
                     "not_equal", "logical_and", "logical_or", "logical_xor"]


@pytest.mark.parametrize("name", UNARY_PREDICATES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.bool_], ids=lambda d: np.dtype(d).name)
def test_unary_predicates_match_pytorch_for_every_dtype(name, dtype):
    x = PRED_X.astype(dtype) if dtype in (np.float64, np.float32) else np.array([0, 3, -2, 1]).astype(dtype)
    want = getattr(torch, name)(torch.tensor(x)).numpy()
    got = getattr(distnn, name)(distnn.tensor(x))
    _same(np.asarray(got.data), want, 0)
    _same(np.asarray(getattr(distnn.tensor(x), name)().data), want, 0)
    assert not got.requires_grad


@pytest.mark.parametrize("name", BINARY_PREDICATES)
def test_comparisons_and_logical_ops_match_pytorch_with_broadcasting_and_mixed_dtypes(name):
    a = PRED_X.reshape(-1, 1)
    b = np.array([0.0, 1.5, math.nan, -math.inf])
    pairs = [(a, b), (a.astype(np.float32), b.astype(np.float64)), (np.array([[1, 0, -2]]), np.array([[1], [0]])),
             (np.array([True, False]), np.array([1, 0])), (np.array([0.1], np.float32), np.array(0.1))]
    for i, (x, y) in enumerate(pairs):
        want = getattr(torch, name)(torch.tensor(x), torch.tensor(y)).numpy()
        _same(np.asarray(getattr(distnn, name)(distnn.tensor(x), distnn.tensor(y)).data), want, 0)
        if name in ("eq", "ne") and i == len(pairs) - 1:
            continue  # (Tensor.eq/ne, older than these, compare a 0-d float64 tensor in float64: left as they are)
        _same(np.asarray(getattr(distnn.tensor(x), name)(distnn.tensor(y)).data), want, 0)
    if name.startswith("logical"):
        return  # (PyTorch's logical ops take tensors only)
    # a float32 tensor against a Python float compares in float32, as PyTorch's
    x32 = np.array([0.1, 0.2], np.float32)
    want = getattr(torch, name)(torch.tensor(x32), 0.1).numpy()
    _same(np.asarray(getattr(distnn, name)(distnn.tensor(x32), 0.1).data), want, 0)


@pytest.mark.parametrize("name", ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not"])
def test_bitwise_ops_match_pytorch_on_integers_and_bools_and_refuse_floats(name):
    args = {"ints": [np.array([[5, -3, 0, 12]]), np.array([[3], [-1]])], "bools": [np.array([True, False]),
            np.array([True, True])], "int32_int64": [np.array([6, 9], np.int32), np.array([3, 5])]}
    for arrays in args.values():
        arrays = arrays[:1] if name == "bitwise_not" else arrays
        _compare(getattr(distnn, name), getattr(torch, name), arrays, 0, grad=False)
    floats = [np.array([1.0, 2.0])] * (1 if name == "bitwise_not" else 2)
    with pytest.raises(NotImplementedError):
        getattr(torch, name)(*[torch.tensor(f) for f in floats])
    with pytest.raises(NotImplementedError, match="integer or bool"):
        getattr(distnn, name)(*[distnn.tensor(f) for f in floats])


@pytest.mark.parametrize("kw", [{}, {"rtol": 0.1}, {"atol": 1.0, "rtol": 0.0}, {"equal_nan": True}])
def test_isclose_matches_pytorch_and_refuses_mixed_dtypes(kw):
    a = np.array([1.0, 1.0 + 1e-6, 2.0, math.inf, math.inf, math.nan, 0.0, 100.0])
    b = np.array([1.0, 1.0, 2.5, math.inf, -math.inf, math.nan, 1e-9, 110.0])
    for dtype in (np.float64, np.float32, np.int64):
        x, y = a.astype(dtype) if dtype != np.int64 else np.array([1, 5, 10]), b.astype(dtype) if dtype != np.int64 \
            else np.array([1, 6, 12])
        want = torch.isclose(torch.tensor(x), torch.tensor(y), **kw).numpy()
        _same(np.asarray(distnn.isclose(distnn.tensor(x), distnn.tensor(y), **kw).data), want, 0)
        _same(np.asarray(distnn.tensor(x).isclose(distnn.tensor(y), **kw).data), want, 0)
    with pytest.raises(RuntimeError):
        torch.isclose(torch.tensor(a), torch.tensor(a.astype(np.float32)))
    with pytest.raises(RuntimeError, match="did not match"):
        distnn.isclose(distnn.tensor(a), distnn.tensor(a.astype(np.float32)))


def test_is_floating_point_and_is_complex_as_pytorch():
    for x in (np.zeros(2), np.zeros(2, np.float32), np.zeros(2, np.int64), np.zeros(2, bool)):
        assert distnn.tensor(x).is_floating_point() == torch.tensor(x).is_floating_point()
        assert distnn.is_floating_point(distnn.tensor(x)) == torch.is_floating_point(torch.tensor(x))
        assert distnn.is_complex(distnn.tensor(x)) is False and distnn.tensor(x).is_complex() is False


# ---------------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("call, torch_call, error", [
    (lambda d: d.hypot(distnn.tensor([1, 2]), distnn.tensor([1, 2])),
     lambda: torch.hypot(torch.tensor([1, 2]), torch.tensor([1, 2])), NotImplementedError),
    (lambda d: d.logaddexp(distnn.tensor([1, 2]), distnn.tensor([1, 2])),
     lambda: torch.logaddexp(torch.tensor([1, 2]), torch.tensor([1, 2])), NotImplementedError),
    (lambda d: d.lerp(distnn.tensor(np.array([1.0])), distnn.tensor([2.0], dtype=np.float32), 0.5),
     lambda: torch.lerp(torch.tensor([1.0], dtype=torch.float64), torch.tensor([2.0]), 0.5), RuntimeError),
    (lambda d: d.lerp(distnn.tensor([1, 2]), distnn.tensor([1, 2]), 0.5),
     lambda: torch.lerp(torch.tensor([1, 2]), torch.tensor([1, 2]), 0.5), NotImplementedError),
    (lambda d: d.addcdiv(distnn.tensor([1, 2]), distnn.tensor([1, 2]), distnn.tensor([1, 2])),
     lambda: torch.addcdiv(torch.tensor([1, 2]), torch.tensor([1, 2]), torch.tensor([1, 2])), RuntimeError),
    (lambda d: d.divide(distnn.tensor([1.0]), 2.0, rounding_mode="round"),
     lambda: torch.divide(torch.tensor([1.0]), 2.0, rounding_mode="round"), (ValueError, RuntimeError)),
    (lambda d: d.neg(distnn.tensor([True])), lambda: torch.neg(torch.tensor([True])), RuntimeError),
    (lambda d: d.atan2(distnn.tensor(np.ones((2, 3))), distnn.tensor(np.ones((4, 1, 2)))),
     lambda: torch.atan2(torch.ones(2, 3), torch.ones(4, 1, 2)), (ValueError, RuntimeError)),
], ids=["hypot_int", "logaddexp_int", "lerp_mixed", "lerp_int", "addcdiv_int", "divide_mode", "neg_bool",
        "broadcast"])
def test_refusals_as_pytorchs(call, torch_call, error):
    with pytest.raises(error):
        torch_call()
    with pytest.raises(error):
        call(distnn)


# ---------------------------------------------------------------------------------------------- gradient checker
@pytest.mark.parametrize("fn, arrays", [
    (lambda x: distnn.erfinv(x) * distnn.erfc(x) + distnn.sinc(x) * distnn.logit(x.sigmoid()),
     [R.uniform(-0.9, 0.9, 6)]),
    (lambda x: (x.asinh() + x.atan() + x.expm1() + x.log1p().square() + x.rsqrt()), [R.uniform(0.2, 2, (2, 3))]),
    (lambda a, b: distnn.atan2(a, b) + distnn.hypot(a, b) + distnn.logaddexp2(a, b) * distnn.xlogy(a, b.abs()),
     [R.standard_normal((2, 3)), R.standard_normal((3,))]),
    (lambda a, b, w: distnn.lerp(a, b, w) + distnn.copysign(a, b) + distnn.fmax(a, b) * distnn.fmod(a, b + 5),
     [R.standard_normal((3, 4)), R.standard_normal((1, 4)), R.standard_normal((3, 1))]),
    (lambda a, b: distnn.addcdiv(a, a, b, value=0.3) + distnn.float_power(b.abs(), a).astype(np.float64),
     [R.standard_normal((2, 2)), R.uniform(0.5, 2, (2, 2))]),
])
def test_gradients_pass_the_finite_difference_checker(fn, arrays):
    assert check_grad(fn, *arrays)


def test_gelu_without_scipy_uses_the_whole_array_erf(monkeypatch):
    # scipy is optional (the data extra brings it): GELU's exact form fell back to math.erf per element
    import sys

    import distnn.functional as F
    from distnn.functional import _special

    x = distnn.Tensor(np.linspace(-6, 6, 1001))
    with_scipy = F.gelu(x).numpy()
    calls = []
    real = _special.erf_array
    monkeypatch.setattr(_special, "erf_array", lambda a: calls.append(a.shape) or real(a))
    monkeypatch.setitem(sys.modules, "scipy.special", None)  # (import fails as if scipy were missing)
    np.testing.assert_allclose(F.gelu(x).numpy(), with_scipy, rtol=1e-14, atol=1e-15)
    assert calls == [(1001,)]
