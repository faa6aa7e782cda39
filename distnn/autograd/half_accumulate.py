"""Reductions of half-precision floats accumulate in float32 and round once, as PyTorch's kernels.

numpy adds float16 along a non-contiguous axis (``x.sum(0)`` of a 2-D array,
a broadcast gradient summed back over the batch) in float16, rounding after
every addition: 64 values of 1000 come to ``inf`` where PyTorch, which
accumulates Half in float32, answers 64000, and a long sum of 0.1 stalls at
256 where PyTorch reaches 300. The reductions (sum, mean, nansum, nanmean,
the engine's ``sum_to_shape``, Linear's bias gradient, norms, softmax) go
through these helpers, so the rule lives in one place; the result keeps
float16, as PyTorch's. The calls
are numpy's and cupy's alike (``sum(dtype=)``, ``astype``), so one path
serves both. numpy has no bfloat16, so float16 is the only narrow float here.
"""
from __future__ import annotations

import math

import numpy as np

_NARROW_FLOATS = frozenset({np.dtype(np.float16)})
_WIDE = np.dtype(np.float32)


def accumulation_dtype(dtype):
    """The dtype a reduction of ``dtype`` adds up in: float32 for float16 (PyTorch's ``opmath`` type), else
    None (the array's own dtype: float32, float64 and complex reductions are numpy's, unchanged)."""
    return _WIDE if dtype in _NARROW_FLOATS else None


def widened(a):
    """``a`` in its accumulation dtype (a float32 copy of a float16 array), else ``a`` itself."""
    wide = accumulation_dtype(a.dtype)
    return a if wide is None else a.astype(wide)


# numpy converts float16 to float32 one element at a time (~1.7 ns each here, the bulk of a float16 sum: 30x
# PyTorch's); looking each of the 65536 bit patterns up in a 256 KiB table (L2-resident) gives the same float32
# values, NaN payloads included, in about half the time. Only numpy arrays large enough to repay the index
# cast take it, and only where the float32 additions then run in the same order as ``sum(dtype=float32)``'s.
_LOOKUP_MIN_SIZE = 1 << 16
_half_to_float = None


_LOOKUP_CHUNK = 1 << 18  # (np.take widens the indices to intp, 8 bytes each: a chunk at a time bounds that)


def _float32_of_half(a):
    """The float32 values of a C-contiguous float16 numpy array, exact (a table lookup: see above)."""
    global _half_to_float
    if _half_to_float is None:
        _half_to_float = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16).astype(_WIDE)
    bits = a.reshape(-1).view(np.uint16)
    out = np.empty(bits.shape, _WIDE)
    for start in range(0, bits.size, _LOOKUP_CHUNK):
        # (mode="wrap": a uint16 index is always in the 65536-entry table, and numpy's bounds check for the
        # default mode="raise" cost ~40 % of the lookup here)
        np.take(_half_to_float, bits[start:start + _LOOKUP_CHUNK], out=out[start:start + _LOOKUP_CHUNK], mode="wrap")
    return out.reshape(a.shape)


def _sums_in_cast_order(a, axis):
    """Whether ``_float32_of_half(a).sum(axis)`` adds in the order ``a.sum(axis, dtype=float32)`` does, bitwise.
    numpy's cast path works through a buffer of 8192 elements: a reduction over the contiguous last axis is
    summed pairwise within each buffer-full, not over the whole axis, so the two can differ in the last float32
    bit. With the last axis kept, every output element is a running sum over rows in memory order either way."""
    if type(a) is not np.ndarray or a.size < _LOOKUP_MIN_SIZE or a.ndim < 2 or not a.flags.c_contiguous:
        return False
    if axis is None:
        return False
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return all((d % a.ndim) != a.ndim - 1 for d in axes)


_CAST_BUFFER = 8192  # numpy's default buffer size, the one the emulation below was checked against


def _all_axes(a, axis):
    """Whether ``axis`` (None, an int or a tuple, as numpy takes it) names every axis of ``a``."""
    if axis is None:
        return True
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return len({int(d) % a.ndim for d in axes}) == a.ndim if a.ndim else False


def _whole_sum_by_buffers(a):
    """Whether ``a.sum(dtype=float32)`` of all of ``a`` can be redone bitwise by :func:`_buffered_float32_sum`:
    a large C-contiguous numpy array (one run through memory) with numpy's buffer size as checked."""
    return (type(a) is np.ndarray and a.size >= _LOOKUP_MIN_SIZE and a.flags.c_contiguous
            and np.getbufsize() == _CAST_BUFFER)


def _buffered_float32_sum(f):
    """The sum of the 1-D float32 ``f`` in the order of numpy's casting sum of the float16 original: each
    buffer-full of 8192 summed pairwise, the buffer sums added one after another."""
    whole = f.size // _CAST_BUFFER * _CAST_BUFFER
    parts = f[:whole].reshape(-1, _CAST_BUFFER).sum(axis=1)
    if whole < f.size:
        parts = np.append(parts, f[whole:].sum())
    return np.add.accumulate(parts)[-1]  # (a running sum: add.reduce would pair them)


def _leading_kept(a, axis):
    """k where ``axis`` names exactly the trailing axes k..ndim-1 of ``a``, k >= 1 (``x.sum(-1)``): numpy's casting
    sum then runs through each output element's elements in one contiguous run; else None (numpy's own path,
    which also raises on a bad axis)."""
    if axis is None or a.ndim < 2:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if not all(-a.ndim <= int(d) < a.ndim for d in axes):
        return None
    named = sorted(int(d) % a.ndim for d in axes)
    k = a.ndim - len(named)
    return k if k >= 1 and named == list(range(k, a.ndim)) else None


def _buffered_row_sums(f):
    """The sum of each row of the 2-D float32 ``f`` in the order of numpy's casting sum of the float16 rows: a row
    of at most 8192 summed pairwise, a longer one buffer-full by buffer-full, the buffer sums added in turn."""
    rows, n = f.shape
    if n <= _CAST_BUFFER:
        return f.sum(axis=1)
    whole = n // _CAST_BUFFER * _CAST_BUFFER
    parts = f[:, :whole].reshape(rows, -1, _CAST_BUFFER).sum(axis=2)
    if whole < n:
        parts = np.concatenate([parts, f[:, whole:].sum(axis=1)[:, None]], axis=1)
    return np.add.accumulate(parts, axis=1)[:, -1]  # (a running sum, as _buffered_float32_sum's)


def _float32_sum(a, axis, keepdims):
    """``a.sum(axis, keepdims=keepdims, dtype=float32)`` of the float16 ``a``, bitwise, the widening a table
    lookup where numpy's order of additions can be redone (see above); numpy's own otherwise."""
    if _sums_in_cast_order(a, axis):
        return _float32_of_half(a).sum(axis=axis, keepdims=keepdims)
    if _whole_sum_by_buffers(a):  # (one run through memory, in buffer-fulls: the whole array, or each row)
        if _all_axes(a, axis):
            total = _buffered_float32_sum(_float32_of_half(a).reshape(-1))
            return np.full((1,) * a.ndim, total) if keepdims else total
        k = _leading_kept(a, axis)
        if k is not None:
            kept = a.shape[:k]
            sums = _buffered_row_sums(_float32_of_half(a).reshape(math.prod(kept), -1)).reshape(kept)
            return sums.reshape(kept + (1,) * (a.ndim - k)) if keepdims else sums
    return a.sum(axis=axis, keepdims=keepdims, dtype=_WIDE)


def accumulating_sum(a, axis=None, keepdims=False, dtype=None):
    """``a.sum(axis, keepdims, dtype)``, added up in float32 and rounded once to float16 when ``a`` is float16
    and ``dtype`` None or float16; otherwise numpy's, ``dtype`` passed on (its sum of int32 is int64 without it)."""
    if a.dtype not in _NARROW_FLOATS or (dtype is not None and dtype != a.dtype):  # (x.sum(): an overhead row)
        return a.sum(axis=axis, keepdims=keepdims, dtype=dtype)
    return _float32_sum(a, axis, keepdims).astype(a.dtype)


def accumulating_mean(a, axis=None, keepdims=False):
    """``a.mean(axis, keepdims)`` as :func:`accumulating_sum`: the float32 sum over the count, rounded once (to
    float32, then to float16: numpy's ``mean(dtype=float32)`` bitwise, its division redone as it does it)."""
    if a.dtype not in _NARROW_FLOATS:
        return a.mean(axis=axis, keepdims=keepdims)
    if type(a) is not np.ndarray or a.size < _LOOKUP_MIN_SIZE:  # (cupy's, and small ones: numpy's own)
        return a.mean(axis=axis, keepdims=keepdims, dtype=_WIDE).astype(a.dtype)
    total = _float32_sum(a, axis, keepdims)
    axes = range(a.ndim) if axis is None else (axis,) if isinstance(axis, (int, np.integer)) else axis
    count = np.intp(math.prod(a.shape[int(d)] for d in axes))  # (numpy's _mean: an intp, so the division is float64)
    if isinstance(total, np.ndarray):
        return np.true_divide(total, count, out=total, casting="unsafe", subok=False).astype(a.dtype)
    return total.dtype.type(total / count).astype(a.dtype)
