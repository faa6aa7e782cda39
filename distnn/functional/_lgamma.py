"""``log|Gamma(x)|`` of a float64 numpy array to about one ulp, with numpy alone: fdlibm's method (Sun's
``e_lgamma_r.c``, K.C. Ng, part after W. Cody), vectorized, each branch computed on its own elements only.

Shifting every argument up to the Stirling range (the old way here) cannot be accurate for small ``x``: it
takes ``lgamma(x) = lgamma(x + n) - log(x (x + 1) ... (x + n - 1))``, two terms of ~20 for a result of ~0.1, and
their rounding (~4e-15) stays in the difference. Instead each range gets a short approximation whose terms do
not cancel:

* ``x < 2^-70``: ``-log x`` (``lgamma(1 + x) = -gamma x`` is below half an ulp of it).
* ``(0, 2)``: an approximation around each point where lgamma is known exactly: ``lgamma(1 + y)`` (y in
  [-0.1, 0.2316]), ``lgamma(tc + y)`` around the minimum ``tc = 1.4616...`` (y in [-0.23, 0.27]) and
  ``lgamma(2 - y)`` (y in [0, 0.2684]); below 0.9 ``lgamma(x) = lgamma(x + 1) - log x``. Each ``y`` is exact
  (``x - 1``, ``2 - x``, ``1 - x``: Sterbenz), and each approximation is ``y`` times a smooth factor, so the
  zeros at 1 and 2 keep their relative accuracy.
* ``[2, 8)``: ``lgamma(2 + y) = y/2 + y P(y)/Q(y)`` (``y`` the fractional part), plus
  ``log((y + 2)(y + 3) ... (y + i - 1))``: both positive, no cancellation.
* ``[8, 2^58)``: ``(x - 1/2)(log x - 1) + w(1/x)``, ``w`` Stirling's series as a minimax polynomial.
* ``2^58`` and above: ``x (log x - 1)`` (the rest is below an ulp); past ~2.5e305 that overflows to inf, as
  PyTorch's does.
* Negative ``x``: ``Gamma(x) Gamma(-x) = -pi / (x sin(pi x))``, so ``lgamma(x) = log(pi / |x sin(pi x)|) -
  lgamma(-x)``: ``-x`` is exact (``1 - x``, the usual reflection, is rounded), and ``sin(pi x)`` is taken of
  ``x`` less its nearest integer (exact), so it stays accurate for large ``|x|`` and next to the poles. Its
  error is absolute (an ulp or two of the two terms), so in (-28, -2), where lgamma has its zeros (beyond, the
  zeros are within an ulp of the integers), :mod:`._lgamma_negative` takes over: a few ulp relative.

The edges are PyTorch's: +inf at 0 (either sign), the negative integers and +-inf; NaN for NaN; exactly 0 at 1
and 2.
"""
from __future__ import annotations

import math

import numpy as np

from ._elementwise_common import _quiet
from ._lgamma_negative import HIGH, LOW, lgamma_negative
from ._special import horner

# The coefficients below are fdlibm's (e_lgamma_r.c), under this notice:
#   Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
#   Developed at SunSoft, a Sun Microsystems, Inc. business.
#   Permission to use, copy, modify, and distribute this software is freely granted, provided that this notice
#   is preserved.
# Each tuple is highest order first (horner's order).

# lgamma(2 - y) + y/2 = y P_even(y^2) + y^2 P_odd(y^2), y in [0, 0.2684] (fdlibm's a0..a11)
_A_EVEN = (2.52144565451257326939e-05, 2.20862790713908385557e-04, 1.19270763183362067845e-03,
           7.38555086081402883957e-03, 6.73523010531292681824e-02, 7.72156649015328655494e-02)
_A_ODD = (4.48640949618915160150e-05, 1.08011567247583939954e-04, 5.10069792153511336608e-04,
          2.89051383673415629091e-03, 2.05808084325167332806e-02, 3.22467033424113591611e-01)
# lgamma(tc + y) - tf = y^2 T0(y^3) + y^3 (T1(y^3) + y T2(y^3)) - tt (fdlibm's t0..t14)
_TC = 1.46163214496836224576e+00   # where Gamma is least
_TF = -1.21486290535849611461e-01  # lgamma(tc) rounded
_TT = -3.63867699703950536541e-18  # minus tf's rounding error
_T0 = (3.15632070903625950361e-04, -1.40346469989232843813e-03, 6.10053870246291332635e-03,
       -3.27885410759859649565e-02, 4.83836122723810047042e-01)
_T1 = (-3.12754168375120860518e-04, 8.81081882437654011382e-04, -3.68452016781138256760e-03,
       1.79706750811820387126e-02, -1.47587722994593911752e-01)
_T2 = (3.35529192635519073543e-04, -5.38595305356740546715e-04, 2.25964780900612472250e-03,
       -1.03142241298341437450e-02, 6.46249402391333854778e-02)
# lgamma(1 + y) + y/2 = y U(y) / V(y), y in [-0.1, 0.2316] (fdlibm's u0..u5, v1..v5)
_U = (1.33810918536787660377e-02, 2.28963728064692451092e-01, 9.77717527963372745603e-01,
      1.45492250137234768737e+00, 6.32827064025093366517e-01, -7.72156649015328655494e-02)
_V = (3.21709242282423911810e-03, 1.04222645593369134254e-01, 7.69285150456672783825e-01,
      2.12848976379893395361e+00, 2.45597793713041134822e+00, 1.0)
# lgamma(2 + y) - y/2 = y S(y) / R(y), y in [0, 1) (fdlibm's s0..s6, r1..r6)
_S = (3.19475326584100867617e-05, 1.84028451407337715652e-03, 2.66422703033638609560e-02,
      1.46350472652464452805e-01, 3.25778796408930981787e-01, 2.14982415960608852501e-01,
      -7.72156649015328655494e-02)
_R = (7.32668430744625636189e-06, 7.77942496381893596434e-04, 1.86459191715652901344e-02,
      1.71933865632803078993e-01, 7.21935547567138069525e-01, 1.39200533467621045958e+00, 1.0)
# lgamma(x) - (x - 1/2)(log x - 1) = W(1/x), x >= 8 (fdlibm's w0..w6; w0 = log(2 pi)/2 - 1/2)
_W = (-1.63092934096575273989e-03, 8.36339918996282139126e-04, -5.95187557450339963135e-04,
      7.93650558643019558500e-04, -2.77777777728775536470e-03, 8.33333333333329678849e-02)
_W0 = 4.18938533204672725052e-01

_TINY = 2.0 ** -70
_HUGE = 2.0 ** 58
# fdlibm's splits, compared on the high word: these are the first doubles past each
_LOW = 0.9000000953674316            # below: lgamma(x + 1) - log x
_SPLIT_2_MINUS_LOW = 0.7315998077392578
_SPLIT_TC_LOW = 0.23163998126983643
_SPLIT_2_MINUS = 1.7316312789916992
_SPLIT_TC = 1.2316322326660156


def _near_two_below(y):
    """``lgamma(2 - y)``, y in [0, 0.2684]."""
    z = y * y
    return (y * horner(z, _A_EVEN) + z * horner(z, _A_ODD)) - 0.5 * y


def _near_minimum(y):
    """``lgamma(tc + y)``, y in [-0.23, 0.27]: ``tf`` plus a correction starting at ``y^2``, ``tt`` carrying the
    digits ``tf`` lost to rounding."""
    z = y * y
    w = z * y
    return _TF + (z * horner(w, _T0) - (_TT - w * (horner(w, _T1) + y * horner(w, _T2))))


def _near_one(y):
    """``lgamma(1 + y)``, y in [-0.1, 0.2316]."""
    return -0.5 * y + y * horner(y, _U) / horner(y, _V)


def _below_two(x):
    """``lgamma(x)``, x in [2^-70, 2): the approximation about 1, ``tc`` or 2 that covers ``x`` (or ``x + 1``,
    below 0.9, less ``log x``)."""
    low = x < _LOW
    out = np.zeros_like(x)
    out[low] = -np.log(x[low])
    two_minus = np.where(low, x >= _SPLIT_2_MINUS_LOW, x >= _SPLIT_2_MINUS)
    minimum = ~two_minus & np.where(low, x >= _SPLIT_TC_LOW, x >= _SPLIT_TC)
    one = ~two_minus & ~minimum
    # (each y exact: x - 1 for x in [0.9, 1.24), 1 - x and 2 - x by Sterbenz; tc - 1 rounded once, as fdlibm's)
    for mask, approx, y_low, y_high in ((two_minus, _near_two_below, lambda v: 1.0 - v, lambda v: 2.0 - v),
                                        (minimum, _near_minimum, lambda v: v - (_TC - 1.0), lambda v: v - _TC),
                                        (one, _near_one, lambda v: v, lambda v: v - 1.0)):
        if mask.any():
            v, lo = x[mask], low[mask]
            out[mask] += approx(np.where(lo, y_low(v), y_high(v)))
    return out


def _two_to_eight(x):
    """``lgamma(x)``, x in [2, 8): ``lgamma(2 + y)`` for the fractional part ``y``, then the recurrence upward
    as one log of the product ``(y + 2) ... (y + i - 1)`` (multiplied from the top, as fdlibm's)."""
    whole = np.floor(x)
    y = x - whole
    out = 0.5 * y + y * horner(y, _S) / horner(y, _R)
    product = np.ones_like(x)
    for k in range(6, 1, -1):
        product = np.where(whole > k, product * (y + k), product)
    return out + np.log(product)


def _stirling(x):
    """``lgamma(x)``, x in [8, 2^58)."""
    inv = 1.0 / x
    return (x - 0.5) * (np.log(x) - 1.0) + (_W0 + inv * horner(inv * inv, _W))


def _huge(x):
    """``lgamma(x)``, x >= 2^58 (overflowing to inf past ~2.5e305)."""
    return x * (np.log(x) - 1.0)


_POSITIVE_RANGES = ((0.0, _TINY, lambda v: -np.log(v)), (_TINY, 2.0, _below_two), (2.0, 8.0, _two_to_eight),
                    (8.0, _HUGE, _stirling), (_HUGE, np.inf, _huge))


def _lgamma_positive(x):
    """``lgamma(x)`` for finite ``x > 0``, each range's formula on that range's elements."""
    out = np.empty_like(x)
    for start, stop, formula in _POSITIVE_RANGES:
        mask = (x >= start) & (x < stop)
        if mask.any():
            out[mask] = formula(x[mask])
    return out


def _reflect(x, lgamma_of_minus_x):
    """``lgamma(x)`` for finite ``x < 0`` from ``lgamma(-x)``: +inf at the integers (all of them from -2^52 down),
    ``-log|x|`` (which ``lgamma(-x)`` is) below 2^-70 in size."""
    z = -x
    offset = x - np.round(x)  # (exact)
    sin_pi = np.abs(np.sin(math.pi * offset))
    reflected = np.log(math.pi / (sin_pi * z)) - lgamma_of_minus_x  # (inf - ... at the integers: replaced)
    return np.where(offset == 0.0, np.inf, np.where(z < _TINY, lgamma_of_minus_x, reflected))


def _lgamma_reflected(v):
    """``lgamma`` of finite nonzero ``v``: the positive axis's formulas, reflected for the negative elements."""
    values = _lgamma_positive(np.abs(v))
    negative = v < 0
    if negative.any():
        values[negative] = _reflect(v[negative], values[negative])
    return values


def lgamma64(x):
    """``log|Gamma(x)|`` of a float64 numpy array (any shape, 0-d too), PyTorch's values at the edges."""
    x = np.asarray(x, dtype=np.float64)
    regular = np.isfinite(x) & (x != 0)
    everywhere = bool(regular.all())
    v = x if everywhere else x[regular]  # (the common case, every element regular, needs no gather)
    with _quiet(np, over=True):  # (x (log x - 1) past ~2.5e305; log(pi / 0) at the negative integers)
        # (-28, -2), where lgamma has its zeros: relative accuracy from the distance to the nearest zero
        near_zeros = (v < HIGH) & (v > LOW) & (v != np.round(v))
        if near_zeros.any():
            values = np.empty_like(v)
            values[near_zeros] = lgamma_negative(v[near_zeros])
            others = ~near_zeros
            values[others] = _lgamma_reflected(v[others])
        else:
            values = _lgamma_reflected(v)
    if everywhere:
        return values
    out = np.where(np.isnan(x), np.nan, np.inf)  # (0, -0, +-inf: +inf)
    out[regular] = values
    return out
