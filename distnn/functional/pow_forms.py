"""The array forms of ``a ** b`` that PyTorch's pow kernels compute, where numpy's ``**`` differs: C's ``pow`` for a
tensor exponent, ``sqrt``/``rsqrt`` for a number exponent of 0.5/-0.5 (with PyTorch's NaN at a negative number),
C's pow for float16 there, and integers to negative integer powers. :class:`.elementwise.Pow`'s forward and
backward use them."""
from __future__ import annotations

from distnn.autograd.sqrt_nan import sqrt_array
from distnn.backend import get_array_module

__all__ = ["_c_pow", "_integer_power", "_number_pow", "_rsqrt"]


def _c_pow(xp, a, b):
    """C's ``pow``, which PyTorch's pow(Tensor, Tensor) computes: numpy's power takes ``sqrt`` for an exponent
    0.5 that it broadcasts (a 0-d one, or of size 1), which differs from ``pow`` at -0.0 (``pow``: +0.0) and at
    -inf (``pow``: +inf); those are put right, ``|a|`` there."""
    out = xp.power(a, b)
    if getattr(out, "dtype", None) is not None and out.dtype.kind == "f" and bool(xp.any(b == 0.5)):
        fix = (b == 0.5) & ((a == 0) | (a == -xp.inf))
        out = xp.where(fix, xp.abs(xp.asarray(a)).astype(out.dtype), out)
    return out


def _rsqrt(a):
    """``a ** -0.5`` as PyTorch computes it for a number exponent (``rsqrt``, ``1 / sqrt(a)``: -inf at -0.0, where
    C's pow gives +inf), also in ``x ** 0.5``'s gradient. An integer tensor: its pow."""
    if a.dtype.kind != "f":
        return a**-0.5
    return 1 / get_array_module(a).sqrt(a)


def _number_pow(a, b):
    """``a ** b`` for a number ``b``, as PyTorch's pow(Tensor, Scalar): sqrt/rsqrt for 0.5/-0.5, but C's pow for
    float16 (+0.0/+inf, ``|a|``'s results, at -0.0 and -inf: sqrt's are -0.0/NaN)."""
    half = isinstance(b, float) and (b == 0.5 or b == -0.5)
    if half and b == 0.5 and getattr(a, "dtype", None) in ("float32", "float64"):
        return sqrt_array(a)  # (numpy's ** takes sqrt too, but PyTorch's NaN at a negative number is sqrt_array's)
    if half and getattr(a, "dtype", None) == "float16":
        xp = get_array_module(a)
        a = xp.where((a == 0) | (a == -xp.inf), xp.abs(a), a)
    return _rsqrt(a) if half and b == -0.5 else a**b


def _integer_power(a, b):
    """``a ** b`` of integers with some ``b`` negative, as PyTorch computes it: 1 ** b is 1, (-1) ** b is
    -1 for odd b, 1 for even, any other base (0 too) gives 0 (the truncated 1 / a ** -b)."""
    xp = get_array_module(a if hasattr(a, "dtype") else b)
    a, b = xp.asarray(a), xp.asarray(b)
    out = a ** xp.maximum(b, 0)
    minus_one = 1 - 2 * (b & 1)  # (-1) ** b
    small = xp.where(a == 1, 1, xp.where(a == -1, minus_one, 0)).astype(out.dtype)
    return xp.where(b < 0, small, out)
