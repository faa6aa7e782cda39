"""PyTorch's modified Bessel functions of the first kind: ``torch.i0`` (``torch.special.i0``),
``torch.special.i0e``, ``torch.special.i1`` and ``torch.special.i1e``, differentiable with PyTorch's formulas
(``derivatives.yaml``): ``i0' = i1``, ``i0e' = i1e - sgn(x) i0e``, ``i1' = i0 - i1/x`` and
``i1e' = i0e - i1e (sgn(x) + 1/x)``, the last two 1/2 where ``|x|`` is at most the dtype's epsilon (where the
formula's ``i1/x`` would round badly; the true value at 0 is 1/2). The values come from :mod:`._bessel_i`
(numpy, Cephes' expansions) or cupyx.scipy.special (cupy). Integer and bool inputs compute in the default float
dtype, as PyTorch's."""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import OUTPUT

from ._bessel_i import i0_array, i0e_array, i1_array, i1e_array
from .elementwise import float_input
from .pointwise_unary import _unary


def _tiny_safe(xp, x):
    """PyTorch's guard in ``i1_backward``/``i1e_backward``: where ``|x| <= eps`` the derivative is 1/2, and the
    formula is evaluated at ``eps`` instead (so that no 0/0 is formed)."""
    eps = np.finfo(x.dtype).eps
    not_tiny = xp.abs(x) > eps
    return not_tiny, xp.where(not_tiny, x, x.dtype.type(eps))


def _i1_derivative(xp, x, y):
    not_tiny, safe = _tiny_safe(xp, x)
    return xp.where(not_tiny, i0_array(safe) - y / safe, x.dtype.type(0.5))


def _i1e_derivative(xp, x, y):
    not_tiny, safe = _tiny_safe(xp, x)
    return xp.where(not_tiny, i0e_array(safe) - y * (xp.sign(safe) + 1 / safe), x.dtype.type(0.5))


I0 = _unary("I0", lambda xp, x: i0_array(x), lambda xp, x, y: i1_array(x),
            doc="The modified Bessel function of the first kind of order 0; gradient i1(x).")
I0e = _unary("I0e", lambda xp, x: i0e_array(x), lambda xp, x, y: i1e_array(x) - xp.sign(x) * y, (0, OUTPUT),
             doc="e^-|x| I0(x); gradient i1e(x) - sgn(x) i0e(x).")
I1 = _unary("I1", lambda xp, x: i1_array(x), _i1_derivative, (0, OUTPUT),
            doc="The modified Bessel function of the first kind of order 1; gradient i0(x) - i1(x)/x.")
I1e = _unary("I1e", lambda xp, x: i1e_array(x), _i1e_derivative, (0, OUTPUT),
             doc="e^-|x| I1(x); gradient i0e(x) - i1e(x) (sgn(x) + 1/x).")


def i0(input):  # noqa: A002 - PyTorch's name
    """``torch.i0`` / ``torch.special.i0``: the modified Bessel function of the first kind of order 0,
    elementwise (even; NaN at +-inf, as PyTorch's), differentiable (``i1``)."""
    return I0.apply(float_input(input))


def i0e(input):  # noqa: A002
    """``torch.special.i0e``: the exponentially scaled ``e^-|x| I0(x)``, elementwise (0 at +-inf)."""
    return I0e.apply(float_input(input))


def i1(input):  # noqa: A002
    """``torch.special.i1``: the modified Bessel function of the first kind of order 1, elementwise (odd)."""
    return I1.apply(float_input(input))


def i1e(input):  # noqa: A002
    """``torch.special.i1e``: the exponentially scaled ``e^-|x| I1(x)``, elementwise (odd; 0 at +-inf)."""
    return I1e.apply(float_input(input))


__all__ = ["i0"]  # (the top-level name; i0e, i1 and i1e are torch.special's only)
