"""Rounding float32/float64 arrays to float16 without numpy's slow path for tiny values.

numpy's float-to-half cast takes ~200 ns an element whose float16 result is subnormal or zero with a nonzero
input (it signals underflow element by element; ~2 ns an element otherwise): a float16 softmax, whose small
probabilities land there, spent 90 % of its time casting, and a float16 cross-entropy backward (gradients of
1 / batch size) over 95 %. :func:`to_half` rounds those values in the wide type first, to the multiple of
2 ** -24 (float16's subnormal step) nearest, ties to even, which is what the cast would give; an exact
float16 value then casts fast. Bitwise ``a.astype(float16)``, signed zeros, NaNs and overflow to inf (with
numpy's overflow warning, as the cast) included.

PyTorch makes a float16 (``c10::Half``) from a float32 only: a float64 (a double, a Python float) going to float16
is rounded to float32 first, then to float16, twice, where numpy's cast rounds once. They differ where the float64
lies within half a float32 step of a float16 tie (``1 + 2**-11 + 2**-40``: PyTorch's float16 is 1, numpy's
1.0009766; ``2**-25 + 2**-60``: 0 there, 2**-24 here). :func:`cast`, :func:`half_source` and :func:`half_number`
round as PyTorch does; :func:`to_half` too.
"""
from __future__ import annotations

import math
import struct

import numpy as np

_HALF = np.dtype(np.float16)
_SMALLEST_NORMAL = 2.0 ** -14
_SUBNORMAL_STEP = 2.0 ** -24
_THROUGH_32 = {np.dtype(np.float64): np.dtype(np.float32), np.dtype(np.longdouble): np.dtype(np.float32),
               np.dtype(np.complex128): np.dtype(np.complex64), np.dtype(np.clongdouble): np.dtype(np.complex64)}
_SINGLE_BITS, _HALF_BITS = struct.Struct("<f"), struct.Struct("<e")
_WORTH_IT = 256  # (elements: below, the checks cost about what the slow casts they could save do)


def to_half(a):
    """``a.astype(float16)`` of a float32 or float64 numpy array, bitwise (a float64 through float32, as PyTorch
    casts it: :func:`cast`), fast where many values are tiny; anything else (cupy, other dtypes) is cast as it is."""
    a = half_source(a, _HALF)
    if type(a) is not np.ndarray or a.dtype.kind != "f" or a.dtype.itemsize < 4 or a.size < _WORTH_IT:
        return a.astype(_HALF, copy=False)
    tiny = np.abs(a) < _SMALLEST_NORMAL  # (NaN compares False: left to the cast)
    if not tiny.any():
        return a.astype(_HALF)
    kind = a.dtype.type
    # (scaling by a power of two is exact here: |a| * 2 ** 24 < 2 ** 10; rint rounds ties to even, as the cast)
    with np.errstate(over="ignore", invalid="ignore"):  # (the values where it is not are not taken)
        steps = np.rint(a * kind(1 / _SUBNORMAL_STEP))
    steps *= kind(_SUBNORMAL_STEP)
    return np.where(tiny, steps, a).astype(_HALF)


def narrowed(a, dtype):
    """``a.astype(dtype, copy=False)``, through :func:`to_half` where ``dtype`` is float16."""
    return to_half(a) if dtype == _HALF else a.astype(dtype, copy=False)


def half_source(a, dtype):
    """``a`` (a numpy or cupy array) rounded to float32 (complex64) first where PyTorch's cast of it to ``dtype``
    rounds twice: float64 (complex128) to float16; else ``a`` itself. Assigning the result into a float16 array, or
    casting it, rounds as PyTorch does."""
    through = _THROUGH_32.get(a.dtype) if dtype == _HALF else None
    return a if through is None else a.astype(through)


def cast(a, dtype):
    """``a.astype(dtype)`` (a new array) as PyTorch casts: float64 to float16 through float32."""
    return half_source(a, dtype).astype(dtype)


def half_number(value):
    """A Python float ``value`` that goes into a float16 tensor, as the float16-exact float PyTorch writes there
    (rounded to float32 first: see the module docstring); past float32's range it is +-inf, as there."""
    try:  # (struct's packings: ~0.3 us, a tenth of numpy's scalars under an errstate; both round to nearest even)
        return _HALF_BITS.unpack(_HALF_BITS.pack(_SINGLE_BITS.unpack(_SINGLE_BITS.pack(value))[0]))[0]
    except OverflowError:  # (past float32's range, or float16's once rounded: inf, as PyTorch's)
        return math.copysign(math.inf, value)


def into_half(value, dtype):
    """``value`` (a number or an array) ready to be written into an array of ``dtype`` by numpy's assignment,
    which then rounds as PyTorch's write does: into float16, a float through :func:`half_number`, a float64
    (complex128) array through :func:`half_source`; anything else, or another ``dtype``, as it is."""
    if dtype != _HALF:
        return value
    if isinstance(value, float):  # (numpy's float64 scalars too)
        return half_number(value)
    array = isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__")  # (numpy's or cupy's)
    return half_source(value, dtype) if array else value
