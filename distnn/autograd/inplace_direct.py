"""The in-place methods' direct path: with nothing to record, numpy's ufuncs write into the tensor's memory.

The general path of ``x.add_(y)``, ``x.exp_()``, ``x.clamp_(0, 1)``... (:func:`.tensor_inplace_methods.write_inplace`)
runs the out-of-place op (a Function, its checks and dtype rules) and copies its result into ``x``: ~10-20 us on a
64x64 tensor. In their common case nothing is recorded (an optimizer-style update under ``no_grad()``, a tensor that
requires no grad) and the operands are already what the op would compute with; then the same ufuncs, called here
with ``out=``, give the same bits, version bumps and views' values for a fraction of that, and the same silence on
overflow, x / 0 and NaN (numpy's warnings off around the write, see :mod:`.float_errors`).

:func:`direct` takes a call only where that is certain, and returns None for the general path to decide otherwise:

* the tensor is a plain one (Tensor, Parameter, Buffer: a subclass may override what the general path calls), its
  array a writeable numpy array (cupy, read-only memory: the general path) (numpy's error state is the
  general path's own, whatever the caller's: see :mod:`.float_errors`);
* nothing is recorded: grad mode off, or neither the tensor nor a tensor operand requires grad (the general path
  records the op, or refuses a leaf that requires grad);
* the operands are Python numbers (an ``int`` only below 2**53, never a ``bool``) or plain tensors (Tensor,
  Parameter, Buffer) of the tensor's own dtype, shape and kind of array: no promotion, no broadcast, so no
  refusal to copy (the dtype and shape refusals are the general path's);
* the tensor's dtype is one the method takes here (floats; integers where the integer op is exact and torch's);
* the arguments bind as the method's own do (no unknown, repeated or extra one: the general path's TypeError).

Ufuncs that numpy computes through layout-dependent loops (exp, log, tanh, pow, and the choice of a signed zero in
maximum/clip) give the general path's bits only where every array is C-contiguous; elsewhere the out-of-place ufunc
runs and its result is copied, as the general path does. Numpy makes a copy of an input that overlaps the output,
so an operand that aliases the tensor (``x.add_(x)``, a view of it) reads the old values, as there.
"""
from __future__ import annotations

import numpy as np

from .float_errors import ALL_IGNORED as _ALL_IGNORED, FP_STATE as _FP_STATE
from .half_rounding import half_number
from .grad_mode import _state as _grad_state
from .inplace_gate import _before_inplace_write

_set_fp_state, _reset_fp_state = _FP_STATE.set, _FP_STATE.reset  # (bound once: the hottest in-place path)
_EXACT_INT = 2 ** 53  # (a larger int is left to the general path and its rules)
_PLAIN_TENSORS = None  # Tensor, Parameter, Buffer (set at the first call: they import this module)


def number(x) -> bool:
    """Whether ``x`` is a Python number the direct path takes (a float, or an int numpy holds exactly)."""
    return type(x) is float or (type(x) is int and -_EXACT_INT < x < _EXACT_INT)


def same_array(data, other):
    """``other``'s array where ``other`` is a plain tensor of ``data``'s dtype, shape and array type, else None."""
    if type(other) in _PLAIN_TENSORS:  # (set by direct's first call)
        odata = other.data
        if type(odata) is type(data) and odata.dtype == data.dtype and odata.shape == data.shape:
            return odata
    return None


def records(t, *operands) -> bool:
    """Whether the general path would record the op (grad mode on, and ``t`` or a tensor operand requires grad)."""
    if not _grad_state.enabled:
        return False
    if t.requires_grad:
        return True
    for o in operands:
        if getattr(o, "requires_grad", False):
            return True
    return False


def bind(args, kwargs, names, defaults, positional=None):
    """``args`` and ``kwargs`` bound to ``names`` (``defaults``: the values of those not given; the names past the
    first ``positional`` are keyword-only), or None where the method's own binding would refuse them or take them
    another way (the general path then decides)."""
    if len(args) > (len(names) if positional is None else positional):
        return None
    if not kwargs:
        return (*args, *defaults[len(args):])
    bound = list(args) + list(defaults[len(args):])
    given = 0
    for i, name in enumerate(names):
        if name in kwargs:
            if i < len(args):
                return None  # (given twice)
            bound[i] = kwargs[name]
            given += 1
    return bound if given == len(kwargs) else None


def _half_opmath(t, data, ufunc, number):
    """float16 ``mul_``/``div_`` by a number: in float32, rounded once into ``data``, as PyTorch's opmath (numpy
    would round the number to float16 first: see distnn.functional.half_scalar_opmath)."""
    from distnn.functional.half_scalar_opmath import half_over_number, half_times_number

    result = (half_times_number if ufunc is np.multiply else half_over_number)(data, number)
    _before_inplace_write(t)
    data[...] = result
    t._bump_version()
    return t


def _plain_tensors():
    global _PLAIN_TENSORS
    from distnn.nn.module import Buffer, Parameter

    from .tensor import Tensor

    _PLAIN_TENSORS = frozenset((Tensor, Parameter, Buffer))
    return _PLAIN_TENSORS


# ---------------------------------------------------------------- add_, sub_, mul_, div_ (alpha=)
_ARITHMETIC = {"add_": np.add, "sub_": np.subtract, "mul_": np.multiply, "div_": np.true_divide}
_TAKES_ALPHA = (np.add, np.subtract)


def _arithmetic(t, data, ufunc, args, kwargs):
    """``add_``/``sub_``/``mul_``/``div_``: one ufunc, ``alpha`` applied to the operand first (as ``alpha_scaled``).
    Arithmetic is exactly rounded, so any layout gives the general path's bits."""
    if len(args) != 1 or data.dtype.kind != "f":
        return None
    other = args[0]
    alpha = 1
    if kwargs:
        if ufunc not in _TAKES_ALPHA or len(kwargs) != 1 or "alpha" not in kwargs:
            return None
        alpha = kwargs["alpha"]
        if not number(alpha):
            return None
    # (number() and records() written out: this is the hottest of the writers, and a call costs ~0.1 us)
    if type(other) is float or (type(other) is int and -_EXACT_INT < other < _EXACT_INT):
        operand = other
        if data.dtype == np.float16:
            if ufunc in _TAKES_ALPHA:
                if type(other) is float:
                    operand = half_number(other)  # (into float16 through float32, as PyTorch's scalar: half_rounding)
            elif not (_grad_state.enabled and t.requires_grad):
                return _half_opmath(t, data, ufunc, other)
    else:
        operand = same_array(data, other)
        if operand is None or (_grad_state.enabled and other.requires_grad):
            return None
    if _grad_state.enabled and t.requires_grad:
        return None
    if alpha != 1:
        if data.dtype.itemsize <= 8:
            # PyTorch's one kernel, its rounding, written in place (see distnn.functional.scaled_sum); a number
            # cast to the dtype first
            if type(operand) is not np.ndarray:
                operand = np.asarray(operand).astype(data.dtype)
            _before_inplace_write(t)
            (_SCALED_SUM or _scaled_sum())(data, operand, alpha if ufunc is np.add else -alpha, data)  # (out: data)
            t._bump_version()
            return t
        operand = operand * alpha  # (longdouble: the general path's two ops, alpha_scaled's product first)
    _before_inplace_write(t)
    ufunc(data, operand, out=data)  # (direct() has set numpy's silence: x / 0, overflow... as the general path)
    t._bump_version()
    return t


def _scaled_sum():
    global _SCALED_SUM
    from distnn.functional.scaled_sum import scaled_sum  # (distnn.functional imports this package)

    _SCALED_SUM = scaled_sum
    return _SCALED_SUM


_SCALED_SUM = None


def direct(t, name: str, args, kwargs):
    """``t`` after the direct write of the in-place method ``name`` called with ``args`` and ``kwargs``, or None
    where the general path must run it (see the module docstring)."""
    data = t.data
    if type(data) is not np.ndarray or not data.flags.writeable or type(t) not in (_PLAIN_TENSORS or _plain_tensors()):
        return None  # (a subclass of Tensor may override the operators the general path calls)
    # (overflow, inf - inf, x / 0: inf or NaN, silently, as the general path's ops: see float_errors)
    token = _set_fp_state(_ALL_IGNORED)
    try:
        ufunc = _ARITHMETIC.get(name)
        if ufunc is not None:
            return _arithmetic(t, data, ufunc, args, kwargs)
        return _writers()[name](t, data, args, kwargs)
    finally:
        _reset_fp_state(token)


def _writers():
    global _WRITERS
    if _WRITERS is None:
        from .inplace_direct_ops import WRITERS

        _WRITERS = WRITERS
    return _WRITERS


_WRITERS = None
# the methods :func:`direct` takes (the others' names are not looked up there)
NAMES = frozenset((*_ARITHMETIC, "neg_", "abs_", "sqrt_", "exp_", "log_", "tanh_", "relu_", "sigmoid_", "pow_",
                   "clamp_", "clip_", "clamp_min_", "clamp_max_", "copy_", "addcmul_", "addcdiv_", "lerp_"))
