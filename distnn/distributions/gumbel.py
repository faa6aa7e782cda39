"""``Gumbel(loc, scale)``: PyTorch's ``torch.distributions.Gumbel``, ``loc - scale * log(-log(u))`` for
``u ~ Uniform(tiny, 1 - eps)``, built as PyTorch builds it (a ``TransformedDistribution`` of that Uniform), so
``rsample``, ``cdf`` and ``icdf`` go through the transforms; ``log_prob`` is written out."""
from __future__ import annotations

import math
import numbers

import distnn

from . import constraints
from .transformed_distribution import TransformedDistribution
from .transforms_elementwise import AffineTransform, ExpTransform
from .uniform import Uniform
from .utils import as_tensor, broadcast_all

euler_constant = 0.57721566490153286060  # (Euler-Mascheroni)


class Gumbel(TransformedDistribution):
    """Density ``exp(-(z + exp(-z))) / scale`` for ``z = (x - loc) / scale``."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        finfo = distnn.finfo(self.loc.dtype)
        if isinstance(loc, numbers.Number) and isinstance(scale, numbers.Number):
            base_dist = Uniform(finfo.tiny, 1 - finfo.eps, validate_args=validate_args)
        else:
            base_dist = Uniform(distnn.full_like(self.loc, finfo.tiny), distnn.full_like(self.loc, 1 - finfo.eps),
                                validate_args=validate_args)
        transforms = [ExpTransform().inv, AffineTransform(loc=0, scale=-distnn.ones_like(self.scale)),
                      ExpTransform().inv, AffineTransform(loc=loc, scale=-self.scale)]
        super().__init__(base_dist, transforms, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Gumbel, _instance)
        new.loc = self.loc.expand(tuple(batch_shape))
        new.scale = self.scale.expand(tuple(batch_shape))
        return super().expand(batch_shape, _instance=new)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        y = (self.loc - as_tensor(value, self.loc)) / self.scale
        return (y - y.exp()) - self.scale.log()

    @property
    def mean(self):
        return self.loc + self.scale * euler_constant

    @property
    def mode(self):
        return self.loc

    @property
    def stddev(self):
        return (math.pi / math.sqrt(6)) * self.scale

    @property
    def variance(self):
        return self.stddev.pow(2)

    def entropy(self):
        return self.scale.log() + (1 + euler_constant)
