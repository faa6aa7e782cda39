"""``Uniform(low, high)``: PyTorch's ``torch.distributions.Uniform`` on the half-open ``[low, high)``."""
from __future__ import annotations

from . import constraints
from .distribution import Distribution
from .utils import as_tensor, broadcast_all, standard_uniform


class Uniform(Distribution):
    """Uniform on ``[low, high)``; ``rsample`` is ``low + u (high - low)``, differentiable in both bounds."""

    has_rsample = True

    @property
    def arg_constraints(self):
        # low < high, checked at construction as PyTorch's (a width of 0 or less has no density)
        return {"low": constraints.less_than(self.high), "high": constraints.greater_than(self.low)}

    def __init__(self, low, high, validate_args=None):
        self.low, self.high = broadcast_all(low, high)
        super().__init__(self.low.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Uniform, batch_shape, _instance, ("low", "high"))

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return constraints.interval(self.low, self.high)

    @property
    def mean(self):
        return (self.high + self.low) / 2

    @property
    def mode(self):
        return self.high * float("nan")

    @property
    def stddev(self):
        return (self.high - self.low) / 12 ** 0.5

    @property
    def variance(self):
        return (self.high - self.low).pow(2) / 12

    def rsample(self, sample_shape=()):
        u = standard_uniform(self._extended_shape(sample_shape), self.low)
        return self.low + u * (self.high - self.low)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_tensor(value, self.low)
        inside = ((self.low <= value) & (self.high > value)).astype(self.low.dtype)
        return inside.log() - (self.high - self.low).log()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return ((as_tensor(value, self.low) - self.low) / (self.high - self.low)).clamp(min=0, max=1)

    def icdf(self, value):
        return as_tensor(value, self.low) * (self.high - self.low) + self.low

    def entropy(self):
        return (self.high - self.low).log()
