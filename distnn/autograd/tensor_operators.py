"""Tensor's operators (``+``, ``-=``, ``<``, ``x[i]``, ...) and its methods that are one op each (``exp``,
``sum``, ...; the shape methods are in :mod:`.tensor_shape_methods`): a mixin of
:class:`~distnn.autograd.tensor.Tensor`.

Kept apart from ``tensor.py`` (the core: data, gradients, versions, conversion) so that each file stays
readable. The ops these methods call import Tensor themselves: their names are bound by
:func:`_bind_late`, which ``tensor.py`` calls once the class exists.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import get_array_module

from .float_errors import ALL_IGNORED as _ALL_IGNORED, FP_STATE as _FP_STATE
from .grad_mode import is_grad_enabled
from .half_rounding import into_half
from .tensor_comparisons import TensorComparisons  # noqa: F401 - (tensor.py's base class, imported from here)
from .unset_defaults import EVERY_DIM, NO_OUT, NOT_KEPT, UNBIASED

_NDARRAY = np.ndarray

_set_fp_state, _reset_fp_state = _FP_STATE.set, _FP_STATE.reset


class TensorOperators:
    """Operators and one-op methods of :class:`~distnn.autograd.tensor.Tensor` (no state of its own)."""

    __slots__ = ()

    # ---------------------------------------------------------- arithmetic
    def __add__(self, o):
        if type(o) is _sparse_type:  # dense + sparse is dense, as PyTorch's (see distnn.sparse)
            return o.__radd__(self)
        return E.Add.apply(*_operands(self, o))

    def __radd__(self, o):
        t, c = _with_constant(self, o)
        return E.Add.apply(c, t)

    def __sub__(self, o):
        if type(o) is _sparse_type:
            return o.__rsub__(self)
        return E.Sub.apply(*_sub_operands(self, o))  # (a bool operand refused, as PyTorch's)

    def __rsub__(self, o):
        t, c = _sub_constant(self, o)
        return E.Rsub.apply(c, t)

    def __mul__(self, o):
        if type(o) is _sparse_type:  # dense * sparse is sparse, as PyTorch's
            return o.__rmul__(self)
        return E.Mul.apply(*_opmath_operands(self, o))

    def __rmul__(self, o):
        t, c = _opmath_operands(self, o)
        return E.Mul.apply(c, t)

    def __truediv__(self, o):
        return E.Div.apply(*_true_division(*_opmath_operands(self, o)))

    def __rtruediv__(self, o):
        t, c = _opmath_operands(self, o)
        c, t = _true_division(c, t)
        return E.ReciprocalScaled.apply(t, c=c)  # (PyTorch's way: its backward reads no tensor of the caller's)

    def __pow__(self, o):
        op, a, b = _pow_call(self, o)  # (bool operands take PyTorch's rules: see bool_pow)
        return op.apply(a, b)

    def __rpow__(self, o):
        return E.NumberPow.apply(*reversed(_rpow_operands(self, o)))  # (the number base first)

    def __matmul__(self, o):
        if type(o) is _sparse_type:  # dense @ sparse is dense, as PyTorch's
            return o.__rmatmul__(self)
        return E.MatMul.apply(self, o)

    def __rmatmul__(self, o):
        return E.MatMul.apply(o, self)

    def __neg__(self):
        return E.Neg.apply(self)

    # In-place operators (``p -= lr * p.grad``). Without them Python would rebind the name to a new
    # tensor: the parameter a loop or an attribute names would silently stay unchanged (or drop out
    # of the module). Under no_grad(), or when no operand requires grad, the array changes in place
    # (and every view of it), and its version is bumped so that a graph which saved it refuses to
    # backward (PyTorch's check). On a leaf that requires grad while recording they are an error, as
    # in PyTorch. Otherwise (recording) the result is computed by the out-of-place op, then written
    # into this tensor's memory, which takes the op's graph node: see distnn/autograd/inplace.py.
    def _inplace(self, ufunc_name, o, out_of_place):
        _before_inplace_write(self)
        if not _records(self, o):
            operand = _weak(self, _raw(o))
            if type(operand) is _NDARRAY and type(self.data) is not _NDARRAY:  # (a host array beside GPU data:
                operand = _beside(self, operand)  # copied over, as __setitem__'s; cupy's ufuncs refuse it)
            token = _set_fp_state(_ALL_IGNORED)  # (overflow, inf - inf, x / 0: inf or NaN, silently, as PyTorch's)
            try:
                getattr(get_array_module(self.data), ufunc_name)(self.data, operand, out=self.data,
                                                                casting="same_kind")
            except ValueError:
                _refuse_inplace_broadcast(self, operand)
                raise
            finally:
                _reset_fp_state(token)
            self._bump_version()
            return self
        check_writable(self)
        with deferring() as deferred:  # (the nodes made here are packed by write_result, after its copies)
            result = out_of_place(self, o)
            if result.shape != self.shape:
                raise RuntimeError(f"output with shape {list(self.shape)} doesn't match the broadcast shape "
                                   f"{list(result.shape)}")
            op_node = result._node
            if result.dtype != self.dtype:
                if not np.can_cast(result.dtype, self.dtype, casting="same_kind"):
                    raise TypeError(f"in-place operation: result type {result.dtype} cannot be cast to the tensor's "
                                    f"dtype {self.dtype}")
                result = result.astype(self.dtype)
        return write_result(self, result, op_node, deferred)

    def _take_inplace(self, result: "Tensor", deferred=()) -> "Tensor":
        """``self`` takes ``result`` (shape, dtype) as an in-place op's outcome (``F.relu(x, inplace=True)``): its
        memory is overwritten (views see the change); while recording it takes the result's graph node too, as
        ``x += y`` does (``deferred``: what ``inplace.deferring`` noted computing ``result``). Returns ``self``."""
        if result is self:  # (an identity, e.g. dropout in evaluation: nothing changes)
            return self
        _before_inplace_write(self)
        if result.dtype != self.dtype:  # (an activation of an integer tensor: PyTorch refuses it too)
            raise TypeError(f"in-place operation: the result's dtype {result.dtype} cannot be stored in the "
                            f"tensor's dtype {self.dtype}; drop inplace=True or convert the tensor first")
        if not _records(self, None):
            self.data[...] = result.data
            self._bump_version()
            return self
        check_writable(self)
        return write_result(self, result, result._node, deferred)

    def __iadd__(self, o):
        return self._inplace("add", o, TensorOperators.__add__)

    def __isub__(self, o):
        _sub_operands(self, o)  # (refuses a bool operand, as PyTorch: numpy would subtract a mask from floats)
        try:
            return self._inplace("subtract", o, TensorOperators.__sub__)
        except TypeError:  # (numpy refuses bool -= bool: PyTorch's error instead)
            refuse_bool_subtraction(self, o)
            raise

    def __imul__(self, o):
        return self._inplace("multiply", o, TensorOperators.__mul__)

    def __itruediv__(self, o):
        return self._inplace("true_divide", o, TensorOperators.__truediv__)

    def __getitem__(self, index):
        raw = _raw_index(index)
        t = S.GetItem.apply(self, index=raw)
        if t._vc is not None and t._vc is self._vc:  # a view: an in-place change of it reaches this tensor
            # (its base held strongly, as PyTorch's view._base: ``y[:, 0][1:]`` is a view of y through a
            # temporary, which must stay known or y's in-place changes would be refused while it lives)
            t.__dict__["_view_of"] = (self, raw)
        if t._node is not None and raw is not index:  # (a Tensor among the indices: version-checked too)
            _note_index_versions(t, index)
        return t

    def __setitem__(self, index, value):
        """``x[index] = value`` as in PyTorch, always in place (views and shared arrays see it). While recording,
        the tensor's gradient is zero where it was overwritten, and ``value`` gets that of the positions written."""
        _before_inplace_write(self)
        original, index = index, _raw_index(index)
        try:
            if isinstance(value, Tensor):  # (PyTorch's rules where numpy's differ: see setitem_rules)
                index, discards = setitem_index(self, index, value)
                if discards:
                    with silently_discarding(warn=discards == "warn"):
                        return self._write_at(index, value, original)
            else:
                value = number_value(self, value)
            self._write_at(index, value, original)
        except ValueError:  # (numpy's broadcast refusal: PyTorch's words instead)
            refuse_unbroadcastable(self, index, value)
            raise

    def _write_at(self, index, value, original):  # (__setitem__'s write: ``index`` raw, ``original`` as given)
        if not _records(self, value):
            self.data[index] = into_half(_beside(self, _weak(self, _raw(value))), self.data.dtype)
            self._bump_version()
            return
        check_writable(self)
        write_index(self, index, _beside(self, _weak(self, value)), original)  # (into_half there)

    # ---------------------------------------------------- methods as in numpy/torch
    def exp(self):
        return E.exp(self)

    def log(self):
        return E.log(self)

    def sqrt(self):
        return E.sqrt(self)

    def abs(self):
        return E.Abs.apply(self)

    def clamp(self, *args, **kwargs):
        """``Tensor.clamp(min=None, max=None)``: :func:`distnn.clamp` of this tensor."""
        lo, hi, call = _clamp_call("clamp", self, args, kwargs, method=True)  # (PyTorch's argument rules, errors)
        return _clamp_method_result(self, *_clamp_bounds("clamp", self, lo, hi, method=True, call=call))

    def clip(self, *args, **kwargs):
        """``Tensor.clip(min=None, max=None)``: :func:`distnn.clip` of this tensor."""
        lo, hi, call = _clamp_call("clip", self, args, kwargs, method=True)  # (PyTorch's argument rules, errors)
        return _clamp_method_result(self, *_clamp_bounds("clip", self, lo, hi, method=True, call=call))

    def clamp_min(self, *args, **kwargs):
        """``Tensor.clamp_min(min)``: :func:`distnn.clamp_min` of this tensor."""
        bound, _ = _one_bound_call("clamp_min", self, args, kwargs, "min", method=True)
        return _functional_clamp_min(self, bound)

    def clamp_max(self, *args, **kwargs):
        """``Tensor.clamp_max(max)``: :func:`distnn.clamp_max` of this tensor."""
        bound, _ = _one_bound_call("clamp_max", self, args, kwargs, "max", method=True)
        return _functional_clamp_max(self, bound)

    # Reductions take PyTorch's dim/keepdim (x.max(1) is (values, indices), var is unbiased) or
    # numpy's axis/keepdims/ddof with numpy's meaning: see distnn.functional.reduce.
    def sum(self, dim=EVERY_DIM, keepdim=NOT_KEPT, *, dtype=None, axis=EVERY_DIM, keepdims=None, out=NO_OUT):
        """``Tensor.sum(dim, keepdim, dtype=)``: :func:`distnn.sum` of this tensor (no ``out``, and no ``keepdim``
        without ``dim``, as PyTorch's method: :mod:`distnn.functional.reduce_arguments`)."""
        if out is not NO_OUT or keepdim is not NOT_KEPT and (keepdim is None or dim is EVERY_DIM
                                                             and axis is EVERY_DIM and keepdims is None):
            _refuse_reduce_method_call("sum", dim, keepdim, dtype, out)
        return R.sum(self, dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)

    def mean(self, dim=EVERY_DIM, keepdim=NOT_KEPT, *, dtype=None, axis=None, keepdims=None, out=NO_OUT):
        """``Tensor.mean(dim, keepdim, dtype=)``: as :meth:`sum` (no ``out``, no ``keepdim`` without ``dim``)."""
        if out is not NO_OUT or keepdim is not NOT_KEPT and (keepdim is None or dim is EVERY_DIM and axis is None
                                                             and keepdims is None):
            _refuse_reduce_method_call("mean", dim, keepdim, dtype, out)
        return R.mean(self, dim, keepdim, dtype=dtype, axis=axis, keepdims=keepdims)

    def max(self, dim=EVERY_DIM, keepdim=NOT_KEPT, *, axis=None, keepdims=None):
        if dim is None or dim is EVERY_DIM and keepdim is not NOT_KEPT:  # (PyTorch's parser's refusal, maybe)
            _refuse_extremum_arguments("max", True, self, dim, keepdim, axis, keepdims)
        return R.max(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def min(self, dim=EVERY_DIM, keepdim=NOT_KEPT, *, axis=None, keepdims=None):
        if dim is None or dim is EVERY_DIM and keepdim is not NOT_KEPT:  # (PyTorch's parser's refusal, maybe)
            _refuse_extremum_arguments("min", True, self, dim, keepdim, axis, keepdims)
        return R.min(self, dim, keepdim, axis=axis, keepdims=keepdims)

    def var(self, dim=EVERY_DIM, unbiased=UNBIASED, keepdim=NOT_KEPT, *, axis=None, ddof=None, correction=None,
            keepdims=None, out=NO_OUT):
        _spread_method_checks("var", dim, unbiased, keepdim, axis, ddof, correction, keepdims, out)
        return R.var(self, dim, unbiased, keepdim, axis=axis, ddof=ddof,
                     correction=correction, keepdims=keepdims)

    def std(self, dim=EVERY_DIM, unbiased=UNBIASED, keepdim=NOT_KEPT, *, axis=None, ddof=None, correction=None,
            keepdims=None, out=NO_OUT):
        _spread_method_checks("std", dim, unbiased, keepdim, axis, ddof, correction, keepdims, out)
        return R.std(self, dim, unbiased, keepdim, axis=axis, ddof=ddof,
                     correction=correction, keepdims=keepdims)

    def argmax(self, dim=None, keepdim=False, *, axis=None):
        return R.argmax(self, dim, keepdim, axis=axis)

    def argmin(self, dim=None, keepdim=False, *, axis=None):
        return R.argmin(self, dim, keepdim, axis=axis)

    def relu(self):
        return A.relu(self)

    def tanh(self):
        return A.tanh(self)

    def sigmoid(self):
        return A.sigmoid(self)

    def softmax(self, axis=-1, dim=None):
        return A.softmax(self, axis, dim)

    def log_softmax(self, axis=-1, dim=None):
        return A.log_softmax(self, axis, dim)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _refuse_inplace_broadcast(t: Tensor, operand) -> None:
    """PyTorch's RuntimeError for ``t <op>= operand`` once numpy refused it: operands that do not broadcast, or a
    broadcast shape other than ``t``'s (else the caller re-raises numpy's error)."""
    from distnn.functional._elementwise_common import _check_broadcast

    _check_broadcast(t.data, operand, "in-place")
    shape = np.broadcast_shapes(t.shape, getattr(operand, "shape", ()))
    if shape != tuple(t.shape):
        raise RuntimeError(f"output with shape {list(t.shape)} doesn't match the broadcast shape "
                           f"{list(shape)}") from None


def _records(t: Tensor, o) -> bool:
    """Whether ``t <op>= o`` is recorded (else it changes ``t``'s array in place)."""
    return is_grad_enabled() and (t.requires_grad or (isinstance(o, Tensor) and o.requires_grad))


def _raw_index(index):
    if isinstance(index, tuple):
        return tuple(_raw(i) for i in index)
    return _raw(index)


# distnn.sparse.SparseTensor, set when distnn.sparse is imported (None until then: no type is None)
_sparse_type = None


def _spread_method_checks(name, dim, unbiased, keepdim, axis, ddof, correction, keepdims, out) -> None:
    """``Tensor.var``/``std``'s refusals as PyTorch's parser's: a None for a bool (and ``unbiased`` beside
    ``correction``, or beside ``keepdim`` without ``dim``), where numpy's keywords are not used; ``out=``, which
    the methods do not take; a bool where ``dim`` goes (``unbiased``) beside other arguments."""
    if (unbiased is not UNBIASED or keepdim is None) and axis is None and ddof is None and keepdims is None:
        _refuse_spread_flags(name, dim, unbiased, keepdim, correction)
    if out is not NO_OUT or dim is True or dim is False:
        _check_spread_method(name, out, None if dim is EVERY_DIM else dim, keepdim,
                             None if unbiased is UNBIASED else unbiased, correction)


def _bind_late() -> None:
    """Bind Tensor and the modules the operators call, which import Tensor (``tensor.py`` calls this
    at its end, once Tensor exists)."""
    global Tensor, E, R, S, A, _weak, _operands, _opmath_operands, _sub_operands, _sub_constant, _with_constant
    global _true_division
    global _note_index_versions, refuse_bool_subtraction, _clamp_bounds, _one_bound_call
    global _clamp_call, _clamp_checked, refuse_bool_clamp, _pow_call, _rpow_operands, _refuse_reduce_method_call
    global _functional_clamp_min, _functional_clamp_max, _check_spread_method, _refuse_extremum_arguments
    global _refuse_spread_flags
    global check_writable, write_index, write_result, _before_inplace_write, deferring
    global setitem_index, silently_discarding, refuse_unbroadcastable, number_value, _beside
    from .tensor import Tensor, _before_inplace_write
    from .versions import _note_index_versions
    from .complex_discard import silently_discarding
    from .setitem_rules import beside as _beside, refuse_unbroadcastable, number_value, setitem_index
    from .dtype_rules import _weak, _operands, _opmath_operands, _sub_operands, _sub_constant, _with_constant, \
        _true_division
    from .dtype_rules import refuse_bool_subtraction
    from .bool_pow import pow_call as _pow_call, rpow_operands as _rpow_operands
    from distnn.functional import elementwise as E
    from distnn.functional.clamp_arguments import clamp_bounds as _clamp_bounds
    from distnn.functional.clamp_arguments import clamp_call as _clamp_call
    from distnn.functional.clamp_arguments import one_bound_call as _one_bound_call
    from distnn.functional.elementwise_choice import clamp_checked as _clamp_checked, refuse_bool_clamp
    from distnn.functional.pointwise_binary import clamp_max as _functional_clamp_max
    from distnn.functional.pointwise_binary import clamp_min as _functional_clamp_min
    from distnn.functional import reduce as R
    from distnn.functional.reduce_arguments import refuse_method_call as _refuse_reduce_method_call
    from distnn.functional.method_out_refusal import check_spread_method as _check_spread_method
    from distnn.functional.method_out_refusal import refuse_spread_flags as _refuse_spread_flags
    from distnn.functional.method_out_refusal import refuse_extremum_arguments as _refuse_extremum_arguments
    from distnn.functional import shape as S
    from distnn.functional import activation as A
    from .inplace import check_writable, deferring, write_index, write_result
    from . import tensor_comparisons, tensor_shape_methods
    tensor_comparisons._bind_late()
    tensor_shape_methods._bind_late()


def _clamp_method_result(t, lo, hi):
    """``t.clamp(lo, hi)``/``t.clip``: an integer or bool tensor takes the function's typing (a float bound makes it
    the default float dtype, float32, as PyTorch's; numpy's clip would give float64); a float one skips it
    (~5 us: the bounds cannot change its category)."""
    if t.data.dtype.kind in "biu":
        return _clamp_checked(t, lo, hi)
    refuse_bool_clamp(t, lo, hi)
    return E.clamp_node(lo, hi).apply(t, lo, hi)
