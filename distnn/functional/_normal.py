"""The scaled complementary error function ``erfcx(x) = e^{x^2} erfc(x)`` and the inverse of the standard normal
CDF ``ndtri`` of raw arrays, with numpy alone (scipy is not a dependency); cupy arrays use
cupyx.scipy.special's, which are the same algorithms as PyTorch's (Faddeeva's erfcx, Cephes' ndtri).

* erfcx for ``0 <= x < 1``: ``e^{x^2} - 2/sqrt(pi) sum_n 2^n x^{2n+1} / (2n+1)!!`` (``e^{x^2} erf(x)`` is that
  series of positive terms), ``e^{x^2}`` taken without the rounding of ``x * x``; the two differ by a factor
  below 6, so a few ulps at most are lost.
* erfcx for ``1 <= x <= 50``: ``1 / (sqrt(pi) t)`` with Laplace's continued fraction
  ``t = x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))`` (the one :mod:`._special` uses for erfc, without its
  ``e^{-x^2}``), 400 levels from the bottom up, converged to rounding from ``x = 1`` on.
* above 50 PyTorch's own 5-term truncation of the same fraction (and ``1/(sqrt(pi) x)`` above 5e7), and for
  ``x < 0`` its reflection ``2 e^{x^2} - erfcx(-x)`` (``2 e^{x^2}`` alone below -6.1, inf below -26.7), with
  ``x * x`` rounded as there, so that the two agree where these formulas round.
* ndtri: Cephes' rational approximations (as PyTorch's ``calc_ndtri``): ``sqrt(2 pi) (w + w^3 P(w^2)/Q(w^2))``
  with ``w = y - 1/2`` in the middle, ``z - log(z)/z - P(1/z)/(z Q(1/z))`` with ``z = sqrt(-2 log y)`` in the
  tails (one pair of polynomials for z below 8, another above).
"""
from __future__ import annotations

import math

import numpy as np

from distnn.backend import get_array_module

from ._elementwise_common import _quiet
from ._special import _cupy_special, _in_float64, horner as _polevl

_ONE_OVER_SQRT_PI = 1.0 / math.sqrt(math.pi)
_SQRT_2PI = 2.50662827463100050242


def _exp_square(x):
    """``e^{x^2}`` for ``|x| < 1`` without the rounding of ``x * x``: ``x = h + l`` with ``h`` keeping 12 bits
    after the point, so that ``h * h`` is exact and ``x^2 = h^2 + l (x + h)``."""
    h = np.trunc(x * 2.0**12) / 2.0**12
    return np.exp(h * h) * np.exp((x - h) * (x + h))


def _erfcx_small(x):
    """``0 <= x < 1``: ``e^{x^2} - e^{x^2} erf(x)``; ``_erf_series`` is ``2/sqrt(pi) e^{-x^2} S(x)``, so
    ``e^{x^2} erf(x)`` is that over ``e^{-x^2}``, taken here as ``2/sqrt(pi) S(x)`` directly."""
    x2 = 2.0 * x * x
    term = x.copy()
    total = x.copy()
    for n in range(1, 40):  # (|x| < 1: the 40th term is far below 1e-17 of the sum)
        term *= x2 / (2 * n + 1)
        total += term
    return _exp_square(x) - 2.0 * _ONE_OVER_SQRT_PI * total


def _erfcx_fraction(x):
    """``1 <= x <= 50``: ``1 / (sqrt(pi) t)`` with Laplace's continued fraction ``t`` (module docstring)."""
    t = x.copy()
    for k in range(400, 0, -1):
        t = x + (0.5 * k) / t
    return _ONE_OVER_SQRT_PI / t


def _erfcx_nonnegative(a):
    """erfcx for ``a >= 0`` (or NaN)."""
    small = a < 1.0
    mid = (a >= 1.0) & (a <= 50.0)
    near = _erfcx_small(np.where(small, a, 0.0))
    fraction = _erfcx_fraction(np.where(mid, a, 1.0))
    with _quiet(np, over=True):
        sq = a * a  # (PyTorch's 5-term truncation above 50, rounded as there; 1/(sqrt(pi) x) above 5e7)
        far = _ONE_OVER_SQRT_PI * (sq * (sq + 4.5) + 2) / (a * (sq * (sq + 5) + 3.75))
        far = np.where(a > 5e7, _ONE_OVER_SQRT_PI / a, far)
    return np.where(small, near, np.where(mid, fraction, far))  # (NaN: in neither range, the far formula's NaN)


def _erfcx64(x, square):
    """erfcx in float64; ``square`` is ``x * x`` rounded in the input's dtype, as PyTorch's reflection rounds it
    (its error, ``x^2`` ulps of ``e^{x^2}``, is PyTorch's value there)."""
    with _quiet(np, over=True):
        right = _erfcx_nonnegative(np.where(x >= 0, x, -x))
        twice = 2.0 * np.exp(square)
        left = np.where(x < -6.1, twice, twice - right)
        left = np.where(x < -26.7, np.inf, left)
    return np.where(x >= 0, right, np.where(np.isnan(x), x, left))


# Cephes' ndtri: the middle |y - 1/2| <= 3/8 - ish (y above exp(-2)), in w^2
_P0 = (-5.99633501014107895267e1, 9.80010754185999661536e1, -5.66762857469070293439e1, 1.39312609387279679503e1,
       -1.23916583867381258016e0)
_Q0 = (1.0, 1.95448858338141759834e0, 4.67627912898881538453e0, 8.63602421390890590575e1,
       -2.25462687854119370527e2, 2.00260212380060660359e2, -8.20372256168333339912e1, 1.59056225126211695515e1,
       -1.18331621121330003142e0)
# the tails, z = sqrt(-2 log y) between 2 and 8, in 1/z
_P1 = (4.05544892305962419923e0, 3.15251094599893866154e1, 5.71628192246421288162e1, 4.40805073893200834700e1,
       1.46849561928858024014e1, 2.18663306850790267539e0, -1.40256079171354495875e-1, -3.50424626827848203418e-2,
       -8.57456785154685413611e-4)
_Q1 = (1.0, 1.57799883256466749731e1, 4.53907635128879210584e1, 4.13172038254672030440e1,
       1.50425385692907503408e1, 2.50464946208309415979e0, -1.42182922854787788574e-1, -3.80806407691578277194e-2,
       -9.33259480895457427372e-4)
# z between 8 and 64
_P2 = (3.23774891776946035970e0, 6.91522889068984211695e0, 3.93881025292474443415e0, 1.33303460815807542389e0,
       2.01485389549179081538e-1, 1.23716634817820021358e-2, 3.01581553508235416007e-4, 2.65806974686737550832e-6,
       6.23974539184983293730e-9)
_Q2 = (1.0, 6.02427039364742014255e0, 3.67983563856160859403e0, 1.37702099489081330271e0,
       2.16236993594496635890e-1, 1.34204006088543189037e-2, 3.28014464682127739104e-4, 2.89247864745380683936e-6,
       6.79019408009981274425e-9)
_EXP_MINUS_2 = 0.13533528323661269189


def _ndtri64(y0):
    upper = y0 > 1.0 - _EXP_MINUS_2
    y = np.where(upper, 1.0 - y0, y0)  # (the upper tail by symmetry, 1 - y exact there)
    middle = y > _EXP_MINUS_2
    with _quiet(np, over=True):
        w = np.where(middle, y, 0.5) - 0.5
        w2 = w * w
        centre = (w + w * (w2 * _polevl(w2, _P0) / _polevl(w2, _Q0))) * _SQRT_2PI
        x = np.sqrt(-2.0 * np.log(np.where(middle, _EXP_MINUS_2, y)))
        z = 1.0 / x
        x1 = np.where(x < 8.0, z * _polevl(z, _P1) / _polevl(z, _Q1), z * _polevl(z, _P2) / _polevl(z, _Q2))
        tail = x - np.log(x) / x - x1
        tail = np.where(upper, tail, -tail)
    out = np.where(middle, centre, tail)
    out = np.where(y0 == 0.0, -np.inf, np.where(y0 == 1.0, np.inf, out))
    return np.where((y0 < 0.0) | (y0 > 1.0) | np.isnan(y0), np.nan, out)


def erfcx_array(x):
    """``e^{x^2} erfc(x)``, elementwise (inf below -26.7, 0 at +inf)."""
    if get_array_module(x) is not np:
        return _cupy_special("erfcx")(x)
    with _quiet(np, over=True):
        square = (x * x).astype(np.float64)
    return _erfcx64(x.astype(np.float64), square).astype(x.dtype, copy=False)


def ndtri_array(y):
    """The ``x`` with ``Phi(x) = y``, elementwise (-inf at 0, inf at 1, NaN outside [0, 1])."""
    return _in_float64(_ndtri64, y) if get_array_module(y) is np else _cupy_special("ndtri")(y)
