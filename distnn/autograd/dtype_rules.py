"""Result dtypes of arithmetic between tensors and constants, typed as PyTorch types them.

numpy's promotion (NEP 50) would move a float32 computation to float64 against a numpy scalar,
an integer tensor, a 0-d float64 tensor, or in integer division; PyTorch does not.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import DEFAULT_DTYPE

from .tensor import Tensor, _raw

def _weak(tensor, o):
    """A constant operand of an arithmetic operator, typed as PyTorch types it.

    numpy would promote a float32 tensor to float64 against a numpy scalar
    (``np.sqrt(d)``, ``np.float64(2)``), a 0-d array or an int64 array; in
    PyTorch these do not decide the result's dtype. So against a floating
    tensor a numpy scalar or 0-d array becomes a Python scalar (weak, NEP 50)
    and an integer or bool array takes the tensor's dtype.
    """
    t = type(o)
    if t is Tensor or t is float or t is int or tensor.data.dtype.kind != "f":
        return o
    kind = getattr(getattr(o, "dtype", None), "kind", None)
    if kind is None or isinstance(o, Tensor):
        return o
    if getattr(o, "ndim", 1) == 0:
        return o.item() if kind in "biuf" else o
    return o.astype(tensor.data.dtype) if kind in "biu" else o


def _operands(t: Tensor, o):
    """``t`` and ``o`` of ``t <op> o``, typed as PyTorch types them.

    A constant goes through :func:`_weak`. Between two tensors numpy would
    promote an integer tensor times a float32 one, or a float32 tensor times a
    0-d float64 one, to float64; in PyTorch the float operand decides (an
    integer or bool tensor takes the float tensor's dtype), and a 0-d tensor
    does not decide against a tensor with dimensions of its own category.
    """
    if not isinstance(o, Tensor):
        return _with_constant(t, o)
    dt, do = t.data.dtype, o.data.dtype
    if dt == do or dt.kind not in "biuf" or do.kind not in "biuf":
        return t, o
    t_float, o_float = dt.kind == "f", do.kind == "f"
    if t_float and not o_float:
        return t, o.data.astype(dt)  # an integer tensor cannot require grad: a constant
    if o_float and not t_float:
        return t.data.astype(do), o
    if t_float and o_float:
        if t.data.ndim == 0 and o.data.ndim != 0:
            return t.astype(do), o
        if o.data.ndim == 0 and t.data.ndim != 0:
            return t, o.astype(dt)
    return t, o


def _with_constant(t: Tensor, o):
    """``t`` and the constant ``o`` of ``t <op> o`` or ``o <op> t`` (the caller orders them).

    An integer or bool tensor against a float constant computes in float32 (PyTorch's default
    dtype; numpy would compute in float64; an integer tensor cannot require grad, so it becomes a
    constant array); otherwise the constant goes through :func:`_weak`.
    """
    kind = t.data.dtype.kind
    if kind == "f":  # the common case first (a float tensor and a constant)
        t_o = type(o)
        return t, (o if t_o is float or t_o is int else _weak(t, o))
    if kind in "biu" and isinstance(o, (float, np.floating)):
        return t.data.astype(DEFAULT_DTYPE), float(o)
    return t, _weak(t, o)


def _true_division(a, b):
    """PyTorch's ``/`` of integers is a float of the default dtype (numpy's is float64)."""
    if _integer(a) and _integer(b):
        return _to_default_float(a), _to_default_float(b)
    return a, b


def _integer(x) -> bool:
    if isinstance(x, (bool, int)):
        return True
    kind = getattr(getattr(_raw(x), "dtype", None), "kind", None)
    return kind is not None and kind in "biu"


def _to_default_float(x):
    if isinstance(x, (bool, int)):
        return float(x)  # weak: the tensor operand's float32 decides
    return _raw(x).astype(DEFAULT_DTYPE)  # an integer tensor cannot require grad: a constant
