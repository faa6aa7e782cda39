"""PyTorch's divisions: ``torch.divide`` (true, or rounded with ``rounding_mode='trunc'|'floor'``),
``true_divide``, ``floor_divide``, ``remainder`` (Python's ``%``) and ``fmod`` (C's), broadcasting, with PyTorch's
dtype promotion (integers stay integers when rounded; an integer division by zero is refused, as PyTorch refuses
it) and its gradients: ``remainder``/``fmod`` pass ``g`` to the dividend and ``-g * floor|trunc(a / b)`` to the
divisor; a rounded division has zero gradients. ``floor_divide`` (``//``) and ``remainder`` of a number by a
tensor (``5 % x``) have no derivative in PyTorch: their results require grad, and a backward through them is
refused by name, as PyTorch's ("derivative for aten::floor_divide is not implemented").
"""
from __future__ import annotations

import numbers

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .half_division import half_rounded_division, is_half_division
from .half_scalar_opmath import is_half_with_number
from .pointwise_binary import _Binary, _operands, _raw, _result_kind


class Remainder(_Binary):
    """Python's ``%`` (the sign of the divisor), as PyTorch computes it: ``fmod``, plus ``b`` where the signs
    differ (so -0.0 stays -0.0, where numpy's remainder gives 0.0). Gradients: ``g`` and ``-g * floor(a / b)``."""

    torch_name = "RemainderBackward1"  # (a Tensor divisor; a number one is RemainderByNumber)

    @staticmethod
    def compute(xp, a, b):
        mod = xp.fmod(a, b)
        return xp.where((mod != 0) & ((b < 0) != (mod < 0)), mod + b, mod).astype(mod.dtype, copy=False)

    @staticmethod
    def grads(xp, g, a, b, out):
        return g, -g * xp.floor_divide(a, b)


class RemainderByNumber(Remainder):
    """``x % number``: PyTorch's remainder.Scalar overload, so another node name (the same op)."""

    torch_name = "RemainderBackward0"


class RemainderOfNumber(Remainder):
    """``number % x``: PyTorch's ``remainder.Scalar_Tensor`` has no derivative, so a backward through it is refused
    (``Tensor % Tensor`` has one: :class:`Remainder`)."""

    torch_name = None  # (PyTorch's node is a NotImplemented one)
    reads = ((), ())

    @staticmethod
    def grads(xp, g, a, b, out):
        raise RuntimeError("derivative for aten::remainder is not implemented (for a number divided by a tensor, "
                           "as in PyTorch; a 0-d tensor dividend has one)")


class Fmod(_Binary):
    """C's ``fmod`` (the sign of the dividend). Gradients: ``g`` and ``-g * trunc(a / b)``."""

    torch_name = "FmodBackward1"  # (a Tensor divisor; a number one is FmodByNumber)

    @staticmethod
    def compute(xp, a, b):
        return xp.fmod(a, b)

    @staticmethod
    def grads(xp, g, a, b, out):
        return g, -g * xp.trunc(a / b)


class FmodByNumber(Fmod):
    """``fmod(x, number)``: PyTorch's fmod.Scalar overload, so another node name (the same op)."""

    torch_name = "FmodBackward0"


class RoundedDivide(_Binary):
    """``a / b`` rounded toward zero (``'trunc'``) or down (``'floor'``, numpy's ``floor_divide``, whose float
    algorithm is PyTorch's; float16 as PyTorch's kernels round it: :mod:`.half_division`). A step function: zero
    gradients."""

    reads = ((), ())

    def forward(self, a, b, mode="floor", half_divisor=None):
        # (half_divisor: the number or 0-d tensor's value a float16 ``a`` is divided by, before its float16 rounding)
        self.mode, self.half_divisor = mode, half_divisor
        return super().forward(a, b)

    def compute(self, xp, a, b):
        if is_half_division(a, b):  # (PyTorch's float16 kernels: half_division)
            return half_rounded_division(xp, a, b, self.mode, self.half_divisor)
        integer = xp.result_type(a, b).kind in "biu"
        if self.mode == "floor":
            return xp.floor_divide(a, b)
        if integer:  # (|a| // |b| with the quotient's sign: no float rounding of large integers)
            return xp.sign(a) * xp.sign(b) * (xp.abs(a) // xp.abs(b))
        return xp.trunc(a / b)

    @staticmethod
    def grads(xp, g, a, b, out):
        zeros = xp.zeros_like(g)
        return zeros, zeros


class FloorDivide(RoundedDivide):
    """``torch.floor_divide`` (``//``): ``div(rounding_mode='floor')``'s values, but PyTorch has no derivative for
    it, so a backward through it is refused (``div``'s rounded modes have zero gradients), naming the op as
    PyTorch's message does: ``floor_divide``, or ``floor_divide_`` for the in-place form (``op_name``)."""

    op_name = "floor_divide"

    def grads(self, xp, g, a, b, out):
        raise RuntimeError(f"derivative for aten::{self.op_name} is not implemented (torch.div(a, b, "
                           "rounding_mode='floor') has zero gradients)")


def floor_divide_inplace_result(input, other):  # noqa: A002
    """``floor_divide(input, other)`` for ``Tensor.floor_divide_`` (and ``//=``) to write back: its node says
    ``floor_divide_`` when a backward reaches it, as PyTorch's in-place op does."""
    out = floor_divide(input, other)
    if isinstance(out, Tensor) and isinstance(out._node, FloorDivide):
        out._node.op_name = "floor_divide_"
    return out


def _no_integer_zero_division(a, b):
    """PyTorch refuses an integer division by zero (numpy gives 0 with a warning)."""
    if _result_kind(a, b) in "biu" and bool((get_array_module(_raw(b)).asarray(_raw(b)) == 0).any()):
        raise RuntimeError("ZeroDivisionError")


def _no_bool(a, b, name):
    if _result_kind(a, b) == "b":
        raise NotImplementedError(f'"{name}" not implemented for \'Bool\'')


def remainder(input, other):  # noqa: A002
    """``torch.remainder``: Python's modulus (the result has the divisor's sign); integers stay integers."""
    _no_bool(input, other, "remainder")
    a, b = _operands(input, other, "remainder", floats=False)
    _no_integer_zero_division(a, b)
    if isinstance(input, numbers.Number):
        return RemainderOfNumber.apply(a, b)
    return (RemainderByNumber if isinstance(other, numbers.Number) else Remainder).apply(a, b)


def fmod(input, other):  # noqa: A002
    """``torch.fmod``: C's modulus (the result has the dividend's sign); integers stay integers."""
    _no_bool(input, other, "fmod")
    a, b = _operands(input, other, "fmod", floats=False)
    _no_integer_zero_division(a, b)
    return (FmodByNumber if isinstance(other, numbers.Number) else Fmod).apply(a, b)


def divide(input, other, *, rounding_mode=None, out=None):  # noqa: A002
    """``torch.divide`` (``torch.div``): true division (integers give the default float dtype), or rounded
    (``'trunc'``, ``'floor'``: integers stay integers; the gradient is zero). ``out``: PyTorch's rules
    (:mod:`.out_common`)."""
    if out is not None:
        from .out_common import pointwise_into_out

        return pointwise_into_out("divide", lambda a, b: divide(a, b, rounding_mode=rounding_mode), out, input,
                                  other, grad_name="div")
    if rounding_mode is None:
        if type(other) is float and isinstance(input, Tensor):  # (the operator's typing: a float16 tensor's
            return input / other  # quotient by a number in float32, as PyTorch's opmath; half_scalar_opmath)
        a, b = _operands(input, other, "divide")
        return a / b if isinstance(a, Tensor) or isinstance(b, Tensor) else Tensor(a) / b
    _check_rounding_mode(rounding_mode)
    return _rounded(input, other, rounding_mode, RoundedDivide)


def _check_rounding_mode(rounding_mode):
    if rounding_mode not in (None, "trunc", "floor"):
        raise RuntimeError(f"div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
                           f"'{rounding_mode}'")


def _rounded(input, other, rounding_mode, op):  # noqa: A002
    _no_bool(input, other, f"div_{rounding_mode}")
    a, b = _operands(input, other, "divide", floats=False)
    _no_integer_zero_division(a, b)
    divisor = _half_opmath_divisor(_raw(a), other)
    if divisor is not None:  # (PyTorch's float32 opmath reads it as a float32, unrounded)
        return op.apply(a, b, mode=rounding_mode, half_divisor=divisor)
    return op.apply(a, b, mode=rounding_mode)


def _half_opmath_divisor(dividend, other):
    """The divisor as PyTorch's float16 rounded-division kernel reads it (``original_scalar_value<float>``: the
    operand before its cast to the float16 result dtype) when it is one value not already float16: a Python
    number, or a 0-d tensor of another dtype (``h // torch.tensor(0.1)``: float32, read as is); else None (the
    float16 divisor as promoted)."""
    dtype = getattr(dividend, "dtype", None)
    if dtype is None or dtype.char != "e":  # (the promoted dividend: a float16 result, or not this case)
        return None
    if is_half_with_number(dividend, other):
        return other
    if isinstance(other, Tensor) and other.ndim == 0 and other.dtype.char != "e":
        return other.data.item()  # (its value exactly: a float32, a float64 or an integer)
    return None


def true_divide(input, other):  # noqa: A002
    """``torch.true_divide``: ``divide`` without a rounding mode (PyTorch's takes none)."""
    return divide(input, other)


def floor_divide(input, other):  # noqa: A002
    """``torch.floor_divide`` (``//``): division rounded down (PyTorch's, since 1.13). Not differentiable: the
    result of a float tensor requiring grad requires grad, and a backward through it is refused, as PyTorch's."""
    return _rounded(input, other, "floor", FloorDivide)


__all__ = ["remainder", "fmod", "divide", "true_divide", "floor_divide"]  # (floor_divide_inplace_result: Tensor's)
