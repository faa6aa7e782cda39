"""The half distributions' shared body: ``|x|`` for ``x`` from a base distribution centred at 0 with a ``scale``
(a ``TransformedDistribution`` by ``AbsTransform``), as torch's HalfNormal and HalfCauchy; the density, cdf,
icdf and entropy fold the base's two halves onto ``x >= 0``. Subclasses name the base and its moments."""
from __future__ import annotations

import math

import distnn

from . import constraints
from .transformed_distribution import TransformedDistribution
from .transforms_elementwise import AbsTransform
from .utils import as_tensor


class FoldedAtZero(TransformedDistribution):
    arg_constraints = {"scale": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    base_class = None  # the subclass's symmetric base, called as base_class(0, scale)

    def __init__(self, scale, validate_args=None):
        base_dist = self.base_class(0, scale, validate_args=False)
        super().__init__(base_dist, AbsTransform(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(type(self), _instance)
        return super().expand(batch_shape, _instance=new)

    @property
    def scale(self):
        return self.base_dist.scale

    @property
    def mode(self):
        return distnn.zeros_like(self.scale)

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
