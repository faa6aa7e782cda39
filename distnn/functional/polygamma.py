"""PyTorch's ``torch.polygamma`` (``torch.special.polygamma``, ``Tensor.polygamma``) for every order ``n >= 0``
and ``torch.special.zeta`` (Hurwitz's), differentiable as ``derivatives.yaml`` has them: ``polygamma(n, x)' =
polygamma(n + 1, x)`` (``n`` is an int, not differentiable), and zeta in ``other`` only (``-x zeta(x + 1, q)``;
in ``input`` PyTorch refuses, and so does this). The values come from :mod:`._zeta` (numpy, Cephes' method)
or cupyx.scipy.special (cupy). Integer and bool inputs compute in the default float dtype, as PyTorch's."""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from ._elementwise_common import _quiet
from ._zeta import polygamma_array, zeta_array
from .elementwise import float_input
from .pointwise_binary import _Binary, _operands


class Polygamma(Function):
    """``psi^(n)(x)``, the n-th derivative of digamma; gradient ``psi^(n+1)(x)``."""

    reads = ((0,),)

    def forward(self, x, n=0):
        self.x, self.n = x, n
        with _quiet(get_array_module(x), over=True):
            return polygamma_array(n, x)

    def backward(self, g):
        with _quiet(get_array_module(g), over=True):
            return (g * polygamma_array(self.n + 1, self.x),)


def _order(n, name="polygamma"):
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name}(): argument 'n' (position 1) must be int, not {type(n).__name__}")
    if n < 0:
        raise RuntimeError("polygamma(n, x) does not support negative n.")
    return int(n)


def polygamma(n, input):  # noqa: A002 - PyTorch's names
    """``torch.polygamma(n, input)``: the ``n``-th derivative of the digamma function, elementwise, for any
    int ``n >= 0`` (``n = 0``: digamma; ``n >= 2``: ``(-1)^(n+1) n! zeta(n + 1, x)``, as PyTorch computes it,
    so inf or NaN past ``n = 170`` where PyTorch's are). A negative ``n`` is refused as PyTorch refuses it."""
    return Polygamma.apply(float_input(input), n=_order(n))


class Zeta(_Binary):
    """Hurwitz's ``zeta(x, q) = sum_k (k + q)^-x``; gradient ``-x zeta(x + 1, q)`` in ``q``, none in ``x``."""

    @staticmethod
    def compute(xp, a, b):
        return zeta_array(a, b)

    def backward(self, g):
        need_x, _ = self.needs_input_grad
        if need_x:
            raise NotImplementedError("the derivative for 'zeta' is not implemented.")
        xp = get_array_module(g)
        with _quiet(xp, over=True):
            return None, g * (-self.a * zeta_array(self.a + 1, self.b))


def zeta(input, other):  # noqa: A002
    """``torch.special.zeta(input, other)``: Hurwitz's zeta function ``sum_{k >= 0} (k + other)^-input``,
    broadcasting (either may be a number), differentiable in ``other`` only, as PyTorch's."""
    return Zeta.apply(*_operands(input, other, "zeta"))


__all__ = ["polygamma"]  # (the top-level name; zeta is torch.special's only)
