"""Numeric edge cases against torch 2.13 (CPU, the oracle): values, warnings and errors where a float runs out.

var/std near float32's range (PyTorch accumulates in float64: std([3e38, 3e38, 1e5, -1e5]) is finite), float16
variances, var/std gradients at zero or negative degrees of freedom and where the mean overflows, prod's
gradient when the product overflows or holds zeros, inf and negative norms over empty dims (PyTorch's
RuntimeError), and float -> integer casts of NaN, inf and out-of-range values (x86's values, no warning).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402

F32, F16, F64 = np.float32, np.float16, np.float64
TORCH_DTYPE = {F32: torch.float32, F16: torch.float16, F64: torch.float64}


def silently(f):
    """``f()`` with every warning an error: PyTorch gives these values without one."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return f()


def same(got, want, exact=False):
    """distnn's array (or Tensor) equals torch's tensor: inf and NaN where its are, values as assert_close (or
    bit for bit with ``exact``), the dtype too."""
    got = np.asarray(got.data if isinstance(got, distnn.Tensor) else got)
    want = want.detach()
    assert got.shape == tuple(want.shape)
    got_t = torch.from_numpy(got.copy())
    if exact:
        torch.testing.assert_close(got_t, want, rtol=0, atol=0, equal_nan=True)
    else:
        torch.testing.assert_close(got_t, want, equal_nan=True)


# ------------------------------------------------------------------ var/std values past the float's range

NEAR_RANGE = [
    ("float32 squares past", F32, [1e20, -1e20, 3e19]),
    ("float32 past", F32, [3e38, 3e38, 1e5, -1e5]),
    ("float32 both ends", F32, [3e38, -3e38, 1.0, 2.0]),
    ("float32 max", F32, [3.4e38, 3.4e38, 3.4e38]),
    ("float32 inf", F32, [math.inf, 1.0, 2.0]),
    ("float32 nan", F32, [math.nan, 1.0, 2.0]),
    ("float16 300", F16, [300.0, -300.0]),
    ("float16 near max", F16, [6e4, 6e4, 1.0, -1.0]),
    ("float64 past", F64, [1e308, 1e308, -1e308]),
]
SPREADS = {
    "var": lambda m, t: t.var(),
    "std": lambda m, t: t.std(),
    "var(0)": lambda m, t: t.reshape(-1, 1).var(0),
    "std(0, keepdim)": lambda m, t: t.reshape(-1, 1).std(0, keepdim=True),
    "std(correction=0)": lambda m, t: t.std(correction=0),
    "var_mean": lambda m, t: m.var_mean(t),
    "std_mean": lambda m, t: m.std_mean(t),
    "std_mean(0)": lambda m, t: m.std_mean(t.reshape(-1, 1), 0),
}


@pytest.mark.parametrize("spread", sorted(SPREADS))
@pytest.mark.parametrize("case", NEAR_RANGE, ids=[c[0] for c in NEAR_RANGE])
def test_var_and_std_near_the_float_range_as_torch(case, spread):
    name, dtype, values = case
    x = np.array(values, dtype=dtype)
    f = SPREADS[spread]
    want = f(torch, torch.tensor(x))
    got = silently(lambda: f(distnn, distnn.tensor(x)))
    for g, w in zip(got, want) if isinstance(want, tuple) else [(got, want)]:
        same(g, w)


def test_float32_std_past_the_range_is_finite_where_its_variance_is_inf():
    x = distnn.tensor(np.array([1e20, -1e20], dtype=F32))
    assert math.isclose(float(silently(x.std).item()), 2e20 / math.sqrt(2), rel_tol=1e-6)
    assert math.isinf(float(silently(x.var).item()))
    assert silently(x.std).dtype == np.float32
    y = distnn.tensor(np.array([3e38, 3e38, 1e5, -1e5], dtype=F32))  # (its float32 mean is inf: so is std())
    s, mean = silently(lambda: distnn.std_mean(y))
    assert math.isclose(float(s.item()), 3e38 / math.sqrt(3), rel_tol=1e-6)
    assert math.isclose(float(mean.item()), 1.5e38, rel_tol=1e-6)


@pytest.mark.parametrize("dim", [None, 0, 1])
def test_float16_spreads_of_ordinary_values_as_torch(dim):
    # (deviations past 256 square past float16's 65504: PyTorch's are computed in a wider float)
    x = np.random.default_rng(0).uniform(-1000, 1000, (6, 7)).astype(F16)
    for name in ("var", "std"):
        want = getattr(torch.tensor(x), name)(dim)
        got = silently(lambda: getattr(distnn.tensor(x), name)(dim))
        assert got.dtype == np.float16
        same(got, want)


def test_float32_spreads_of_ordinary_values_as_torch():
    x = np.random.default_rng(1).standard_normal((5, 256)).astype(F32) * 1e3 + 7
    for dim in (None, 0, 1, (0, 1)):
        for name in ("var", "std"):
            same(getattr(distnn.tensor(x), name)(dim), getattr(torch.tensor(x), name)(dim))


# ------------------------------------------------------------------ var/std gradients as PyTorch's formulas

def grads(m, x, f, g):
    t = m.tensor(x, requires_grad=True)
    out = f(m, t)
    out = out[0] if isinstance(out, tuple) else out
    out.backward(m.tensor(np.full(tuple(out.shape), g, dtype=x.dtype)))
    return t.grad


NO_DOF = [  # (values, correction): zero or negative degrees of freedom, and a constant input
    ([1.0], 1), ([2.0, 3.0], 2), ([2.0, 3.0, 4.0], 3), ([2.0, 3.0, 4.0], 4), ([2.0, 2.0], 2),
    ([2.0, 3.0, math.nan], 3),
]
GRAD_OPS = {
    "var": lambda c: lambda m, t: t.var(correction=c),
    "var(dim)": lambda c: lambda m, t: t.reshape(1, -1).var(1, correction=c),
    "var_mean": lambda c: lambda m, t: m.var_mean(t, correction=c),
    "std": lambda c: lambda m, t: t.std(correction=c),
    "std(dim)": lambda c: lambda m, t: t.reshape(1, -1).std(1, correction=c),
    "std_mean(dim)": lambda c: lambda m, t: m.std_mean(t.reshape(1, -1), 1, correction=c),
}


@pytest.mark.parametrize("g", [1.0, -2.0])
@pytest.mark.parametrize("op", sorted(GRAD_OPS))
@pytest.mark.parametrize("case", NO_DOF, ids=[f"{v}-c{c}" for v, c in NO_DOF])
def test_var_std_gradients_without_degrees_of_freedom_as_torch(case, op, g):
    values, correction = case
    x = np.array(values, dtype=F32)
    f = GRAD_OPS[op](correction)
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
        want = grads(torch, x, f, g)
    with pytest.warns(UserWarning, match="degrees of freedom is <= 0") as caught:
        got = grads(distnn, x, f, g)
    assert all(w.category is UserWarning for w in caught)  # (none of numpy's RuntimeWarnings)
    same(got, want, exact=True)


@pytest.mark.parametrize("op", sorted(GRAD_OPS))
@pytest.mark.parametrize("values", [[3e38, 3e38, 1e5, -1e5], [1.0, 2.0, 4.0, 8.0]])
def test_var_std_gradients_where_the_mean_overflows_as_torch(op, values):
    # (PyTorch's backward takes x - x.mean() in float32: -inf past the range, and std's 2 * std is inf)
    x = np.array(values, dtype=F32)
    f = GRAD_OPS[op](1)
    same(silently(lambda: grads(distnn, x, f, 1.0)), grads(torch, x, f, 1.0))


def test_var_gradient_without_degrees_of_freedom_under_create_graph_as_torch():
    x = np.array([2.0, 3.0, 4.0], dtype=F32)
    results = []
    for m in (torch, distnn):
        t = m.tensor(x, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            (gx,) = m.autograd.grad(t.var(correction=3), t, create_graph=True)
        results.append(gx)
    same(results[1], results[0], exact=True)


# ------------------------------------------------------------------ prod's gradient

PRODUCTS = [
    [1e20, 1e20, 1e20],            # overflows: result / input is inf
    [1e30, 1e30, -1.0],            # the product of the others is finite, PyTorch's gradient is not
    [1e20, 1e20, 0.0, 1e20],       # one zero after an overflowing prefix
    [1e20, 1e20, 0.0, 0.0],        # two zeros
    [3e38, 3e38, 1e5, -1e5],
    [2.0, 0.0, 3.0],
    [2.0, -3.0, 0.5],
]


@pytest.mark.parametrize("over", ["all", "dim", "dim keepdim"])
@pytest.mark.parametrize("values", PRODUCTS, ids=[str(v) for v in PRODUCTS])
def test_prod_gradient_as_torch(values, over):
    x = np.array(values, dtype=F32)
    f = {"all": lambda m, t: t.prod(),
         "dim": lambda m, t: t.reshape(1, -1).prod(1),
         "dim keepdim": lambda m, t: t.reshape(1, -1).prod(1, keepdim=True)}[over]
    same(silently(lambda: grads(distnn, x, f, 1.0)), grads(torch, x, f, 1.0), exact=True)


def test_prod_gradient_of_float64_and_of_a_matrix_as_torch():
    x = np.random.default_rng(2).uniform(-3, 3, (4, 5))
    x[1, 2] = 0.0
    x[3, [0, 4]] = 0.0
    for dim in (0, 1):
        same(grads(distnn, x, lambda m, t: t.prod(dim), 1.5), grads(torch, x, lambda m, t: t.prod(dim), 1.5))


# ------------------------------------------------------------------ norms over empty dims

EMPTY_NORMS = [
    ((2, 0), dict(dim=1)), ((2, 0), dict(dim=-1)), ((2, 0), dict(dim=(0, 1))), ((2, 0), dict(dim=(1, 0))),
    ((2, 0, 3), dict(dim=-2, keepdim=True)), ((2, 0), dict()), ((0,), dict()),
]


def torch_error(f):
    with pytest.raises(RuntimeError) as caught:
        f(torch)
    return str(caught.value)


@pytest.mark.parametrize("ord", [math.inf, -math.inf, -1, -2.0, -0.5])
@pytest.mark.parametrize("case", EMPTY_NORMS, ids=[f"{s}-{k}" for s, k in EMPTY_NORMS])
def test_norms_without_an_identity_over_an_empty_dim_as_torch(case, ord):  # noqa: A002
    shape, kw = case
    calls = [lambda m: m.linalg.vector_norm(m.zeros(*shape), ord=ord, **kw),
             lambda m: m.norm(m.zeros(*shape), p=ord, **kw),
             lambda m: m.zeros(*shape).norm(p=ord, **kw)]
    for f in calls:
        message = torch_error(f)
        with pytest.raises(RuntimeError) as caught:
            f(distnn)
        assert str(caught.value) == message


@pytest.mark.parametrize("ord", [math.inf, -math.inf, -1, 2, 1, 0, 0.5])
def test_norms_over_a_dim_that_is_not_empty_of_an_empty_tensor_as_torch(ord):  # noqa: A002
    for m_kw in (dict(dim=0), dict(dim=0, keepdim=True)):
        want = torch.linalg.vector_norm(torch.zeros(2, 0), ord=ord, **m_kw)
        same(distnn.linalg.vector_norm(distnn.zeros(2, 0), ord=ord, **m_kw), want, exact=True)
        same(distnn.norm(distnn.zeros(2, 0), p=ord, **m_kw), torch.norm(torch.zeros(2, 0), p=ord, **m_kw), exact=True)


# ------------------------------------------------------------------ float -> integer casts

SPECIAL = [math.nan, math.inf, -math.inf, 1e19, -1e19, 3e9, -3e9, 2.5, -2.5, 1e300, 70000.0, -129.0, 255.9]
CASTS = {
    "long()": lambda m, t: t.long(),
    "int()": lambda m, t: t.int(),
    "short()": lambda m, t: t.short(),
    "char()": lambda m, t: t.char(),
    "byte()": lambda m, t: t.byte(),
    "bool()": lambda m, t: t.bool(),
    "to(int64)": lambda m, t: t.to(m.int64),
    "to(int32)": lambda m, t: t.to(m.int32),
    "to(uint8)": lambda m, t: t.to(m.uint8),
}


@pytest.mark.parametrize("cast", sorted(CASTS))
@pytest.mark.parametrize("dtype", [F32, F64, F16])
def test_float_to_integer_casts_of_nan_inf_and_out_of_range_as_torch(dtype, cast):
    with np.errstate(over="ignore"):
        x = np.array(SPECIAL, dtype=F64).astype(dtype)
    want = CASTS[cast](torch, torch.tensor(x))
    got = silently(lambda: CASTS[cast](distnn, distnn.tensor(x)))
    assert got.tolist() == want.tolist()


def test_float64_to_complex64_past_the_range_is_inf_silently_as_torch():
    x = np.array([1e300, -1e300, 1.0, math.nan])
    want = torch.tensor(x).to(torch.complex64)
    same(silently(lambda: distnn.tensor(x).to(distnn.complex64)), want, exact=True)


@pytest.mark.parametrize("name", ["var", "std"])
@pytest.mark.parametrize("dim", [0, 1])
def test_float32_spreads_along_a_dim_past_the_range_as_torch(name, dim):
    # (more than one value: PyTorch's Welford in float64, its mean too, so a column of 3e38s has a finite std)
    x = np.array([[3e38, 3e38, 2.0], [1e5, -1e5, 3e38], [3e38, 1.0, -3e38]], dtype=F32)
    want = getattr(torch.tensor(x), name)(dim)
    same(silently(lambda: getattr(distnn.tensor(x), name)(dim)), want)
    f = lambda m, t: getattr(t, name)(dim)  # noqa: E731
    same(silently(lambda: grads(distnn, x, f, 1.0)), grads(torch, x, f, 1.0))


# ------------------------------------------------------------------ float16 segment_reduce

SEGMENTS = [
    ("ones past 2048", np.ones((3000, 1)), [3000], None),
    ("sums past the range", np.array([[60000.0], [60000.0], [1.0], [2.0]]), [2, 2], None),
    ("with initial and an empty segment", np.array([[60000.0], [60000.0], [1.0], [2.0]]), [2, 0, 2], 3.0),
    ("random", np.random.default_rng(3).uniform(-100, 100, (50, 3)), [10, 0, 25, 15], None),
]


@pytest.mark.parametrize("reduce", ["sum", "mean", "prod", "max"])
@pytest.mark.parametrize("case", SEGMENTS, ids=[c[0] for c in SEGMENTS])
def test_float16_segment_reduce_steps_in_float16_as_torch(case, reduce):
    # (torch's CPU kernel accumulates a float16 segment in float16, each step rounded)
    _, values, lengths, initial = case
    x = values.astype(F16)
    kw = {} if initial is None else {"initial": initial}
    want = torch.segment_reduce(torch.tensor(x), reduce, lengths=torch.tensor(lengths), **kw)
    got = silently(lambda: distnn.segment_reduce(distnn.tensor(x), reduce, lengths=distnn.tensor(np.array(lengths)),
                                                 **kw))
    same(got, want, exact=True)


# ------------------------------------------------------------------ cumprod past the float's range

RUNNING = [[1e20, 1e20, 0.0, 5.0], [1e20, 1e20, 1e-20, 1e-20], [300.0, 300.0, 1e-3], [1e30, 1e30, 0.0, 0.0, 2.0],
           [1e30, 1e30, 1e-30, 2.0, 0.0, 3.0], [0.0, 1e30, 1e30, 2.0], [2.0, -3.0, 0.5]]


@pytest.mark.parametrize("dtype", [F32, F64, F16])
@pytest.mark.parametrize("values", RUNNING, ids=[str(v) for v in RUNNING])
def test_cumprod_and_its_gradient_past_the_range_as_torch(values, dtype):
    # (PyTorch's cumprod accumulates float32 in float64 and float16 in float32: 1e20 * 1e20 * 0 is 0, not NaN)
    with np.errstate(over="ignore", under="ignore"):
        x = np.array(values, dtype=dtype)
    if not np.isfinite(x).all() or (x[np.array(values) != 0] == 0).any():
        pytest.skip("not representable in this dtype")
    f = lambda m, t: t.cumprod(0)  # noqa: E731
    same(silently(lambda: f(distnn, distnn.tensor(x))), f(torch, torch.tensor(x)), exact=True)
    same(silently(lambda: grads(distnn, x, f, 1.0)), grads(torch, x, f, 1.0), exact=True)
