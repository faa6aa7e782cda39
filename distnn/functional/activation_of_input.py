"""The nodes of the in-place activations whose PyTorch op saves its input: ``silu_``, ``mish_``, ``hardtanh_`` (and
``relu6``'s), ``hardsigmoid_``, ``threshold_`` (ThresholdBackward1). ``hardswish_``'s is hardswish's own node, which
keeps the input only already.

Each keeps the input alone and computes the rest in backward. The input's memory is then overwritten with the
result, so ``inplace.write_result`` copies it first (PyTorch's ``original_self``, a clone): that copy is what
pack_hook gets, once, and a later in-place change of the tensor leaves backward right. The out-of-place nodes keep
masks or a sigmoid of their own instead, a cheaper backward with the input's memory there to read.
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from .activation import sigmoid_array, softplus_array

SIXTH_F32 = 0.1666666716337204  # float(numpy.float32(1 / 6)): PyTorch's CPU kernel's factor, in every dtype


class SiLUOfInput(Function):
    """silu_'s node: gradient s (1 + x (1 - s)), s = sigmoid(x), PyTorch's form."""

    torch_name = "SiluBackward0"
    reads = ((0,),)

    def forward(self, x):
        self.x = x
        return x * sigmoid_array(x)

    def backward(self, g):
        x = self.x
        s = sigmoid_array(x)
        return (g * s * (1 + x * (1 - s)),)


class MishOfInput(Function):
    """mish_'s node: gradient tanh(sp) + x sigmoid(x) (1 - tanh(sp)^2), sp = softplus(x) (PyTorch's mish_backward)."""

    torch_name = "MishBackward0"
    reads = ((0,),)

    def forward(self, x):
        self.x = x
        return x * get_array_module(x).tanh(softplus_array(x))

    def backward(self, g):
        x = self.x
        t = get_array_module(x).tanh(softplus_array(x))
        return (g * (t + x * sigmoid_array(x) * (1 - t * t)),)


class HardtanhOfInput(Function):
    """hardtanh_'s node: the gradient passes strictly inside (min_val, max_val), and at a NaN."""

    torch_name = "HardtanhBackward0"
    reads = ((0,),)

    def forward(self, x, min_val=-1.0, max_val=1.0):
        xp = get_array_module(x)
        self.x, self.min_val, self.max_val = x, min_val, max_val
        return xp.minimum(xp.maximum(x, x.dtype.type(min_val)), x.dtype.type(max_val))

    def stops(self):
        """Where the gradient stops: at and beyond either bound."""
        x = self.x
        return (x <= self.min_val) | (x >= self.max_val)

    def backward(self, g):
        return (get_array_module(g).where(self.stops(), 0, g),)


class HardsigmoidOfInput(Function):
    """hardsigmoid_'s node: gradient 1/6 strictly inside (-3, 3), else 0."""

    torch_name = "HardsigmoidBackward0"
    reads = ((0,),)

    def forward(self, x):
        xp = get_array_module(x)
        self.x = x
        return xp.minimum(xp.maximum(x + 3, 0), 6) / 6

    def passes(self):
        """Where the gradient passes: strictly inside (-3, 3)."""
        return (self.x > -3) & (self.x < 3)

    def backward(self, g):
        return (get_array_module(g).where(self.passes(), g * SIXTH_F32, 0),)


class ThresholdOfInput(Function):
    """threshold_'s node: gradient 0 where x <= threshold (a NaN passes)."""

    torch_name = "ThresholdBackward1"
    reads = ((0,),)

    def forward(self, x, threshold=0.0, value=0.0):
        self.x, self.threshold = x, threshold
        return get_array_module(x).where(x <= threshold, x.dtype.type(value), x)

    def stops(self):
        """Where the gradient stops: at and below the threshold."""
        return self.x <= self.threshold

    def backward(self, g):
        return (get_array_module(g).where(self.stops(), 0, g),)


__all__ = ["SiLUOfInput", "MishOfInput", "HardtanhOfInput", "HardsigmoidOfInput", "ThresholdOfInput", "SIXTH_F32"]
