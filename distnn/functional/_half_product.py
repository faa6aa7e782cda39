"""A float16 product in PyTorch's CPU order (``binary_kernel_reduce_vec``), each multiplication rounded to float16.

PyTorch's CPU prod multiplies float16 values as float16 (``Vectorized<Half>`` and ``c10::Half`` multiply in float32
and round back at every step: a product of two float16s is exact in float32, so each step is one correctly rounded
float16 multiplication), in the order its reduction kernel visits them (its AVX2 kernel, which x86 CPUs with
AVX-512 also run for reductions):

* along the innermost dim (or over every element, as one row): the row's first ``count * 64`` values go into 4
  vectors of 16 lanes, multiplied down the row 64 values at a time; the 4 vectors are combined as ``(a0 * a1) *
  (a2 * a3)`` and their 16 lanes left to right; the rest of the row, fewer than 64 values, then one at a time;
* along any other dim: each output element's values one at a time, first to last.

numpy's float16 multiplication rounds every product it stores to float16, but its reduction along an array's
innermost (smallest-stride) axis keeps the running product in float32 and rounds once, so its results differ from
PyTorch's by an ulp or so, and a product that passes 65504 midway and comes back into range is finite there and inf
in PyTorch's. Here every sequential product is a numpy reduction over an axis that is *not* the innermost one (each
step then stores float16 values, a whole row of lanes at a time, in numpy's C loop: one call, not one per step) or
a ``multiply.accumulate`` (which stores every partial product). A full product of 32,768 elements or more is split
among PyTorch's threads: this is the result of one (``torch.set_num_threads(1)``). A strided (transposed,
permuted) tensor's full product takes its values in memory order, as PyTorch's iterator does.
"""
from __future__ import annotations

import numpy as np

_LANES = 16  # Vectorized<Half>::size() in the AVX2 kernel
_BLOCK = 4 * _LANES  # the 4 vectors' values taken per step


def _running_product(values):
    """The product of each row of float16 ``values`` (..., n >= 1) left to right, rounded after every step: the
    last of ``multiply.accumulate``'s partial products, each of which it stores as float16."""
    return np.multiply.accumulate(values, axis=-1)[..., -1]


def _innermost(rows):
    """The product of each row of float16 ``rows`` (..., n) in the vectorized kernel's order."""
    rows = np.ascontiguousarray(rows)  # (the row's values have the smallest stride: the block index is not innermost)
    n = rows.shape[-1]
    count = n // _BLOCK
    if count:
        blocks = rows[..., :count * _BLOCK].reshape(rows.shape[:-1] + (count, _BLOCK))
        vectors = np.multiply.reduce(blocks, axis=-2)  # (the 64 lanes down the row, rounded every step)
        a0, a1, a2, a3 = (vectors[..., j * _LANES:(j + 1) * _LANES] for j in range(4))
        head = (a0 * a1) * (a2 * a3)  # (then its 16 lanes left to right)
    else:
        head = np.ones(rows.shape[:-1] + (1,), dtype=np.float16)
    return _running_product(np.concatenate([head, rows[..., count * _BLOCK:]], axis=-1))


def _in_memory_order(a):
    """The values of ``a`` as one row in the order of its memory (the largest stride outermost), as PyTorch's
    iterator visits a strided tensor's elements for a full reduction (a transposed view: column by column);
    C order where a stride is 0 (a broadcast view) or the layout is C order already."""
    strides = a.strides
    if a.ndim > 1 and 0 not in strides and not a.flags.c_contiguous:
        order = sorted(range(a.ndim), key=lambda k: -abs(strides[k]))  # (stable: ties keep their order)
        a = a.transpose(order)
    return a.reshape(-1)


def half_product(a, dim=None, keepdim=False):
    """The float16 product of numpy ``a`` over ``dim`` (an int, or None for every element) as PyTorch's CPU kernel
    computes it; numpy's floating-point warnings are the caller's to silence."""
    if dim is None:
        return _innermost(_in_memory_order(a))[()]
    if any(size != 1 for size in a.shape[dim + 1:]):  # (dims of size 1 are coalesced away, as PyTorch's iterator)
        # (C order: the dims after ``dim``, two or more values, are innermost; ``initial``: PyTorch's 1 * first)
        out = np.multiply.reduce(np.ascontiguousarray(a), axis=dim, initial=1)
    else:
        out = _innermost(np.moveaxis(a, dim, -1))
    return np.expand_dims(out, dim) if keepdim else out
