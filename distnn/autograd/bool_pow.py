"""``**`` with bool operands, as PyTorch's: a bool base with an integer exponent is int64 (numpy's is int8), with
a bool exponent it stays bool (``x ** False`` all True, ``x ** True`` a copy); a bool tensor to a bool power
(tensor or number) is refused, as PyTorch's ``"pow" not implemented for 'Bool'``."""
from __future__ import annotations

import numbers

import numpy as np

from distnn.backend import get_array_module

from .function import Function

_NOT_FOR_BOOL = "\"pow\" not implemented for 'Bool'"


class BoolPowBool(Function):
    """A bool tensor to a bool number's power (no gradient: a bool tensor has none)."""
    torch_name = "PowBackward0"

    def forward(self, a, b):
        return a.copy() if b else get_array_module(a).ones_like(a)

    def backward(self, g):
        return None, None


def pow_call(t, o):
    """The op and operands of ``t ** o`` (``t`` a Tensor)."""
    from distnn.functional import elementwise as E

    from .dtype_rules import _operands
    from .tensor import Tensor

    if t.data.dtype.kind == "b":
        if isinstance(o, Tensor) and o.data.dtype.kind == "b":
            raise NotImplementedError(_NOT_FOR_BOOL)
        if isinstance(o, (bool, np.bool_)):
            return BoolPowBool, t, bool(o)
        if isinstance(o, numbers.Integral):  # (PyTorch's int64: a bool tensor and an integer are integers)
            return E.PowConstant, t.data.astype(np.int64), o
    a, b = _operands(t, o)
    return (E.Pow if isinstance(b, Tensor) else E.PowConstant), a, b


def rpow_operands(t, o):
    """The operands of ``o ** t`` (``o`` a number): a bool number to a bool tensor's power refused."""
    from .dtype_rules import _with_constant

    if t.data.dtype.kind == "b" and isinstance(o, (bool, np.bool_)):
        raise NotImplementedError(_NOT_FOR_BOOL)
    return _with_constant(t, o)
