"""``HalfNormal(scale)``: PyTorch's ``torch.distributions.HalfNormal``, ``|x|`` for ``x ~ Normal(0, scale)``
(a ``TransformedDistribution`` by ``AbsTransform``; the folded density, cdf and icdf: folded_at_zero.py)."""
from __future__ import annotations

import math

from .folded_at_zero import FoldedAtZero
from .normal import Normal


class HalfNormal(FoldedAtZero):
    base_class = Normal

    @property
    def mean(self):
        return self.scale * math.sqrt(2 / math.pi)

    @property
    def variance(self):
        return self.scale.pow(2) * (1 - 2 / math.pi)
