"""Numerics shared by the chunked in-place optimizer updates: chunk size, sum of squares, decayed gradient.

On the CPU an update runs over ``CHUNK_BYTES`` slices so each slice stays in cache between the numpy
calls of its formula (see :meth:`distnn.optim.optimizer.Optimizer._foreach_chunk`). Split out of
:mod:`distnn.optim.optimizer`, which still exports every name here.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

__all__ = ["CHUNK_BYTES", "sum_of_squares", "chunk_sum_of_squares", "grad_with_decay"]

# Bytes of one array slice per kernel call on the CPU: with the 4-6 arrays an update reads
# and writes, the working set stays in a core's L2 cache.
CHUNK_BYTES = 1 << 18


def _raw(x):
    """The xp array behind a Tensor (an ndarray's own ``.data`` is a memoryview, so test the type)."""
    return x.data if isinstance(x, Tensor) else x


def _add(a, b):
    if isinstance(a, tuple):
        return tuple(x + y for x, y in zip(a, b))
    return a + b


def sum_of_squares(array) -> float:
    """Sum of squared elements as a Python float, accumulated accurately.

    numpy: chunked square-then-pairwise-sum, chunk totals added in float64
    (no full-size temporary; error ~eps*log(n) instead of the ~eps*sqrt(n) of
    a float32 dot); cupy: a tree reduction in float64.
    """
    a = _raw(array)
    xp = get_array_module(a)
    if a.size == 0:
        return 0.0
    if xp is not np:
        return float(xp.sum(xp.square(a, dtype=np.float64)))
    flat = a.reshape(-1) if a.flags.c_contiguous else np.ascontiguousarray(a).reshape(-1)
    step = max(1, CHUNK_BYTES // flat.dtype.itemsize)
    buf = np.empty(min(step, flat.size), dtype=flat.dtype)
    total = 0.0
    for i in range(0, flat.size, step):
        chunk = flat[i:i + step]
        out = buf[:chunk.size]
        np.multiply(chunk, chunk, out=out)
        total += float(out.sum())  # numpy's pairwise sum
    return total


def chunk_sum_of_squares(xp, a, out) -> float:
    """``sum(a*a)`` of one chunk via the scratch ``out`` (pairwise summation, no allocation)."""
    xp.multiply(a, a, out=out)
    return float(out.sum())


def grad_with_decay(xp, p, g, weight_decay: float, maximize: bool, out):
    """``(-g if maximize else g) + weight_decay * p`` in ``out``, or ``g`` itself when nothing changes it."""
    if weight_decay == 0:
        if not maximize:
            return g
        return xp.negative(g, out=out)
    xp.multiply(p, weight_decay, out=out)
    if maximize:
        out -= g
    else:
        out += g
    return out
