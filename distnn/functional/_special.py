"""erf, erfc and erfinv of raw arrays, to float64 precision, with numpy alone (numpy has none of them and scipy
is not a dependency). cupy arrays use cupyx.scipy.special, which ships with cupy.

No per-element Python: each function is a fixed number of whole-array steps.

* erf for |x| < 1.5: ``2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (2n+1)!!``, a series of positive terms (no
  cancellation), 60 terms (the last far below 1e-17 of the sum at |x| = 1.5).
* erfc for x >= 1.5: Laplace's continued fraction ``e^{-x^2}/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))``,
  120 levels evaluated from the bottom up (converged to rounding from x = 1.5). Each is the other's complement.
* erfinv: a closed-form guess (Winitzki's, relative error below 2e-3), then three Halley steps on
  ``erf(x) = y`` (on ``erfc(x) = 1 - y`` for |y| > 0.5, where 1 - y is exact): cubic convergence.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.backend import get_array_module

from ._elementwise_common import _quiet

_SPLIT = 1.5  # the series below, the continued fraction above
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _cupy_special(name):
    from cupyx.scipy import special

    return getattr(special, name)


def cupy_polygamma(n: int, x):
    """cupyx's ``polygamma(n, x)`` of a cupy ``x``, in ``x``'s dtype. Its order goes in as a 0-d device array:
    cupyx's polygamma is a Python function, not a ufunc, and calls ``cupy.where(n == 0, ...)``, which the bool
    of a Python int's ``n == 0`` breaks (cupy 14: "'bool' object has no attribute 'astype'")."""
    return _cupy_special("polygamma")(get_array_module(x).asarray(n), x).astype(x.dtype, copy=False)


def _in_float64(fn, x):
    """``fn`` on ``x`` computed in float64 (float16/float32 inputs are cast back: rounded once)."""
    out = fn(x.astype(np.float64, copy=False))
    return out.astype(x.dtype, copy=False)


def horner(z, coeffs):
    """``sum c_k z^(m-k)`` (coefficients highest order first) by Horner's rule from a zero start, as PyTorch's
    kernel loops and Cephes' ``polevl`` (the same values for a finite ``z``), over a whole numpy or cupy array."""
    out = 0.0
    for c in coeffs:
        out = out * z + c
    return out


def _exp_minus_square(x):
    """``e^{-x^2}`` without the rounding of ``x * x`` (which costs x^2 ulps at large x): ``x = h + l`` with ``h``
    keeping 12 bits after the point (18 in all below 40, where the callers use it), so ``h * h`` is exact and
    ``-x^2 = -h^2 - l (x + h)``."""
    h = np.trunc(x * 2.0**12) / 2.0**12
    return np.exp(-h * h) * np.exp(-(x - h) * (x + h))


def _erf_series(x):
    """erf for |x| < 1.5 (see the module docstring)."""
    x2 = 2.0 * x * x
    term = x.copy()
    total = x.copy()
    for n in range(1, 60):
        term *= x2 / (2 * n + 1)
        total += term
    return _TWO_OVER_SQRT_PI * _exp_minus_square(x) * total


def _erfc_fraction(x):
    """erfc for x >= 1.5 (see the module docstring); above 40 (inf too) it is 0 (it underflows from 27.3)."""
    x = np.minimum(x, 40.0)  # (NaN stays NaN)
    t = x.copy()
    for k in range(120, 0, -1):
        t = x + (0.5 * k) / t
    with _quiet(np, over=True):
        return _exp_minus_square(x) / (math.sqrt(math.pi) * t)


def _erf64(x):
    small = np.abs(x) < _SPLIT
    s = _erf_series(np.where(small, x, 0.0))
    with _quiet(np):
        tail = 1.0 - _erfc_fraction(np.where(small, _SPLIT, np.abs(x)))
    return np.where(small, s, np.copysign(tail, x))  # (NaN: |NaN| < 2 is False, and the fraction keeps it NaN)


def _erfc64(x):
    small = np.abs(x) < _SPLIT
    s = 1.0 - _erf_series(np.where(small, x, 0.0))
    with _quiet(np):
        big = _erfc_fraction(np.where(small, _SPLIT, np.abs(x)))
    return np.where(small, s, np.where(x > 0, big, 2.0 - big))


def _erfinv64(y):
    a = 0.147
    with _quiet(np):
        ln = np.log((1.0 - y) * (1.0 + y))  # (1 - y^2 without cancelling near |y| = 1)
        b = 2.0 / (math.pi * a) + 0.5 * ln
        x = np.copysign(np.sqrt(np.sqrt(b * b - ln / a) - b), y)
        tail = np.abs(y) > 0.5
        q = np.where(y > 0, 1.0 - y, 1.0 + y)  # erfc(|x|) = 1 - |y|, exact for |y| >= 0.5
        for _ in range(3):
            slope = _TWO_OVER_SQRT_PI * _exp_minus_square(x)
            # (in the tails erfc's residual, of the opposite sign: erfc(|x|) - q = -(erf(|x|) - |y|))
            f = np.where(tail, np.sign(y) * (q - _erfc64(np.abs(x))), _erf64(x) - y)
            u = f / slope
            step = np.where(np.isfinite(u), u / (1.0 + x * u), 0.0)  # Halley's step; erf''/erf' = -2x
            x = x - step
    x = np.where(np.abs(y) == 1.0, np.copysign(np.inf, y), x)
    return np.where(np.abs(y) > 1.0, np.nan, x)  # (NaN stays NaN through the steps)


def erf_array(x):
    xp = get_array_module(x)
    return _in_float64(_erf64, x) if xp is np else _cupy_special("erf")(x)


def erfc_array(x):
    xp = get_array_module(x)
    return _in_float64(_erfc64, x) if xp is np else _cupy_special("erfc")(x)


def erfinv_array(y):
    xp = get_array_module(y)
    return _in_float64(_erfinv64, y) if xp is np else _cupy_special("erfinv")(y)
