"""``Gamma(concentration, rate)``: PyTorch's ``torch.distributions.Gamma``.

``rsample`` is reparameterized implicitly (see :mod:`._standard_gamma`): differentiable in ``concentration``
(with PyTorch's gradient for a given draw) and in ``rate`` (a draw is ``standard_gamma(concentration) / rate``).
``cdf`` is :func:`distnn.igamma`, differentiable in ``rate`` and the value (not in ``concentration``: PyTorch's
igamma has no such derivative either, and both refuse it).
"""
from __future__ import annotations

import numpy as np

import distnn

from . import constraints
from ._standard_gamma import standard_gamma
from .exp_family import ExponentialFamily
from .utils import as_tensor, broadcast_all


class Gamma(ExponentialFamily):
    """Density ``rate^c x^{c-1} e^{-rate x} / Gamma(c)`` for ``c = concentration``, on ``x >= 0``."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _mean_carrier_measure = 0

    def __init__(self, concentration, rate, validate_args=None):
        self.concentration, self.rate = broadcast_all(concentration, rate)
        super().__init__(self.concentration.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Gamma, batch_shape, _instance, ("concentration", "rate"))

    @property
    def mean(self):
        return self.concentration / self.rate

    @property
    def mode(self):
        return ((self.concentration - 1) / self.rate).clamp(min=0)

    @property
    def variance(self):
        return self.concentration / self.rate.pow(2)

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        value = standard_gamma(self.concentration.expand(shape)) / self.rate.expand(shape)
        tiny = float(np.finfo(value.dtype).tiny)
        return value + (value.detach().clamp(min=tiny) - value.detach())  # (kept off 0; the gradient unchanged)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_tensor(value, self.rate)
        c, rate = self.concentration, self.rate
        return distnn.xlogy(c, rate) + distnn.xlogy(c - 1, value) - rate * value - distnn.lgamma(c)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return distnn.igamma(self.concentration, self.rate * as_tensor(value, self.rate))

    def entropy(self):
        c = self.concentration
        return c - self.rate.log() + distnn.lgamma(c) + (1.0 - c) * distnn.digamma(c)

    @property
    def _natural_params(self):
        return (self.concentration - 1, -self.rate)

    def _log_normalizer(self, x, y):
        return distnn.lgamma(x + 1) + (x + 1) * (-y.reciprocal()).log()
