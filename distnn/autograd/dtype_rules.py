"""Result dtypes of arithmetic between tensors and constants, typed as PyTorch types them.

numpy's promotion (NEP 50) would move a float32 computation to float64 against a numpy scalar,
an integer tensor, a 0-d float64 tensor, or in integer division; PyTorch does not.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import default_dtype

from .half_rounding import half_number
from .tensor import Tensor
from .tensor_operators import _raw

_HALF = np.dtype(np.float16)


def _weak(tensor, o):
    """A constant operand of an arithmetic operator, typed as PyTorch types it.

    numpy would promote a float32 tensor to float64 against a numpy scalar
    (``np.sqrt(d)``, ``np.float64(2)``), a 0-d array or an int64 array; in
    PyTorch these do not decide the result's dtype. So against a floating
    tensor a numpy scalar or 0-d array becomes a Python scalar (weak, NEP 50)
    and an integer or bool array takes the tensor's dtype.
    """
    t = type(o)
    if t is float:  # (into float16 through float32, as PyTorch's scalar: half_rounding)
        return o if tensor.data.dtype != _HALF else half_number(o)
    if t is Tensor or t is int or tensor.data.dtype.kind != "f":
        return o
    kind = getattr(getattr(o, "dtype", None), "kind", None)
    if kind is None or isinstance(o, Tensor):
        return o
    if getattr(o, "ndim", 1) == 0:
        return o if kind not in "biuf" else o.item() if kind != "f" else _weak(tensor, float(o.item()))
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
    if (t_float and o_float) or (dt.kind in "iu" and do.kind in "iu"):  # (one category: floats, or integers)
        if t.data.ndim == 0 and o.data.ndim != 0:
            return t.astype(do), o
        if o.data.ndim == 0 and t.data.ndim != 0:
            return t, o.astype(dt)
    return t, o


def _sub_operands(t: Tensor, o):
    """:func:`_operands` of ``t - o``, a bool operand refused as PyTorch refuses it (see
    :func:`refuse_bool_subtraction`). The common cases return before any test for bools: two tensors of one
    dtype (bool - bool is refused by ``Sub`` itself, from numpy's TypeError), and a number beside a tensor it
    does not retype (:func:`_sub_constant`), so ``a - b`` and ``a - 1.0`` cost what they did."""
    if not isinstance(o, Tensor):
        return _sub_constant(t, o)
    dt, do = t.data.dtype, o.data.dtype
    if dt == do:
        return t, o
    if dt.kind == "b" or do.kind == "b":
        refuse_bool_subtraction(t, o)
    return _operands(t, o)


def _sub_constant(t: Tensor, o):
    """:func:`_with_constant` of ``t - o`` or ``o - t`` (the caller orders them), a bool refused as PyTorch
    refuses it: a bool tensor, or ``True``/``False`` (a numpy bool is a number to PyTorch)."""
    kind, t_o = t.data.dtype.kind, type(o)
    if (t_o is int and kind != "b") or (t_o is float and kind == "f" and t.data.dtype != _HALF):
        return t, o  # (what _with_constant gives them; a float into float16: rounded there)
    if kind == "b" or t_o is bool:
        refuse_bool_subtraction(t, o)
    return _with_constant(t, o)


def _is_bool(x, arrays: bool) -> bool:
    """A bool tensor or ``True``/``False``; with ``arrays``, a bool array too (what an op's forward sees of a
    tensor). Beside a tensor, PyTorch takes a numpy bool, an array or a scalar, as numbers."""
    if type(x) is bool:
        return True
    raw = x.data if isinstance(x, Tensor) else (x if arrays else None)
    return getattr(getattr(raw, "dtype", None), "kind", None) == "b"


def refuse_bool_subtraction(a, b, arrays: bool = False) -> None:
    """PyTorch refuses ``a - b`` (``sub``, ``rsub``, ``-=``) when an operand is a bool tensor or a Python bool
    (numpy would compute ``1 - mask`` in int64): RuntimeError with PyTorch's message. ``arrays``: a bool array
    counts as a bool tensor (see :func:`_is_bool`)."""
    a_bool, b_bool = _is_bool(a, arrays), _is_bool(b, arrays)
    if a_bool and b_bool:
        raise RuntimeError("Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
                           "`logical_xor()` operator instead.")
    if a_bool or b_bool:
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying "
                           "to invert a mask, use the `~` or `logical_not()` operator instead.")


def refuse_bool_negation(a, arrays: bool = False) -> None:
    """PyTorch refuses ``-mask`` (``neg``) of a bool tensor: RuntimeError with its message."""
    if _is_bool(a, arrays):
        raise RuntimeError("Negation, the `-` operator, on a bool tensor is not supported. If you are trying to "
                           "invert a mask, use the `~` or `logical_not()` operator instead.")


def _opmath_operands(t: Tensor, o):
    """:func:`_operands` of ``t * o``, ``t / o`` or ``o / t``: a Python float beside a float16 tensor is kept as it
    is, not rounded into float16 (PyTorch's mul and div read it as a float32: ``half_scalar_opmath``)."""
    if type(o) is float and t.data.dtype == _HALF:
        return t, o
    return _operands(t, o)


def _with_constant(t: Tensor, o):
    """``t`` and the constant ``o`` of ``t <op> o`` or ``o <op> t`` (the caller orders them).

    An integer or bool tensor against a float constant computes in float32 (PyTorch's default
    dtype; numpy would compute in float64; an integer tensor cannot require grad, so it becomes a
    constant array); otherwise the constant goes through :func:`_weak`.
    """
    kind = t.data.dtype.kind
    if kind == "f":  # the common case first (a float tensor and a constant)
        t_o = type(o)
        if t_o is float:  # (into float16 through float32, as PyTorch's scalar: half_rounding)
            return t, (o if t.data.dtype != _HALF else half_number(o))
        return t, (o if t_o is int else _weak(t, o))
    if kind in "biu" and isinstance(o, (float, np.floating)):
        return t.data.astype(default_dtype()), float(o)
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
    return _raw(x).astype(default_dtype())  # an integer tensor cannot require grad: a constant


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_CATEGORY_DEFAULT = {0: np.dtype(bool), 1: np.dtype(np.int64), 3: np.dtype(np.complex64)}


def torch_operands(*ops):
    """The operands of an n-ary op (``maximum``, ``where``'s values, ``clamp``, ``cat``), cast as
    PyTorch types them: the highest category (bool < integer < float < complex) wins; within it
    the tensors with dimensions decide, then 0-d ones, and numbers only when nothing else is of
    their category (a Python or numpy float with integer tensors: float32). numpy would compute a
    float32 tensor with an int64 one, or with a numpy float64 scalar, in float64.

    Numbers stay numbers (weak, NEP 50; numpy scalars become Python ones); arrays and integer
    tensors (which carry no gradient) are cast as constants; a float tensor through its
    differentiable ``astype``. ``None`` (an absent bound) passes through."""
    first = ops[0] if ops else None
    if isinstance(first, Tensor) and all(isinstance(o, Tensor) and o.data.dtype == first.data.dtype for o in ops):
        return ops  # the common case: one dtype
    ranked = []  # (category, rank: 2 dims, 1 zero-d, 0 a number, dtype or None)
    for o in ops:
        if o is None:
            continue
        raw = o.data if isinstance(o, Tensor) else o
        dtype = getattr(raw, "dtype", None)
        if dtype is None:
            if not isinstance(o, (bool, int, float, complex)):
                return ops  # (not numeric: the op itself says what is wrong)
            kind = "b" if isinstance(o, bool) else "i" if isinstance(o, int) else "f" if isinstance(o, float) else "c"
            ranked.append((_CATEGORY[kind], 0, None))
            continue
        if dtype.kind not in _CATEGORY:
            return ops
        rank = 0 if not _array_like(o) else (2 if raw.ndim else 1)
        ranked.append((_CATEGORY[dtype.kind], rank, dtype))
    if not ranked:
        return ops
    top = max(c for c, _, _ in ranked)
    best = max(r for c, r, _ in ranked if c == top)
    if best == 0:  # only numbers of the top category: its default dtype (float32 for floats)
        result = np.dtype(default_dtype()) if top == 2 else _CATEGORY_DEFAULT[top]
    else:
        result = np.result_type(*[d for c, r, d in ranked if c == top and r == best])
    return tuple(_cast(o, result) for o in ops)


def _cast(o, dtype):
    if type(o) is float and dtype == _HALF:  # (into float16 through float32, as PyTorch's scalar)
        return half_number(o)
    if o is None or type(o) in (bool, int, float, complex):  # (np.float64 is a float too: not weak in numpy)
        return o
    if isinstance(o, Tensor):
        if o.data.dtype == dtype:
            return o
        return o.astype(dtype) if o.data.dtype.kind in "fc" and o.requires_grad else o.data.astype(dtype)
    if not _array_like(o):
        return _cast(o.item(), dtype)  # a numpy scalar: a weak Python number
    return o if o.dtype == dtype else o.astype(dtype)


def _array_like(o) -> bool:
    """A tensor or an array (numpy's, cupy's), not a number (a numpy scalar has a dtype too)."""
    return isinstance(o, (Tensor, np.ndarray)) or hasattr(o, "__cuda_array_interface__")
