"""float16 sums over the last (trailing) axes and float16 means take the table-lookup widening too
(half_accumulate) and stay bitwise what they were: numpy's ``sum(dtype=float32)`` / ``mean(dtype=float32)``,
rounded once to float16. numpy's casting sum adds each output element's contiguous run buffer-full by
buffer-full (8192 elements pairwise, the buffer sums in turn); the fast path redoes that order."""
import numpy as np
import pytest
import torch

import distnn
from distnn.autograd import half_accumulate

# (shape, axis): trailing axes (the new fast path), rows longer than one buffer, with a remainder, size-1 axes;
# and the cases already fast (leading axes, everything) whose means are new
SHAPES_AXES = [((1024, 1024), -1), ((1024, 1024), 1), ((300, 300), 1), ((3, 30000), 1), ((2, 8192 * 3), -1),
               ((5, 8192 * 2 + 1), 1), ((65536, 3), 1), ((65536, 1), -1), ((1, 70000), 1), ((8, 300, 70), 2),
               ((8, 300, 70), (1, 2)), ((8, 300, 70), (2, 1)), ((4, 5, 6, 700), (-2, -1)), ((40, 9000, 2), (1, 2)),
               ((1024, 1024), 0), ((300, 70, 8), (0, 1)), ((1024, 1024), None), ((70000,), 0), ((70000,), None),
               ((64, 64, 64), (0, 2))]


def _draw(rng, shape, case):
    x = rng.standard_normal(shape) * rng.uniform(0.01, 3000) + rng.uniform(-5, 5)
    with np.errstate(over="ignore"):
        h = x.astype(np.float16)
    if case == "special":  # (inf, NaN, signed zeros, subnormals, and the largest finite values that overflow)
        flat = h.reshape(-1)
        flat[::1001], flat[5::1003], flat[7::997], flat[11::991] = np.inf, np.nan, -0.0, np.float16(3e-7)
        flat[13::89] = np.float16(65504)
    return h


def _numpys(h, op, axis, keepdim):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(getattr(h, op)(axis=axis, keepdims=keepdim, dtype=np.float32).astype(np.float16))


def _distnns(h, op, axis, keepdim):
    t = distnn.tensor(h)
    out = getattr(t, op)(None, keepdim=keepdim) if axis is None else getattr(t, op)(axis, keepdim=keepdim)
    return np.asarray(out.data)


@pytest.mark.parametrize("shape,axis", SHAPES_AXES)
@pytest.mark.parametrize("case", ["plain", "special"])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_sum_and_mean_are_numpys_casting_results_bitwise(shape, axis, case, keepdim, op):
    h = _draw(np.random.default_rng(31), shape, case)
    expected, got = _numpys(h, op, axis, keepdim), _distnns(h, op, axis, keepdim)
    assert got.dtype == np.float16 and got.shape == expected.shape
    np.testing.assert_array_equal(got.view(np.uint16), expected.view(np.uint16))


@pytest.mark.parametrize("shape,axis", SHAPES_AXES)
def test_float32_sums_before_rounding_are_numpys_bitwise(shape, axis):
    """One level down, where a different order of additions would show first."""
    h = _draw(np.random.default_rng(32), shape, "plain")
    for keepdims in (False, True):
        expected = np.asarray(h.sum(axis=axis, keepdims=keepdims, dtype=np.float32))
        got = np.asarray(half_accumulate._float32_sum(h, axis, keepdims))
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))


@pytest.fixture
def lookups(monkeypatch):
    """Counts the table-lookup widenings (the fast path's mark)."""
    calls = []
    real = half_accumulate._float32_of_half

    def counting(a):
        calls.append(a.shape)
        return real(a)
    monkeypatch.setattr(half_accumulate, "_float32_of_half", counting)
    return calls


@pytest.mark.parametrize("op,axis", [("sum", -1), ("sum", (1, 2)), ("mean", -1), ("mean", 0), ("mean", None),
                                     ("mean", (1, 2))])
def test_last_axis_sums_and_means_take_the_lookup(lookups, op, axis):
    h = _draw(np.random.default_rng(33), (16, 64, 80), "plain")
    got = _distnns(h, op, axis, False)
    assert lookups, "numpy's element-by-element float16 conversion was used"
    np.testing.assert_array_equal(got.view(np.uint16), _numpys(h, op, axis, False).view(np.uint16))


@pytest.mark.parametrize("make", [lambda h: h.T, lambda h: h[:, ::2], lambda h: h[::2]])
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_non_contiguous_inputs(lookups, make, op):
    """A strided view: distnn's tensor (a copy) and the reduction helper itself on the view (numpy's own path:
    no lookup, whose flat order would not be the view's) both give numpy's values."""
    h = make(_draw(np.random.default_rng(34), (600, 600), "special"))
    helper = getattr(half_accumulate, {"sum": "accumulating_sum", "mean": "accumulating_mean"}[op])
    for axis in (-1, 0, None):
        expected = _numpys(h, op, axis, False)
        np.testing.assert_array_equal(_distnns(h, op, axis, False).view(np.uint16), expected.view(np.uint16))
        lookups.clear()
        with np.errstate(over="ignore", invalid="ignore"):
            got = np.asarray(helper(h, axis=axis))
        np.testing.assert_array_equal(got.view(np.uint16), expected.view(np.uint16))
        assert not lookups


@pytest.mark.parametrize("shape,axis", [((0, 70000), 1), ((70000, 0), 1), ((0, 70000), 0), ((1, 1), 1), ((3,), 0)])
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_empty_and_small_arrays(shape, axis, op):
    """Empty (a mean of nothing is NaN, as PyTorch's) and small ones (below the lookup's size): unchanged."""
    h = np.ones(shape, np.float16)
    got = _distnns(h, op, axis, False)
    expected = torch.from_numpy(h).sum(axis) if op == "sum" else torch.from_numpy(h).mean(axis)
    assert got.shape == tuple(expected.shape)
    np.testing.assert_array_equal(got, expected.numpy())


def test_dtype_arguments():
    """``dtype=float16`` keeps the float16 path; ``dtype=float32`` casts first and sums float32, as PyTorch."""
    h = _draw(np.random.default_rng(35), (512, 700), "plain")
    t = distnn.tensor(h)
    np.testing.assert_array_equal(np.asarray(distnn.sum(t, 1, dtype=np.float16).data).view(np.uint16),
                                  _numpys(h, "sum", 1, False).view(np.uint16))
    for op in ("sum", "mean"):
        got = np.asarray(getattr(distnn, op)(t, -1, dtype=np.float32).data)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, getattr(h.astype(np.float32), op)(axis=-1))


@pytest.mark.parametrize("op", ["sum", "mean"])
def test_within_one_unit_of_torch(op):
    """PyTorch adds Half in float32 too, in its own order: the two round to the same float16 or a neighbour."""
    h = np.random.default_rng(36).standard_normal((300, 3000)).astype(np.float16)  # (no overflow to inf)
    for axis in (1, (0, 1)):
        got = _distnns(h, op, axis, False).astype(np.float32)
        expected = getattr(torch.from_numpy(h), op)(axis).numpy().astype(np.float32)
        assert (np.abs(got - expected) <= np.spacing(np.abs(expected).astype(np.float16))).all()
