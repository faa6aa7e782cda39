"""Writing a gradient straight into the engine's destination (``Function.grad_out``), when offered.

A destination is a hint: these helpers use it only when it has the result's
dtype, and otherwise compute a fresh array as usual. Either way the caller
returns what they give; the engine adopts it without a copy when it is the
destination itself.
"""
from __future__ import annotations

from distnn.autograd.half_accumulate import accumulating_sum, accumulation_dtype
from distnn.backend import get_array_module


def destinations(fn, n: int) -> tuple:
    """``fn.grad_out`` (one entry per input) padded with Nones to ``n`` entries (optional inputs left out)."""
    out = fn.grad_out
    if not out:
        return (None,) * n
    return tuple(out) + (None,) * (n - len(out))


def sum_into(a, axis, out=None):
    """``a.sum(axis)``, written into ``out`` when given and of ``a``'s dtype (a float16 sum: a fresh array,
    added up in float32 and rounded once, as PyTorch's)."""
    if accumulation_dtype(a.dtype) is not None:
        return accumulating_sum(a, axis=axis)
    if out is not None and out.dtype == a.dtype:
        return a.sum(axis=axis, out=out)
    return a.sum(axis=axis)


def matmul_into(a, b, out=None):
    """``a @ b``, written into ``out`` when given and of the product's dtype."""
    if out is not None and a.dtype == out.dtype and b.dtype == out.dtype:
        return get_array_module(a).matmul(a, b, out=out)
    return a @ b
