"""The memory layout PyTorch gives an elementwise result, so that ``view`` after it is allowed or refused as
there (:mod:`.view_strides`).

PyTorch's TensorIterator orders the result's dims by its operands' strides, the first operand deciding and
the next ones breaking its ties (``reorder_dimensions``): ``x.t() * y`` is laid out as ``x.t()``. numpy's
ufuncs keep one layout only when the operands agree and fall back to row-major otherwise, so where an operand
is not row-major the result is relaid (a copy, only then) in PyTorch's order.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import get_array_module


def _broadcast_strides(x, shape):
    """``x``'s strides in bytes against the result's ``shape`` (0 along a broadcast dim, as PyTorch's)."""
    nd = len(shape)
    strides = [0] * (nd - x.ndim) + [int(s) for s in x.strides]
    sizes = (1,) * (nd - x.ndim) + tuple(x.shape)
    return [0 if sizes[d] == 1 and shape[d] != 1 else strides[d] for d in range(nd)]


def _torch_order(shape, operand_strides):
    """PyTorch's ``reorder_dimensions``: the dims from fastest to slowest varying."""
    nd = len(shape)

    def should_swap(d0, d1):
        for st in operand_strides:
            s0, s1 = st[d0], st[d1]
            if s0 == 0 or s1 == 0:
                continue
            if s0 != s1:
                return -1 if s0 < s1 else 1
            if shape[d0] > shape[d1]:
                return 1
        return 0

    perm = list(range(nd - 1, -1, -1))
    for i in range(1, nd):
        d1 = i
        for d0 in range(i - 1, -1, -1):
            c = should_swap(perm[d0], perm[d1])
            if c > 0:
                perm[d0], perm[d1] = perm[d1], perm[d0]
                d1 = d0
            elif c < 0:
                break
    return perm


#: operands that are numbers, not arrays (they have no layout)
_NUMBERS = (float, int, bool, complex)
_ndarray = np.ndarray


def torch_layout(out, a, b):
    """``out`` (the elementwise result of ``a`` and ``b``) laid out as PyTorch lays it out: itself where both
    are row-major or numbers (the common case: nothing to do) or where its layout is already PyTorch's."""
    # (the common case first, in a few attribute reads: this runs in every + - * / of the graph; a numpy array,
    # the most common operand, is told by its type before the scan of _NUMBERS)
    if ((a.flags.c_contiguous if type(a) is _ndarray else type(a) in _NUMBERS or a.flags.c_contiguous)
            and (b.flags.c_contiguous if type(b) is _ndarray else type(b) in _NUMBERS or b.flags.c_contiguous)):
        return out
    return _relaid(out, a, b)


def _relaid(out, *operands):
    if getattr(out, "ndim", 0) < 2:
        return out
    arrays = [x for x in operands if getattr(x, "ndim", 0) > 0]
    if all(x.flags.c_contiguous for x in arrays):
        return out
    shape = tuple(out.shape)
    perm = _torch_order(shape, [_broadcast_strides(x, shape) for x in arrays])
    expected, ok = out.dtype.itemsize, True  # (is out dense in that order? dims of size 1 do not count)
    for d in perm:
        if shape[d] != 1:
            if out.strides[d] != expected:
                ok = False
                break
            expected *= shape[d]
    if ok:
        return out
    return in_order(out, perm)


def in_order(out, perm):
    """A copy of ``out`` whose memory runs along the dims ``perm`` (fastest first)."""
    xp = get_array_module(out)
    shape = tuple(out.shape)
    slow_first = perm[::-1]
    relaid = xp.empty(tuple(shape[d] for d in slow_first), dtype=out.dtype)
    inverse = [slow_first.index(d) for d in range(len(shape))]
    relaid = relaid.transpose(inverse)
    relaid[...] = out
    return relaid


def row_major(out):
    """A reduction's or scan's result laid out as PyTorch 2.13 lays it out: row-major, whatever its input's
    layout (numpy's follow the input's memory order, so ``x.permute(2, 0, 1).sum(-1)`` would be column-major and
    its ``view`` refused where PyTorch's is allowed). A copy only where numpy's is not row-major already: a
    result of fewer than 2 dims, or of a row-major input, is as it is."""
    if out.ndim < 2 or out.flags.c_contiguous:
        return out
    return get_array_module(out).ascontiguousarray(out)
