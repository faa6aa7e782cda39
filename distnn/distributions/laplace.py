"""``Laplace(loc, scale)``: PyTorch's ``torch.distributions.Laplace``."""
from __future__ import annotations

import math

from .loc_scale import LocScale
from .utils import as_tensor, standard_uniform


class Laplace(LocScale):
    """Density ``e^{-|x - loc| / scale} / (2 scale)``; ``rsample`` inverts the CDF at a uniform draw."""

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Laplace, batch_shape, _instance, ("loc", "scale"))

    @property
    def variance(self):
        return 2 * self.scale.pow(2)

    @property
    def stddev(self):
        return math.sqrt(2) * self.scale

    def rsample(self, sample_shape=()):
        import numpy as np

        u = standard_uniform(self._extended_shape(sample_shape), self.loc)
        eps = float(np.finfo(u.dtype).eps)
        u = as_tensor(u * 2 - 1).clamp(min=-1 + eps, max=1)  # (in (-1, 1): log1p(-|u|) finite, as PyTorch's)
        return self.loc - self.scale * u.sign() * (-u.abs()).log1p()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return -(2 * self.scale).log() - (as_tensor(value, self.loc) - self.loc).abs() / self.scale

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = as_tensor(value, self.loc) - self.loc
        return 0.5 - 0.5 * z.sign() * (-z.abs() / self.scale).expm1()

    def icdf(self, value):
        term = as_tensor(value, self.loc) - 0.5
        return self.loc - self.scale * term.sign() * (-2 * term.abs()).log1p()

    def entropy(self):
        return 1 + (2 * self.scale).log()
