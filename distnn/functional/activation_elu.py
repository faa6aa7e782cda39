"""The elu family's out-of-place node, PyTorch's ``elu(x, alpha, scale, input_scale)``: ``elu`` (scales 1), ``selu``
(PyTorch's constants) and ``celu`` (input_scale 1/alpha, a node of its own name).

As PyTorch's, the node keeps the input alone (what ``saved_tensors_hooks`` see: one pack, the tensor itself) and
recomputes the exponential in backward, PyTorch's ``elu_backward`` of the input: ``x <= 0 ? g * input_scale *
(alpha * scale) * exp(x * input_scale) : g * scale``. The in-place forms keep the result instead
(``activation_of_result``).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module

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
        m = xp.minimum(x, 0)  # (<= 0: nothing overflows on the positive side)
        if input_scale != 1:  # (a product by 1 is exact: skipped, elu's and selu's case)
            m *= input_scale
        neg = xp.expm1(m)  # (expm1, not e - 1: e - 1 loses the relative precision of small |x|, 0 at x = -1e-20)
        if alpha * scale != 1:
            neg *= alpha * scale
        return xp.where(x <= 0, neg, x * scale if scale != 1 else x)

    @staticmethod
    def backward_input_scale(alpha, input_scale):
        """The input_scale backward takes (celu: PyTorch's ``1 / alpha`` of alpha rounded to float32)."""
        return input_scale

    def exponential(self, x):
        """``exp(input_scale * min(x, 0))``, recomputed from the input in backward, as PyTorch's (the derivative where
        x <= 0 is ``input_scale * alpha * scale`` times it)."""
        xp = get_array_module(x)
        m = xp.fmin(x, 0)  # (1 where x > 0, and at a NaN, fmin's 0: nothing overflows on the positive side)
        return xp.exp(m * self.input_scale if self.input_scale != 1 else m)

    def negative_coefficient(self, dtype):
        """``alpha * scale`` as PyTorch's CPU kernel forms it: each rounded to the tensor's dtype, multiplied there
        (float16's arithmetic is float32's)."""
        kind = np.float32 if np.dtype(dtype).itemsize <= 4 else np.float64
        return kind(self.alpha) * kind(self.scale)

    def backward(self, g):
        xp = get_array_module(g)
        x, s, scale = self.x, self.input_scale, self.scale
        if is_half(g):  # (PyTorch's float32 opmath)
            return (half_elu_backward(xp, g, x, self.alpha, scale, s),)
        # (PyTorch's order of the products, ((g * input_scale) * (alpha * scale)) * e; a product by 1 skipped)
        coef = self.negative_coefficient(g.dtype)
        if s == 1 and coef == 1 and scale == 1:  # (elu's default: e^fmin(x, 0) is 1 where x > 0 and at a NaN, the
            return (g * self.exponential(x),)    # positive side's slope: no where needed, the same values)
        neg = g * s if s != 1 else g
        if coef != 1:
            neg = neg * coef.astype(g.dtype)
        neg = neg * self.exponential(x)
        return (xp.where(x <= 0, neg, g * scale if scale != 1 else g),)


class CELU(ScaledELU):
    """celu's node: PyTorch's backward takes ``1.0 / alpha.toFloat()``, alpha rounded to float32 first (its forward
    divides by alpha itself)."""

    torch_name = "CeluBackward0"  # (selu is PyTorch's elu node, with its scales; celu a node of its own)
    in_place_form = CeluOfResult

    @staticmethod
    def backward_input_scale(alpha, input_scale):
        return 1.0 / float(np.float32(alpha))


__all__ = ["ScaledELU", "CELU"]
