"""PyTorch's integer and floating-point-representation pointwise ops: ``bitwise_left_shift``/``right_shift``,
``gcd``/``lcm``, ``ldexp``, ``frexp``, ``nextafter`` and ``heaviside``, with PyTorch's dtype promotion
(:func:`~distnn.autograd.dtype_rules.torch_operands`) and its rules where numpy's differ: a shift by a
negative count or by at least the bit width gives 0 (a right shift of a negative number -1), as PyTorch's
kernels do (numpy's is undefined there).

``ldexp`` (``input * 2 ** other``) and ``frexp``'s mantissa are differentiable as in PyTorch; ``heaviside``
has no derivative (its backward is refused, as PyTorch's), ``nextafter`` none either (PyTorch's gradient of it
is zero; here the result carries no gradient), nor the integer ops.
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np

from distnn.autograd.dtype_rules import torch_operands
from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.grad_mode import is_grad_enabled, no_grad
from distnn.autograd.tensor import Tensor
from distnn.backend import as_array, get_array_module

from ._elementwise_common import _on_device
from .shape_more import as_tensor

FrexpResult = namedtuple("frexp", ["mantissa", "exponent"])

_KIND_NAMES = {"f": "Float", "b": "Bool"}


def _raws(a, b):
    a, b = torch_operands(a, b)
    xp = get_array_module(a, b)
    ra, rb = (v.data if isinstance(v, Tensor) else v for v in (a, b))  # (a numpy array's .data is a memoryview)
    if not hasattr(ra, "dtype"):
        ra = xp.asarray(ra, dtype=rb.dtype)
    if not hasattr(rb, "dtype"):
        rb = xp.asarray(rb, dtype=ra.dtype)
    return xp, xp.asarray(ra), xp.asarray(rb)


def _integers_only(kernel: str, *arrays) -> None:
    for a in arrays:
        if a.dtype.kind not in "iu":
            name = {"float32": "Float", "float64": "Double", "float16": "Half", "bool": "Bool"}.get(a.dtype.name,
                                                                                                  a.dtype.name)
            raise NotImplementedError(f'"{kernel}" not implemented for \'{name}\'')


def _count(other):
    """A Python int shift count outside [0, 64] as 64: past every width, so the same result (a left shift 0, a
    right shift by width - 1), and one that fits the shifted tensor's dtype (``uint8 << 1000`` is 0 in PyTorch)."""
    if isinstance(other, int) and not isinstance(other, bool) and not 0 <= other <= 64:
        return 64
    return other


def bitwise_left_shift(input, other):  # noqa: A002
    """``torch.bitwise_left_shift``: ``input << other`` (0 where ``other`` is negative or at least the width)."""
    xp, a, b = _raws(input, _count(other))
    _integers_only("lshift_cpu", a, b)
    bits = a.dtype.itemsize * 8
    inside = (b >= 0) & (b < bits)
    out = xp.left_shift(a, xp.where(inside, b, 0).astype(a.dtype))
    return Tensor(xp.where(inside, out, 0).astype(a.dtype))


def bitwise_right_shift(input, other):  # noqa: A002
    """``torch.bitwise_right_shift``: arithmetic ``input >> other`` (a count outside [0, width) shifts by
    width - 1: 0, or -1 for a negative signed number)."""
    xp, a, b = _raws(input, _count(other))
    _integers_only("rshift_cpu", a, b)
    bits = a.dtype.itemsize * 8
    inside = (b >= 0) & (b < bits)
    return Tensor(xp.right_shift(a, xp.where(inside, b, bits - 1).astype(a.dtype)).astype(a.dtype))


def gcd(input, other):  # noqa: A002
    """``torch.gcd``: the greatest common divisor (non-negative), of integer tensors."""
    xp, a, b = _raws(input, other)
    _integers_only("gcd_cpu", a, b)
    return Tensor(xp.gcd(a, b))


def lcm(input, other):  # noqa: A002
    """``torch.lcm``: the least common multiple (non-negative), of integer tensors."""
    xp, a, b = _raws(input, other)
    _integers_only("lcm_cpu", a, b)
    return Tensor(xp.lcm(a, b))


class _Ldexp(Function):
    """``input * 2 ** other`` (both computed by :func:`ldexp` beforehand, in PyTorch's dtypes), with PyTorch's
    LdexpBackward0: ``grad * 2 ** other`` for ``input``, ``grad * result * ln 2`` for ``other`` (from the result,
    as PyTorch's formula: ``input * 2 ** other`` again would round differently)."""

    torch_name = "LdexpBackward0"
    reads = ((1,), (OUTPUT,))

    def forward(self, x, e, power=None, result=None):
        self.power, self.result = power, result
        return result

    def backward(self, g):
        need_x, need_e = self.needs_input_grad
        gx = g * self.power if need_x else None
        ge = None
        if need_e:
            xp = get_array_module(g)
            # (the number ln 2 multiplies in float32 for float16, rounded once, as PyTorch's scalar product)
            wide = xp.float32 if g.dtype == xp.float16 else g.dtype
            ge = ((g * self.result).astype(wide, copy=False) * xp.asarray(_LN2, wide)).astype(g.dtype, copy=False)
        return gx, ge


_LN2 = math.log(2.0)


def ldexp(input, other):  # noqa: A002
    """``torch.ldexp``: ``input * 2 ** other`` (integers compute in float32), differentiable in both with PyTorch's
    node and formulas. One difference is kept: for an integer ``other`` PyTorch 2.13's backward computes
    ``2 ** other`` in integers, giving ``input`` a 0 gradient where ``other`` is negative; here it is the true
    ``2 ** other``."""
    x = as_tensor(input)
    e = other if isinstance(other, Tensor) else Tensor(as_array(other))  # (a raw device array as it is)
    with no_grad():
        power = 2.0 ** e
        result = x * power
    if not (is_grad_enabled() and (x.requires_grad or e.requires_grad)):
        return result
    # (power on the result's device: a host exponent (a number, a CPU 0-d tensor) left it on the host, and the
    # backward's g * power, cupy by numpy, is refused)
    power_data, = _on_device(get_array_module(result.data), power.data)
    return _Ldexp.apply(x, e, power=power_data, result=result.data)


class _Frexp(Function):
    def forward(self, x):
        xp = get_array_module(x)
        mantissa, self.exponent = xp.frexp(x)
        return mantissa

    def backward(self, g):  # PyTorch's: grad / exponent.exp2()
        xp = get_array_module(g)
        return g / xp.exp2(self.exponent.astype(g.dtype))


def frexp(input):  # noqa: A002
    """``torch.frexp``: ``(mantissa, exponent)`` with ``input = mantissa * 2 ** exponent``, ``|mantissa|`` in
    [0.5, 1); the exponent int32, the mantissa differentiable."""
    x = as_tensor(input)
    if x.data.dtype.kind != "f":
        raise RuntimeError("torch.frexp() only supports floating-point dtypes")
    mantissa = _Frexp.apply(x)
    exponent = get_array_module(x.data).frexp(x.data)[1].astype(np.int32)
    return FrexpResult(mantissa, Tensor(exponent))


def nextafter(input, other):  # noqa: A002
    """``torch.nextafter``: the next floating-point value after ``input`` towards ``other`` (no gradient)."""
    xp, a, b = _raws(input, other)
    if a.dtype.kind != "f":
        raise NotImplementedError(f'"nextafter_cpu" not implemented for \'{_name(a.dtype)}\'')
    return Tensor(xp.nextafter(a, b))


def _name(dtype) -> str:
    from distnn.autograd.tensor_inplace_methods import torch_dtype_name

    return torch_dtype_name(dtype)


class _Heaviside(Function):
    def forward(self, x, values):
        xp = get_array_module(x, values)
        x, values = _on_device(xp, x, values)  # (a CPU 0-d ``values`` beside a GPU input: PyTorch takes one)
        return xp.where(x == 0, values, (x > 0)).astype(x.dtype)

    def backward(self, g):
        raise RuntimeError("the derivative for 'heaviside' is not implemented.")


def heaviside(input, values):  # noqa: A002
    """``torch.heaviside``: 0 where ``input < 0``, ``values`` where it is 0, 1 where it is positive. The two must
    have one dtype (PyTorch's rule); a backward through it is refused, as PyTorch's."""
    x, v = as_tensor(input), as_tensor(values)
    if x.dtype != v.dtype:
        raise RuntimeError("heaviside is not yet implemented for tensors with different dtypes.")
    if x.data.dtype.kind == "c":
        raise RuntimeError("heaviside is not yet implemented for complex tensors.")
    if x.requires_grad or v.requires_grad:
        return _Heaviside.apply(x, v)
    xp = get_array_module(x.data, v.data)
    xd, vd = _on_device(xp, x.data, v.data)
    return Tensor(xp.where(xd == 0, vd, xd > 0).astype(x.dtype))


__all__ = ["bitwise_left_shift", "bitwise_right_shift", "gcd", "lcm", "ldexp", "frexp", "nextafter", "heaviside"]
