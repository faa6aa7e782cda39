"""PyTorch's in-place Tensor methods (``x.add_(y)``, ``x.clamp_(0, 1)``, ``x.scatter_(0, i, v)``, ...): a mixin
of :class:`~distnn.autograd.tensor.Tensor`.

Each ``name_`` runs the out-of-place function it mirrors (``distnn.add``'s ``self + alpha * other``,
``distnn.sin``, ``distnn.scatter_add``, ...) and writes the result into this tensor's memory, on the
machinery ``x += y`` uses (:mod:`.inplace`), so autograd behaves as PyTorch's:

* while recording, a leaf that requires grad is refused ("a leaf Variable that requires grad is being used
  in an in-place operation."); otherwise the tensor takes the op's graph node, its version is bumped (a node
  that saved the old value refuses its backward), and views of it see the change;
* under ``no_grad()`` (an optimizer-style update of a Parameter), or when nothing requires grad, the memory
  is simply overwritten and the version bumped;
* the tensor keeps its dtype: a result that would need promotion to a wider kind (float into an integer
  tensor, an integer into a bool one) is refused as PyTorch refuses it ("result type Float can't be cast to
  the desired output type Long"); a result of another shape is refused, as an in-place op cannot broadcast
  the tensor itself;
* an op with no gradient (``eq_``, ``floor_divide_``'s integer result, a random fill) gives the old value a
  zero gradient, as PyTorch's ``EqBackward0``/``UniformBackward0`` do.

The random fills, ``copy_``, ``index_put_``/``put_``, ``fill_diagonal_``, the metadata changes
(``t_``, ``unsqueeze_``, ...) and ``detach_`` are in :mod:`.tensor_inplace_more`.
"""
from __future__ import annotations

import importlib

import numpy as np

from distnn.backend import get_array_module

from . import autocast_state as _autocast, inplace_direct as _direct_path
from .functional_modules import functional_module
from .grad_mode import is_grad_enabled, no_grad

# PyTorch's names of dtypes, for its messages
_TORCH_NAMES = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long", "int32": "Int",
                "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool", "complex64": "ComplexFloat",
                "complex128": "ComplexDouble", "uint16": "UInt16", "uint32": "UInt32", "uint64": "UInt64"}


def torch_dtype_name(dtype) -> str:
    name = np.dtype(dtype).name
    return _TORCH_NAMES.get(name, name)


def _can_cast(src, dst) -> bool:
    """PyTorch's ``canCast``: no complex into a real tensor, no float into an integer or bool one, no integer into
    a bool one; any other cast (narrower or wider, within the kinds allowed) is fine."""
    s, d = np.dtype(src).kind, np.dtype(dst).kind
    if s == "c" and d != "c":
        return False
    if s == "f" and d in "biu":
        return False
    return not (s in "iu" and d == "b")


def _tensor_operands(args, kwargs) -> list:
    from .tensor import Tensor

    found = []
    for a in (*args, *kwargs.values()):
        for x in (a if isinstance(a, (tuple, list)) else (a,)):
            if isinstance(x, Tensor):
                found.append(x)
    return found


def records(t, operands=()) -> bool:
    """Whether an in-place op on ``t`` is recorded (an integer or bool tensor never carries a gradient; a complex
    one does)."""
    return (is_grad_enabled() and t.data.dtype.kind in "fc"
            and (t.requires_grad or any(o.requires_grad for o in operands)))


def write_inplace(t, name: str, compute, operands=(), cast_any: bool = False, keeps_graph: bool = False):
    """``t``'s memory takes ``compute()`` (a Tensor, an array or a number: the out-of-place result), as PyTorch's
    ``name`` does; see the module docstring. ``cast_any``: any dtype is cast to ``t``'s (``copy_``).
    ``keeps_graph``: ``t`` keeps its graph node (PyTorch's non-differentiable ``logical_and_``... leave the
    tensor's history as it was: its gradient passes through the op as if it had not run)."""
    from . import inplace
    from .tensor import Tensor, _before_inplace_write

    _before_inplace_write(t)
    recording = records(t, operands)
    if recording:
        inplace.check_writable(t)  # (before anything is computed or written)
    if not recording or keeps_graph:
        with no_grad():
            result = _checked_result(Tensor, t, name, _not_autocast(compute), cast_any)
        t.data[...] = _on_device(t.data, result.data)
        t._bump_version()
        return t
    with inplace.deferring() as deferred:  # (the nodes made here are packed by write_result, after its copies)
        result = _checked_result(Tensor, t, name, _not_autocast(compute), cast_any)
        op_node = result._node
        if op_node is None:  # (no gradient through the op: the old value gets zeros, as PyTorch's EqBackward0)
            xp = get_array_module(t.data)
            value = _on_device(t.data, result.data).astype(t.dtype, copy=False)
            result = _ops().elementwise.Where.apply(xp.ones(t.shape, dtype=bool), value, t)
            op_node = result._node
        elif result.dtype != t.dtype:
            result = result.astype(t.dtype)
    return inplace.write_result(t, result, op_node, deferred)


def _checked_result(Tensor, t, name: str, result, cast_any: bool):  # noqa: N803 - the class (a cycle at import)
    """``result`` (a Tensor, an array or a number) as a Tensor that may be written into ``t``, or an error."""
    if not isinstance(result, Tensor):
        result = Tensor(get_array_module(t.data).asarray(result))
    if tuple(result.shape) != tuple(t.shape):
        raise RuntimeError(f"output with shape {list(t.shape)} doesn't match the broadcast shape "
                           f"{list(result.shape)}")
    if result.dtype != t.dtype and not cast_any and not _can_cast(result.dtype, t.dtype):
        raise RuntimeError(f"result type {torch_dtype_name(result.dtype)} can't be cast to the desired "
                           f"output type {torch_dtype_name(t.dtype)}")
    return result


def _not_autocast(compute):
    """``compute()`` with this thread's autocast off: PyTorch autocasts no in-place op (``addmm_`` is not on its
    lists, ``addmm`` is), so ``x.addmm_(a, b)`` in an autocast region computes in ``x``'s dtype, not in float16."""
    if not (_autocast.active and (_autocast.current("cpu") is not None or _autocast.current("cuda") is not None)):
        return compute()
    prev = (_autocast.enter("cpu", None), _autocast.enter("cuda", None))
    try:
        return compute()
    finally:
        for p in prev:
            _autocast.restore(p)


def _on_device(data, array):
    """``array`` on ``data``'s device (a host draw or a host source written into a GPU tensor)."""
    xp = get_array_module(data)
    return array if get_array_module(array) is xp else xp.asarray(array)


class _Ops:
    """distnn's op modules, imported on first use (they import Tensor, which imports this mixin)."""

    def __getattr__(self, name):
        return functional_module(name)


def _ops():
    return _OPS


_OPS = _Ops()


def _top(name: str):
    """distnn's out-of-place function ``name`` (imported on first use)."""
    return getattr(importlib.import_module("distnn"), name)


# ``name_`` -> the out-of-place function it writes back: a top-level distnn name, or a function of the tensor
_ALIASES = {
    "subtract_": "sub_", "multiply_": "mul_", "divide_": "div_", "negative_": "neg_", "absolute_": "abs_",
    "arcsin_": "asin_", "arccos_": "acos_", "arctan_": "atan_", "arcsinh_": "asinh_", "arccosh_": "acosh_",
    "arctanh_": "atanh_", "arctan2_": "atan2_", "fix_": "trunc_", "greater_": "gt_",
    "greater_equal_": "ge_", "less_": "lt_", "less_equal_": "le_", "not_equal_": "ne_",
}
_SAME_NAME = (
    # pointwise, unary
    "abs", "sign", "sgn", "sqrt", "rsqrt", "square", "exp", "exp2", "expm1", "log", "log2", "log10", "log1p",
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "sigmoid",
    "relu", "logit", "erf", "erfc", "erfinv", "reciprocal", "ceil", "floor", "round", "trunc", "frac", "nan_to_num",
    "deg2rad", "rad2deg", "sinc", "i0", "lgamma", "digamma", "igamma", "igammac",
    # pointwise, binary and more
    "true_divide", "atan2", "hypot", "copysign", "fmod", "remainder", "xlogy", "lerp", "addcmul",
    "addcdiv",
    # predicates (the result in the tensor's dtype)
    "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor", "logical_not",
    "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
    # indexing, scans, triangles, matrix products
    "masked_scatter", "index_add", "index_copy", "index_fill", "scatter", "scatter_add", "scatter_reduce",
    "tril", "triu", "cumsum", "cumprod", "addmm", "addmv", "baddbmm", "addbmm",
)


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def _category(x) -> int:
    if isinstance(x, (bool, int, float, complex)):
        return 0 if isinstance(x, bool) else 1 if isinstance(x, int) else 2 if isinstance(x, float) else 3
    return _CATEGORY.get(np.dtype(getattr(x, "dtype", np.float64)).kind, 2)


def alpha_scaled(input, other, alpha):  # noqa: A002
    """``alpha * other`` for ``add``/``sub``/``rsub``, with PyTorch's ``alpha_check`` on the result's category
    (bool < integer < float < complex, numbers taking part): a bool alpha only for bool results, a float one not
    for integer (or bool) results, a complex one only for complex results. A bool result is a logical or, so
    there a non-zero ``alpha`` is 1 (PyTorch computes ``alpha * other`` in bool)."""
    if type(alpha) is int and alpha == 1:  # (the common case, checked at once)
        return other
    category = check_alpha(input, other, alpha)
    if category == 0:
        return other if alpha else other * False
    return other if alpha == 1 else other * alpha


def check_alpha(input, other, alpha) -> int:  # noqa: A002
    """PyTorch's ``alpha_check`` of ``input + alpha * other`` (see :func:`alpha_scaled`); the result's category
    (0 bool, 1 integer, 2 float, 3 complex)."""
    category = max(_category(input), _category(other))
    if isinstance(alpha, (bool, np.bool_)):
        if category:
            raise RuntimeError("Boolean alpha only supported for Boolean results.")
    elif category < 2 and isinstance(alpha, (float, complex, np.inexact)):  # (PyTorch's order: a complex one too)
        raise RuntimeError("For integral input tensors, argument alpha must not be a floating point number.")
    elif isinstance(alpha, (complex, np.complexfloating)) and category < 3:
        raise RuntimeError("For non-complex input tensors, argument alpha must not be a complex number.")
    return category


def _add(self, other, *, alpha=1):
    if not (type(alpha) is int and alpha == 1):
        result = _scaled(self, other, alpha, 1)
        if result is not None:
            return result
    return self + alpha_scaled(self, _densified(other, alpha), alpha)


def _sub(self, other, *, alpha=1):
    from .dtype_rules import refuse_bool_subtraction

    refuse_bool_subtraction(self, other, arrays=True)
    if not (type(alpha) is int and alpha == 1):
        result = _scaled(self, other, alpha, -1)
        if result is not None:
            return result
    return self - alpha_scaled(self, _densified(other, alpha), alpha)


def _scaled(self, other, alpha, sign):
    """``self +- alpha * other`` in PyTorch's one kernel (see distnn.functional.scaled_sum_op), after its
    ``alpha`` checks; None where the two-op path runs it."""
    from distnn.functional.scaled_sum_op import scaled_add

    if not (type(alpha) in (int, float) and self.dtype.kind == "f"):  # (a float result takes any real alpha)
        check_alpha(self, other, alpha)
    return scaled_add(self, other, alpha, sign)


def _densified(other, alpha):
    """A sparse ``other`` of ``dense + alpha * other`` made dense before the scaling (so that a sparse leaf gets
    PyTorch's dense gradient: ``alpha * sparse`` would be a sparse non-leaf, whose gradient is sparse)."""
    if alpha == 1 or not getattr(other, "is_sparse", False):
        return other
    from distnn.sparse.dense_grads import dense_grad_to_dense

    return dense_grad_to_dense(other)


def _neg(self):
    from .dtype_rules import refuse_bool_negation

    refuse_bool_negation(self, arrays=True)
    return _top("neg")(self)


def _clamp(name):
    """``clamp_``/``clip_``'s result, after PyTorch's argument rules (its errors name the in-place method)."""
    def clamp(self, *args, **kwargs):
        from distnn.functional.clamp_arguments import clamp_bounds, clamp_call, refuse_number_bounds_cast
        from distnn.functional.elementwise_choice import clamp_checked

        lo, hi, call = clamp_call(name, self, args, kwargs, method=True)
        lo, hi = clamp_bounds(name, self, lo, hi, method=True, call=call)
        refuse_number_bounds_cast(self, lo, hi)
        return clamp_checked(self, lo, hi)

    return clamp


def _clamp_min(self, *args, **kwargs):
    """``clamp_min_``'s result: its bound is required, as PyTorch's."""
    from distnn.functional.clamp_arguments import one_bound_call, refuse_number_bounds_cast
    from distnn.functional.elementwise_choice import clamp_checked

    bound = one_bound_call("clamp_min_", self, args, kwargs, "min", method=True)[0]
    refuse_number_bounds_cast(self, bound, None)
    return clamp_checked(self, bound, None)


def _clamp_max(self, *args, **kwargs):
    """``clamp_max_``'s result: its bound is required, as PyTorch's."""
    from distnn.functional.clamp_arguments import one_bound_call, refuse_number_bounds_cast
    from distnn.functional.elementwise_choice import clamp_checked

    bound = one_bound_call("clamp_max_", self, args, kwargs, "max", method=True)[0]
    refuse_number_bounds_cast(self, None, bound)
    return clamp_checked(self, None, bound)


def _div(self, other, *, rounding_mode=None):
    return _top("divide")(self, other, rounding_mode=rounding_mode)


_COMPOSED = {
    "add_": _add, "sub_": _sub, "mul_": lambda self, other: self * other, "div_": _div,
    "pow_": lambda self, exponent: self ** exponent, "neg_": _neg,
    "floor_divide_": lambda self, other: _ops().pointwise_division.floor_divide_inplace_result(self, other),
    "masked_fill_": lambda self, mask, value: self.masked_fill(mask, value),
    "clamp_": _clamp("clamp_"), "clip_": _clamp("clip_"), "clamp_min_": _clamp_min, "clamp_max_": _clamp_max,
    "polygamma_": lambda self, n: _top("polygamma")(n, self), "mvlgamma_": lambda self, p: _top("mvlgamma")(self, p),
}


# PyTorch leaves the tensor's graph as it was after these (they are not differentiable, and not EqBackward-like)
_KEEP_GRAPH = {"logical_and_", "logical_or_", "logical_xor_", "logical_not_"}


# With nothing to record, the common calls of add_, mul_, exp_, clamp_, copy_, lerp_... write into the tensor's
# memory with numpy's ufuncs (:mod:`.inplace_direct`), where the general path runs the out-of-place op and copies its
# result (~10-20 us against ~2 on a 64x64 tensor); anything else comes here.


def _method(name: str, function):
    keeps_graph = name in _KEEP_GRAPH
    direct = name in _direct_path.NAMES

    def method(self, *args, **kwargs):
        if direct:
            done = _direct_path.direct(self, name, args, kwargs)
            if done is not None:
                return done
        f = function if callable(function) else _top(function)
        return write_inplace(self, name, lambda: f(self, *args, **kwargs), _tensor_operands(args, kwargs),
                             keeps_graph=keeps_graph)

    method.__name__ = method.__qualname__ = name
    target = function if isinstance(function, str) else name[:-1]
    method.__doc__ = (f"``Tensor.{name}``: :func:`distnn.{target}` of this tensor written into its own memory, "
                      "as PyTorch's (see :mod:`distnn.autograd.tensor_inplace_methods`). Returns the tensor.")
    return method


class TensorInplaceMethods:
    __slots__ = ()

    def float_power_(self, exponent):
        """``float_power`` in place: the result is float64, so the tensor must be float64 already (PyTorch's rule)."""
        if self.dtype != np.float64:
            raise RuntimeError(f"the base given to float_power_ has dtype {torch_dtype_name(self.dtype)} but the "
                               "operation's result requires dtype Double")
        return write_inplace(self, "float_power_", lambda: _top("float_power")(self, exponent),
                             _tensor_operands((exponent,), {}))


for _name, _function in _COMPOSED.items():
    setattr(TensorInplaceMethods, _name, _method(_name, _function))
for _name in _SAME_NAME:
    setattr(TensorInplaceMethods, _name + "_", _method(_name + "_", _name))
for _alias, _name in _ALIASES.items():
    setattr(TensorInplaceMethods, _alias, getattr(TensorInplaceMethods, _name))
