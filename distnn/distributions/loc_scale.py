"""What Normal, Laplace and Cauchy share: a real-valued family of a location and a positive scale."""
from __future__ import annotations

from . import constraints
from .distribution import Distribution
from .utils import broadcast_all


class LocScale(Distribution):
    """``loc`` and ``scale`` broadcast together (the batch shape), real support, reparameterized sampling;
    the mean and the mode are ``loc`` unless a family says otherwise (Cauchy has no mean)."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc
