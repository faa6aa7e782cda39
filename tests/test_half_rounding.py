"""to_half (the float16 rounding distnn's float16 softmax, log_softmax and cross-entropy paths use) is numpy's
``astype(float16)`` bitwise (a float64's through float32 first, as PyTorch casts it:
tests/test_half_double_rounding_torch.py): values in float16's subnormal range, ties, signed zeros, NaN, inf,
overflow (with numpy's warning). It exists for speed (numpy's cast is ~100x slower on such values): see
benchmarks/bench_softmax_cross_entropy_dtypes.py; no timing is asserted here."""
import warnings

import numpy as np
import pytest

from distnn.autograd.half_rounding import narrowed, to_half

EDGES = [2.0 ** -25, 3 * 2.0 ** -26, 1.5 * 2.0 ** -24, 2.5 * 2.0 ** -24, -2.0 ** -25, -0.0, 0.0, np.inf, -np.inf,
         np.nan, 65519.0, 2.0 ** -14 - 2.0 ** -30, -(2.0 ** -14 - 2.0 ** -30), 2.0 ** -14, 1e-45, 1e-30]


def _same(a):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = (a.astype(np.float32) if a.dtype == np.float64 else a).astype(np.float16)
        got = to_half(a)  # (overflow warns as the cast: test_overflow_warns_as_numpy)
    assert got.dtype == np.float16 and got.shape == a.shape
    np.testing.assert_array_equal(got.view(np.uint16), expected.view(np.uint16))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bitwise_numpys_cast(dtype):
    rng = np.random.default_rng(0)
    _same((rng.standard_normal(200_000) * 2.0 ** rng.integers(-40, 16, 200_000)).astype(dtype))
    _same(np.array(EDGES * 20, dtype))
    _same((rng.random((300, 7)) ** 30).astype(dtype))  # (mostly tiny, as a softmax's probabilities)
    _same((rng.random((300, 7)) ** 30).astype(dtype)[:, ::2])  # (not contiguous)
    _same(np.array(EDGES, dtype))  # (small: numpy's own cast)


def test_overflow_warns_as_numpy():
    a = np.array([1e-7] * 300 + [1e6], np.float32)
    with pytest.warns(RuntimeWarning, match="overflow"):
        got = to_half(a)
    assert got[-1] == np.inf


def test_narrowed_leaves_other_dtypes():
    a = np.arange(300, dtype=np.float64) * 1e-9
    assert narrowed(a, np.dtype(np.float32)).dtype == np.float32
    np.testing.assert_array_equal(narrowed(a, np.dtype(np.float16)), a.astype(np.float16))
