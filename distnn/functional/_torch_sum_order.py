"""A float32 or float64 sum over one dim in the order PyTorch's CPU ``sum`` kernel adds (``cascade_sum``).

PyTorch's kernel (SumKernel.cpp; its AVX2 build, which x86 CPUs with AVX-512 also run for reductions) sums in
the dtype itself, starting from 0, and the order depends on the layout of a C-contiguous tensor:

* the reduced dim innermost, ``n >= V`` values (V: a vector's lanes, 8 float32s or 4 float64s): the first
  ``n // V`` vectors summed lane by lane by ``row_sum`` (below), then the last ``n % V`` values added one by one
  to 0, then the V lanes added to that, first to last;
* the reduced dim innermost, fewer than V values: ``row_sum`` of the row;
* another dim reduced, the ``B`` values after it its columns: the first columns (in blocks of 4 vectors where
  ``B >= V``, of 4 columns where ``B < V``) each added one value at a time by the 4-level cascade
  (``multi_row_sum``: partial sums of 16 values carried up levels), the columns left each by ``row_sum``;
* ``row_sum``: 4 interleaved partial sums (value ``i`` into sum ``i % 4``) by the cascade, the values past the
  last whole 4 into the first, then the 4 added in order.

Its result is written as ``0 + sum`` (the output is zeroed first, then accumulated). Replaying this is a Python
step per reduced value (vectorized across the others): for the rare sums whose bits are wanted, not for ``sum``.
One thread's result (PyTorch splits a reduction of 32,768 elements or more among its threads).
"""
from __future__ import annotations

import numpy as np

_LANES = {np.dtype(np.float32): 8, np.dtype(np.float64): 4}  # Vectorized<float>/<double>::size(), AVX2
_ILP = 4
_LEVELS = 4


def _cascade(rows):
    """``multi_row_sum``: ``rows`` (size, ...) added over the first axis, 16 at a time into level 0, each level
    carried into the next when full."""
    size = rows.shape[0]
    power = max(4, (int(size - 1).bit_length() if size > 1 else 0) // _LEVELS)
    step, mask = 1 << power, (1 << power) - 1
    zero = np.zeros(rows.shape[1:], rows.dtype)
    acc = [zero] * _LEVELS
    i = 0
    while i + step <= size:
        for _ in range(step):
            acc[0] = acc[0] + rows[i]
            i += 1
        for j in range(1, _LEVELS):
            acc[j], acc[j - 1] = acc[j] + acc[j - 1], zero
            if i & (mask << (j * power)):
                break
    for k in range(i, size):
        acc[0] = acc[0] + rows[k]
    total = acc[0]
    for j in range(1, _LEVELS):
        total = total + acc[j]
    return total


def _row_sum(x):
    """``row_sum``: ``x`` (n, ...) added over the first axis in 4 interleaved partial sums."""
    n = x.shape[0]
    whole = n // _ILP
    if whole:
        partial = _cascade(x[:whole * _ILP].reshape((whole, _ILP) + x.shape[1:]))
        sums = [partial[k] for k in range(_ILP)]
    else:
        sums = [np.zeros(x.shape[1:], x.dtype)] * _ILP
    for k in range(whole * _ILP, n):
        sums[0] = sums[0] + x[k]
    total = sums[0]
    for k in range(1, _ILP):
        total = total + sums[k]
    return total


def _inner(x, lanes):
    """The sum over the first axis of ``x`` (n, rows), the reduced values contiguous in PyTorch's tensor."""
    n = x.shape[0]
    if n < lanes:
        return _row_sum(x)
    count = n // lanes
    vector = _row_sum(x[:count * lanes].reshape((count, lanes) + x.shape[1:]))
    total = np.zeros(x.shape[1:], x.dtype)
    for k in range(count * lanes, n):
        total = total + x[k]
    for lane in range(lanes):
        total = total + vector[lane]
    return total


def _outer(x, lanes):
    """The sum over the first axis of ``x`` (n, outer, B): ``B`` the contiguous columns after the reduced dim."""
    columns = x.shape[2]
    cascaded = (columns // (_ILP * lanes)) * _ILP * lanes if columns >= lanes else (columns // _ILP) * _ILP
    return np.concatenate([_cascade(x[:, :, :cascaded]), _row_sum(x[:, :, cascaded:])], axis=-1)


def torch_sum(a, axis):
    """The sum of float32/float64 numpy ``a`` (C-contiguous as PyTorch's tensor is) over ``axis``, kept as a dim
    of size 1, bit for bit PyTorch's CPU ``a.sum(axis, keepdim=True)``."""
    lanes = _LANES[a.dtype]
    n, outer, columns = a.shape[axis], int(np.prod(a.shape[:axis])), int(np.prod(a.shape[axis + 1:]))
    kept = a.shape[:axis] + (1,) + a.shape[axis + 1:]
    if n == 0 or outer * columns == 0:
        return np.zeros(kept, a.dtype)
    x = np.moveaxis(a.reshape(outer, n, columns), 1, 0)  # (n, outer, columns)
    if columns == 1:
        total = _inner(x[:, :, 0], lanes)
    else:
        total = _outer(x, lanes)
    return (a.dtype.type(0) + total).reshape(kept)  # (the zeroed output accumulated: -0 sums to +0)
