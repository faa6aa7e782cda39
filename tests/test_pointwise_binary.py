"""PyTorch's binary pointwise math on distnn tensors (distnn.atan2, Tensor.fmod, divide's rounding modes,
lerp, addcmul/addcdiv, ...) against PyTorch 2.13 as the oracle: values and both gradients in float64 (tight) and
float32 with mixed dtypes (loose) with broadcasting, a grid of edge points, result dtypes for integer and bool
inputs, integer division by zero, number-first operands."""
from __future__ import annotations

import numpy as np
import pytest

import distnn

from pointwise_oracle import EDGE, compare, same


torch = pytest.importorskip("torch")
SHAPES = [((3, 4), (3, 4)), ((2, 1, 4), (3, 1)), ((5,), ()), ((), (2, 3)), ((1, 3), (4, 1)), ((0, 3), (3,))]


R = np.random.default_rng(0)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)


def _normal(*args, **kwargs):
    """R.standard_normal looked up at each call: while a test runs, R is its own generator (DRAW_PER_TEST)."""
    return R.standard_normal(*args, **kwargs)


def _pos(s):
    return R.uniform(0.2, 3.0, s)


# name -> (sampler of input, sampler of other)
BINARY = {
    "atan2": (_normal, _normal), "arctan2": (_normal, _normal),
    "hypot": (_normal, _normal),
    "remainder": (lambda s: R.standard_normal(s) * 4, lambda s: _pos(s) * R.choice([-1, 1], s)),
    "fmod": (lambda s: R.standard_normal(s) * 4, lambda s: _pos(s) * R.choice([-1, 1], s)),
    "true_divide": (_normal, _pos), "divide": (_normal, _pos),
    "floor_divide": (lambda s: R.standard_normal(s) * 4, _pos),
    "multiply": (_normal, _normal), "subtract": (_normal, _normal),
    "logaddexp": (lambda s: R.standard_normal(s) * 5, lambda s: R.standard_normal(s) * 5),
    "logaddexp2": (lambda s: R.standard_normal(s) * 5, lambda s: R.standard_normal(s) * 5),
    "xlogy": (_normal, _pos), "copysign": (_normal, _normal),
    "fmax": (_normal, _normal), "fmin": (_normal, _normal),
    "clamp_min": (_normal, _normal), "clamp_max": (_normal, _normal),
    "float_power": (_pos, _normal),
}


NO_GRADIENT = {"floor_divide"}


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("shapes", SHAPES, ids=str)
def test_binary_value_and_both_gradients_in_float64_with_broadcasting_match_pytorch(name, shapes):
    fa, fb = BINARY[name]
    a, b = np.asarray(fa(shapes[0]), np.float64), np.asarray(fb(shapes[1]), np.float64)
    compare(getattr(distnn, name), getattr(torch, name), [a, b], 1e-12, grad=name not in NO_GRADIENT)


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_on_a_grid_of_edge_points_matches_pytorch(name):
    """Every pair of edge points (0 with 0: atan2 and hypot at the origin, xlogy at x = 0, ties and NaNs for
    fmax/fmin, infinities for logaddexp): values and PyTorch's gradient conventions there."""
    a, b = np.meshgrid(EDGE, EDGE)
    if name in ("remainder", "fmod", "floor_divide"):
        keep = b != 0  # (PyTorch's remainder by 0 differs from its own fmod; its gradients there are NaN)
        a, b = a[keep], b[keep]
    compare(getattr(distnn, name), getattr(torch, name), [a.ravel().copy(), b.ravel().copy()], 1e-12,
             grad=name not in NO_GRADIENT)


@pytest.mark.parametrize("name", list(BINARY))
def test_binary_float32_with_mixed_dtypes_matches_pytorch(name):
    """float32 against float64 gives float64, against int64 (either side) float32 (PyTorch's promotion), values
    and gradients loosely."""
    fa, fb = BINARY[name]
    a32, b = np.asarray(fa((3, 4)), np.float32), np.asarray(fb((3, 4)))
    bi = np.where(np.abs(b) < 1, 2, np.round(b)).astype(np.int64)
    for pair in ([a32, b.astype(np.float32)], [a32, b.astype(np.float64)], [a32, bi], [bi, b.astype(np.float32)]):
        compare(getattr(distnn, name), getattr(torch, name), pair, 2e-5, grad=name not in NO_GRADIENT)


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
        same(np.asarray(getattr(distnn, name)(distnn.tensor(x), distnn.tensor(y)).data), want, 1e-6)


@pytest.mark.parametrize("mode", [None, "trunc", "floor"])
def test_divide_rounding_modes_match_pytorch_for_floats_integers_and_numbers(mode):
    a = np.array([7.5, -7.5, 7.0, -7.0, 0.0, -0.0, 1e300, 3.0])
    b = np.array([2.0, 2.0, -2.0, -2.0, 3.0, 3.0, 1e-300, 0.0])
    compare(lambda x, y: distnn.divide(x, y, rounding_mode=mode), lambda x, y: torch.divide(x, y, rounding_mode=mode),
             [a, b], 1e-15)
    ai, bi = np.array([7, -7, 7, -7, 0, 2**62 + 1]), np.array([2, 2, -2, -2, 3, -3])
    compare(lambda x, y: x.divide(y, rounding_mode=mode), lambda x, y: x.divide(y, rounding_mode=mode), [ai, bi],
             1e-15)
    compare(lambda x: distnn.divide(x, 2, rounding_mode=mode), lambda x: torch.divide(x, 2, rounding_mode=mode),
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
    compare(lambda t: distnn.remainder(5.0, t), lambda t: torch.remainder(5.0, t), [x], 1e-15, grad=False)
    compare(lambda t: distnn.xlogy(2, t.abs()), lambda t: torch.xlogy(2, t.abs()), [x], 1e-15)
    compare(lambda t: distnn.xlogy(t, 3.0), lambda t: torch.xlogy(t, 3.0), [x], 1e-15)
    compare(lambda t: distnn.float_power(2, t), lambda t: torch.float_power(2, t), [x], 1e-15)
    compare(lambda t: t.subtract(t * t, alpha=2.5), lambda t: t.subtract(t * t, alpha=2.5), [x], 1e-15)


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
        compare(lambda a, b: distnn.lerp(a, b, w), lambda a, b: torch.lerp(a, b, w), [s, e], rtol, atol=atol)
        return
    w = rng.uniform(-0.5, 1.5, (3, 4) if weight_kind == "tensor" else (4,)).astype(dtype)
    w[..., 0] = 0.5
    atol *= 2  # (a weight up to 1.5: |w (e - s)| up to 3 max(|s|, |e|))
    compare(lambda a, b, c: a.lerp(b, c), lambda a, b, c: a.lerp(b, c), [s, e, w], rtol, atol=atol)


@pytest.mark.parametrize("value", [1, 0.5, -2])
def test_addcmul_addcdiv_match_pytorch_with_broadcasting(value):
    a, b, c = R.standard_normal((3, 1)), R.standard_normal((1, 4)), R.uniform(0.5, 2, (3, 4))
    for name in ("addcmul", "addcdiv"):
        compare(lambda x, y, z: getattr(distnn, name)(x, y, z, value=value),
                 lambda x, y, z: getattr(torch, name)(x, y, z, value=value), [a, b, c], 1e-14)
    ints = [np.array([1, 2]), np.array([3, 4]), np.array([2, 2])]
    compare(lambda x, y, z: distnn.addcmul(x, y, z, value=3), lambda x, y, z: torch.addcmul(x, y, z, value=3), ints,
             0, grad=False)
