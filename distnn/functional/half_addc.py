"""``addcmul``/``addcdiv`` of float16 tensors and a number ``value``, as PyTorch's reduced-float kernels compute them.

PyTorch's CPU kernels (``addcmul_cpu_kernel``, ``addcdiv_cpu_kernel``) widen the three float16 operands to float32,
read ``value`` as a float32 and round once to float16: ``addcmul`` as ``fma(value * t1, t2, input)``, ``addcdiv``
as ``input + value * t1 / t2``. Composing the Tensor operators instead rounds every step into float16 (~1 element
in 4,000 off by an ulp, more for some values). The backward is PyTorch's formulas (derivatives.yaml), each step in
float16 as there: ``grad * (t2 * value)``; ``grad * (value / t2)`` and ``-grad * (value * t1 / (t2 * t2))``.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.half_rounding import half_number

from .half_scalar_opmath import float32_number, times_number

_HALF = np.dtype(np.float16)


def half_addcmul_array(input, tensor1, tensor2, value):  # noqa: A002
    """``input + value * tensor1 * tensor2`` of float16 arrays: PyTorch's ``fma(value * t1, t2, input)`` in float32
    (the float64 sum of the exact float32 product stands in for the fused one), rounded once to float16."""
    scaled = float32_number(value) * tensor1.astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        fused = (input.astype(np.float64) + scaled.astype(np.float64) * tensor2.astype(np.float64))
        return fused.astype(np.float32).astype(_HALF)


def half_addcdiv_array(input, tensor1, tensor2, value):  # noqa: A002
    """``input + value * tensor1 / tensor2`` of float16 arrays, in float32, rounded once to float16."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        quotient = float32_number(value) * tensor1.astype(np.float32) / tensor2.astype(np.float32)
        return (input.astype(np.float32) + quotient).astype(_HALF)


def takes_half_path(input, tensor1, tensor2, value) -> bool:  # noqa: A002
    """Whether ``addcmul``/``addcdiv`` of these operands is this module's: three float16 tensors or arrays and a
    Python int or float ``value``."""
    if type(value) is not float and type(value) is not int:
        return False
    return all(getattr(getattr(x, "data", x), "dtype", None) == _HALF for x in (input, tensor1, tensor2))


class HalfAddcmul(Function):
    torch_name = "AddcmulBackward0"

    def forward(self, input, tensor1, tensor2, value=1):  # noqa: A002
        self.t1, self.t2, self.value = tensor1, tensor2, value
        return half_addcmul_array(input, tensor1, tensor2, value)

    def backward(self, g):
        n_in, n1, n2 = self.needs_input_grad
        with np.errstate(over="ignore", invalid="ignore"):
            return (g if n_in else None, g * times_number(self.t2, self.value) if n1 else None,
                    g * times_number(self.t1, self.value) if n2 else None)


class HalfAddcdiv(Function):
    torch_name = "AddcdivBackward0"

    def forward(self, input, tensor1, tensor2, value=1):  # noqa: A002
        self.t1, self.t2, self.value = tensor1, tensor2, value
        return half_addcdiv_array(input, tensor1, tensor2, value)

    def backward(self, g):
        n_in, n1, n2 = self.needs_input_grad
        t1, t2, value = self.t1, self.t2, self.value
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            g1 = g * (np.float16(half_number(float(value))) / t2) if n1 else None  # (PyTorch: fill(value).div_(t2))
            g2 = -g * (times_number(t1, value) / (t2 * t2)) if n2 else None
        return g if n_in else None, g1, g2
