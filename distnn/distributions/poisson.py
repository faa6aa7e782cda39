"""``Poisson(rate)``: PyTorch's ``torch.distributions.Poisson`` (counts; ``sample`` has no gradient)."""
from __future__ import annotations

import distnn

from . import constraints
from .exp_family import ExponentialFamily
from .utils import as_tensor, broadcast_all, generator, host


class Poisson(ExponentialFamily):
    """``P(k) = rate^k e^{-rate} / k!`` for ``k = 0, 1, ...``."""

    arg_constraints = {"rate": constraints.nonnegative}
    support = constraints.nonnegative_integer

    def __init__(self, rate, validate_args=None):
        (self.rate,) = broadcast_all(rate)
        super().__init__(self.rate.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Poisson, batch_shape, _instance, ("rate",))

    @property
    def mean(self):
        return self.rate

    @property
    def mode(self):
        return self.rate.floor()

    @property
    def variance(self):
        return self.rate

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        draws = generator().poisson(host(self.rate.detach().expand(shape)))
        return as_tensor(draws, self.rate)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        rate, value = distnn.broadcast_tensors(self.rate, as_tensor(value, self.rate))
        return distnn.xlogy(value, rate) - rate - distnn.lgamma(value + 1)

    @property
    def _natural_params(self):
        return (self.rate.log(),)

    def _log_normalizer(self, x):
        return x.exp()
