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


def accumulating_sum(a, axis=None, keepdims=False, dtype=None):
    """``a.sum(axis, keepdims, dtype)``, added up in float32 and rounded once to float16 when ``a`` is float16
    and ``dtype`` None or float16; otherwise numpy's, ``dtype`` passed on (its sum of int32 is int64 without it)."""
    if a.dtype not in _NARROW_FLOATS or (dtype is not None and dtype != a.dtype):  # (x.sum(): an overhead row)
        return a.sum(axis=axis, keepdims=keepdims, dtype=dtype)
    return a.sum(axis=axis, keepdims=keepdims, dtype=_WIDE).astype(a.dtype)


def accumulating_mean(a, axis=None, keepdims=False):
    """``a.mean(axis, keepdims)`` as :func:`accumulating_sum`: the float32 sum over the count, rounded once."""
    if a.dtype not in _NARROW_FLOATS:
        return a.mean(axis=axis, keepdims=keepdims)
    return a.mean(axis=axis, keepdims=keepdims, dtype=_WIDE).astype(a.dtype)
