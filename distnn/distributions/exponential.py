"""``Exponential(rate)``: PyTorch's ``torch.distributions.Exponential``."""
from __future__ import annotations

from . import constraints
from .exp_family import ExponentialFamily
from .utils import as_tensor, broadcast_all, uniform_open


class Exponential(ExponentialFamily):
    """Density ``rate e^{-rate x}`` on ``x >= 0``; ``rsample`` is ``-log(u) / rate``."""

    arg_constraints = {"rate": constraints.positive}
    support = constraints.nonnegative
    has_rsample = True
    _mean_carrier_measure = 0

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Exponential, batch_shape, _instance, ("rate",))

    @property
    def mean(self):
        return self.rate.reciprocal()

    @property
    def mode(self):
        return self.rate * 0

    @property
    def stddev(self):
        return self.rate.reciprocal()

    @property
    def variance(self):
        return self.rate.pow(-2)

    def rsample(self, sample_shape=()):
        u = uniform_open(self._extended_shape(sample_shape), self.rate)
        return -as_tensor(u).log() / self.rate

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return self.rate.log() - self.rate * as_tensor(value, self.rate)

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        return 1 - (-self.rate * as_tensor(value, self.rate)).exp()

    def icdf(self, value):
        return -(1 - as_tensor(value, self.rate)).log() / self.rate

    def entropy(self):
        return 1.0 - self.rate.log()

    @property
    def _natural_params(self):
        return (-self.rate,)

    def _log_normalizer(self, x):
        return -(-x).log()
