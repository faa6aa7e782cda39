"""The elu family's out-of-place node, PyTorch's ``elu(x, alpha, scale, input_scale)``: ``elu`` (scales 1), ``selu``
(PyTorch's constants) and ``celu`` (input_scale 1/alpha, a node of its own name).

As PyTorch's, the node keeps the input alone (what ``saved_tensors_hooks`` see: one pack, the tensor itself) and
recomputes the exponential in backward, PyTorch's ``elu_backward`` of the input: ``x <= 0 ? g * input_scale *
(alpha * scale) * exp(x * input_scale) : g * scale``. The in-place forms keep the result instead
(``activation_of_result``).
"""
from __future__ import annotations

import functools

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from ._fresh import constant, fresh_float
from .activation_of_result import CeluOfResult, EluOfResult
from .half_activation_opmath import half_elu, half_elu_backward, is_half


class ScaledELU(Function):
    """scale x for x > 0, alpha scale (e^(input_scale x) - 1) for x <= 0. The kink (x = 0) takes the negative side's
    gradient and a NaN the positive side's, as PyTorch's elu_backward."""

    torch_name = "EluBackward0"
    reads = ((0,),)
    float_kernel = "elu"  # (selu's and celu's too: PyTorch's elu kernel)
    in_place_form = EluOfResult  # (in place: PyTorch's elu_ and selu_ keep the result)

    def forward(self, x, alpha=1.0, scale=1.0, input_scale=1.0):
        xp = get_array_module(x)
        self.x = x
        self.alpha, self.scale = alpha, scale
        self.input_scale = self.backward_input_scale(alpha, input_scale)
        if is_half(x):  # (PyTorch's float32 opmath)
            return half_elu(xp, x, alpha, scale, input_scale)
        zero = constant(0, x)  # (the numbers as 0-d arrays of x's dtype: the same bits, no conversion a call)
        m = xp.minimum(x, zero)  # (<= 0: nothing overflows on the positive side)
        if input_scale != 1:  # (a product by 1 is exact: skipped, elu's and selu's case)
            m *= input_scale
        # (expm1, not e - 1: e - 1 loses the relative precision of small |x|, 0 at x = -1e-20)
        neg = xp.expm1(m, out=m) if fresh_float(x) else xp.expm1(m)
        if alpha * scale != 1:
            neg *= constant(alpha * scale, x)
        return xp.where(x <= zero, neg, x * constant(scale, x) if scale != 1 else x)

    @staticmethod
    def backward_input_scale(alpha, input_scale):
        """The input_scale backward takes (celu: PyTorch's ``1 / alpha`` of alpha rounded to float32)."""
        return input_scale

    def exponential(self, x):
        """``exp(input_scale * min(x, 0))``, recomputed from the input in backward, as PyTorch's (the derivative where
        x <= 0 is ``input_scale * alpha * scale`` times it)."""
        xp = get_array_module(x)
        # (1 where x > 0, and at a NaN, fmin's 0: nothing overflows on the positive side)
        m = xp.fmin(x, constant(0, x))
        if not fresh_float(x):
            return xp.exp(m * self.input_scale if self.input_scale != 1 else m)
        if self.input_scale != 1:
            xp.multiply(m, self.input_scale, out=m)
        return xp.exp(m, out=m)

    def negative_coefficient(self, dtype):
        """``alpha * scale`` as PyTorch's CPU kernel forms it: each rounded to the tensor's dtype, multiplied there
        (float16's arithmetic is float32's)."""
        return _coefficient(self.alpha, self.scale, np.dtype(dtype))

    def backward(self, g):
        xp = get_array_module(g)
        x, s, scale = self.x, self.input_scale, self.scale
        if is_half(g):  # (PyTorch's float32 opmath)
            return (half_elu_backward(xp, g, x, self.alpha, scale, s),)
        # (PyTorch's order of the products, ((g * input_scale) * (alpha * scale)) * e; a product by 1 skipped)
        coef = self.negative_coefficient(g.dtype)
        if s == 1 and coef == 1 and scale == 1:  # (elu's default: e^fmin(x, 0) is 1 where x > 0 and at a NaN, the
            return (g * self.exponential(x),)    # positive side's slope: no where needed, the same values)
        slopes = self.slopes(x, coef, g.dtype) if s == 1 else None
        if slopes is not None:  # (selu's case: the same products, slope by slope, with no where)
            grad = g * slopes
            e = self.exponential(x)
            return (xp.multiply(grad, e, out=grad) if grad.dtype == e.dtype else grad * e,)
        neg = g * s if s != 1 else g
        if coef != 1:
            neg = neg * coef.astype(g.dtype)
        neg = neg * self.exponential_where_negative(x)
        return (xp.where(x <= 0, neg, g * scale if scale != 1 else g),)

    def slopes(self, x, coef, dtype):
        """``coef`` where x <= 0, ``scale`` elsewhere (and at a NaN), in ``dtype``, formed as ``scale + (x <= 0) *
        (coef - scale)`` (a where over a mask of mixed signs costs twice as much): times ``exp(fmin(x, 0))``, which is
        1 where x > 0, ``g`` times it makes the where's two sides, ``(g * coef) * e`` and ``g * scale``, bit for bit.
        None where that sum does not give ``coef`` back exactly in ``dtype`` (or on a 0-d input)."""
        if not fresh_float(x):
            return None
        step, scale = _slope_step(coef, self.scale, dtype)
        if step is None:
            return None
        xp = get_array_module(x)
        slopes = xp.multiply(x <= constant(0, x), step)
        return xp.add(slopes, scale, out=slopes)

    def exponential_where_negative(self, x):
        """``exponential(x)`` where x <= 0, any finite value elsewhere (where the where takes the positive side):
        ``exp(input_scale * -|x|)``, each step in place on a fresh temporary, fewer passes than fmin's (a negative
        celu alpha's input_scale would overflow it where x > 0: fmin's form there)."""
        xp = get_array_module(x)
        if not fresh_float(x) or self.input_scale < 0:
            return self.exponential(x)
        m = xp.absolute(x)
        xp.negative(m, out=m)  # (x itself where x <= 0, -0.0 included)
        if self.input_scale != 1:
            xp.multiply(m, self.input_scale, out=m)
        return xp.exp(m, out=m)


@functools.lru_cache(maxsize=64)
def _coefficient(alpha, scale, dtype):
    """``negative_coefficient``'s product, made once a dtype (float16's arithmetic is float32's)."""
    kind = np.float32 if dtype.itemsize <= 4 else np.float64
    return kind(alpha) * kind(scale)


@functools.lru_cache(maxsize=64, typed=True)  # (typed: float16's 1.5 is not float32's)
def _slope_step(coef, scale, dtype):
    """``(coef - scale, scale)`` in ``dtype`` when ``scale + (coef - scale)`` is ``coef`` exactly there, else
    ``(None, None)`` (a difference that rounds)."""
    coef, scale = coef.astype(dtype), dtype.type(scale)
    step = coef - scale
    return (step, scale) if scale + step == coef else (None, None)


class CELU(ScaledELU):
    """celu's node: PyTorch's backward takes ``1.0 / alpha.toFloat()``, alpha rounded to float32 first (its forward
    divides by alpha itself)."""

    torch_name = "CeluBackward0"  # (selu is PyTorch's elu node, with its scales; celu a node of its own)
    in_place_form = CeluOfResult

    @staticmethod
    def backward_input_scale(alpha, input_scale):
        return 1.0 / float(np.float32(alpha))


__all__ = ["ScaledELU", "CELU"]
