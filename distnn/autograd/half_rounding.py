"""Rounding float32/float64 arrays to float16 without numpy's slow path for tiny values.

numpy's float-to-half cast takes ~200 ns an element whose float16 result is subnormal or zero with a nonzero
input (it signals underflow element by element; ~2 ns an element otherwise): a float16 softmax, whose small
probabilities land there, spent 90 % of its time casting, and a float16 cross-entropy backward (gradients of
1 / batch size) over 95 %. :func:`to_half` rounds those values in the wide type first, to the multiple of
2 ** -24 (float16's subnormal step) nearest, ties to even, which is what the cast would give; an exact
float16 value then casts fast. Bitwise ``a.astype(float16)``, signed zeros, NaNs and overflow to inf (with
numpy's overflow warning, as the cast) included.
"""
from __future__ import annotations

import numpy as np

_HALF = np.dtype(np.float16)
_SMALLEST_NORMAL = 2.0 ** -14
_SUBNORMAL_STEP = 2.0 ** -24
_WORTH_IT = 256  # (elements: below, the checks cost about what the slow casts they could save do)


def to_half(a):
    """``a.astype(float16)`` of a float32 or float64 numpy array, bitwise, fast where many values are tiny;
    anything else (cupy, other dtypes) is cast as it is."""
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
