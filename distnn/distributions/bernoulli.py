"""``Bernoulli(probs=None, logits=None)``: PyTorch's ``torch.distributions.Bernoulli``."""
from __future__ import annotations

import numbers

import distnn

from . import constraints
from .exp_family import ExponentialFamily
from .utils import BinaryProbsLogits, as_tensor, broadcast_all, standard_uniform


def binary_log_prob(logits, value):
    """``value log p + (1 - value) log(1 - p)`` from logits: minus PyTorch's ``binary_cross_entropy_with_logits``,
    written as its kernel writes it (``(1 - t) x + m + log(e^-m + e^{-x-m})``, ``m = max(-x, 0)``: ``1 - t`` is
    exact for ``t`` near 1, so the entropy at large logits keeps its digits), differentiable in both."""
    max_val = (-logits).clamp(min=0)
    return -((1 - value) * logits + max_val + ((-max_val).exp() + (-logits - max_val).exp()).log())


class Bernoulli(BinaryProbsLogits, ExponentialFamily):
    """1 with probability ``probs`` (or ``sigmoid(logits)``: exactly one of the two), else 0."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.boolean
    has_enumerate_support = True
    _mean_carrier_measure = 0

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        given = probs if probs is not None else logits
        is_scalar = isinstance(given, numbers.Number)
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
        else:
            (self.logits,) = broadcast_all(logits)
        self._param = self.probs if probs is not None else self.logits
        super().__init__(() if is_scalar else self._param.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Bernoulli, batch_shape, _instance, ("probs", "logits"))

    @property
    def param_shape(self):
        return self._param.shape

    @property
    def mean(self):
        return self.probs

    @property
    def mode(self):
        p = self.probs.detach()
        return distnn.where(p == 0.5, float("nan"), (p >= 0.5).astype(p.dtype)).astype(p.dtype)

    @property
    def variance(self):
        return self.probs * (1 - self.probs)

    def sample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        with distnn.no_grad():
            p = self.probs.expand(shape)
            return (as_tensor(standard_uniform(shape, p)) < p).astype(p.dtype)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = distnn.broadcast_tensors(self.logits, as_tensor(value, self.logits))
        return binary_log_prob(logits, value)

    def entropy(self):
        return -binary_log_prob(self.logits, self.probs)

    def enumerate_support(self, expand=True):
        values = as_tensor([0.0, 1.0], self._param).reshape((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1,) + self._batch_shape) if expand else values

    @property
    def _natural_params(self):
        return (distnn.logit(self.probs),)

    def _log_normalizer(self, x):
        return x.exp().log1p()
