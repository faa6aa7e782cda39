"""var_mean and std_mean against torch 2.13 (CPU, one thread, the oracle): PyTorch's Welford results.

PyTorch computes var_mean/std_mean with Welford's update in float64, element by element: float32 and float16
results are compared bit for bit (ties between two float32s included: the mean of 4 float32s often is one), float64
ones bit for bit where the update's order decides them (values near 1e308, an inf or a NaN) and to float64's
precision elsewhere. Warnings are errors where torch gives none.
"""
from __future__ import annotations

import math
import warnings
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402

F16, F32, F64 = np.float16, np.float32, np.float64
PAIRS = {"var_mean": (distnn.var_mean, torch.var_mean), "std_mean": (distnn.std_mean, torch.std_mean)}


# (PyTorch splits a reduction of 32,768 elements or more among its threads: one thread is the order copied)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def pair(op, x, exact_warnings=True, **kwargs):
    """(distnn's, torch's) results of ``op`` on numpy ``x``, distnn's as numpy arrays; warnings are errors for
    distnn where torch gave none."""
    ours, theirs = PAIRS[op]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        want = theirs(torch.from_numpy(x.copy()), **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error" if not caught else "ignore")
        got = ours(distnn.tensor(x), **kwargs)
    return [np.asarray(g.data) for g in got], [w.numpy() for w in want]


def assert_same(got, want, exact):
    assert got.dtype == want.dtype and got.shape == want.shape
    if exact:
        np.testing.assert_array_equal(got, want)  # (NaN equals NaN here; inf its own sign)
    else:
        scale = float(np.max(np.abs(want[np.isfinite(want)]), initial=1))
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15 * scale)


def draw(rng, dtype, shape, scale, special):
    with np.errstate(over="ignore"):
        x = (rng.standard_normal(shape) * scale).astype(dtype)
    if special is not None and x.size:
        for _ in range(int(rng.integers(1, 3))):
            x.flat[rng.integers(x.size)] = special
    return x


def random_dims(rng, ndim):
    return [d for d in range(ndim) if rng.random() < 0.5] or list(range(ndim))


SHAPES = [(7,), (4, 4), (3, 2, 5), (2, 3, 4, 2), (1, 8), (64, 3)]


@pytest.mark.parametrize("op", sorted(PAIRS))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [F16, F32, F64])
def test_ordinary_values_as_torch(dtype, shape, op):
    rng = np.random.default_rng(zlib.crc32(repr((np.dtype(dtype).name, shape, op)).encode()))
    for _ in range(25):
        x = draw(rng, dtype, shape, 10 ** rng.uniform(-3, 3), None)
        kwargs = dict(dim=random_dims(rng, len(shape)), correction=int(rng.integers(0, 3)),
                      keepdim=bool(rng.random() < 0.5))
        if x.size // math.prod(x.shape[d] for d in kwargs["dim"]) and \
                math.prod(x.shape[d] for d in kwargs["dim"]) <= kwargs["correction"]:
            continue  # (no degrees of freedom: test_no_degrees_of_freedom_as_torch)
        got, want = pair(op, x, **kwargs)
        for g, w in zip(got, want):
            assert_same(g, w, exact=dtype != F64)


def test_means_of_four_float32s_on_a_tie_as_torch():
    # (the exact mean is halfway between two float32s: Welford's float64 rounding, not the exact one, decides)
    x = np.array([-93.08768463134766, 164.83163452148438, 346.0828552246094, -240.37380981445312], F32)
    (_, mean), (_, want) = pair("var_mean", x)
    assert mean == want == np.float32(44.363247)
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((400, 4)) * 300).astype(F32)
    for op in PAIRS:
        got, want = pair(op, x, dim=1)
        for g, w in zip(got, want):
            assert_same(g, w, exact=True)


SPECIALS = [math.inf, -math.inf, math.nan]


@pytest.mark.parametrize("special", SPECIALS, ids=str)
@pytest.mark.parametrize("op", sorted(PAIRS))
@pytest.mark.parametrize("dtype", [F16, F32, F64])
def test_inf_and_nan_as_torch(dtype, op, special):
    # (Welford: m2 is NaN from the inf's own step; the mean is that inf only if it comes last, else NaN)
    rng = np.random.default_rng(zlib.crc32(repr((np.dtype(dtype).name, op, str(special))).encode()))
    for shape in SHAPES:
        for _ in range(10):
            x = draw(rng, dtype, shape, 10.0, special)
            kwargs = dict(dim=random_dims(rng, len(shape)), correction=int(rng.integers(0, 2)))
            if math.prod(x.shape[d] for d in kwargs["dim"]) <= kwargs["correction"]:
                continue
            got, want = pair(op, x, **kwargs)
            for g, w in zip(got, want):  # (float64's finite slices: two-pass against Welford, to an ulp or so)
                assert_same(g, w, exact=dtype != F64)
                assert np.array_equal(np.isfinite(g), np.isfinite(w)) and np.array_equal(np.isnan(g), np.isnan(w))


@pytest.mark.parametrize("where", ["last", "first", "middle"])
@pytest.mark.parametrize("dtype", [F32, F64])
def test_where_a_lone_inf_stands_decides_the_mean_as_torch(dtype, where):
    x = np.array([1.0, 2.0, 3.0, 4.0], dtype)
    x[{"last": -1, "first": 0, "middle": 2}[where]] = math.inf
    (var, mean), (want_var, want_mean) = pair("var_mean", x)
    assert math.isnan(var) and math.isnan(want_var)
    assert (math.isinf(mean) if where == "last" else math.isnan(mean))
    assert_same(mean, want_mean, exact=True)


HUGE = [[1e308, 1e308, -1e308], [1e308, -1e308, 1e308, 5.0], [1.7e308, 1.7e308], [-1.7e308, 1.7e308, 3.0],
        [1e308, 1e308, 1e308, 1e308], [1e200, -1e200, 1.0], [1e160, 1e160, -3e159], [1e308, math.inf, 2.0]]


@pytest.mark.parametrize("correction", [0, 1, 2])
@pytest.mark.parametrize("op", sorted(PAIRS))
@pytest.mark.parametrize("values", HUGE, ids=str)
def test_float64_near_its_range_as_torch(values, op, correction):
    # (Welford's deviation 1e308 - (-1e308) is inf where a two-pass sum overflows elsewhere)
    x = np.array(values, F64)
    if len(values) <= correction:
        pytest.skip("no degrees of freedom")
    got, want = pair(op, x, correction=correction)
    for g, w in zip(got, want):
        assert_same(g, w, exact=True)
    got, want = pair(op, np.stack([x, x[::-1], np.arange(len(values), dtype=F64)]), dim=1, correction=correction,
                     keepdim=True)
    for g, w in zip(got, want):  # (the huge rows bit for bit, the ordinary one to float64's precision)
        assert_same(g[:2], w[:2], exact=True)
        assert_same(g[2:], w[2:], exact=False)


@pytest.mark.parametrize("op", sorted(PAIRS))
def test_float32_near_its_range_as_torch(op):
    # (float64's accumulator: the mean of 3e38s is finite, their spread's square is not past float64's range)
    for values in ([3e38, 3e38, 1e5, -1e5], [3.4e38, 3.4e38, 3.4e38], [3e38, -3e38, 1.0, 2.0], [1e20, -1e20]):
        got, want = pair(op, np.array(values, F32))
        for g, w in zip(got, want):
            assert_same(g, w, exact=True)


@pytest.mark.parametrize("shape,dim", [((0,), None), ((3, 0), 1), ((0, 3), 1), ((0, 3), 0), ((2, 0, 3), (0, 1))],
                         ids=str)
@pytest.mark.parametrize("op", sorted(PAIRS))
@pytest.mark.parametrize("dtype", [F16, F32, F64])
def test_empty_dims_as_torch(dtype, op, shape, dim):
    got, want = pair(op, np.zeros(shape, dtype), dim=dim)
    for g, w in zip(got, want):
        assert_same(g, w, exact=True)


@pytest.mark.parametrize("op", sorted(PAIRS))
@pytest.mark.parametrize("dtype", [F32, F64])
def test_no_degrees_of_freedom_as_torch(dtype, op):
    for values, correction in (([1.0], 1), ([2.0, 3.0], 2), ([2.0, 2.0], 2), ([2.0, 3.0, 4.0], 5)):
        x = np.array(values, dtype)
        ours, theirs = PAIRS[op]
        with pytest.warns(UserWarning, match="degrees of freedom is <= 0"):
            want = theirs(torch.from_numpy(x), correction=correction)
        with pytest.warns(UserWarning, match="degrees of freedom is <= 0") as caught:
            got = ours(distnn.tensor(x), correction=correction)
        assert all(w.category is UserWarning for w in caught)  # (none of numpy's RuntimeWarnings)
        for g, w in zip(got, want):
            assert_same(np.asarray(g.data), w.numpy(), exact=True)


def grads(m, op, x, dim, correction, weights):
    t = m.tensor(x, requires_grad=True)
    spread, mean = getattr(m, op)(t, dim=dim, correction=correction)
    ((spread * m.tensor(weights[0])).sum() + (mean * m.tensor(weights[1])).sum()).backward()
    return t.grad.numpy() if m is torch else np.asarray(getattr(t.grad, "data", t.grad))


@pytest.mark.parametrize("dim", [None, 0, 1, (0, 1)], ids=str)
@pytest.mark.parametrize("op", sorted(PAIRS))
@pytest.mark.parametrize("dtype", [F32, F64])
def test_gradients_as_torch(dtype, op, dim):
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((5, 6)) * 4).astype(dtype)
    shape = tuple(torch.var_mean(torch.from_numpy(x), dim=dim)[0].shape)
    weights = [rng.standard_normal(shape).astype(dtype) for _ in range(2)]
    for correction in (0, 1, 2):
        got = grads(distnn, op, x, dim, correction, weights)
        want = grads(torch, op, x, dim, correction, weights)
        np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == F32 else 1e-12, atol=1e-6)


@pytest.mark.parametrize("op", sorted(PAIRS))
def test_gradients_where_the_float32_mean_overflows_as_torch(op):
    # (PyTorch's backward takes x - x.mean() in float32: inf past the range, though the forward is finite)
    x = np.array([3e38, 3e38, 1e5, -1e5], F32)
    weights = [np.float32(1.0), np.float32(0.5)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = grads(distnn, op, x, None, 1, weights)
    want = grads(torch, op, x, None, 1, weights)
    assert_same(got, want, exact=True)


@pytest.mark.parametrize("dim", [None, 0, 1], ids=str)
@pytest.mark.parametrize("op", sorted(PAIRS))
@pytest.mark.parametrize("dtype", [F16, F32])
def test_long_slices_as_torch(dtype, op, dim):
    # (65,536 values in one slice: PyTorch's single-thread Welford, bit for bit)
    x = (np.random.default_rng(11).standard_normal((64, 1024)) * 3 + 0.5).astype(dtype)
    got, want = pair(op, x, dim=dim)
    for g, w in zip(got, want):
        assert_same(g, w, exact=True)
