"""PyTorch's float32 "opmath" for float16 ``elu``/``celu``/``selu``, ``softplus`` and ``threshold``.

PyTorch's CPU kernels of these ops on a reduced-precision tensor widen each element to float32, read their number
parameters as float32 (``alpha.to<float>()``, ``beta.to<float>()``, ``threshold.to<float>()``), compute in float32
and round only the result to float16. numpy (NEP 50) would round the parameters to float16 and compute in float16,
which differs in the last bit for ~5-30 % of the elements (``elu(x, alpha=0.3)``, ``softplus(x, beta=0.7)``) and
moves ``threshold``'s cut (``threshold(x, 0.30004, v)`` keeps x = 0.3 where numpy's replaced it).

The transcendental steps (expm1, exp, log1p) are taken in float64 and rounded to float32: the correctly rounded
float32, which PyTorch's (SLEEF's, 1-ulp) float32 functions give for every float16 input of the forwards (checked
exhaustively, all 65536 float16 values, against torch 2.13's CPU kernels; tests/test_half_activation_opmath_torch.py);
the backwards of elu and softplus, whose exp's product with the gradient can land near a float16 tie, differ by one
step in a few elements of 65536 (bitwise would take SLEEF's own expf).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.half_rounding import half_number
from distnn.autograd.number_range import scalar_for_dtype

HALF = np.dtype(np.float16)
_FITS_EVERY_FLOAT = 65504.0  # (float16's largest: a float within it fits every float dtype)
_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)


def is_half(x) -> bool:
    """Whether ``x`` is a float16 array: the opmath case (by the dtype's code: cheaper than comparing dtypes, which
    the float32 and float64 calls pay too)."""
    return getattr(getattr(x, "dtype", None), "char", None) == "e"


def half_elu(xp, x, alpha, scale=1.0, input_scale=1.0):
    """PyTorch's elu kernel on a float16 ``x``: ``x < 0 ? expm1(x * input_scale) * (alpha * scale) : x * scale``,
    each factor and product a float32 (``alpha * scale`` multiplied in float32), rounded once to float16. Zero takes
    the positive side (-0.0 stays -0.0 for a negative alpha), as PyTorch's."""
    wide = x.astype(_F32)
    negative_coefficient = np.float32(alpha) * np.float32(scale)
    negative_side = wide < 0
    exponent = wide * np.float32(input_scale) if input_scale != 1 else wide
    # (0 on the positive side: nothing overflows there; celu's negative alpha makes the exponent positive)
    negative = xp.expm1(xp.where(negative_side, exponent, 0).astype(_F64)).astype(_F32)
    if negative_coefficient != 1:
        negative *= negative_coefficient
    positive = wide * np.float32(scale) if scale != 1 else wide
    return xp.where(negative_side, negative, positive).astype(HALF)


def half_elu_backward(xp, g, x, alpha, scale, input_scale):
    """PyTorch's elu_backward kernel of the input on float16: ``x <= 0 ? ((g * input_scale) * (alpha * scale)) *
    exp(x * input_scale) : g * scale`` in float32 (a NaN ``x`` takes the positive side), rounded once."""
    wide, grad = x.astype(_F32), g.astype(_F32)
    input_scale32 = np.float32(input_scale)
    exponential = xp.exp(xp.where(wide <= 0, wide * input_scale32, 0).astype(_F64)).astype(_F32)
    negative = grad * input_scale32
    negative *= np.float32(alpha) * np.float32(scale)
    negative *= exponential
    return xp.where(wide <= 0, negative, grad * np.float32(scale)).astype(HALF)


def half_elu_backward_of_result(xp, g, out, alpha, scale, input_scale):
    """PyTorch's elu_backward kernel of the result (the in-place forms') on float16: ``out <= 0 ? (g * input_scale)
    * (out + alpha * scale) : g * scale`` in float32, rounded once."""
    wide, grad = out.astype(_F32), g.astype(_F32)
    negative = grad * np.float32(input_scale)
    negative *= wide + np.float32(alpha) * np.float32(scale)
    return xp.where(wide <= 0, negative, grad * np.float32(scale)).astype(HALF)


def half_softplus(xp, x, beta, threshold):
    """PyTorch's softplus kernel on a float16 ``x``, and its linear part: ``x * beta > threshold ? x :
    log1p(exp(x * beta)) / beta`` in float32 (``beta``, ``threshold`` float32), rounded once to float16. Returns
    ``(result, linear)``, ``linear`` the mask of the elements passed through (the backward's too)."""
    wide = x.astype(_F32)
    beta32 = np.float32(beta)
    scaled = wide * beta32
    linear = scaled > np.float32(threshold)
    exponential = xp.exp(scaled.astype(_F64)).astype(_F32)  # (correctly rounded float32s, as the module says)
    soft = xp.log1p(exponential.astype(_F64)).astype(_F32)
    soft /= beta32
    return xp.where(linear, wide, soft).astype(HALF), linear


def half_softplus_backward(xp, g, x, beta, linear):
    """PyTorch's softplus_backward kernel on float16: ``g`` where ``linear``, else ``g * z / (z + 1)`` with ``z =
    exp(x * beta)``, in float32, rounded once (its exp SLEEF's, not always the correctly rounded one taken here: see
    the module's docstring)."""
    grad = g.astype(_F32)
    exponential = xp.exp((x.astype(_F32) * np.float32(beta)).astype(_F64)).astype(_F32)
    soft = grad * exponential
    soft /= exponential + np.float32(1)
    return xp.where(linear, grad, soft).astype(HALF)


def at_or_below_cut(x, threshold):
    """``x <= threshold`` as PyTorch's threshold kernel compares: a float16 ``x`` against ``threshold`` read as a
    float32 (numpy would round it to float16, which can move the cut past an element); others as numpy does (the
    tensor's own type, PyTorch's ``threshold.to<scalar_t>()``)."""
    if not is_half(x):
        return x <= threshold
    cut = np.float32(threshold)
    # (the largest float16 at or below the float32 cut gives the same comparison, in float16, without widening x)
    half_cut = np.float16(cut)
    if np.float32(half_cut) > cut:
        half_cut = np.nextafter(half_cut, np.float16(-np.inf))
    return x <= half_cut


def threshold_value(dtype, value):
    """``value`` as PyTorch's threshold writes it into a tensor of numpy ``dtype`` (``value.to<scalar_t>()``): into
    float16 rounded through float32; past a float type's finite range (inf and NaN pass) a RuntimeError with
    PyTorch's message."""
    if dtype.kind == "f" and not (type(value) is float and -_FITS_EVERY_FLOAT <= value <= _FITS_EVERY_FLOAT):
        value = scalar_for_dtype(dtype, value)  # (the checks, where the common case's test cannot tell)
    return dtype.type(half_number(float(value)) if dtype.char == "e" else value)


__all__ = ["is_half", "half_elu", "half_elu_backward", "half_elu_backward_of_result", "half_softplus",
           "half_softplus_backward", "at_or_below_cut", "threshold_value"]
