"""``FisherSnedecor(df1, df2)``: PyTorch's ``torch.distributions.FisherSnedecor`` (the F distribution).

``rsample`` is the ratio of ``Gamma(df1/2, df1)`` and ``Gamma(df2/2, df2)`` draws (each ``Chi2(df)/df``), both
implicitly reparameterized, so differentiable in ``df1`` and ``df2`` as PyTorch's.
"""
from __future__ import annotations

import numbers

import numpy as np

import distnn

from . import constraints
from .distribution import Distribution
from .gamma import Gamma
from .utils import as_tensor, broadcast_all


class FisherSnedecor(Distribution):
    arg_constraints = {"df1": constraints.positive, "df2": constraints.positive}
    support = constraints.positive
    has_rsample = True

    def __init__(self, df1, df2, validate_args=None):
        self.df1, self.df2 = broadcast_all(df1, df2)
        self._gamma1 = Gamma(self.df1 * 0.5, self.df1)
        self._gamma2 = Gamma(self.df2 * 0.5, self.df2)
        numbers_only = isinstance(df1, numbers.Number) and isinstance(df2, numbers.Number)
        super().__init__(() if numbers_only else self.df1.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._expand_params(FisherSnedecor, batch_shape, _instance, ("df1", "df2"))
        new._gamma1, new._gamma2 = self._gamma1.expand(batch_shape), self._gamma2.expand(batch_shape)
        return new

    @property
    def mean(self):
        # df2 / (df2 - 2), NaN for df2 <= 2 (no gradient there, as PyTorch's masked df2)
        df2 = distnn.where(self.df2 <= 2, float("nan"), self.df2)
        return df2 / (df2 - 2)

    @property
    def mode(self):
        mode = (self.df1 - 2) / self.df1 * self.df2 / (self.df2 + 2)
        return distnn.where(self.df1 <= 2, float("nan"), mode)

    @property
    def variance(self):
        df2 = distnn.where(self.df2 <= 4, float("nan"), self.df2)
        return 2 * df2.pow(2) * (self.df1 + df2 - 2) / (self.df1 * (df2 - 2).pow(2) * (df2 - 4))

    def rsample(self, sample_shape=()):
        X1 = self._gamma1.rsample(sample_shape)
        X2 = self._gamma2.rsample(sample_shape)
        tiny = float(np.finfo(X2.dtype).tiny)
        # (kept off 0 as PyTorch's in-place clamps: the value changes, the gradient stays the ratio's)
        X2 = X2 + (X2.detach().clamp(min=tiny) - X2.detach())
        Y = X1 / X2
        return Y + (Y.detach().clamp(min=tiny) - Y.detach())

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_tensor(value, self.df1)
        ct1, ct2, ct3 = self.df1 * 0.5, self.df2 * 0.5, self.df1 / self.df2
        t1 = distnn.lgamma(ct1 + ct2) - distnn.lgamma(ct1) - distnn.lgamma(ct2)
        t2 = ct1 * ct3.log() + (ct1 - 1) * value.log()
        t3 = (ct1 + ct2) * (ct3 * value).log1p()
        return t1 + t2 - t3
