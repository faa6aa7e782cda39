"""PyTorch's elementwise predicates, comparisons and logical/bitwise ops: bool (or, for bitwise, integer) tensors
that carry no gradient, broadcasting, with PyTorch's promotion of the operands (a float32 tensor compared with
``0.1`` compares in float32, as PyTorch does).

``isnan``, ``isinf``, ``isfinite``, ``isposinf``, ``isneginf``, ``signbit``, ``isreal``, ``isclose``;
``eq``, ``ne``, ``lt``, ``le``, ``gt``, ``ge`` and their long names; ``logical_and/or/xor/not`` (any dtype: nonzero
is true); ``bitwise_and/or/xor/not`` (integer and bool only, as PyTorch's); ``is_floating_point``, ``is_complex``.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.dtype_rules import torch_operands
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from ._elementwise_common import _check_broadcast, _on_device, _quiet


def _array(x):
    a = x.data if isinstance(x, Tensor) else x
    return a if hasattr(a, "dtype") and hasattr(a, "shape") else np.asarray(a)


def _unary(fn, input):  # noqa: A002
    a = _array(input)
    return Tensor(fn(get_array_module(a), a))


def _binary(fn, input, other, name):  # noqa: A002
    a, b = (x.data if isinstance(x, Tensor) else x for x in torch_operands(input, other))
    _check_broadcast(a, b, name)
    xp = get_array_module(a, b)
    return Tensor(xp.asarray(fn(xp, *_on_device(xp, a, b))))


def isnan(input):  # noqa: A002
    """``torch.isnan``: True where NaN (never for integers)."""
    return _unary(lambda xp, a: xp.isnan(a) if a.dtype.kind in "fc" else xp.zeros(a.shape, bool), input)


def isinf(input):  # noqa: A002
    return _unary(lambda xp, a: xp.isinf(a) if a.dtype.kind in "fc" else xp.zeros(a.shape, bool), input)


def isfinite(input):  # noqa: A002
    return _unary(lambda xp, a: xp.isfinite(a) if a.dtype.kind in "fc" else xp.ones(a.shape, bool), input)


def isposinf(input):  # noqa: A002
    return _unary(lambda xp, a: (a == xp.inf) if a.dtype.kind == "f" else xp.zeros(a.shape, bool), input)


def isneginf(input):  # noqa: A002
    return _unary(lambda xp, a: (a == -xp.inf) if a.dtype.kind == "f" else xp.zeros(a.shape, bool), input)


def signbit(input):  # noqa: A002
    """``torch.signbit``: True where the sign bit is set (-0.0 and -NaN included; never for bool)."""
    return _unary(lambda xp, a: xp.signbit(a) if a.dtype.kind != "b" else xp.zeros(a.shape, bool), input)


def isreal(input):  # noqa: A002
    """``torch.isreal``: True where the imaginary part is 0 (everywhere for real dtypes)."""
    return _unary(lambda xp, a: xp.isreal(a) if a.dtype.kind == "c" else xp.ones(a.shape, bool), input)


def is_floating_point(input) -> bool:  # noqa: A002
    """``torch.is_floating_point``: whether the dtype is a floating one."""
    return _array(input).dtype.kind == "f"


def is_complex(input) -> bool:  # noqa: A002
    return _array(input).dtype.kind == "c"


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):  # noqa: A002
    """``torch.isclose``: ``|input - other| <= atol + rtol * |other|`` or equal (infinities of one sign), per
    element. As PyTorch's, both must be tensors of one dtype."""
    a, b = _array(input), _array(other)
    if a.dtype != b.dtype:
        raise RuntimeError(f"isclose: {a.dtype} did not match {b.dtype} (both operands must have one dtype)")
    if rtol < 0 or atol < 0:
        raise RuntimeError(f"isclose: rtol and atol must be non-negative, got rtol={rtol}, atol={atol}")
    if a.dtype.kind == "b":
        return _binary(lambda xp, x, y: x == y, a, b, "isclose")

    def close(xp, x, y):
        x, y = (x.astype(np.float64), y.astype(np.float64)) if x.dtype.kind in "iu" else (x, y)
        with _quiet(xp, over=True):  # (3e38 - -3e38 overflows: not close, as PyTorch's, without numpy's warning)
            out = (x == y) | (xp.isfinite(x) & xp.isfinite(y) & (xp.abs(x - y) <= atol + rtol * xp.abs(y)))
        return out | (xp.isnan(x) & xp.isnan(y)) if equal_nan else out

    return _binary(close, a, b, "isclose")


def eq(input, other):  # noqa: A002
    return _binary(lambda xp, a, b: a == b, input, other, "eq")


def ne(input, other):  # noqa: A002
    return _binary(lambda xp, a, b: a != b, input, other, "ne")


def lt(input, other):  # noqa: A002
    return _binary(lambda xp, a, b: a < b, input, other, "lt")


def le(input, other):  # noqa: A002
    return _binary(lambda xp, a, b: a <= b, input, other, "le")


def gt(input, other):  # noqa: A002
    return _binary(lambda xp, a, b: a > b, input, other, "gt")


def ge(input, other):  # noqa: A002
    return _binary(lambda xp, a, b: a >= b, input, other, "ge")


greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


def logical_and(input, other):  # noqa: A002
    return _binary(lambda xp, a, b: xp.logical_and(a, b), input, other, "logical_and")


def logical_or(input, other):  # noqa: A002
    return _binary(lambda xp, a, b: xp.logical_or(a, b), input, other, "logical_or")


def logical_xor(input, other):  # noqa: A002
    return _binary(lambda xp, a, b: xp.logical_xor(a, b), input, other, "logical_xor")


def logical_not(input):  # noqa: A002
    return _unary(lambda xp, a: xp.logical_not(a), input)


def _integers_only(name, *ops):
    for o in ops:
        dtype = _array(o).dtype
        if dtype.kind not in "biu":
            raise NotImplementedError(f'"{name}" not implemented for {dtype}: bitwise ops take integer or bool '
                                      "tensors, as PyTorch's")


def bitwise_and(input, other):  # noqa: A002
    _integers_only("bitwise_and", input, other)
    return _binary(lambda xp, a, b: xp.bitwise_and(a, b), input, other, "bitwise_and")


def bitwise_or(input, other):  # noqa: A002
    _integers_only("bitwise_or", input, other)
    return _binary(lambda xp, a, b: xp.bitwise_or(a, b), input, other, "bitwise_or")


def bitwise_xor(input, other):  # noqa: A002
    _integers_only("bitwise_xor", input, other)
    return _binary(lambda xp, a, b: xp.bitwise_xor(a, b), input, other, "bitwise_xor")


def bitwise_not(input):  # noqa: A002
    _integers_only("bitwise_not", input)
    return _unary(lambda xp, a: xp.invert(a), input)


__all__ = ["isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit", "isreal", "is_floating_point",
           "is_complex", "isclose", "eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less",
           "less_equal", "not_equal", "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and",
           "bitwise_or", "bitwise_xor", "bitwise_not"]
