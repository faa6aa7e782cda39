"""PyTorch's ``torch.lgamma`` and ``torch.digamma``, differentiable with ``derivatives.yaml``'s formulas
(``lgamma' = digamma``, ``digamma' = polygamma(1, x)``); the values come from :mod:`._gamma_special` (numpy) or
cupyx.scipy.special (cupy). Integer and bool inputs compute in the default float dtype, as PyTorch's."""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from ._elementwise_common import _quiet
from ._gamma_special import digamma_array, lgamma_array, trigamma_array
from .elementwise import float_input


class Lgamma(Function):
    """``log|Gamma(x)|``; gradient ``digamma(x)`` (+-inf and NaN at the poles, as PyTorch's)."""

    reads = ((0,),)

    def forward(self, x):
        self.x = x
        return lgamma_array(x)

    def backward(self, g):
        with _quiet(get_array_module(g), over=True):
            return (g * digamma_array(self.x),)


class Digamma(Function):
    """``psi(x)``, the logarithmic derivative of Gamma; gradient ``polygamma(1, x)``."""

    reads = ((0,),)

    def forward(self, x):
        self.x = x
        return digamma_array(x)

    def backward(self, g):
        with _quiet(get_array_module(g), over=True):
            return (g * trigamma_array(self.x),)


def lgamma(input):  # noqa: A002 - PyTorch's name
    """``torch.lgamma``: the log of the absolute value of the gamma function, elementwise (+inf at 0, the
    negative integers and +-inf)."""
    return Lgamma.apply(float_input(input))


def digamma(input):  # noqa: A002
    """``torch.digamma``: ``d/dx lgamma(x)``, elementwise (-inf at +0, +inf at -0, NaN at the negative integers
    and at -inf, as PyTorch's)."""
    return Digamma.apply(float_input(input))


__all__ = ["lgamma", "digamma"]
