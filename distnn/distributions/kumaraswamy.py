"""``Kumaraswamy(concentration1, concentration0)``: PyTorch's ``torch.distributions.Kumaraswamy``,
``(1 - u^(1/b))^(1/a)`` for ``u ~ Uniform(0, 1)``, a ``TransformedDistribution`` as PyTorch builds it."""
from __future__ import annotations

import math

import distnn

from . import constraints
from .gumbel import euler_constant
from .transformed_distribution import TransformedDistribution
from .transforms_elementwise import AffineTransform, PowerTransform
from .uniform import Uniform
from .utils import broadcast_all


def _moments(a, b, n):
    """The ``n``-th moment ``b B(1 + n/a, b)``, through lgamma."""
    arg1 = 1 + n / a
    log_value = distnn.lgamma(arg1) + distnn.lgamma(b) - distnn.lgamma(arg1 + b)
    return b * log_value.exp()


class Kumaraswamy(TransformedDistribution):
    """Density ``a b x^(a - 1) (1 - x^a)^(b - 1)`` on (0, 1), ``a = concentration1``, ``b = concentration0``."""

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.unit_interval
    has_rsample = True

    def __init__(self, concentration1, concentration0, validate_args=None):
        self.concentration1, self.concentration0 = broadcast_all(concentration1, concentration0)
        base_dist = Uniform(distnn.full_like(self.concentration0, 0), distnn.full_like(self.concentration0, 1),
                            validate_args=validate_args)
        transforms = [PowerTransform(exponent=self.concentration0.reciprocal()),
                      AffineTransform(loc=1.0, scale=-1.0),
                      PowerTransform(exponent=self.concentration1.reciprocal())]
        super().__init__(base_dist, transforms, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Kumaraswamy, _instance)
        new.concentration1 = self.concentration1.expand(tuple(batch_shape))
        new.concentration0 = self.concentration0.expand(tuple(batch_shape))
        return super().expand(batch_shape, _instance=new)

    @property
    def mean(self):
        return _moments(self.concentration1, self.concentration0, 1)

    @property
    def mode(self):
        log_mode = (self.concentration0.reciprocal() * (-self.concentration0).log1p()
                    - (-self.concentration0 * self.concentration1).log1p())
        no_mode = (self.concentration0 < 1) | (self.concentration1 < 1)  # (NaN there, as PyTorch's)
        return distnn.where(no_mode, math.nan, log_mode).exp()

    @property
    def variance(self):
        return _moments(self.concentration1, self.concentration0, 2) - self.mean.pow(2)

    def entropy(self):
        t1 = 1 - self.concentration1.reciprocal()
        t0 = 1 - self.concentration0.reciprocal()
        h0 = distnn.digamma(self.concentration0 + 1) + euler_constant
        return t0 + t1 * h0 - self.concentration1.log() - self.concentration0.log()
