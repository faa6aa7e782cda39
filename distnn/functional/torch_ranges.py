"""``arange`` and ``linspace`` values of float16 as PyTorch's CPU kernels compute them.

``arange`` (``RangeFactoriesKernel.cpp``): ``start + step * i`` in float32 (a fused multiply-add, its compiler's
contraction), except that its vector loop, which fills two vectors of 16 lanes a turn, starts each vector at
``start + step * i`` rounded to float16 and adds ``step * k`` to that rounded base; the last ``n % 32`` elements take
the scalar formula. numpy's arange of the float64 bounds rounded once (distnn's earlier values) differed in ~20 %
of the elements (``arange(1.5, 2000, 0.7)``). One chunk: PyTorch splits past 32768 elements among its threads,
each chunk with its own vectors and tail, which depends on its thread count; not followed.

``linspace``: a scalar loop (PyTorch's vector one was removed) in ``c10::Half`` arithmetic: ``start``, ``end``
rounded to float16 through float32, ``step = (end - start) / (steps - 1)`` and ``start + step * i`` (the first
half), ``end - step * (steps - 1 - i)`` (the rest) each operation rounded to float16, ``i`` converted to float16.
distnn took the step in float64.

float32's ranges follow the same kernels (float64 accumulation with 8-lane float32 vectors for arange; float32
arithmetic with fused multiply-adds for linspace) and differ from distnn's in ~20-60 % of the elements by an ulp;
computing them so cost 4-5x the present arange/linspace (bench_op_overhead), so they are left as they are.
Checked against torch 2.13 on hundreds of random ranges (tests/test_torch_ranges_torch.py).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.float_errors import silent
from distnn.autograd.half_rounding import half_number
from distnn.autograd.number_range import scalar_for_dtype

from .scaled_sum import fused_scaled_sum

_F16, _F32, _F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
_LOW_29, _MIDPOINT = 0x1FFFFFFF, 0x10000000  # (a float64's bits below float32's last; a float32 halfway point's)
_LANES = 16  # (Vectorized<Half>::size(): two vectors a turn)


def _fused(first, factor, counts):
    """``first + factor * counts`` (float32 numbers, float32-exact ``counts``) rounded once to float32: the float64
    product is exact, the float64 sum rounded once; rounding that to float32 is the single rounding unless the sum
    landed on a float32 halfway point (its low 29 bits ``1 << 28``), where :func:`fused_scaled_sum` decides."""
    total = counts.astype(_F64)
    total *= np.float64(factor)
    total += np.float64(first)
    if np.any((total.view(np.int64) & _LOW_29) == _MIDPOINT):
        return fused_scaled_sum(first, counts.astype(_F32), factor)
    return total.astype(_F32)


def follows_torch(dtype) -> bool:
    """Whether :func:`torch_arange` and :func:`torch_linspace` compute ``dtype``'s values (float16)."""
    return dtype is _F16 or np.dtype(dtype) == _F16


def torch_arange(start, step, count):
    """``count`` float16 values ``start + step * i`` as PyTorch's arange kernel fills them."""
    first, stride = np.float32(start), np.float32(step)
    values = np.empty(count, _F16)
    with silent():  # (past float16's range: inf, as PyTorch's, without numpy's warning)
        vectored = count // (2 * _LANES) * (2 * _LANES)
        if vectored:
            bases = _fused(first, stride, np.arange(0, vectored, _LANES, dtype=_F32)).astype(_F16).astype(_F32)
            offsets = stride * np.arange(_LANES, dtype=_F32)
            values[:vectored].reshape(-1, _LANES)[...] = bases[:, None] + offsets
        values[vectored:] = _fused(first, stride, np.arange(vectored, count, dtype=_F32))
    return values


def torch_linspace(start, end, steps):
    """``steps`` (>= 2) float16 values from ``start`` to ``end`` as PyTorch's linspace kernel computes them."""
    start, end = (scalar_for_dtype(_F16, v) for v in (start, end))  # (past float16's range: PyTorch's error)
    first, last = (np.float16(half_number(float(v))) for v in (start, end))
    halfway = steps // 2
    with silent():  # (as PyTorch's: inf, NaN silently)
        step = (last - first) / np.float16(steps - 1)  # (numpy's float16 operators round each result, as c10's)
        rising, falling = np.arange(halfway).astype(_F16), np.arange(steps - 1 - halfway, -1, -1).astype(_F16)
        return np.concatenate([first + step * rising, last - step * falling])


__all__ = ["follows_torch", "torch_arange", "torch_linspace"]
