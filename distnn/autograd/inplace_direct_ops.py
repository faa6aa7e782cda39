"""The direct path's writers for the in-place methods other than ``add_``/``sub_``/``mul_``/``div_`` (see
:mod:`.inplace_direct` for when each is taken). Each mirrors the array code of the op the general path runs
(named beside it): the same ufuncs on the same operands in the same order, so the same bits; the difference is
that they write into the tensor's memory. :func:`.inplace_direct.direct`, their one caller, runs them with numpy's
floating-point warnings off, as the general path's ops run (:mod:`.float_errors`): none of them sets a state.

A writer returns the tensor, or None (before anything is written) for the general path to run the call.
"""
from __future__ import annotations

import operator

import numpy as np

from .grad_mode import _state as _grad_state
from .inplace_direct import bind, number, records, same_array
from .inplace_gate import _before_inplace_write
from .sqrt_nan import sqrt_array


def _unary(ufunc, kinds: str):
    """A method ``name_()`` whose op is ``ufunc(x)`` (``Exp``: ``xp.exp(a)``)."""

    def write(t, data, args, kwargs):
        if args or kwargs or data.dtype.kind not in kinds or records(t):
            return None
        _before_inplace_write(t)
        if data.flags.c_contiguous:
            ufunc(data, out=data)
        else:  # (the out-of-place loop: numpy's in-place one over other strides may round otherwise)
            data[...] = ufunc(data)
        t._bump_version()
        return t

    return write


def _sqrt(t, data, args, kwargs):
    """``Sqrt``: :func:`.sqrt_array` (PyTorch's NaN at a negative number), computed into a new array first: in
    place, a negative number's NaN could not be told from a NaN that was there."""
    if args or kwargs or data.dtype.kind != "f" or records(t):
        return None
    _before_inplace_write(t)
    data[...] = sqrt_array(data)
    t._bump_version()
    return t


def _relu(t, data, args, kwargs):
    """``ReLU``: ``xp.maximum(x, 0)`` (integers too, as torch's relu)."""
    if args or kwargs or data.dtype.kind not in "fi" or records(t):
        return None
    _before_inplace_write(t)
    if data.flags.c_contiguous:
        np.maximum(data, 0, out=data)
    else:  # (maximum's choice between -0.0 and 0 depends on numpy's loop)
        data[...] = np.maximum(data, 0)
    t._bump_version()
    return t


def _sigmoid(t, data, args, kwargs):
    """``Sigmoid``: ``sigmoid_array``'s ``where(x >= 0, 1, e) / (1 + e)`` with ``e = exp(-|x|)``, its temporaries
    reused (``e`` is a fresh C-contiguous array, so ``exp`` in place takes the out-of-place loop). The numerator is
    ``maximum(e, x >= 0)``: the same bits, as ``0 <= e <= 1`` (``e`` is 1 at ``x = 0``, and a NaN ``e`` wins
    either way), with no branch per element: the ``where`` of a mask of mixed signs costs several times more."""
    if args or kwargs or data.dtype.kind != "f" or records(t):
        return None
    _before_inplace_write(t)
    if data.flags.c_contiguous and data.ndim:  # (numpy gives a 0-d array's results as scalars, not arrays)
        e = np.absolute(data)
        np.negative(e, out=e)
        np.exp(e, out=e)
        numerator = np.empty_like(e)
        np.copyto(numerator, np.greater_equal(data, 0))  # (1 where x >= 0, else 0)
        np.maximum(e, numerator, out=numerator)
        np.add(1, e, out=e)
        np.true_divide(numerator, e, out=data)
    else:
        from distnn.functional.activation import sigmoid_array

        data[...] = sigmoid_array(data)
    t._bump_version()
    return t


def _pow(t, data, args, kwargs):
    """``PowConstant`` with a number exponent: ``a ** b`` (numpy's ``**`` and
    ``**=`` take the same square/sqrt/reciprocal forms), ``1 / sqrt(a)`` for -0.5 (``_rsqrt``)."""
    bound = bind(args, kwargs, ("exponent",), (None,))
    if bound is None or not number(bound[0]) or data.dtype.kind != "f" or records(t):
        return None
    exponent = bound[0]
    if data.dtype == np.float16 and type(exponent) is float and abs(exponent) == 0.5:
        return None  # (float16 takes C's pow there, not sqrt: ``_number_pow``'s fix-up is the general path's)
    _before_inplace_write(t)
    if type(exponent) is float and exponent == -0.5:  # (correctly rounded steps: any layout)
        np.sqrt(data, out=data)
        np.true_divide(1, data, out=data)
    elif type(exponent) is float and exponent == 0.5:  # (sqrt, with PyTorch's NaN at a negative number)
        data[...] = sqrt_array(data)
    elif data.flags.c_contiguous:
        operator.ipow(data, exponent)
    else:
        data[...] = data ** exponent
    t._bump_version()
    return t


def _bound(data, value):
    """A clamp bound as ``Clip.forward`` receives it (None, a number, an array), or False: the general path's."""
    if value is None:
        return None
    if data.dtype.kind == "f":
        if type(value) in (float, int) and -65504 <= value <= 65504:  # (fits every float dtype; else the general
            return value  # path's range check)
    elif type(value) is int:  # (an integer tensor: an int bound the dtype holds; a float one is refused there)
        info = np.iinfo(data.dtype)
        if info.min <= value <= info.max:
            return value
    array = same_array(data, value)
    return False if array is None else array


def _clamp(which):
    """``clamp_``/``clip_`` (``which`` None), ``clamp_min_`` ("min"), ``clamp_max_`` ("max"): ``Clip.forward``'s
    ``xp.clip(a, lo, hi)``. Bounds both numbers or both tensors (torch has no overload that mixes them)."""
    names = ("min", "max") if which is None else (which,)

    def write(t, data, args, kwargs):
        bound = bind(args, kwargs, names, (None,) * len(names))
        if bound is None or data.dtype.kind not in "fiu":
            return None
        lo, hi = (bound[0], None) if which == "min" else (None, bound[0]) if which == "max" else bound
        low, high = _bound(data, lo), _bound(data, hi)
        if low is False or high is False or (low is None and high is None):
            return None
        tensors = (type(low) is np.ndarray) + (type(high) is np.ndarray)
        if tensors and tensors != (low is not None) + (high is not None):
            return None
        if tensors and records(t, lo, hi) or _grad_state.enabled and t.requires_grad:
            return None
        _before_inplace_write(t)
        # (numpy's clip takes maximum for a lower bound alone, minimum for an upper one: called here at once, ~1 us
        # of argument handling less; its choice between -0.0 and 0 depends on the loop, so in place only where
        # every array is C-contiguous)
        contiguous = data.flags.c_contiguous and (not tensors or all(
            b is None or b.flags.c_contiguous for b in (low, high)))
        if not contiguous:
            data[...] = data.clip(low, high)
        elif high is None:
            np.maximum(data, low, out=data)
        elif low is None:
            np.minimum(data, high, out=data)
        else:
            data.clip(low, high, out=data)
        t._bump_version()
        return t

    return write


def _copy(t, data, args, kwargs):
    """``copy_(src)`` from a plain tensor of the same dtype and shape: ``t.data[...] = src`` (numpy copies an
    overlapping source first)."""
    bound = bind(args, kwargs, ("src", "non_blocking"), (None, False))
    if bound is None:
        return None
    src = same_array(data, bound[0])
    if src is None or (data.dtype.kind in "fc" and records(t, bound[0])):
        return None
    _before_inplace_write(t)
    data[...] = src
    t._bump_version()
    return t


def _addc(divide: bool):
    """``addcmul_``/``addcdiv_``: ``input + value * tensor1 * tensor2`` (``/ tensor2``) as the general path's
    Tensor operators compute it: ``value * t1`` (``Mul``), then ``* t2`` (``Mul``) or ``/ t2`` (``Div``, quiet),
    then ``input + `` (``Add``). Exactly rounded steps: any layout gives the same bits."""

    def write(t, data, args, kwargs):
        bound = bind(args, kwargs, ("tensor1", "tensor2", "value"), (None, None, 1), positional=2)
        if bound is None or data.dtype.kind != "f" or not number(bound[2]):
            return None
        t1, t2 = same_array(data, bound[0]), same_array(data, bound[1])
        if t1 is None or t2 is None or records(t, bound[0], bound[1]):
            return None
        _before_inplace_write(t)
        if data.dtype == np.float16 and type(bound[2]) is not bool:  # (PyTorch's float32 kernel: half_addc)
            from distnn.functional.half_addc import half_addcdiv_array, half_addcmul_array

            data[...] = (half_addcdiv_array if divide else half_addcmul_array)(data, t1, t2, bound[2])
            t._bump_version()
            return t
        scaled = np.multiply(bound[2], t1, out=_scratch(data))
        (np.true_divide if divide else np.multiply)(scaled, t2, out=scaled)
        np.add(data, scaled, out=data)
        t._bump_version()
        return t

    return write


def _scratch(data):
    """A new array for an intermediate result (an array also where ``data`` is 0-d: numpy's would be a scalar)."""
    return np.empty(data.shape, data.dtype)


def _lerp(t, data, args, kwargs):
    """``lerp_(end, weight)`` with a number weight: ``Lerp.forward``'s ``where(|w| < 0.5, start + w * diff,
    end - diff * (1 - w))``, ``w`` in the tensor's dtype. The condition is one number, so only its branch is
    computed (the other's warnings, an inf in ``start`` or ``end``, are silenced here as there)."""
    bound = bind(args, kwargs, ("end", "weight"), (None, None))
    if bound is None or data.dtype.kind != "f" or not number(bound[1]):
        return None
    end = same_array(data, bound[0])
    if end is None or records(t, bound[0]):
        return None
    _before_inplace_write(t)
    weight = np.asarray(bound[1], dtype=data.dtype)
    # (0-d: numpy computes 0-d operands' results as scalars, whose NaNs may take another sign; float16: computed in
    # float32 from the number weight, there)
    if not data.ndim or data.dtype == np.float16:
        from distnn.functional.pointwise_binary import lerp_array

        data[...] = lerp_array(data, end, bound[1])
        t._bump_version()
        return t
    diff = np.subtract(end, data, out=_scratch(data))
    if abs(weight) < 0.5:
        np.multiply(weight, diff, out=diff)
        np.add(data, diff, out=data)
    else:
        np.multiply(diff, 1 - weight, out=diff)
        np.subtract(end, diff, out=data)
    t._bump_version()
    return t


WRITERS = {
    "neg_": _unary(np.negative, "fi"), "abs_": _unary(np.absolute, "fi"), "sqrt_": _sqrt,
    "exp_": _unary(np.exp, "f"), "log_": _unary(np.log, "f"), "tanh_": _unary(np.tanh, "f"), "relu_": _relu, "sigmoid_": _sigmoid, "pow_": _pow,
    "clamp_": _clamp(None), "clip_": _clamp(None), "clamp_min_": _clamp("min"), "clamp_max_": _clamp("max"), "copy_": _copy,
    "addcmul_": _addc(False), "addcdiv_": _addc(True), "lerp_": _lerp,
}
