"""``Cauchy(loc, scale)``: PyTorch's ``torch.distributions.Cauchy`` (no mean or variance: NaN and inf)."""
from __future__ import annotations

import math

from .loc_scale import LocScale
from .utils import as_tensor, standard_uniform


class Cauchy(LocScale):
    """Density ``1 / (pi scale (1 + ((x - loc) / scale)^2))``; ``rsample`` is ``loc + scale tan(pi (u - 1/2))``."""

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Cauchy, batch_shape, _instance, ("loc", "scale"))

    @property
    def mean(self):
        return (self.loc * 0 + float("nan")).detach()

    @property
    def variance(self):
        return (self.loc * 0 + float("inf")).detach()

    def rsample(self, sample_shape=()):
        u = standard_uniform(self._extended_shape(sample_shape), self.loc)
        eps = as_tensor(math.pi * (u - 0.5)).tan()  # (a standard Cauchy draw)
        return self.loc + eps * self.scale

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = (as_tensor(value, self.loc) - self.loc) / self.scale
        return -math.log(math.pi) - self.scale.log() - (z ** 2).log1p()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return ((as_tensor(value, self.loc) - self.loc) / self.scale).atan() / math.pi + 0.5

    def icdf(self, value):
        return (math.pi * (as_tensor(value, self.loc) - 0.5)).tan() * self.scale + self.loc

    def entropy(self):
        return math.log(4 * math.pi) + self.scale.log()
