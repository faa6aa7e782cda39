"""``Geometric(probs=None, logits=None)``: PyTorch's ``torch.distributions.Geometric``, the number of failures
before the first success, ``P(k) = (1 - p)^k p`` on ``{0, 1, ...}``."""
from __future__ import annotations

import numpy as np

import distnn
from distnn.functional import binary_cross_entropy_with_logits

from . import constraints
from .distribution import Distribution
from .utils import BinaryProbsLogits, as_tensor, broadcast_all, standard_uniform


class Geometric(BinaryProbsLogits, Distribution):
    """``probs`` in (0, 1] (the success probability) or ``logits`` (its log-odds): exactly one of the two."""

    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.nonnegative_integer

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            (self.probs,) = broadcast_all(probs)
        else:
            (self.logits,) = broadcast_all(logits)
        param = self.probs if probs is not None else self.logits
        super().__init__(param.shape, validate_args=validate_args)
        if self._validate_args and probs is not None:
            # (unit_interval admits 0, where no success ever comes: PyTorch refuses it separately)
            valid = self.probs.data > 0
            if not bool(valid.all()):
                raise ValueError(f"Expected parameter probs ({type(self.probs).__name__} of shape "
                                 f"{tuple(self.probs.shape)}) of distribution {self!r} to be positive but found "
                                 f"invalid values:\n{self.probs.data[~valid]}")

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Geometric, batch_shape, _instance, ("probs", "logits"))

    @property
    def mean(self):
        return 1.0 / self.probs - 1.0

    @property
    def mode(self):
        return distnn.zeros_like(self.probs)

    @property
    def variance(self):
        return (1.0 / self.probs - 1.0) / self.probs

    def sample(self, sample_shape=()):
        """``floor(log u / log(1 - p))`` for ``u`` uniform on [tiny, 1) (inversion of the CDF)."""
        shape = self._extended_shape(sample_shape)
        with distnn.no_grad():
            probs = self.probs.detach()
            u = standard_uniform(shape, probs)
            u = distnn.Tensor(distnn.get_array_module(u).maximum(u, float(np.finfo(u.dtype).tiny)))
            return (u.log() / (-probs).log1p()).floor()

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value, probs = broadcast_all(as_tensor(value, self.probs), self.probs)
        # (p = 1 and k = 0: 0 * log(0) is 0, PyTorch's masked p)
        probs = distnn.where((probs == 1) & (value == 0), 0.0, probs)
        return value * (-probs).log1p() + self.probs.log()

    def entropy(self):
        return binary_cross_entropy_with_logits(self.logits, self.probs, reduction="none") / self.probs
