"""``Linear`` (y = x W^T + b), ``Identity`` and ``Bilinear`` (y = x1^T W x2 + b)."""
from __future__ import annotations

import math

import numpy as np

from distnn.backend import default_dtype
from distnn.functional.bilinear import bilinear
from distnn.functional.linear import linear

from . import init
from .module import Module, Parameter


def _finish(module, device):
    """Move a freshly built layer to ``device`` (parameters are created on the host)."""
    if device is not None and str(device) != "cpu":
        module.to(str(device))


def reset_weight_and_bias_(weight, bias, generator=None):
    """PyTorch's default for Linear and Conv: kaiming_uniform_(a=sqrt(5)) on the weight, U(+-1/sqrt(fan_in)) on the bias."""
    init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    if bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound, generator=generator)


class _WeightAndBias(Module):
    """A layer with ``weight`` (out, ...) and an optional ``bias`` (out,), initialized as PyTorch's Linear and Conv."""

    def _build(self, weight_shape, bias: bool, dtype, device, generator) -> None:
        dtype = np.dtype(dtype or default_dtype())
        self.weight = Parameter(np.empty(weight_shape, dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(weight_shape[0], dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)
        _finish(self, device)

    def reset_parameters(self, generator=None):
        reset_weight_and_bias_(self.weight, self.bias, generator)


class Identity(Module):
    """Returns its input unchanged (accepts and ignores constructor arguments, as PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Linear(_WeightAndBias):
    """y = x W^T + b with ``weight`` (out_features, in_features) and ``bias`` (out_features,).

    Initialized as PyTorch: weight ~ kaiming_uniform_(a=sqrt(5)), i.e.
    U(-1/sqrt(in_features), 1/sqrt(in_features)), and bias from the same range.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None, generator=None):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self._build((self.out_features, self.in_features), bias, dtype, device, generator)

    def forward(self, x):
        shape = tuple(x.shape)
        if len(shape) < 1 or shape[-1] != self.in_features:
            raise ValueError(
                f"{self.where()}: expected input with last dimension in_features={self.in_features}, "
                f"got input of shape {shape}"
            )
        return linear(x, self.weight, self.bias)

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Bilinear(Module):
    """y = x1^T W x2 + b with ``weight`` (out_features, in1_features, in2_features) and ``bias``
    (out_features,), PyTorch's nn.Bilinear (``F.bilinear``).

    Initialized as PyTorch: weight and bias ~ U(-1/sqrt(in1_features), 1/sqrt(in1_features)).
    """

    def __init__(self, in1_features: int, in2_features: int, out_features: int, bias: bool = True,
                 device=None, dtype=None, generator=None):
        super().__init__()
        self.in1_features, self.in2_features = int(in1_features), int(in2_features)
        self.out_features = int(out_features)
        dtype = np.dtype(dtype or default_dtype())
        self.weight = Parameter(np.empty((self.out_features, self.in1_features, self.in2_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(self.out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters(generator)
        _finish(self, device)

    def reset_parameters(self, generator=None):
        if self.in1_features <= 0:
            raise ValueError(f"in1_features must be > 0, but got (in1_features={self.in1_features})")
        bound = 1 / math.sqrt(self.in1_features)
        init.uniform_(self.weight, -bound, bound, generator=generator)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound, generator=generator)

    def forward(self, input1, input2):
        return bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
