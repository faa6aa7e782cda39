"""Standard Gamma draws with implicit reparameterization gradients (PyTorch's ``torch._standard_gamma``).

A draw ``x ~ Gamma(alpha, 1)`` is a function of ``alpha`` and the draw's quantile ``u = F(x; alpha)``; holding
``u`` fixed, ``dx/dalpha = -(dF/dalpha) / f(x; alpha)`` (Figurnov et al. 2018, "Implicit Reparameterization
Gradients"). That ratio has no closed form; :func:`standard_gamma_grad` evaluates the approximations of
Jankowiak & Obermeyer 2018 ("Pathwise Derivatives Beyond the Reparameterization Trick"), which PyTorch uses: a
Taylor series of ``F`` for ``x < 0.8``, Rice's saddle-point expansion for ``alpha > 8``, and elsewhere their
fitted bivariate rational function of ``log(x / alpha)`` and ``log(alpha)``. So given the same draw the gradient
equals ``torch._standard_gamma_grad``'s. The draws are numpy's (``Generator.standard_gamma``), on the host.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module
from distnn.functional._elementwise_common import _quiet
from distnn.functional._gamma_special import digamma_array

from .utils import generator, host

# The fitted coefficients (Jankowiak & Obermeyer 2018): row i multiplies u^i; columns 0-3 the numerator's
# and 4-7 the denominator's polynomial in v.
_COEF_UV = np.array([
    [0.16009398, -0.094634809, 0.025146376, -0.0030648343, 1, 0.32668115, 0.10406089, 0.0014179084],
    [0.53487893, 0.1298071, 0.065735949, -0.0015649758, 0.16639465, 0.020070113, -0.0035938915, -0.00058392623],
    [0.040121004, -0.0065914022, -0.0026286047, -0.0013441777, 0.017050642, -0.0021309326, 0.00085092367,
     -1.5247877e-07],
])


def _small_x(alpha, x):
    """``-(dF/dalpha) / f`` from ``F = x^alpha sum_k (-x)^k / (k! (alpha + k))`` (6 terms; x < 0.8)."""
    numer, denom = np.ones_like(x), alpha.copy()
    series1, series2 = numer / denom, numer / (denom * denom)
    for i in range(1, 6):
        numer = numer * (-x / i)
        denom = denom + 1
        series1 = series1 + numer / denom
        series2 = series2 + numer / (denom * denom)
    pow_x_alpha = x ** alpha
    pdf = x ** (alpha - 1) * np.exp(-x)
    cdf = pow_x_alpha * series1
    cdf_alpha = (np.log(x) - digamma_array(alpha)) * cdf - pow_x_alpha * series2
    result = -cdf_alpha / pdf
    return np.where(np.isnan(result), 0.0, result)


def _large_alpha(alpha, x):
    """Rice's saddle-point expansion (alpha > 8), with a polynomial within 10% of the mode, where the general
    formula is 0/0."""
    near = (0.9 * alpha <= x) & (x <= 1.1 * alpha)
    numer_1 = 1 + 24 * alpha * (1 + 12 * alpha)
    numer_2 = 1440 * alpha * alpha + 6 * x * (53 - 120 * x) - 65 * x * x / alpha + alpha * (107 + 3600 * x)
    near_value = numer_1 * numer_2 / (1244160 * alpha ** 4)
    denom = np.sqrt(8 * alpha)
    term2 = denom / (alpha - x)
    term3 = (x - alpha - alpha * np.log(x / alpha)) ** -1.5
    term23 = np.where(x < alpha, term2 - term3, term2 + term3)
    term1 = np.log(x / alpha) * term23 - np.sqrt(2 / alpha) * (alpha + x) / ((alpha - x) ** 2)
    stirling = 1 + 1 / (12 * alpha) * (1 + 1 / (24 * alpha))
    return np.where(near, near_value, -stirling * x * term1 / denom)


def _rational(alpha, x):
    u, v = np.log(x / alpha), np.log(alpha)
    c = [_COEF_UV[0, i] + u * (_COEF_UV[1, i] + u * _COEF_UV[2, i]) for i in range(8)]
    p = c[0] + v * (c[1] + v * (c[2] + v * c[3]))
    q = c[4] + v * (c[5] + v * (c[6] + v * c[7]))
    return np.exp(p / q)


def standard_gamma_grad(alpha, x):
    """``dx/dalpha`` of standard Gamma draws ``x`` (host float64 arrays of one shape)."""
    with _quiet(np, over=True):
        small = x < 0.8
        large = ~small & (alpha > 8)
        safe_x = np.where(small, 1.0, x)
        out = np.where(large, _large_alpha(alpha, safe_x), _rational(alpha, safe_x))
        return np.where(small, _small_x(alpha, np.where(small, x, 0.5)), out)


class StandardGamma(Function):
    """Draws ``x ~ Gamma(alpha, 1)`` (kept at or above the dtype's smallest normal number, as PyTorch's
    ``Gamma.rsample`` keeps them); the gradient is ``g * dx/dalpha`` (see the module docstring)."""

    reads = ((0,),)

    def forward(self, alpha):
        xp = get_array_module(alpha)
        a = host(alpha)
        x = np.maximum(generator().standard_gamma(a), float(np.finfo(alpha.dtype).tiny))
        self.alpha, self.x = a, x
        return xp.asarray(x).astype(alpha.dtype, copy=False)

    def backward(self, g):
        xp = get_array_module(g)
        return (g * xp.asarray(standard_gamma_grad(self.alpha, self.x)).astype(g.dtype, copy=False),)


def standard_gamma(alpha):
    """Differentiable standard Gamma draws of ``alpha``'s shape (distnn's default generator)."""
    return StandardGamma.apply(alpha)
