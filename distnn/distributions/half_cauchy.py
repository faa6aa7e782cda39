"""``HalfCauchy(scale)``: PyTorch's ``torch.distributions.HalfCauchy``, ``|x|`` for ``x ~ Cauchy(0, scale)``
(a ``TransformedDistribution`` by ``AbsTransform``; the folded density, cdf and icdf: folded_at_zero.py)."""
from __future__ import annotations

import math

import distnn

from .cauchy import Cauchy
from .folded_at_zero import FoldedAtZero


class HalfCauchy(FoldedAtZero):
    base_class = Cauchy

    @property
    def mean(self):
        return distnn.full_like(self.scale, math.inf)  # (no mean; the batch shape, no gradient)

    @property
    def variance(self):
        return self.base_dist.variance
