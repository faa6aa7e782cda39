"""``LogNormal(loc, scale)``: PyTorch's ``torch.distributions.LogNormal``, ``exp`` of a :class:`Normal` draw.

As PyTorch's, a :class:`TransformedDistribution` of ``Normal(loc, scale)`` by :class:`ExpTransform`: its
``log_prob(y)`` is ``normal.log_prob(log y) - log y``, ``cdf``/``icdf`` go through the base's, and
``kl_divergence`` of two LogNormals is the Normals' (the TransformedDistribution pair).
"""
from __future__ import annotations

from . import constraints
from .normal import Normal
from .transformed_distribution import TransformedDistribution
from .transforms_elementwise import ExpTransform


class LogNormal(TransformedDistribution):
    """``y = exp(x)`` for ``x ~ Normal(loc, scale)``; ``rsample`` is differentiable in both parameters."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        base_dist = Normal(loc, scale, validate_args=validate_args)
        super().__init__(base_dist, ExpTransform(), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LogNormal, _instance)
        return super().expand(batch_shape, _instance=new)

    @property
    def loc(self):
        return self.base_dist.loc

    @property
    def scale(self):
        return self.base_dist.scale

    @property
    def mean(self):
        return (self.loc + self.scale.pow(2) / 2).exp()

    @property
    def mode(self):
        return (self.loc - self.scale.square()).exp()

    @property
    def variance(self):
        scale2 = self.scale.pow(2)
        return scale2.expm1() * (2 * self.loc + scale2).exp()

    def entropy(self):
        return self.base_dist.entropy() + self.loc
