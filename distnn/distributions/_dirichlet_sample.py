"""Dirichlet draws with PyTorch's implicit reparameterization gradient (its ``_Dirichlet`` function).

A draw ``x ~ Dir(alpha)`` is Gammas normalized, ``x_i = g_i / sum(g)``. Its coordinate ``x_i`` is a
``Beta(alpha_i, total - alpha_i)`` draw; holding that Beta's quantile fixed gives
``dx_i/dalpha_i = -(dF/dalpha_i) / f(x_i)`` (Jankowiak & Obermeyer 2018, "Pathwise Derivatives Beyond the
Reparameterization Trick"), and the other coordinates move in proportion to stay on the simplex:
``dx_j/dalpha_i = -x_j d_i`` and ``dx_i/dalpha_i = (1 - x_i) d_i`` where ``d_i = dx_i/dalpha_i / (1 - x_i)``.
So a cotangent ``g`` gives ``d * (g - <x, g>)``. :func:`dirichlet_grad` evaluates ``d`` as PyTorch's
``_dirichlet_grad`` does, with the paper's approximations of the Beta CDF's derivative: Taylor series near
``x = 0`` and ``x = 1``, Rice's saddle-point expansion where both Beta parameters exceed 6, and elsewhere
their fitted rational correction to ``x (psi(total) - psi(alpha)) / beta``. So given the same draw the
gradient equals PyTorch's (whereas differentiating ``g / sum(g)`` through each Gamma's own implicit gradient
is also unbiased, but is a different per-draw value).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module
from distnn.functional._elementwise_common import _quiet
from distnn.functional._gamma_special import digamma_array

from .utils import generator, host

# The fitted rational correction: _COEF[0] is the numerator's, _COEF[1] the denominator's; [.., i, j, k]
# multiplies u^i a^j b^k (u = log x, a = log(alpha / x), b = log(total) - a).
_COEF = np.array([
    [[[1.003668233, -0.01061107488, -0.0657888334, 0.01201642863],
      [0.6336835991, -0.3557432599, 0.05486251648, -0.001465281033],
      [-0.03276231906, 0.004474107445, 0.002429354597, -0.0001557569013]],
     [[0.221950385, -0.3187676331, 0.01799915743, 0.01074823814],
      [-0.2951249643, 0.06219954479, 0.01535556598, 0.001550077057],
      [0.02155310298, 0.004170831599, 0.001292462449, 6.976601077e-05]],
     [[-0.05980841433, 0.008441916499, 0.01085618172, 0.002319392565],
      [0.02911413504, 0.01400243777, -0.002721828457, 0.000751041181],
      [0.005900514878, -0.001936558688, -9.495446725e-06, 5.385558597e-05]]],
    [[[1, -0.02924021934, -0.04438342661, 0.007285809825],
      [0.6357567472, -0.3473456711, 0.05454656494, -0.002407477521],
      [-0.03301322327, 0.004845219414, 0.00231480583, -0.0002307248149]],
     [[0.5925320577, -0.1757678135, 0.01505928619, 0.000564515273],
      [0.1014815858, -0.06589186703, 0.01272886114, -0.0007316646956],
      [-0.007258481865, 0.001096195486, 0.0003934994223, -4.12701925e-05]],
     [[0.06469649321, -0.0236701437, 0.002902096474, -5.896963079e-05],
      [0.001925008108, -0.002869809258, 0.0008000589141, -6.063713228e-05],
      [-0.0003477407336, 6.959756487e-05, 1.097287507e-05, -1.650964693e-06]]],
])


def _alpha_small(x, alpha, beta):
    """``dx/dalpha / (1 - x)`` of a ``Beta(alpha, beta)`` draw near 0: the series of its CDF in ``x``
    (11 terms)."""
    factor = digamma_array(alpha) - digamma_array(alpha + beta) - np.log(x)
    numer = np.ones_like(x)
    series = numer / alpha * (factor + 1 / alpha)
    for i in range(1, 11):
        numer = numer * (i - beta) * x / i
        denom = alpha + i
        series = series + numer / denom * (factor + 1 / denom)
    result = x * (1 - x) ** -beta * series
    return np.where(np.isnan(result), 0.0, result)


def _beta_small(x, alpha, beta):
    """``dx/dbeta`` (scaled as :func:`_alpha_small`) of a ``Beta(alpha, beta)`` draw near 0 (9 terms); a draw
    near 1 is ``1 - x`` of the swapped Beta."""
    factor = digamma_array(alpha + beta) - digamma_array(beta)
    numer, betas, dbetas = np.ones_like(x), np.ones_like(x), np.zeros_like(x)
    series = factor / alpha
    for i in range(1, 9):
        numer = numer * -x / i
        dbetas = dbetas * (beta - i) + betas  # (the derivative in beta of the product below)
        betas = betas * (beta - i)
        series = series + numer / (alpha + i) * (dbetas + factor * betas)
    result = -(1 - x) ** (1 - beta) * series
    return np.where(np.isnan(result), 0.0, result)


def _alpha_mid(x, alpha, beta):
    """Rice's saddle-point expansion (both parameters above 6), with a polynomial within a tenth of a
    standard deviation of the mean, where the general formula is 0/0."""
    total = alpha + beta
    mean = alpha / total
    std = np.sqrt(alpha * beta / (total + 1)) / total
    near = (mean - 0.1 * std <= x) & (x <= mean + 0.1 * std)
    b2 = beta * beta
    poly = 47 * x * b2 * b2 + alpha * (
        (43 + 20 * (16 + 27 * beta) * x) * b2 * beta + alpha * (
            3 * (59 + 180 * beta - 90 * x) * b2 + alpha * (
                (453 + 1620 * beta * (1 - x) - 455 * x) * beta + alpha * (8 * (1 - x) * (135 * beta - 11)))))
    prefactor_num = (1 + 12 * alpha) * (1 + 12 * beta) / (total * total)
    prefactor_den = 12960 * alpha * alpha * alpha * beta * beta * (1 + 12 * total)
    near_value = prefactor_num / (1 - x) * poly / prefactor_den

    prefactor = -x / np.sqrt(2 * alpha * beta / total)
    stirling = ((1 + 1 / (12 * alpha) + 1 / (288 * alpha * alpha)) * (1 + 1 / (12 * beta) + 1 / (288 * b2))
                / (1 + 1 / (12 * total) + 1 / (288 * total * total)))
    axbx = alpha * (x - 1) + beta * x
    term1 = ((2 * alpha * alpha * (x - 1) + alpha * beta * (x - 1) - x * b2)
             / (np.sqrt(2 * alpha / beta) * total ** 1.5 * axbx * axbx))
    term2 = 0.5 * np.log(alpha / (total * x))
    term3 = np.sqrt(8 * alpha * beta / total) / axbx
    term4 = (beta * np.log(beta / (total * (1 - x))) + alpha * np.log(alpha / (total * x))) ** -1.5
    far_value = stirling * prefactor * (term1 + term2 * (term3 + np.where(x < mean, term4, -term4)))
    return np.where(near, near_value, far_value)


def _rational(x, alpha, total):
    """The fitted rational correction of the analytic approximation ``x (psi(total) - psi(alpha)) / beta``."""
    u = np.log(x)
    a = np.log(alpha) - u
    b = np.log(total) - a
    p, q = np.zeros_like(x), np.zeros_like(x)
    for i in range(3):
        for j in range(3):
            ua = u ** i * a ** j
            cp, cq = _COEF[0, i, j], _COEF[1, i, j]
            p = p + ua * (cp[0] + b * (cp[1] + b * (cp[2] + b * cp[3])))
            q = q + ua * (cq[0] + b * (cq[1] + b * (cq[2] + b * cq[3])))
    approx = x * (digamma_array(total) - digamma_array(alpha)) / (total - alpha)
    return p / q * approx


def dirichlet_grad(x, alpha, total):
    """``d = dx/dalpha / (1 - x)`` for each coordinate ``x`` of Dirichlet draws (host float64 arrays of one
    shape; ``total`` is the concentrations' sum, broadcast), as PyTorch's ``_dirichlet_grad``."""
    with _quiet(np, over=True):
        beta = total - alpha
        boundary = total * x * (1 - x)
        near_0 = (x <= 0.5) & (boundary < 2.5)
        near_1 = ~near_0 & (x >= 0.5) & (boundary < 0.75)
        mid = ~near_0 & ~near_1 & (alpha > 6) & (beta > 6)
        # each branch on every element (a harmless stand-in for x where it is not the one chosen)
        out = _rational(x, alpha, total)
        out = np.where(mid, _alpha_mid(np.where(mid, x, alpha / total), alpha, beta), out)
        out = np.where(near_1, -_beta_small(1 - np.where(near_1, x, 0.75), beta, alpha), out)
        return np.where(near_0, _alpha_small(np.where(near_0, x, 0.25), alpha, beta), out)


class DirichletSample(Function):
    """Draws ``x ~ Dir(alpha)`` along the last dim: Gammas (numpy's, kept at or above the dtype's smallest
    normal number) normalized, then kept inside ``[tiny, 1 - eps]`` (so logs stay finite); the gradient is
    ``d * (g - <x, g>)`` at the returned draw (see the module docstring)."""

    reads = ((0,),)

    def forward(self, alpha):
        xp = get_array_module(alpha)
        a = host(alpha)
        finfo = np.finfo(alpha.dtype)
        g = np.maximum(generator().standard_gamma(a), float(finfo.tiny)).astype(alpha.dtype)
        x = np.clip(g / g.sum(-1, keepdims=True), float(finfo.tiny), 1 - float(finfo.eps))
        self.alpha, self.x = a, x.astype(np.float64)
        return xp.asarray(x)

    def backward(self, g):
        xp = get_array_module(g)
        total = np.broadcast_to(self.alpha.sum(-1, keepdims=True), self.alpha.shape)
        d = xp.asarray(dirichlet_grad(self.x, self.alpha, total)).astype(g.dtype, copy=False)
        x = xp.asarray(self.x).astype(g.dtype, copy=False)
        return (d * (g - (x * g).sum(-1, keepdims=True)),)


def sample_dirichlet(alpha):
    """Differentiable Dirichlet draws of ``alpha``'s shape (distnn's default generator)."""
    return DirichletSample.apply(alpha)
