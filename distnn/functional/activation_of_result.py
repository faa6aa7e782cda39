"""The nodes of the in-place activations whose PyTorch op saves its result: ``leaky_relu_`` (LeakyReluBackward1),
``elu_`` and ``selu_`` (EluBackward1), ``celu_`` (CeluBackward1); rrelu's is in ``rrelu.py``.

Each keeps only its result, which becomes the input tensor's own memory (``inplace.write_result``): nothing more is
held, pack_hook gets the tensor itself, and a later in-place change of it is refused at backward, as PyTorch's. As
PyTorch's, a negative slope (or alpha) cannot be undone from the result: its backward refuses, with PyTorch's words.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.backend import get_array_module

from .half_activation_opmath import half_elu, half_elu_backward_of_result, is_half
from .half_scalar_opmath import times_number

NEGATIVE_LEAKY_SLOPE = ("In-place leakyReLu backward calculation is triggered with a negative slope which is not "
                        "supported. This is caused by calling in-place forward function with a negative slope, please "
                        "call out-of-place version instead. File an issue at https://github.com/pytorch/pytorch if you "
                        "do require supporting in-place leakRelu backward calculation with negative slope")
NEGATIVE_ELU_ALPHA = ("In-place elu backward calculation is triggered with a negative slope which is not supported. "
                      "This is caused by calling in-place forward function with a negative slope, please call "
                      "out-of-place version instead.")


class LeakyReluOfResult(Function):
    """leaky_relu's in-place node: the gradient passes where the result is positive (where x is), else times
    the slope (a NaN too, as the out-of-place node)."""

    torch_name = "LeakyReluBackward1"
    reads = ((OUTPUT,),)

    def forward(self, x, negative_slope=0.01):
        xp = get_array_module(x)
        self.slope = negative_slope
        self.out = xp.where(x > 0, x, times_number(x, negative_slope))  # (float16: PyTorch's opmath)
        return self.out

    def backward(self, g):
        if self.slope < 0:
            raise RuntimeError(NEGATIVE_LEAKY_SLOPE)
        xp = get_array_module(g)
        return (xp.where(self.out > 0, g, times_number(g, self.slope)),)


class EluOfResult(Function):
    """elu's and selu's in-place node (PyTorch's elu_backward of the result): ``scale * x`` for x > 0, else
    ``alpha * scale * (e^(input_scale x) - 1)``, whose derivative is ``input_scale * (result + alpha * scale)``."""

    torch_name = "EluBackward1"
    reads = ((OUTPUT,),)

    def forward(self, x, alpha=1.0, scale=1.0, input_scale=1.0):
        xp = get_array_module(x)
        self.alpha, self.scale, self.input_scale = alpha, scale, input_scale
        if is_half(x):  # (PyTorch's float32 opmath, as the out-of-place node)
            self.out = half_elu(xp, x, alpha, scale, input_scale)
            return self.out
        m = xp.minimum(x, 0)  # (<= 0: nothing overflows on the positive side)
        if input_scale != 1:  # (a product by 1 is exact: skipped, elu's and selu's case)
            m *= input_scale
        # (the out-of-place nodes' arithmetic: the same values, bit for bit)
        self.out = xp.where(x <= 0, (alpha * scale) * xp.expm1(m), x * scale if scale != 1 else x)
        return self.out

    def backward(self, g):
        if self.alpha < 0:
            raise RuntimeError(NEGATIVE_ELU_ALPHA)
        xp = get_array_module(g)
        out, scale, input_scale = self.out, self.scale, self.input_scale
        if is_half(g):  # (PyTorch's float32 opmath)
            return (half_elu_backward_of_result(xp, g, out, self.alpha, scale, input_scale),)
        # (result <= 0: x <= 0, and a NaN takes the positive side, as the out-of-place node; PyTorch's order of the
        # products, (g * input_scale) * (result + alpha * scale), for its roundings; a product by 1 skipped)
        slope = out + self.alpha * scale
        return (xp.where(out <= 0, (g * input_scale if input_scale != 1 else g) * slope,
                         g * scale if scale != 1 else g),)


class CeluOfResult(EluOfResult):
    """celu_'s node (a node of its own, as celu's). Its backward takes 1 / alpha with alpha rounded to float32 first,
    as PyTorch's (``1.0 / alpha.toFloat()``; its forward divides by alpha itself)."""

    torch_name = "CeluBackward1"

    def forward(self, x, alpha=1.0, scale=1.0, input_scale=1.0):
        out = super().forward(x, alpha, scale, input_scale)
        self.input_scale = 1.0 / float(np.float32(alpha))
        return out


__all__ = ["LeakyReluOfResult", "EluOfResult", "CeluOfResult", "NEGATIVE_LEAKY_SLOPE", "NEGATIVE_ELU_ALPHA"]
