"""Shared by the float64 oracle tests: a comparison against PyTorch's result scaled to its size."""
import numpy as np


def close(actual, expected, what, rtol=1e-9):
    """Same shape, and the largest difference at most ``rtol`` times the expected's largest magnitude
    (at least 1e-3, so values near 0 are not held to an absolute 1e-12)."""
    expected, actual = np.asarray(expected), np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    diff = float(np.abs(actual - expected).max()) if expected.size else 0.0
    assert diff <= rtol * max(scale, 1e-3), f"{what}: max error {diff:.3g} vs largest value {scale:.3g}"
