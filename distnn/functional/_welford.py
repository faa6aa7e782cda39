"""The sum of squared deviations and the mean that PyTorch's CPU ``var_mean``/``std_mean`` give.

PyTorch (CPU) computes var_mean and std_mean of a real tensor, whatever its size, with Welford's update in
float64 (``WelfordOps<scalar_t, double>``), one element at a time in memory order over the reduced dims::

    delta = x - mean;  mean += delta / k;  m2 += delta * (x - mean)

then casts the mean to the input's dtype (a float16 one through float32: c10::Half is built from a float) and
divides m2 by ``max(n - correction, 0)``. Replaying that update element by element is a Python loop, so it is
replayed only where its order decides the result:

* every value finite and not huge (float32 and float16 always, float64 below 2**480): the deviations and their
  squares cannot overflow float64 in either method, so the two-pass sum in float64 is used. float64 results
  differ from PyTorch's by an ulp or so (Welford's rounding against the two-pass's); float32 and float16 ones
  are PyTorch's, since a slice whose mean or spread lies within a few float64 ulps of a point halfway between
  two float32s (common: the mean of 4 float32s is often exactly such a tie) is replayed (a long slice, whose
  Welford error of ~n float64 ulps could cross a tie the two-pass misses, may differ by a float32 ulp: rare);
* a NaN or an inf, where no finite value is huge: the result is known without the loop: the m2 is NaN (``inf -
  inf`` on the inf's own step), the mean NaN but where a single inf is the last value (its mean is that inf);
* a float64 slice holding a value past 2**480: replayed exactly (the update's overflows are PyTorch's: ``1e308 -
  (-1e308)`` is inf where the two-pass's sum would overflow elsewhere).

PyTorch's multi-threaded split (slices of 32,768 elements or more, combined pairwise) is not copied: the result
is that of one thread, ``torch.set_num_threads(1)``.
"""
from __future__ import annotations

import builtins

import numpy as np

# float64 values below this: no deviation square, nor a sum of 2**50 of them, passes float64's range
_HUGE = 2.0 ** 480


def _reduced_last(a, axes):
    """``a`` as (kept..., n): the reduced dims last, flattened in memory order (PyTorch's iteration order: by
    stride, the largest first, so row-major for a C-contiguous array)."""
    kept = [d for d in range(a.ndim) if d not in axes]
    reduced = sorted(axes, key=lambda d: -abs(a.strides[d]))
    return np.transpose(a, kept + reduced).reshape(tuple(a.shape[d] for d in kept) + (-1,))


def _replay(values):
    """Welford's update over the last axis of float64 ``values`` (one Python step per reduced element)."""
    if values.shape[0] == 1:  # (one slice: Python's floats, IEEE doubles too, step faster than numpy's)
        mean = m2 = 0.0
        for k, x in enumerate(values[0].tolist(), start=1):
            delta = x - mean
            mean = mean + delta / k
            m2 = m2 + delta * (x - mean)
        return np.array([m2]), np.array([mean])
    mean = np.zeros(values.shape[:-1])
    m2 = np.zeros(values.shape[:-1])
    for k in range(values.shape[-1]):
        x = values[..., k]
        delta = x - mean
        mean = mean + delta / float(k + 1)
        m2 = m2 + delta * (x - mean)
    return m2, mean


def _rounding_in_doubt(values, tolerance, dtype):
    """Where float64 ``values`` lie within ``tolerance`` of a point halfway between two float32s whose roundings
    to ``dtype`` differ (float16: PyTorch rounds through float32): there the last bits of float64 (Welford's
    rounding against the two-pass's) decide the result."""
    nearest = values.astype(np.float32)
    beyond = np.nextafter(nearest, np.where(values > nearest, np.inf, -np.inf).astype(np.float32))
    midpoint = (nearest.astype(np.float64) + beyond.astype(np.float64)) / 2
    doubt = np.abs(values - midpoint) <= tolerance
    if dtype == np.float16:
        doubt &= nearest.astype(np.float16) != beyond.astype(np.float16)
    return doubt


def welford_var_mean(a, axes, correction=None, root=False):
    """(spread, mean) of real numpy ``a`` over ``axes``, float64 with the reduced dims kept (size 1), as PyTorch's
    CPU var_mean's accumulator ends: the spread is ``m2 / max(n - correction, 0)`` (its square root with
    ``root``), None with no ``correction``; NaN for both where there are no elements. The caller silences numpy's
    floating-point warnings."""
    n = 1
    for d in axes:
        n *= a.shape[d]
    wide = a.astype(np.float64)
    divisor = float(builtins.max(n - (correction or 0), 0))
    if n == 0:  # (PyTorch fills both with NaN for an empty input)
        nan = np.full(np.sum(wide, axis=axes, keepdims=True).shape, np.nan)
        return (None if correction is None else nan), nan.copy()
    # (the largest size, one pass, in the input's dtype but float16's, slow in numpy; NaN where a NaN is)
    magnitude = np.abs(wide if a.dtype == np.float16 else a).max(axis=axes, keepdims=True).astype(np.float64)
    finite = np.isfinite(magnitude)
    replay = magnitude > _HUGE if a.dtype == np.float64 else np.zeros_like(finite)
    mean = wide.sum(axis=axes, keepdims=True) / n
    centered = wide - mean
    m2 = (centered * centered).sum(axis=axes, keepdims=True)
    spread = None if correction is None else m2 / divisor
    if root and spread is not None:
        spread = np.sqrt(spread)
    if a.dtype != np.float64:  # a float32 (or float16) result a rounding of float64's: near a tie, replayed
        # (a few float64 ulps: a tie the two-pass hits exactly, the common case, the mean of 4 float32s; a
        # rounding Welford's own error of ~n ulps moves across a tie the two-pass misses is left, rare)
        eps = np.finfo(np.float64).eps
        replay |= finite & _rounding_in_doubt(mean, 4 * eps * (np.abs(mean) + magnitude), a.dtype)
        if spread is not None:
            replay |= finite & _rounding_in_doubt(spread, 8 * eps * np.abs(spread), a.dtype)
    if finite.all() and not replay.any():
        return spread, mean
    # a NaN or an inf among moderate values: m2 NaN; the mean NaN unless the one non-finite value is a last inf
    flat = _reduced_last(wide, axes)
    last = flat[..., -1].reshape(mean.shape)
    lone_last_inf = np.isinf(last) & np.isfinite(flat[..., :-1]).all(axis=-1).reshape(mean.shape)
    mean = np.where(finite, mean, np.where(lone_last_inf, last, np.nan))
    if spread is not None:
        spread = np.where(finite, spread, np.nan)
    if replay.any():  # replayed exactly: float64 slices past 2**480 (overflows as PyTorch's), float32 near ties
        rows = replay.reshape(-1)
        m2_rows, mean_rows = _replay(flat.reshape(-1, flat.shape[-1])[rows])
        mean = mean.reshape(-1)
        mean[rows] = mean_rows
        mean = mean.reshape(last.shape)
        if spread is not None:
            spread_rows = m2_rows / divisor
            spread = spread.reshape(-1)
            spread[rows] = np.sqrt(spread_rows) if root else spread_rows
            spread = spread.reshape(last.shape)
    return spread, mean


def to_dtype_as_torch(values, dtype):
    """float64 ``values`` cast to ``dtype`` as PyTorch's project step does (float16 through float32)."""
    if dtype == np.float16:
        values = values.astype(np.float32)
    return values.astype(dtype)
