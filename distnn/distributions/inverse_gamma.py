"""``InverseGamma(concentration, rate)``: PyTorch's ``torch.distributions.InverseGamma``, ``1 / x`` for
``x ~ Gamma(concentration, rate)``, a ``TransformedDistribution`` by ``PowerTransform(-1)``."""
from __future__ import annotations

import math

import distnn

from . import constraints
from .gamma import Gamma
from .transformed_distribution import TransformedDistribution
from .transforms_elementwise import PowerTransform


class InverseGamma(TransformedDistribution):
    """Density ``rate^c x^(-c - 1) exp(-rate / x) / Gamma(c)`` on ``x > 0``, ``c = concentration``."""

    arg_constraints = {"concentration": constraints.positive, "rate": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, concentration, rate, validate_args=None):
        base_dist = Gamma(concentration, rate, validate_args=validate_args)
        neg_one = -base_dist.rate.new_ones(())
        super().__init__(base_dist, PowerTransform(neg_one), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(InverseGamma, _instance)
        return super().expand(batch_shape, _instance=new)

    @property
    def concentration(self):
        return self.base_dist.concentration

    @property
    def rate(self):
        return self.base_dist.rate

    @property
    def mean(self):
        result = self.rate / (self.concentration - 1)
        return distnn.where(self.concentration > 1, result, math.inf)

    @property
    def mode(self):
        return self.rate / (self.concentration + 1)

    @property
    def variance(self):
        result = self.rate.square() / ((self.concentration - 1).square() * (self.concentration - 2))
        return distnn.where(self.concentration > 2, result, math.inf)

    def entropy(self):
        c = self.concentration
        return c + self.rate.log() + distnn.lgamma(c) - (1 + c) * distnn.digamma(c)
