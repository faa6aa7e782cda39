"""The rest of Python's operators on :class:`~distnn.autograd.tensor.Tensor` (a mixin): ``//`` and ``%``
(PyTorch's floor_divide and remainder), the unary ``abs()`` and ``+``, the bitwise operators of masks and integer
tensors (``~``, ``&``, ``|``, ``^``, ``<<``, ``>>``) and the augmented ``//=``, ``%=``, ``**=``, ``<<=``, ``>>=``,
which write in place as PyTorch's do.

Apart from :mod:`.tensor_operators` (arithmetic, comparisons, indexing: the elementwise Functions) because these
go through :mod:`distnn.functional.pointwise_division` and :mod:`~distnn.functional.pointwise_bits`, or combine
bits with no gradient at all; and apart from :mod:`.tensor_methods` (PyTorch's named composite methods) because
they are operators.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import unwrap

from .tensor_methods import _const, _ops


class TensorOperatorsMore:
    """Python's floor division, remainder, unary, bitwise, shift and augmented operators (no state of its own)."""

    __slots__ = ()

    # ``//`` and ``%`` are PyTorch's floor_divide and remainder: the same dtypes, inf/NaN for a float division by
    # zero without numpy's warnings, and an integer division by zero refused ("ZeroDivisionError"), as there.
    def __floordiv__(self, other):
        return _ops.pointwise_division.floor_divide(self, other)  # (a step function: its backward refused)

    def __mod__(self, other):
        """``x - floor(x / y) * y``, as PyTorch's remainder: gradient 1 for ``x`` and, for a Tensor ``y``,
        ``-floor(x / y)`` (the quotient is piecewise constant)."""
        return _ops.pointwise_division.remainder(self, other)

    def __rfloordiv__(self, other):
        return _ops.pointwise_division.floor_divide(other, self)

    def __rmod__(self, other):
        """``other % self`` for a number ``other``, as ``__mod__``, but without a derivative (PyTorch's
        ``remainder.Scalar_Tensor`` has none: a backward through it is refused)."""
        return _ops.pointwise_division.remainder(other, self)

    # Python's unary operators and the bitwise ones PyTorch gives tensors (masks: ``(a > 0) & ~b``)
    def __abs__(self):
        return self.abs()

    def __pos__(self):
        return self

    def __invert__(self):
        return _const(~_bits(self, "~"))

    def __and__(self, other):
        a, b = _typed(self, other)
        return _const(_bits(a, "&") & _bits(b, "&"))

    def __or__(self, other):
        a, b = _typed(self, other)
        return _const(_bits(a, "|") | _bits(b, "|"))

    def __xor__(self, other):
        a, b = _typed(self, other)
        return _const(_bits(a, "^") ^ _bits(b, "^"))

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    # Shifts of integer tensors, as PyTorch's ``<<``/``>>`` (torch.bitwise_left_shift/right_shift: its dtypes,
    # 0 for a count outside [0, width)); ``<<=``/``>>=`` write into the tensor, as there.
    def __lshift__(self, other):
        return _ops.pointwise_bits.bitwise_left_shift(self, other)

    def __rshift__(self, other):
        return _ops.pointwise_bits.bitwise_right_shift(self, other)

    def __rlshift__(self, other):
        return _ops.pointwise_bits.bitwise_left_shift(other, self)

    def __rrshift__(self, other):
        return _ops.pointwise_bits.bitwise_right_shift(other, self)

    # PyTorch's ``//=``, ``%=`` and ``**=`` are floor_divide_, remainder_ and pow_: in place (through views, version
    # bumped, refused on a leaf that requires grad or where the result's dtype cannot be cast into the tensor's)
    def __ifloordiv__(self, other):
        return self.floor_divide_(other)

    def __imod__(self, other):
        return self.remainder_(other)

    def __ipow__(self, other):
        return self.pow_(other)

    def __ilshift__(self, other):
        return self.bitwise_left_shift_(other)

    def __irshift__(self, other):
        return self.bitwise_right_shift_(other)


def _typed(t, other, reflected=False):
    """The arrays of ``t <op> other`` (``other <op> t`` when ``reflected``), typed as PyTorch types them (as
    ``+`` and ``*`` are: a 0-d int64 tensor or a Python int does not widen an int32 or uint8 tensor with
    dimensions, where numpy's promotion would give int64)."""
    from .dtype_rules import _operands, _with_constant

    a, b = _with_constant(t, other) if reflected else _operands(t, other)
    if reflected:
        a, b = b, a
    return unwrap(a), unwrap(b)


def _bits(value, op: str):
    """``value``'s array for a bitwise operator: bool or integer only (a float has no bits to combine; PyTorch
    refuses it too), never one that needs a gradient."""
    array = unwrap(value)
    # (getattr's default would be built even for an array that has a dtype: np.asarray of a cupy array raises)
    dtype = array.dtype if hasattr(array, "dtype") else np.asarray(array).dtype
    if dtype.kind not in "biu":
        raise TypeError(f"'{op}' needs bool or integer tensors (masks), got dtype {dtype}")
    return array
