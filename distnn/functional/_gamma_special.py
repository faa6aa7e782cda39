"""lgamma, digamma and trigamma of raw arrays to float64 precision with numpy alone (numpy has none of them and
scipy is not a dependency); cupy arrays use cupyx.scipy.special, which ships with cupy.

No per-element Python: a fixed number of whole-array steps each. lgamma's numpy arithmetic is in
:mod:`._lgamma` (fdlibm's method, about an ulp); digamma and trigamma are here:

* digamma below 10 goes down to ``psi(1 + h)`` (``h`` the fractional part, exact), a fit that keeps relative
  accuracy at psi's zero 1.4616..., plus the positive ``1/(h + k)``; from 10 on, the asymptotic series with 8
  Bernoulli terms, whose first omitted term is below 1e-17 at ``z = 10``. About 2 ulps on the positive axis.
* trigamma's terms are all positive, so it is shifted up to ``z >= 10`` (``psi'(x) = psi'(x + 1) + 1/x^2``, at
  most 10 steps) and summed there without loss (3 ulps measured).
* Negative arguments use the reflection formulas (``Gamma(x) Gamma(1 - x) = pi / sin(pi x)``), ``sin(pi x)``
  taken of ``x``'s fractional part so that it stays exact for large ``|x|``.
* The edges are PyTorch's: digamma is -inf at +0, +inf at -0 and NaN at the negative integers and -inf;
  trigamma is +inf at the poles.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.backend import get_array_module

from ._elementwise_common import _quiet
from ._lgamma import lgamma64
from ._special import _cupy_special, _in_float64, cupy_polygamma, horner

_SHIFT_TO = 10.0
# B_2k for digamma's and trigamma's asymptotic series (k = 1..8)
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510)


def _shifted(x, update, init):
    """Run ``update(acc, z, below)`` while ``z < 10`` (at most 10 times), ``z`` the argument moved up by one
    each time where it is below: returns the final ``acc`` and ``z``."""
    z, acc = x.copy(), init
    for _ in range(int(_SHIFT_TO)):
        below = z < _SHIFT_TO
        acc = update(acc, z, below)
        z = np.where(below, z + 1.0, z)
    return acc, z


def _offset(x):
    """``x`` less its nearest integer, in [-1/2, 1/2]: ``|sin(pi x)|`` and ``cot(pi x)`` (period 1) of it are
    exact for large ``|x|`` and near the poles."""
    return x - np.round(x)


# psi(1 + h) = (h - h0) F(h - 1/2) for h in [0, 1], h0 = 0.4616... the zero of psi less 1 (split in two doubles
# so that h - h0 keeps its relative accuracy next to the zero) and F a degree-23 Chebyshev fit (mpmath, 60
# digits: mp.chebyfit of psi(1 + h) / (h - h0) on [0, 1], error 6e-19; highest order first)
_PSI_ZERO_HI, _PSI_ZERO_LO = 0.46163214496836236, -1.5522348162858677e-17
_PSI_CORE = (-8.153978973309418e-05, 0.00012230983055406747, -6.11554261750751e-05, 9.173383289174792e-05,
             -0.0002178682145501451, 0.0003268068044141764, -0.0004599625144612576, 0.0006899717801166841,
             -0.001042261556504223, 0.0015635679757533885, -0.002344650082351321, 0.0035180800751066694,
             -0.00528001782089874, 0.007927024067961237, -0.011908215172584002, 0.017907248195969127,
             -0.02697579684427536, 0.04076083394462657, -0.06192213327165706, 0.09498872445283,
             -0.14840492305391761, 0.24054248424078736, -0.42362742128146047, 0.9510558760318328)


def _digamma_one_plus(h):
    """``psi(1 + h)`` for exact ``h`` in [0, 1], to an ulp or two relative (its zero included)."""
    return ((h - _PSI_ZERO_HI) - _PSI_ZERO_LO) * horner(h - 0.5, _PSI_CORE)


def _digamma_asymptotic(z):
    """``psi(z)`` for ``z >= 10``: ``log z - 1/(2z) - sum B_2k / (2k z^2k)``."""
    inv2 = 1.0 / (z * z)
    series, power = np.zeros_like(z), inv2
    for k, b in enumerate(_BERNOULLI, start=1):
        series += b / (2 * k) * power
        power = power * inv2
    return np.log(z) - 0.5 / z - series


def _digamma_positive(x):
    """``psi(x)`` for ``x > 0``. Shifting up to 10 (``psi(x) = psi(x + n) - sum 1/(x + k)``) would subtract sums
    of ~2 to get values near psi's zero (1.4616...), losing up to 8e3 ulp there; instead ``x`` below 10 goes down
    to ``psi(1 + h)``, ``h`` its fractional part (exact), plus the positive ``1/(h + k)`` (``psi(x + 1) =
    psi(x) + 1/x``), and ``x`` below 1 uses ``h = x`` less ``1/x``."""
    out = np.full_like(x, np.nan)
    for mask, formula in ((x < 1.0, _digamma_below_one), ((x >= 1.0) & (x < _SHIFT_TO), _digamma_below_ten),
                          (x >= _SHIFT_TO, _digamma_asymptotic)):
        if mask.any():  # (a small input meets one or two of them: the others cost nothing)
            out[mask] = formula(x[mask])
    return out


def _digamma_below_one(x):
    return _digamma_one_plus(x) - 1.0 / x


def _digamma_below_ten(x):
    whole = np.floor(x)
    h = x - whole
    steps = np.zeros_like(x)
    for k in range(int(whole.max()) - 1, 0, -1):  # (the small terms first; only as many as the largest needs)
        steps = np.where(whole > k, steps + 1.0 / (h + k), steps)
    return _digamma_one_plus(h) + steps


def _digamma64(x):
    with _quiet(np, over=True):
        neg = x < 0
        pos = _digamma_positive(np.where(neg, 1.0 - x, np.where(x > 0, x, 1.0)))
        out = np.where(neg, pos - math.pi / np.tan(math.pi * _offset(x)), pos)
        out = np.where(x == 0, np.copysign(np.inf, -x), out)
        out = np.where(x == np.inf, np.inf, out)
        return np.where((neg & (x == np.floor(x))) | (x == -np.inf) | np.isnan(x), np.nan, out)


def _trigamma_positive(x):
    acc, z = _shifted(x, lambda a, z, below: np.where(below, a + 1.0 / (z * z), a), np.zeros_like(x))
    inv, inv2 = 1.0 / z, 1.0 / (z * z)
    series, power = np.zeros_like(z), inv2 * inv
    for b in _BERNOULLI:
        series += b * power
        power = power * inv2
    return acc + inv + 0.5 * inv2 + series


def _trigamma64(x):
    with _quiet(np, over=True):
        neg = x < 0
        pos = _trigamma_positive(np.where(neg, 1.0 - x, np.where(x > 0, x, 1.0)))
        s = np.sin(math.pi * _offset(x))
        out = np.where(neg, math.pi * math.pi / (s * s) - pos, pos)
        out = np.where(x == np.inf, 0.0, out)
        # +inf at the poles, trigamma's value from both sides. PyTorch's reflection gives finite, erratic numbers
        # there (pi^2 / sin(fl(pi) x)^2 with pi rounded to the dtype: 1.29e15 at -1 in float32), not copied
        pole = (x == 0) | (neg & (x == np.floor(x)) & np.isfinite(x))  # (-inf: NaN, as PyTorch's)
        return np.where(pole, np.inf, np.where((x == -np.inf) | np.isnan(x), np.nan, out))


def lgamma_array(x):
    """``log|Gamma(x)|``, elementwise."""
    return _in_float64(lgamma64, x) if get_array_module(x) is np else _cupy_special("gammaln")(x)


def digamma_array(x):
    """``psi(x) = d/dx lgamma(x)``, elementwise."""
    return _in_float64(_digamma64, x) if get_array_module(x) is np else _cupy_special("digamma")(x)


def trigamma_array(x):
    """``psi'(x)``, elementwise (digamma's derivative)."""
    if get_array_module(x) is np:
        return _in_float64(_trigamma64, x)
    return cupy_polygamma(1, x)


def _igamma64(a, x, upper=False):
    """The regularized lower incomplete gamma ``P(a, x)`` (``upper``: ``Q = 1 - P``, each computed directly where
    it is the small one, so neither loses its tail to the subtraction; Numerical Recipes' split): the series
    ``x^a e^-x / Gamma(a + 1) sum_n x^n / ((a + 1) ... (a + n))`` below ``x = a + 1`` and ``1 - Q`` from Legendre's
    continued fraction for ``Q`` (modified Lentz) above; both converge within ``~10 sqrt(a)`` steps, the count
    taken from the largest ``a`` (a fixed number of whole-array steps)."""
    with _quiet(np, over=True):
        a, x = np.broadcast_arrays(a, x)
        big = x >= a + 1.0
        steps = int(min(20000, 60 + 12 * math.sqrt(float(np.max(a[np.isfinite(a)], initial=1.0)))))
        log_prefix = np.where(x > 0, a * np.log(np.where(x > 0, x, 1.0)), 0.0) - x - lgamma64(a)
        # series (evaluated where x < a + 1; elsewhere on a harmless stand-in)
        xs = np.where(big, 0.0, x)
        term = 1.0 / a
        total = term.copy()
        for n in range(1, steps):
            term = term * xs / (a + n)
            total = total + term
        series = np.exp(log_prefix) * total
        # continued fraction for Q (evaluated where x >= a + 1)
        xc = np.where(big, x, a + 1.0)
        tiny = 1e-300
        b = xc + 1.0 - a
        c, d = np.full_like(b, 1.0 / tiny), 1.0 / b
        h = d.copy()
        for i in range(1, steps):
            an = -i * (i - a)
            b = b + 2.0
            d = an * d + b
            d = np.where(np.abs(d) < tiny, tiny, d)
            c = b + an / c
            c = np.where(np.abs(c) < tiny, tiny, c)
            d = 1.0 / d
            h = h * d * c
        q = np.exp(log_prefix) * h
        out = np.where(big, q, 1.0 - series) if upper else np.where(big, 1.0 - q, series)
        # PyTorch's values at the edges, the first condition that holds deciding
        nan = np.nan
        edges = [((x < 0) | (a < 0), nan), ((a == np.inf) & (x == np.inf), nan), (a == np.inf, 0.0),
                 (np.isnan(x), nan), ((a == 0) & (x == 0), nan), (a == 0, 1.0), (x == 0, 0.0), (x == np.inf, 1.0),
                 (np.isnan(a), nan)]
        return np.select([c for c, _ in edges], [1.0 - v if upper else v for _, v in edges], out)  # (1 - nan: nan)


def igamma_array(a, x):
    """``P(a, x)``, PyTorch's ``igamma``/``special.gammainc`` (its values at the edges: NaN for ``a < 0`` or
    ``x < 0``, 1 for ``a = 0 < x``, ...)."""
    if get_array_module(x) is np:
        dtype = np.result_type(a, x)
        return _igamma64(np.asarray(a, np.float64), np.asarray(x, np.float64)).astype(dtype, copy=False)
    return _cupy_special("gammainc")(a, x)


def igammac_array(a, x):
    """``Q(a, x) = 1 - P(a, x)``, PyTorch's ``igammac``/``special.gammaincc`` (its values at the edges)."""
    if get_array_module(x) is np:
        dtype = np.result_type(a, x)
        return _igamma64(np.asarray(a, np.float64), np.asarray(x, np.float64), upper=True).astype(dtype, copy=False)
    return _cupy_special("gammaincc")(a, x)
