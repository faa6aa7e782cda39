"""``ContinuousBernoulli(probs=None, logits=None, lims=(0.499, 0.501))``: PyTorch's
``torch.distributions.ContinuousBernoulli`` (Loaiza-Ganem & Cunningham 2019), the density
``C(p) p^x (1-p)^{1-x}`` on [0, 1].

The normalizer ``C(p)``, the mean, the variance, the CDF and its inverse are 0/0 at ``p = 1/2``: for ``p`` in
``lims`` they are Taylor expansions about 1/2, and the exact formulas are evaluated at ``lims[0]`` there (so
their gradients stay finite), as PyTorch's. ``rsample`` is ``icdf(u)`` for uniform ``u``: differentiable in the
parameter. ``probs`` are kept inside (0, 1) by the dtype's epsilon, as PyTorch's ``clamp_probs``.
"""
from __future__ import annotations

import math
import numbers

import distnn
from distnn.functional import binary_cross_entropy_with_logits

from . import constraints
from .exp_family import ExponentialFamily
from .utils import (as_tensor, broadcast_all, clamp_probs, lazy_property, logits_to_probs, probs_to_logits,
                    standard_uniform)


class ContinuousBernoulli(ExponentialFamily):
    arg_constraints = {"probs": constraints.unit_interval, "logits": constraints.real}
    support = constraints.unit_interval
    _mean_carrier_measure = 0
    has_rsample = True

    def __init__(self, probs=None, logits=None, lims=(0.499, 0.501), validate_args=None):
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            is_scalar = isinstance(probs, numbers.Number)
            (self.probs,) = broadcast_all(probs)
            # (PyTorch checks the unclamped probs only when validate_args is given explicitly)
            if validate_args is not None and not bool(self.arg_constraints["probs"].check(self.probs).all()):
                raise ValueError("The parameter probs has invalid values")
            self.probs = clamp_probs(self.probs)
        else:
            is_scalar = isinstance(logits, numbers.Number)
            (self.logits,) = broadcast_all(logits)
        self._param = self.probs if probs is not None else self.logits
        self._lims = lims
        super().__init__(() if is_scalar else self._param.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._expand_params(ContinuousBernoulli, batch_shape, _instance, ("probs", "logits"))
        new._lims = self._lims
        return new

    @lazy_property
    def logits(self):
        return probs_to_logits(self.probs, is_binary=True)

    @lazy_property
    def probs(self):
        return clamp_probs(logits_to_probs(self.logits, is_binary=True))

    @property
    def param_shape(self):
        return self._param.shape

    def _outside_unstable_region(self):
        return (self.probs <= self._lims[0]) | (self.probs > self._lims[1])

    def _cut_probs(self):
        """``probs`` outside ``lims``; ``lims[0]`` inside (where the exact formulas are not used)."""
        return distnn.where(self._outside_unstable_region(), self.probs, self._lims[0])

    def _cont_bern_log_norm(self):
        """``log C(p)``: ``log(|log(1-p) - log p| / |1 - 2p|)``, or its Taylor series about 1/2."""
        cut_probs = self._cut_probs()
        below_half = distnn.where(cut_probs <= 0.5, cut_probs, 0.0)
        above_half = distnn.where(cut_probs >= 0.5, cut_probs, 1.0)
        log_norm = ((-cut_probs).log1p() - cut_probs.log()).abs().log() - distnn.where(
            cut_probs <= 0.5, (-2.0 * below_half).log1p(), (2.0 * above_half - 1.0).log())
        x = (self.probs - 0.5).pow(2)
        taylor = math.log(2.0) + (4.0 / 3.0 + 104.0 / 45.0 * x) * x
        return distnn.where(self._outside_unstable_region(), log_norm, taylor)

    @property
    def mean(self):
        cut_probs = self._cut_probs()
        mus = cut_probs / (2.0 * cut_probs - 1.0) + 1.0 / ((-cut_probs).log1p() - cut_probs.log())
        x = self.probs - 0.5
        taylor = 0.5 + (1.0 / 3.0 + 16.0 / 45.0 * x.pow(2)) * x
        return distnn.where(self._outside_unstable_region(), mus, taylor)

    @property
    def variance(self):
        cut_probs = self._cut_probs()
        variances = (cut_probs * (cut_probs - 1.0) / (1.0 - 2.0 * cut_probs).pow(2)
                     + 1.0 / ((-cut_probs).log1p() - cut_probs.log()).pow(2))
        x = (self.probs - 0.5).pow(2)
        taylor = 1.0 / 12.0 - (1.0 / 15.0 - 128.0 / 945.0 * x) * x
        return distnn.where(self._outside_unstable_region(), variances, taylor)

    def sample(self, sample_shape=()):
        with distnn.no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape=()):
        u = distnn.Tensor(standard_uniform(self._extended_shape(sample_shape), self.probs))
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        logits, value = broadcast_all(self.logits, as_tensor(value, self.logits))
        return -binary_cross_entropy_with_logits(logits, value, reduction="none") + self._cont_bern_log_norm()

    def cdf(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_tensor(value, self.probs)
        cut_probs = self._cut_probs()
        cdfs = (cut_probs.pow(value) * (1.0 - cut_probs).pow(1.0 - value) + cut_probs - 1.0) / (2.0 * cut_probs - 1.0)
        unbounded_cdfs = distnn.where(self._outside_unstable_region(), cdfs, value)
        return distnn.where(value <= 0.0, 0.0, distnn.where(value >= 1.0, 1.0, unbounded_cdfs))

    def icdf(self, value):
        value = as_tensor(value, self.probs)
        cut_probs = self._cut_probs()
        exact = (((-cut_probs + value * (2.0 * cut_probs - 1.0)).log1p() - (-cut_probs).log1p())
                 / (cut_probs.log() - (-cut_probs).log1p()))
        return distnn.where(self._outside_unstable_region(), exact, value)

    def entropy(self):
        log_probs0, log_probs1 = (-self.probs).log1p(), self.probs.log()
        return self.mean * (log_probs0 - log_probs1) - self._cont_bern_log_norm() - log_probs0

    @property
    def _natural_params(self):
        return (self.logits,)

    def _log_normalizer(self, x):
        """The log normalizer as a function of the natural parameter (the logits), as PyTorch's."""
        out_unst_reg = (x <= self._lims[0] - 0.5) | (x > self._lims[1] - 0.5)
        cut_nat_params = distnn.where(out_unst_reg, x, self._lims[0] - 0.5)
        log_norm = cut_nat_params.expm1().abs().log() - cut_nat_params.abs().log()
        taylor = 0.5 * x + x.pow(2) / 24.0 - x.pow(4) / 2880.0
        return distnn.where(out_unst_reg, log_norm, taylor)
