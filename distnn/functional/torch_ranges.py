"""``arange`` and ``linspace`` values of float16 and float32 as PyTorch's CPU kernels compute them.

``arange`` (``RangeFactoriesKernel.cpp``): ``start + step * i`` in the accumulate type (float32 for float16, float64
for float32; for float16 a fused multiply-add, its compiler's contraction), except that its vector loop, which fills
two vectors of V elements a turn (V = 16 for float16, 8 for float32: 256-bit vectors), starts each vector at
``start + step * i`` rounded to the tensor's dtype and adds ``step * k`` to that rounded base; the last ``n % 2V``
elements take the scalar formula. (float32's float64 products are not fused here: a fused one differs from them
by a float64 ulp, which reaches a float32 result only at a tie.) numpy's arange of the float64
bounds rounded once (distnn's earlier values) differed in ~20 % of float16 elements (``arange(1.5, 2000, 0.7)``).
One chunk: PyTorch splits past 32768 elements among its threads, each chunk with its own vectors and tail, which
depends on its thread count; not followed.

``linspace``: a scalar loop (PyTorch's vector one was removed) in the tensor's own arithmetic: ``start``, ``end``
rounded to the dtype (float16 through float32), ``step = (end - start) / (steps - 1)`` each operation rounded to the
dtype (``c10::Half``'s operators round each result), ``start + step * i`` for the first half and ``end - step *
(steps - 1 - i)`` for the rest (``i`` converted to the dtype; float32's multiply-adds fused, float16's each rounded).
distnn took the step in float64 and rounded the products: 20-60 % of the elements differed.
Checked against torch 2.13 (AVX2/AVX512 kernels) on hundreds of random ranges
(tests/test_torch_ranges_torch.py); float64's fused multiply-adds are not followed (numpy has no fma).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.float_errors import silent
from distnn.autograd.half_rounding import half_number
from distnn.autograd.number_range import scalar_for_dtype

from .scaled_sum import fused_scaled_sum

_F16, _F32, _F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
_LOW_29, _MIDPOINT = 0x1FFFFFFF, 0x10000000  # (a float64's bits below float32's last; a float32 halfway point's)
_VECTOR = {_F16: (_F32, 16), _F32: (_F64, 8)}  # (accumulate type, vector length)


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
    """Whether :func:`torch_arange` and :func:`torch_linspace` compute ``dtype``'s values (float16, float32)."""
    return np.dtype(dtype) in _VECTOR


def torch_arange(start, step, count, dtype):
    """``count`` values ``start + step * i`` of float16 or float32 ``dtype`` as PyTorch's arange kernel fills them."""
    dtype = np.dtype(dtype)
    wide, vector = _VECTOR[dtype]
    first, stride = wide.type(start), wide.type(step)

    def scalar_formula(i):
        return _fused(first, stride, i) if dtype == _F16 else first + stride * i

    values = np.empty(count, dtype)
    with silent():  # (past the dtype's range: inf, as PyTorch's, without numpy's warning)
        vectored = count // (2 * vector) * (2 * vector)
        if vectored:
            bases = scalar_formula(np.arange(0, vectored, vector, dtype=wide)).astype(dtype).astype(wide)
            offsets = stride * np.arange(vector, dtype=wide)
            values[:vectored].reshape(-1, vector)[...] = bases[:, None] + offsets
        values[vectored:] = scalar_formula(np.arange(vectored, count, dtype=wide))
    return values


def torch_linspace(start, end, steps, dtype):
    """``steps`` (>= 2) values from ``start`` to ``end`` of float16 or float32 ``dtype`` as PyTorch's linspace kernel
    computes them, in the dtype's own arithmetic."""
    dtype = np.dtype(dtype)
    kind = dtype.type
    start, end = (scalar_for_dtype(dtype, v) for v in (start, end))  # (past the dtype's range: PyTorch's error)
    first, last = (kind(half_number(float(v))) for v in (start, end)) if dtype == _F16 else (kind(start), kind(end))
    halfway = steps // 2
    with silent():  # (as PyTorch's: inf, NaN silently)
        step = (last - first) / kind(steps - 1)
        rising, falling = np.arange(halfway).astype(dtype), np.arange(steps - 1 - halfway, -1, -1).astype(dtype)
        if dtype == _F16:
            return np.concatenate([first + step * rising, last - step * falling])
        return np.concatenate([_fused(first, step, rising), _fused(last, -step, falling)])  # (float32: fused)


__all__ = ["follows_torch", "torch_arange", "torch_linspace"]
