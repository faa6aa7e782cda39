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

from distnn.autograd.half_rounding import half_number
from distnn.autograd.number_range import scalar_for_dtype

from .scaled_sum import fused_scaled_sum

_F16, _F32, _F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
_VECTOR = {_F16: (_F32, 16), _F32: (_F64, 8)}  # (accumulate type, vector length)


def follows_torch(dtype) -> bool:
    """Whether :func:`torch_arange` and :func:`torch_linspace` compute ``dtype``'s values (float16, float32)."""
    return np.dtype(dtype) in _VECTOR


def torch_arange(start, step, count, dtype):
    """``count`` values ``start + step * i`` of float16 or float32 ``dtype`` as PyTorch's arange kernel fills them."""
    dtype = np.dtype(dtype)
    wide, vector = _VECTOR[dtype]
    first, stride = wide.type(start), wide.type(step)

    def scalar_formula(i):
        return fused_scaled_sum(first, i, stride) if dtype == _F16 else first + stride * i

    with np.errstate(over="ignore", invalid="ignore"):  # (past the dtype's range: inf, as PyTorch's)
        values = scalar_formula(np.arange(count, dtype=wide)).astype(dtype)
        vectored = count // (2 * vector) * (2 * vector)
        if vectored:
            bases = scalar_formula(np.arange(0, vectored, vector, dtype=wide)).astype(dtype).astype(wide)
            offsets = stride * np.arange(vector, dtype=wide)
            values[:vectored] = (bases[:, None] + offsets).astype(dtype).reshape(-1)
    return values


def torch_linspace(start, end, steps, dtype):
    """``steps`` (>= 2) values from ``start`` to ``end`` of float16 or float32 ``dtype`` as PyTorch's linspace kernel
    computes them, in the dtype's own arithmetic."""
    dtype = np.dtype(dtype)
    kind = dtype.type
    start, end = (scalar_for_dtype(dtype, v) for v in (start, end))  # (past the dtype's range: PyTorch's error)
    first, last = (kind(half_number(float(v))) for v in (start, end)) if dtype == _F16 else (kind(start), kind(end))
    with np.errstate(over="ignore", invalid="ignore"):  # (as PyTorch's: inf, NaN silently)
        step = (last - first) / kind(steps - 1)
        i = np.arange(steps).astype(dtype)
        from_end = (steps - 1 - np.arange(steps)).astype(dtype)
        if dtype == _F16:
            rising, falling = first + step * i, last - step * from_end
        else:  # (float32: fused, rounded once)
            rising, falling = fused_scaled_sum(first, i, step), fused_scaled_sum(last, from_end, -step)
        return np.where(np.arange(steps) < steps // 2, rising, falling)


__all__ = ["follows_torch", "torch_arange", "torch_linspace"]
