"""Large float16 sums take a faster float16 -> float32 widening (a table lookup) and must stay bitwise what
numpy's casting sum gives (``sum(dtype=float32)``, rounded once: PyTorch's values, see
test_float16_reductions_torch.py): over axes that keep the last one, and over the whole array, where numpy's
buffer-by-buffer order is redone; the other reductions keep numpy's own path."""
import numpy as np
import pytest

import distnn
from distnn.autograd import half_accumulate

SHAPES_AXES = [((1024, 1024), 0), ((300, 300), 0), ((8, 300, 70), (0, 1)), ((300, 70, 8), 0),
               ((40000, 3), 0), ((64, 64, 64), 1), ((2, 200, 300), -2), ((1024, 1024), 1),
               ((1024, 1024), None), ((65536,), None), ((70000,), None), ((3, 8192 * 9 + 17), None),
               ((256, 256, 3), None), ((65537,), 0), ((513, 257), (0, 1)), ((1024, 1024), (0, 1)), ((64, 64, 64), (2, 0, 1)),
               ((64, 64, 64), (0, 2))]


def _draw(rng, shape, case):
    x = rng.standard_normal(shape) * rng.uniform(0.01, 3000) + rng.uniform(-5, 5)
    with np.errstate(over="ignore"):
        h = x.astype(np.float16)
    if case == "special":  # (inf, NaN, signed zeros and subnormals through the table)
        flat = h.reshape(-1)
        flat[::1001], flat[5::1003], flat[7::997], flat[11::991] = np.inf, np.nan, -0.0, np.float16(3e-7)
    return h


@pytest.mark.parametrize("shape,axis", SHAPES_AXES)
@pytest.mark.parametrize("case", ["plain", "special"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_tensor_sum_is_numpys_casting_sum_bitwise(shape, axis, case, keepdim):
    rng = np.random.default_rng(21)
    h = _draw(rng, shape, case)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = np.asarray(h.sum(axis=axis, keepdims=keepdim, dtype=np.float32).astype(np.float16))
    t = distnn.tensor(h)
    got = np.asarray((t.sum(None, keepdim=keepdim) if axis is None else t.sum(axis, keepdim=keepdim)).data)
    assert got.dtype == np.float16 and got.shape == expected.shape
    np.testing.assert_array_equal(got.view(np.uint16), expected.view(np.uint16))


@pytest.mark.parametrize("shape,axis", SHAPES_AXES)
def test_float32_sums_before_rounding_are_bitwise_numpys(shape, axis):
    """One level down, where a different order would show first: the float32 sums themselves."""
    rng = np.random.default_rng(22)
    h = _draw(rng, shape, "plain")
    expected = np.asarray(h.sum(axis=axis, dtype=np.float32))
    wide = half_accumulate._float32_of_half(h)
    np.testing.assert_array_equal(wide.view(np.uint32), h.astype(np.float32).view(np.uint32))
    if half_accumulate._sums_in_cast_order(h, axis):
        got = wide.sum(axis=axis)
    elif half_accumulate._all_axes(h, axis) and half_accumulate._whole_sum_by_buffers(h):
        got = half_accumulate._buffered_float32_sum(wide.reshape(-1))
    else:
        pytest.skip("numpy's own path: nothing to compare")
    np.testing.assert_array_equal(np.asarray(got).view(np.uint32), expected.view(np.uint32))


def test_every_half_bit_pattern_widens_exactly():
    every = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    got = half_accumulate._float32_of_half(every)
    np.testing.assert_array_equal(got.view(np.uint32), every.astype(np.float32).view(np.uint32))
