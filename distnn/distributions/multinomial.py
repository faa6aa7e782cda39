"""``Multinomial(total_count=1, probs=None, logits=None)``: PyTorch's ``torch.distributions.Multinomial``, the
counts of each of ``K`` classes (the last dim of ``probs``/``logits``) in ``total_count`` categorical draws.
``log_prob`` takes the number of trials from each value, so it accepts any count vector; ``sample`` and
``entropy`` use ``total_count``."""
from __future__ import annotations

import numpy as np

import distnn

from . import constraints
from .binomial import Binomial
from .categorical import Categorical
from .distribution import Distribution
from .utils import as_tensor, broadcast_all, generator, host


class Multinomial(Distribution):
    arg_constraints = {"probs": constraints.simplex, "logits": constraints.real_vector}

    def __init__(self, total_count=1, probs=None, logits=None, validate_args=None):
        if not isinstance(total_count, int):
            raise NotImplementedError("inhomogeneous total_count is not supported")
        self.total_count = total_count
        self._categorical = Categorical(probs=probs, logits=logits)
        self._binomial = Binomial(total_count=total_count, probs=self.probs)
        super().__init__(self._categorical.batch_shape, tuple(self._categorical.param_shape[-1:]),
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Multinomial, _instance)
        new.total_count = self.total_count
        new._categorical = self._categorical.expand(batch_shape)
        new._binomial = Binomial(total_count=self.total_count, probs=new._categorical.probs, validate_args=False)
        Distribution.__init__(new, tuple(batch_shape), self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=1)
    def support(self):
        return constraints.multinomial(self.total_count)

    @property
    def logits(self):
        return self._categorical.logits

    @property
    def probs(self):
        return self._categorical.probs

    @property
    def param_shape(self):
        return self._categorical.param_shape

    @property
    def mean(self):
        return self.probs * self.total_count

    @property
    def variance(self):
        return self.total_count * self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        """Counts of ``sample_shape + batch_shape + (K,)`` (in the parameter's dtype)."""
        shape = self._extended_shape(sample_shape)
        probs = host(self.probs.detach().expand(shape))
        probs = probs / probs.sum(-1, keepdims=True)  # (numpy's sampler wants the float64 sum within its tolerance)
        counts = generator().multinomial(self.total_count, probs)
        return as_tensor(counts.astype(np.float64), self.probs)

    def entropy(self):
        # n H(categorical) - log n! + sum_k E[log x_k!], the last by the binomial marginals of the counts
        n = distnn.tensor(float(self.total_count), dtype=self.probs.dtype)
        term1 = n * self._categorical.entropy() - distnn.lgamma(n + 1)
        support = self._binomial.enumerate_support(expand=False)[1:]
        binomial_probs = self._binomial.log_prob(support).exp()
        weights = distnn.lgamma(support + 1)
        return term1 + (binomial_probs * weights).sum((0, -1))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, as_tensor(value, self.logits))
        log_factorial_n = distnn.lgamma(value.sum(-1) + 1)
        log_factorial_xs = distnn.lgamma(value + 1).sum(-1)
        # (a class of probability 0 counted 0 times contributes 0, not 0 * -inf)
        logits = distnn.where((value == 0) & (logits == float("-inf")), 0.0, logits)
        return log_factorial_n - log_factorial_xs + (logits * value).sum(-1)
