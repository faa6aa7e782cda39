"""``sqrt`` of a float32 or float64 array as PyTorch's CPU kernel gives it: NaN with the sign bit clear for a
negative number (``math.copysign(1, torch.sqrt(torch.tensor(-1.)))`` is 1.0). numpy's answer is the x86 default
NaN, whose sign bit is set; a NaN input passes through unchanged in both (``sqrt(-nan)`` keeps its sign), and
``sqrt(-0.0)`` is -0.0 in both. float16 (computed through float32 by both) already agrees.

No extra pass in the common case: the square root runs with numpy's "invalid" error raising, which only a negative
number (or a signalling NaN) sets; only then is the result computed again, with the negatives' NaNs put right. Here,
not in :mod:`distnn.functional`, as the in-place methods' direct path (``sqrt_``, ``pow_(0.5)``) uses it too.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import get_array_module

from .fp_state import _ALL_IGNORED, _FP_STATE, _make_extobj

__all__ = ["sqrt_array"]

# (the dtypes whose negative numbers' NaN differs; numpy 1.x has no prebuilt states: its sign is left as numpy's)
_SIGN_DIFFERS = frozenset((np.dtype(np.float32), np.dtype(np.float64)))
_INVALID_RAISES = _make_extobj(all="ignore", invalid="raise") if _make_extobj is not None else None


def sqrt_array(a):
    """``xp.sqrt(a)`` (a new array, or a numpy scalar for a 0-d one, as numpy's), with PyTorch's NaN, sign bit
    clear, where a numpy ``a`` is negative (cupy's is its own)."""
    if not isinstance(a, (np.ndarray, np.generic)) or a.dtype not in _SIGN_DIFFERS or _INVALID_RAISES is None:
        return get_array_module(a).sqrt(a)
    token = _FP_STATE.set(_INVALID_RAISES)
    try:
        return np.sqrt(a)
    except FloatingPointError:
        pass
    finally:
        _FP_STATE.reset(token)
    token = _FP_STATE.set(_ALL_IGNORED)
    try:  # (a NaN is not < 0: it keeps numpy's result, itself)
        return np.where(a < 0, a.dtype.type(np.nan), np.sqrt(a))
    finally:
        _FP_STATE.reset(token)
