"""PyTorch's "opmath" for a float16 array and a Python number in ``*``, ``/`` and ``leaky_relu``.

PyTorch's CPU and CUDA kernels of ``mul``, ``div`` (and so ``c / x``, its ``reciprocal(x) * c``) and
``leaky_relu`` on a reduced-precision float tensor read a Python number operand as a float32
(``original_scalar_value<opmath_t>``, ``negval.to<float>()``), compute in float32 and round only the result to
float16. numpy (NEP 50) would round the number to float16 first, so ``h * 0.1`` would differ in the last bit
for many elements. ``+``/``-`` are not here: PyTorch's add does round the number into float16 first
(:mod:`distnn.autograd.half_rounding`).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.float_errors import ALL_IGNORED as _ALL_IGNORED, FP_STATE as _FP_STATE

_HALF = np.dtype(np.float16)
_get_fp_state, _set_fp_state, _reset_fp_state = _FP_STATE.get, _FP_STATE.set, _FP_STATE.reset


def is_half_with_number(array, number) -> bool:
    """Whether ``array`` is float16 and ``number`` a Python int or float (not bool): PyTorch's opmath case."""
    t = type(number)
    return (t is float or t is int) and getattr(array, "dtype", None) == _HALF


def half_times_number(array, number):
    """``array * number`` for a float16 ``array``, in float32, rounded once to float16."""
    return (array.astype(np.float32) * float32_number(number)).astype(_HALF)


def half_over_number(array, number):
    """``array / number`` for a float16 ``array``, in float32, rounded once to float16."""
    with np.errstate(divide="ignore", invalid="ignore"):  # (x / 0: inf or NaN, as PyTorch's, silently)
        return (array.astype(np.float32) / float32_number(number)).astype(_HALF)


def float32_number(number):
    """``number`` as PyTorch's opmath reads it (float32; past its range, +-inf), without numpy's warning."""
    # (distnn's warning switch, as scaled_sum's: np.errstate costs ~1 us a call, and inside an op's forward the
    # warnings are off already, so nothing is set at all)
    token = None if _get_fp_state() is _ALL_IGNORED else _set_fp_state(_ALL_IGNORED)
    try:
        return np.float32(number)
    finally:
        if token is not None:
            _reset_fp_state(token)


def times_number(x, number):
    """``x * number`` as PyTorch's kernels scale by a number (``leaky_relu``'s slope): float16 through
    :func:`half_times_number`, anything else by numpy's ``*``."""
    return half_times_number(x, number) if is_half_with_number(x, number) else x * number
