"""MaskedTensor's ops, as torch 2.13's (``torch/masked/maskedtensor``): the unary and binary elementwise ops of
torch's lists as methods and operators, the reductions (``sum``, ``mean``, ``amin``, ``amax``, ``argmin``,
``argmax``, ``prod``, ``all``, ``var``, ``std``), ``softmax`` and ``where``.

Unary ops apply to the data and keep the mask; extra Tensor arguments are refused (torch's TypeError), as are
keyword arguments (its ValueError). Binary ops take a MaskedTensor and a MaskedTensor of the same mask, a Tensor or
a number; their result has that mask (torch refuses two different masks: ValueError). Reductions are
``distnn.masked``'s over the mask; the result's mask is True where any element was. Differentiable through the
data, as every op here is built on distnn's differentiable ops.
"""
from __future__ import annotations

import numpy as np

import distnn as dn
from distnn.autograd import Tensor

from . import reductions as _reds
from ._common import canonical_dim
from .maskedtensor import MaskedTensor, is_masked_tensor

UNARY_NAMES = ["abs", "absolute", "acos", "arccos", "acosh", "arccosh", "angle", "asin", "arcsin", "asinh",
               "arcsinh", "atan", "arctan", "atanh", "arctanh", "bitwise_not", "ceil", "clamp", "clip",
               "conj_physical", "cos", "cosh", "deg2rad", "digamma", "erf", "erfc", "erfinv", "exp", "exp2", "expm1",
               "fix", "floor", "frac", "lgamma", "log", "log10", "log1p", "log2", "logit", "i0", "isnan",
               "nan_to_num", "neg", "negative", "positive", "pow", "rad2deg", "reciprocal", "round", "rsqrt",
               "sigmoid", "sign", "sgn", "signbit", "sin", "sinc", "sinh", "sqrt", "square", "tan", "tanh", "trunc"]
BINARY_NAMES = ["add", "atan2", "arctan2", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_left_shift",
                "bitwise_right_shift", "div", "divide", "floor_divide", "fmod", "logaddexp", "logaddexp2", "mul",
                "multiply", "nextafter", "remainder", "sub", "subtract", "true_divide", "eq", "ne", "le", "ge",
                "greater", "greater_equal", "gt", "less_equal", "lt", "less", "maximum", "minimum", "fmax", "fmin",
                "not_equal"]
REDUCE_NAMES = ["sum", "mean", "amin", "amax", "argmin", "argmax", "prod", "all", "var", "std"]
# torch's ops without a number overload for `other` (its TypeError for one)
_TENSOR_OTHER = {"atan2", "arctan2", "logaddexp", "logaddexp2", "nextafter", "maximum", "minimum", "fmax", "fmin"}
# torch's Tensor methods that reduce a single dim
_ONE_DIM = {"prod", "argmax", "argmin"}


def _unary(name):
    fn = getattr(dn, name)

    def op(self, *args, **kwargs):
        if kwargs:
            raise ValueError("MaskedTensor unary ops require that len(kwargs) == 0. If you need support for this, "
                             "please open an issue on Github.")
        if any(isinstance(a, (Tensor, MaskedTensor)) for a in args):
            raise TypeError("MaskedTensor unary ops do not support additional Tensor arguments")
        return MaskedTensor._wrap(fn(self._masked_data, *args), self._masked_mask)

    op.__name__ = name
    op.__doc__ = f"``{name}`` of the data; the mask is kept."
    return op


def _binary(name, reflected=False):
    fn = getattr(dn, name)

    def op(self, other, *args, **kwargs):
        if kwargs:
            raise ValueError("len(kwargs) must equal 0")
        if any(isinstance(a, (Tensor, MaskedTensor)) for a in args):
            raise TypeError("MaskedTensor binary ops do not support Tensor arguments aside from the lhs and rhs")
        if is_masked_tensor(other):
            if not _same_mask(self, other):
                raise ValueError("Input masks must match. If you need support for this, please open an issue on "
                                 "Github.")
            other = other._masked_data
        elif name in _TENSOR_OTHER and not isinstance(other, Tensor):
            raise TypeError(f"{name}(): argument 'other' (position 1) must be Tensor, not {type(other).__name__}")
        a, b = (other, self._masked_data) if reflected else (self._masked_data, other)
        data = fn(a, b, *args)
        return MaskedTensor._wrap(data, dn.broadcast_to(self._masked_mask, tuple(data.shape)))

    op.__name__ = name
    op.__doc__ = f"``{name}`` of the data (with a MaskedTensor of the same mask, a Tensor or a number)."
    return op


def _same_mask(a, b) -> bool:
    ma, mb = a._masked_mask, b._masked_mask
    return ma.ndim == mb.ndim and tuple(ma.shape) == tuple(mb.shape) and bool((ma == mb).all())


def _any(mask, dim, keepdim):
    """Where any element was specified, along ``dim`` (an int or several), as torch's _multidim_any."""
    dims = [dim] if isinstance(dim, int) else list(dim)
    for d in sorted(dims, reverse=True):
        mask = dn.any(mask, d, keepdim)
    return mask


def _masked_all(data, mask, dim=None, keepdim=False):
    filled = data.masked_fill(~mask, True)
    return dn.all(filled) if dim is None else dn.all(filled, dim, keepdim)


def _reduction(name):
    def reduce(self, *args, **kwargs):
        mask = self._masked_mask
        if not args and not kwargs:  # the whole tensor: a 0-d MaskedTensor, specified if any element was
            if name == "all":
                out = _masked_all(self._masked_data, mask)
            else:
                out = getattr(_reds, name)(self._masked_data, mask=mask)
            return MaskedTensor._wrap(out, dn.any(mask))
        return _reduce_dim(self, name, *args, **kwargs)

    reduce.__name__ = name
    reduce.__doc__ = (f"``{name}()``: over every specified element (a 0-d MaskedTensor); ``{name}(dim, "
                      "keepdim=False, *, dtype=None)``: along ``dim``, masked out where no element was specified.")
    return reduce


def _reduce_dim(self, name, dim, keepdim=False, *, dtype=None):
    if name in _ONE_DIM and not isinstance(dim, int):  # (torch's message)
        raise TypeError(f"{name}(): argument 'dim' (position 1) must be int, not {type(dim).__name__}")
    mask = self._masked_mask
    if name == "all":
        out = _masked_all(self._masked_data, mask, dim, keepdim)
    else:
        out = getattr(_reds, name)(self._masked_data, dim, keepdim=keepdim, dtype=dtype, mask=mask)
    return MaskedTensor._wrap(out, _any(mask, dim, keepdim))


def softmax(self, dim) -> MaskedTensor:
    """Softmax over the specified elements along ``dim`` (torch's _masked_softmax: a masked-out element, and a
    line with none specified, hold 0)."""
    data, mask = self._masked_data, self._masked_mask
    d = canonical_dim(dim, data.ndim)[0]
    # masked-out elements are -inf, but a line with nothing specified is filled with 0s (no 0/0, no NaN in the
    # backward pass): its result is masked out anyway
    fill = dn.where(dn.any(mask, d, True), np.asarray(-np.inf, data.dtype), np.asarray(0, data.dtype))
    out = dn.special.softmax(dn.where(mask, data, fill), d)
    return MaskedTensor._wrap(dn.where(mask, out, 0.0), mask)


def where(condition, input, other) -> MaskedTensor:
    """``torch.where`` with MaskedTensor operands (a Tensor or number operand is fully specified): the data and the
    masks chosen alike by ``condition``."""
    def parts(x):
        if is_masked_tensor(x):
            return x._masked_data, x._masked_mask
        x = x if isinstance(x, Tensor) else dn.tensor(x)
        return x, dn.ones_like(x, dtype=dn.bool)

    (xd, xm), (yd, ym) = parts(input), parts(other)
    return MaskedTensor._wrap(dn.where(condition, xd, yd), dn.where(condition, xm, ym))


def _install():
    for name in UNARY_NAMES:
        setattr(MaskedTensor, name, _unary(name))
    for name in BINARY_NAMES:
        setattr(MaskedTensor, name, _binary(name))
    for name in REDUCE_NAMES:
        setattr(MaskedTensor, name, _reduction(name))
    MaskedTensor.softmax = softmax
    MaskedTensor.where = lambda self, condition, other: where(condition, self, other)
    # Python's operators, as torch's Tensor maps them (torch's MaskedTensor has no reflected -, / or **
    # for a number on the left: 1 - mt is its TypeError, as here)
    ops = {"__add__": "add", "__sub__": "sub", "__mul__": "mul", "__truediv__": "div", "__floordiv__": "floor_divide",
           "__mod__": "remainder", "__eq__": "eq", "__ne__": "ne", "__lt__": "lt", "__le__": "le", "__gt__": "gt",
           "__ge__": "ge", "__and__": "bitwise_and", "__or__": "bitwise_or", "__xor__": "bitwise_xor"}
    for dunder, name in ops.items():
        setattr(MaskedTensor, dunder, _binary(name))
    MaskedTensor.__radd__ = _binary("add", reflected=True)
    MaskedTensor.__rmul__ = _binary("mul", reflected=True)
    MaskedTensor.__rtruediv__ = _binary("div", reflected=True)
    MaskedTensor.__pow__ = _unary("pow")
    MaskedTensor.__neg__ = _unary("neg")
    MaskedTensor.__abs__ = _unary("abs")
    MaskedTensor.__invert__ = _unary("bitwise_not")
    MaskedTensor.__hash__ = object.__hash__


_install()
