"""A float16 product in PyTorch's CPU order (``binary_kernel_reduce_vec``), each multiplication rounded to float16.

PyTorch's CPU prod multiplies float16 values as float16 (``Vectorized<Half>`` and ``c10::Half`` multiply in float32
and round back at every step: a product of two float16s is exact in float32, so each step is one correctly rounded
float16 multiplication), in the order its reduction kernel visits them (its AVX2 kernel, which x86 CPUs with
AVX-512 also run for reductions):

* along the innermost dim (or over every element, as one row): the row's first ``count * 64`` values go into 4
  vectors of 16 lanes, multiplied down the row 64 values at a time; the 4 vectors are combined as ``(a0 * a1) *
  (a2 * a3)`` and their 16 lanes left to right; the rest of the row, fewer than 64 values, then one at a time;
* along any other dim: each output element's values one at a time, first to last.

numpy's own float16 product instead keeps its running product in float32 within a loop and rounds once, so its
results differ from PyTorch's by an ulp or so, and a product that passes 65504 midway and comes back into range is
finite there and inf in PyTorch's. A full product of 32,768 elements or more is split among PyTorch's threads:
this is the result of one (``torch.set_num_threads(1)``).
"""
from __future__ import annotations

import numpy as np

_LANES = 16  # Vectorized<Half>::size() in the AVX2 kernel
_BLOCK = 4 * _LANES  # the 4 vectors' values taken per step


def _one_at_a_time(product, steps):
    """``product`` multiplied by each of ``steps`` (an array indexed first by step) in turn, rounded each time."""
    for values in steps:
        product = product * values
    return product


def _innermost(rows):
    """The product of each row of float16 ``rows`` (..., n) in the vectorized kernel's order."""
    n = rows.shape[-1]
    count = n // _BLOCK
    product = np.ones(rows.shape[:-1], dtype=np.float16)
    if count:
        blocks = np.moveaxis(rows[..., :count * _BLOCK].reshape(rows.shape[:-1] + (count, _BLOCK)), -2, 0)
        vectors = _one_at_a_time(blocks[0], blocks[1:])
        a0, a1, a2, a3 = (vectors[..., j * _LANES:(j + 1) * _LANES] for j in range(4))
        lanes = (a0 * a1) * (a2 * a3)
        product = product * _one_at_a_time(lanes[..., 0], np.moveaxis(lanes[..., 1:], -1, 0))
    return _one_at_a_time(product, np.moveaxis(rows[..., count * _BLOCK:], -1, 0))


def half_product(a, dim=None, keepdim=False):
    """The float16 product of numpy ``a`` over ``dim`` (an int, or None for every element) as PyTorch's CPU kernel
    computes it; numpy's floating-point warnings are the caller's to silence."""
    if dim is None:
        return _innermost(a.reshape(-1))[()]
    if any(size != 1 for size in a.shape[dim + 1:]):  # (dims of size 1 are coalesced away, as PyTorch's iterator)
        out = _one_at_a_time(np.ones(a.shape[:dim] + a.shape[dim + 1:], dtype=np.float16), np.moveaxis(a, dim, 0))
    else:
        out = _innermost(np.moveaxis(a, dim, -1))
    return np.expand_dims(out, dim) if keepdim else out
