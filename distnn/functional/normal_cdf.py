"""torch.special's standard normal CDF family: ``ndtr``, ``log_ndtr``, ``ndtri`` and ``erfcx``, and the two
entropy-like terms ``entr`` and ``xlog1py``, each differentiable with PyTorch's formula (``derivatives.yaml``),
written as it writes them so that the edge points agree:

* ``ndtr`` is PyTorch's composite ``(1 + erf(x / sqrt(2))) / 2`` (so 0, not the tiny true value, below about
  -8.3), built from distnn's ``erf`` so that its gradient is the chain rule's through it, as there;
* ``log_ndtr' = e^{-(log_ndtr(x) + x^2/2)} / sqrt(2 pi)``, ``ndtri' = sqrt(2 pi) e^{ndtri(y)^2 / 2}``,
  ``erfcx' = 2 x erfcx(x) - 2/sqrt(pi)``, ``entr' = -(1 + log x)``;
* ``xlog1py(x, y) = x log1p(y)``, 0 where ``x == 0`` unless ``y`` is NaN; gradients ``log1p(y)`` (0 where
  ``x == 0`` and ``y <= -1``) and ``x / (y + 1)``.

The values come from :mod:`._normal` (numpy) or cupyx.scipy.special (cupy) and :mod:`._special`'s erf/erfc.
Integer and bool inputs compute in the default float dtype, as PyTorch's. None of these is a top-level torch
function or a Tensor method: they live in :mod:`distnn.special` only.
"""
from __future__ import annotations

import math

from distnn.autograd.function import OUTPUT

from ._normal import erfcx_array, ndtri_array
from ._special import erfc_array
from .elementwise import float_input
from .pointwise_binary import _Binary, _operands
from .pointwise_unary import _unary
from .pointwise_unary import erf as _erf

_SQRT_2PI = math.sqrt(2 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SQRT1_2 = math.sqrt(0.5)


def _log_ndtr(xp, x):
    """PyTorch's ``calc_log_ndtr``: ``log(erfcx(-t)/2) - t^2`` with ``t = x/sqrt(2)`` below -1 (where
    ``erfc(-t)`` would underflow), ``log1p(-erfc(t)/2)`` from -1 on."""
    t = x * _SQRT1_2
    low = x < -1.0
    left = xp.log(erfcx_array(xp.where(low, -t, 0)) / 2) - t * t
    right = xp.log1p(-erfc_array(xp.where(low, 0, t)) / 2)
    return xp.where(low, left, right)


def _entr(xp, x):
    """``-x log x``; 0 at 0 (+-0), -inf below 0, NaN at NaN (PyTorch's kernel)."""
    out = xp.where(x > 0, -x * xp.log(xp.where(x > 0, x, 1)), xp.where(x == 0, 0, -xp.inf))
    return xp.where(xp.isnan(x), x, out).astype(x.dtype, copy=False)


LogNdtr = _unary("LogNdtr", _log_ndtr, lambda xp, x, y: xp.exp(-(y + x * x / 2)) / _SQRT_2PI, (0, OUTPUT),
                 doc="log of the standard normal CDF; gradient e^{-(y + x^2/2)} / sqrt(2 pi).")
Ndtri = _unary("Ndtri", lambda xp, x: ndtri_array(x), lambda xp, x, y: _SQRT_2PI * xp.exp(y * y / 2), (OUTPUT,),
               doc="the inverse of the standard normal CDF; gradient sqrt(2 pi) e^{y^2/2}.")
Erfcx = _unary("Erfcx", lambda xp, x: erfcx_array(x), lambda xp, x, y: 2.0 * x * y - _TWO_OVER_SQRT_PI,
               (0, OUTPUT), doc="e^{x^2} erfc(x); gradient 2 x erfcx(x) - 2/sqrt(pi).")
Entr = _unary("Entr", _entr, lambda xp, x, y: -(1 + xp.log(x)), doc="-x log x; gradient -(1 + log x).")


class Xlog1py(_Binary):
    """``x log1p(y)``, 0 where ``x == 0`` (unless ``y`` is NaN)."""

    @staticmethod
    def compute(xp, a, b):
        return xp.where(xp.isnan(b), xp.nan, xp.where(a == 0, 0, a * xp.log1p(b))).astype(
            xp.result_type(a, b), copy=False)

    @staticmethod
    def grads(xp, g, a, b, out):
        ga = xp.where((a == 0) & (b <= -1), 0, g * xp.log1p(b))
        return ga, g * a / (b + 1)


def ndtr(input):  # noqa: A002 - PyTorch's names
    """``torch.special.ndtr``: the standard normal CDF ``(1 + erf(x/sqrt(2))) / 2``, elementwise, computed as
    PyTorch composes it (so 0 below about -8.3) and differentiable through it."""
    return (_erf(float_input(input) * _SQRT1_2) + 1) * 0.5


def log_ndtr(input):  # noqa: A002
    """``torch.special.log_ndtr``: ``log(ndtr(x))``, accurate far into the left tail (``-x^2/2 - ...``)."""
    return LogNdtr.apply(float_input(input))


def ndtri(input):  # noqa: A002
    """``torch.special.ndtri``: the ``x`` with ``ndtr(x) = input`` (-inf at 0, inf at 1, NaN outside [0, 1])."""
    return Ndtri.apply(float_input(input))


def erfcx(input):  # noqa: A002
    """``torch.special.erfcx``: the scaled complementary error function ``e^{x^2} erfc(x)`` (inf below -26.7,
    about ``1/(sqrt(pi) x)`` for large x)."""
    return Erfcx.apply(float_input(input))


def entr(input):  # noqa: A002
    """``torch.special.entr``: ``-x log x`` elementwise, 0 at 0 and -inf for negative ``x``."""
    return Entr.apply(float_input(input))


def xlog1py(input, other):  # noqa: A002
    """``torch.special.xlog1py``: ``input * log1p(other)``, 0 where ``input == 0`` (NaN where ``other`` is
    NaN), broadcasting (either may be a number)."""
    return Xlog1py.apply(*_operands(input, other, "xlog1py"))
