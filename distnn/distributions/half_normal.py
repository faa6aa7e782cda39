"""``HalfNormal(scale)``: PyTorch's ``torch.distributions.HalfNormal``, ``|x|`` for ``x ~ Normal(0, scale)``
(a ``TransformedDistribution`` by ``AbsTransform``); the density, cdf and icdf are written out."""
from __future__ import annotations

import math

import distnn

from . import constraints
from .normal import Normal
from .transformed_distribution import TransformedDistribution
from .transforms_elementwise import AbsTransform
from .utils import as_tensor


class HalfNormal(TransformedDistribution):
    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True

    def __init__(self, scale, validate_args=None):
        base_dist = Normal(0, scale, validate_args=False)
        super().__init__(base_dist, AbsTransform(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(HalfNormal, _instance)
        return super().expand(batch_shape, _instance=new)

    @property
    def scale(self):
        return self.base_dist.scale

    @property
    def mean(self):
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def mode(self):
        return distnn.zeros_like(self.scale)

    @property
    def variance(self):
        return self.scale.pow(2) * (1 - 2 / math.pi)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_tensor(value, self.scale)
        log_prob = self.base_dist.log_prob(value) + math.log(2)  # (both halves fold onto x >= 0)
        return distnn.where(value >= 0, log_prob, -math.inf)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 2 * self.base_dist.cdf(value) - 1

    def icdf(self, prob):
        return self.base_dist.icdf((prob + 1) / 2)

    def entropy(self):
        return self.base_dist.entropy() - math.log(2)
