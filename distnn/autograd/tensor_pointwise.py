"""PyTorch's pointwise math as Tensor methods (``x.sin()``, ``x.isnan()``, ``x.atan2(y)``, ...): a mixin of
:class:`~distnn.autograd.tensor.Tensor`. Each method is the function of the same name in
:mod:`distnn.functional.pointwise_unary`, :mod:`~distnn.functional.pointwise_binary`,
:mod:`~distnn.functional.pointwise_division`, :mod:`~distnn.functional.gamma_functions`,
:mod:`~distnn.functional.bessel` or :mod:`~distnn.functional.predicates`, with the tensor as its first
argument (``polygamma(n)`` and ``mvlgamma(p)``: its input, as PyTorch's).
"""
from __future__ import annotations

import importlib

from .functional_modules import functional_module

# module -> the names it gives Tensor as methods
_METHODS = {
    "pointwise_unary": (
        "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "arcsin", "arccos",
        "arctan", "arcsinh", "arccosh", "arctanh", "log1p", "expm1", "log2", "log10", "exp2", "erf", "erfc",
        "erfinv", "rsqrt", "reciprocal", "square", "neg", "negative", "sgn", "frac", "logit", "sinc", "deg2rad",
        "rad2deg", "nan_to_num", "positive"),
    "gamma_functions": ("lgamma", "digamma", "igamma", "igammac"),
    "bessel": ("i0",),
    "pointwise_division": ("remainder", "fmod", "divide", "true_divide", "floor_divide"),
    "pointwise_binary": (
        "atan2", "arctan2", "hypot", "multiply", "subtract", "logaddexp", "logaddexp2", "xlogy", "copysign", "fmax",
        "fmin", "lerp", "float_power", "addcmul", "addcdiv"),
    "predicates": (
        "isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit", "isreal", "is_floating_point", "is_complex",
        "isclose", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal", "not_equal",
        "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor",
        "bitwise_not"),
}


def _method(module: str, name: str):
    def method(self, *args, **kwargs):
        return getattr(functional_module(module), name)(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``Tensor.{name}``: :func:`distnn.{name}` of this tensor."
    return method


class TensorPointwise:
    __slots__ = ()

    def polygamma(self, n):
        """``Tensor.polygamma(n)``: :func:`distnn.polygamma` ``(n, self)`` (the tensor is the input, not ``n``)."""
        return importlib.import_module("distnn.functional.polygamma").polygamma(n, self)

    def mvlgamma(self, p):
        """``Tensor.mvlgamma(p)``: :func:`distnn.mvlgamma` of this tensor."""
        return importlib.import_module("distnn").mvlgamma(self, p)


for _module, _names in _METHODS.items():
    for _name in _names:
        setattr(TensorPointwise, _name, _method(_module, _name))
