"""Small synthetic classification sets: XOR, noisy XOR, spirals, blobs.

Each generator is deterministic given ``seed`` and returns
``(x float32 (N, D), y int64 (N,))``. They exist to check that training
works end to end in seconds (XOR needs a hidden layer; spirals need a
non-linear boundary; blobs are nearly linearly separable).
"""
from __future__ import annotations

import numpy as np

from .errors import DataError


def _positive(name: str, value, minimum: int = 1) -> int:
    if int(value) != value or value < minimum:
        raise DataError(f"dataset option {name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _nonneg(name: str, value) -> float:
    if not value >= 0:
        raise DataError(f"dataset option {name} must be >= 0, got {value}")
    return float(value)


def _features(x, **options) -> np.ndarray:
    """``x`` as float32; a DataError naming ``options`` when they put a feature beyond float32's range
    (``noise = 1e308``: the run would only see non-finite losses and skip every step)."""
    with np.errstate(over="ignore", invalid="ignore"):
        x = np.asarray(x).astype(np.float32)
    if not np.isfinite(x).all():
        given = " and ".join(f"data.{k} = {v!r}" for k, v in options.items())
        raise DataError(f"{given} give{'s' if len(options) == 1 else ''} features that are not finite in float32 (NaN, or beyond "
                        f"{float(np.finfo(np.float32).max):.4g}): use a smaller value")
    return x


def xor_points():
    """The four XOR points {0,1}^2 with label x0 XOR x1."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([0, 1, 1, 0], dtype=np.int64)
    return x, y


def noisy_xor(n_samples: int = 400, noise: float = 0.15, seed: int = 0):
    """``n_samples`` points around the four XOR corners, gaussian noise ``noise``."""
    n = _positive("n_samples", n_samples, 4)
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, 2, size=(n, 2))
    corners[:4] = [[0, 0], [0, 1], [1, 0], [1, 1]]  # every corner present however small n is
    with np.errstate(over="ignore", invalid="ignore"):  # (too large a noise: _features says so)
        x = corners + _nonneg("noise", noise) * rng.standard_normal((n, 2))
    y = corners[:, 0] ^ corners[:, 1]
    return _features(x, noise=noise), y.astype(np.int64)


def spirals(n_samples: int = 600, n_classes: int = 3, noise: float = 0.15, turns: float = 1.0, seed: int = 0):
    """``n_classes`` interleaved spiral arms in 2-D (the CS231n toy set)."""
    n = _positive("n_samples", n_samples, 1)
    k = _positive("n_classes", n_classes, 2)
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    r = rng.uniform(0.05, 1.0, size=n)
    with np.errstate(over="ignore", invalid="ignore"):  # (too large a noise or turns: _features says so)
        theta = y * (2 * np.pi / k) + r * turns * 2 * np.pi + _nonneg("noise", noise) * rng.standard_normal(n)
        x = np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1)
    return _features(x, noise=noise, turns=turns), y.astype(np.int64)


def blobs(n_samples: int = 600, n_classes: int = 3, n_features: int = 2, spread: float = 1.0,
          center_box: float = 6.0, seed: int = 0):
    """Gaussian blobs: one random centre per class in [-center_box, center_box]^D, std ``spread``."""
    n = _positive("n_samples", n_samples, 1)
    k = _positive("n_classes", n_classes, 2)
    d = _positive("n_features", n_features, 1)
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-center_box, center_box, size=(k, d))
    y = np.arange(n) % k
    with np.errstate(over="ignore", invalid="ignore"):  # (too large a spread: _features says so)
        x = centers[y] + _nonneg("spread", spread) * rng.standard_normal((n, d))
    return _features(x, spread=spread), y.astype(np.int64)
