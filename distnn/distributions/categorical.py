"""``Categorical(probs=None, logits=None)``: PyTorch's ``torch.distributions.Categorical``, a draw being a
class index in ``[0, K)`` where ``K`` is the last dim of ``probs``/``logits`` (the other dims: the batch)."""
from __future__ import annotations

import numpy as np

import distnn

from . import constraints
from .distribution import Distribution
from .utils import as_tensor, lazy_property, logits_to_probs, probs_to_logits, standard_uniform


class Categorical(Distribution):
    """``probs`` (non-negative, normalized here along the last dim) or ``logits`` (unnormalized log
    probabilities, normalized by ``logsumexp``): exactly one of the two."""

    arg_constraints = {"probs": constraints.simplex, "logits": constraints.independent(constraints.real, 1)}
    has_enumerate_support = True

    def __init__(self, probs=None, logits=None, validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            probs = as_tensor(probs)
            if probs.ndim < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            logits = as_tensor(logits)
            if logits.ndim < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
        self._param = self.probs if probs is not None else self.logits
        self._num_events = self._param.shape[-1]
        super().__init__(tuple(self._param.shape[:-1]), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._expand_params(Categorical, batch_shape, _instance, ("probs", "logits"))
        new._num_events = self._num_events
        return new

    @constraints.dependent_property(is_discrete=True, event_dim=0)
    def support(self):
        return constraints.integer_interval(0, self._num_events - 1)

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs)

    @lazy_property
    def probs(self):
        return logits_to_probs(self.logits)

    @property
    def param_shape(self):
        return self._param.shape

    @property
    def mean(self):
        return distnn.full(self._extended_shape(), float("nan"), dtype=self.probs.dtype)

    @property
    def mode(self):
        return self.probs.argmax(dim=-1)

    @property
    def variance(self):
        return distnn.full(self._extended_shape(), float("nan"), dtype=self.probs.dtype)

    def sample(self, sample_shape=()):
        """Class indices (int64): the first class whose cumulative probability exceeds a uniform draw."""
        shape = self._extended_shape(sample_shape)
        with distnn.no_grad():
            probs = self.probs.detach().expand(shape + (self._num_events,))
            cum = probs.cumsum(-1).data
            xp = distnn.get_array_module(cum)
            u = standard_uniform(shape + (1,), self.probs) * cum[..., -1:]
            index = (cum <= u).sum(-1)  # (classes of probability 0 are never drawn: their cum equals the last)
            return distnn.Tensor(xp.minimum(index, self._num_events - 1).astype(np.int64))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_tensor(value).astype(np.int64).unsqueeze(-1)
        value, log_pmf = distnn.broadcast_tensors(value, self.logits)
        return log_pmf.gather(-1, value[..., :1]).squeeze(-1)

    def entropy(self):
        min_real = float(np.finfo(self.logits.dtype).min)
        p_log_p = self.logits.clamp(min=min_real) * self.probs
        return -p_log_p.sum(-1)

    def enumerate_support(self, expand=True):
        values = distnn.arange(self._num_events).reshape((-1,) + (1,) * len(self._batch_shape))
        return values.expand((-1,) + self._batch_shape) if expand else values
