"""float16 division rounded down (``//``, ``floor_divide``, ``div(rounding_mode='floor')``) or toward zero
(``rounding_mode='trunc'``) as PyTorch's CPU kernels compute it.

A divisor of one element (a Python number, a 0-d or one-element tensor, broadcast) is read by PyTorch's kernel as
a float32 (``original_scalar_value<opmath_t>``: a Python number or a 0-d float32/float64/integer tensor as given,
not rounded to float16 first) and the quotient taken in float32, rounded once: numpy (NEP 50) would round ``0.1``
to float16 and change ~10 % of the quotients. A divisor of many elements: ``floor`` runs ``div_floor_floating`` in
float16 arithmetic (each step rounded to float16, as ``c10::Half``'s operators do), where numpy's float16
floor_divide rounds only its result (1 % of the quotients differ); ``trunc`` rounds the float16 quotient, as
numpy's does.
numpy's float32 floor_divide is PyTorch's ``div_floor_floating`` (fmod, the quotient corrected, rounded to nearest),
bit for bit; checked over every float16 value against torch 2.13 (tests/test_half_activation_opmath_torch.py,
tests/test_half_remainder_and_scalar_tensor_torch.py). ``remainder``/``fmod`` (``%``) are not here: PyTorch's
float16 kernels of those round a number or 0-d divisor to float16 first, as numpy's promotion does (fmod is exact).
"""
from __future__ import annotations

import numpy as np

HALF = np.dtype(np.float16)
_F32 = np.dtype(np.float32)
_ONE, _HALF_ONE, _ZERO = np.float16(1), np.float16(0.5), np.float16(0)


def is_half_division(a, b) -> bool:
    """Whether PyTorch's rounded division of arrays ``a`` by ``b`` is a float16 one (both float16 here; by the
    dtypes' codes, cheaper than comparing dtypes)."""
    return a.dtype.char == "e" and b.dtype.char == "e"


def half_rounded_division(xp, a, b, mode, number=None):
    """``div(a, b, rounding_mode=mode)`` of float16 arrays ``a``, ``b`` (broadcastable), as PyTorch's CPU kernels;
    ``number``: the Python number or 0-d tensor's value ``b`` was made from, as given (PyTorch reads it unrounded)."""
    if number is not None or b.size == 1:
        divisor = np.float32(number) if number is not None else b.astype(_F32)
        wide = a.astype(_F32)
        quotient = xp.floor_divide(wide, divisor) if mode == "floor" else xp.trunc(wide / divisor)
        return quotient.astype(HALF)
    if mode == "trunc":
        return xp.trunc(a / b)
    return _floor_division_in_half(xp, a, b)


def _floor_division_in_half(xp, a, b):
    """c10's ``div_floor_floating`` with every operation rounded to float16 (numpy's float16 operators round each
    result, as ``c10::Half``'s): ``(a - fmod(a, b)) / b``, one less where the remainder's sign is not ``b``'s,
    floored and rounded to nearest; a zero quotient takes the sign of ``a / b``, a zero divisor gives ``a / b``."""
    mod = xp.fmod(a, b)
    quotient = (a - mod) / b
    quotient = xp.where((mod != 0) & ((b < 0) != (mod < 0)), quotient - _ONE, quotient)
    floored = xp.floor(quotient)
    floored = xp.where(quotient - floored > _HALF_ONE, floored + _ONE, floored)
    true_quotient = a / b
    result = xp.where(quotient != 0, floored, xp.copysign(_ZERO, true_quotient))
    return xp.where(b == 0, true_quotient, result).astype(HALF, copy=False)


__all__ = ["is_half_division", "half_rounded_division"]
