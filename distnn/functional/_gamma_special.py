"""lgamma, digamma and trigamma of raw arrays to float64 precision with numpy alone (numpy has none of them and
scipy is not a dependency); cupy arrays use cupyx.scipy.special, which ships with cupy.

No per-element Python: a fixed number of whole-array steps each. lgamma's numpy arithmetic is in
:mod:`._lgamma` (fdlibm's method, about an ulp); digamma and trigamma are here:

* Positive arguments are shifted up to ``z >= 10`` by the recurrences (``psi(x) = psi(x + 1) - 1/x``,
  ``psi'(x) = psi'(x + 1) + 1/x^2``), at most 10 steps, then the asymptotic series with 8 Bernoulli terms,
  whose first omitted term is below 1e-17 at ``z = 10``.
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
from ._special import _cupy_special, _in_float64

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


def _digamma_positive(x):
    acc, z = _shifted(x, lambda a, z, below: np.where(below, a - 1.0 / z, a), np.zeros_like(x))
    inv2 = 1.0 / (z * z)
    series, power = np.zeros_like(z), inv2
    for k, b in enumerate(_BERNOULLI, start=1):
        series += b / (2 * k) * power
        power = power * inv2
    return acc + np.log(z) - 0.5 / z - series


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
    return _cupy_special("polygamma")(1, x).astype(x.dtype, copy=False)


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
