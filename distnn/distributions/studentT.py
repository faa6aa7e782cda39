"""``StudentT(df, loc=0.0, scale=1.0)``: PyTorch's ``torch.distributions.StudentT``.

``rsample`` is ``loc + scale * X / sqrt(Z / df)`` with ``X ~ N(0, 1)`` and ``Z ~ Chi2(df)``, reparameterized in all
three parameters (in ``df`` through the Chi2's implicit Gamma gradient), as PyTorch's.
"""
from __future__ import annotations

import math

import distnn

from . import constraints
from .chi2 import Chi2
from .distribution import Distribution
from .utils import as_tensor, broadcast_all, standard_normal


class StudentT(Distribution):
    """Density ``Gamma((df+1)/2) / (Gamma(df/2) sqrt(pi df) scale) * (1 + y^2/df)^{-(df+1)/2}``,
    ``y = (x - loc) / scale``."""

    arg_constraints = {"df": constraints.positive, "loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, df, loc=0.0, scale=1.0, validate_args=None):
        self.df, self.loc, self.scale = broadcast_all(df, loc, scale)
        self._chi2 = Chi2(self.df)
        super().__init__(self.df.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._expand_params(StudentT, batch_shape, _instance, ("df", "loc", "scale"))
        new._chi2 = self._chi2.expand(batch_shape)
        return new

    @property
    def mean(self):
        # (undefined, NaN, for df <= 1; the gradient there is 0, as PyTorch's masked assignment)
        return distnn.where(self.df <= 1, float("nan"), self.loc)

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        # scale^2 df / (df - 2) for df > 2, inf for 1 < df <= 2, NaN for df <= 1 (df kept off 2 in the unused
        # branch, so that its gradient is 0 rather than NaN)
        big = self.df > 2
        df = distnn.where(big, self.df, 3.0)
        finite = self.scale.pow(2) * df / (df - 2)
        return distnn.where(big, finite, distnn.where(self.df > 1, float("inf"), float("nan")))

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        X = distnn.Tensor(standard_normal(shape, self.df))
        Z = self._chi2.rsample(sample_shape)
        Y = X * (Z / self.df).rsqrt()
        return self.loc + self.scale * Y

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        y = (as_tensor(value, self.loc) - self.loc) / self.scale
        Z = (self.scale.log() + 0.5 * self.df.log() + 0.5 * math.log(math.pi) + distnn.lgamma(0.5 * self.df)
             - distnn.lgamma(0.5 * (self.df + 1.0)))
        return -0.5 * (self.df + 1.0) * (y.pow(2) / self.df).log1p() - Z

    def entropy(self):
        lbeta = distnn.lgamma(0.5 * self.df) + math.lgamma(0.5) - distnn.lgamma(0.5 * (self.df + 1))
        return (self.scale.log()
                + 0.5 * (self.df + 1) * (distnn.digamma(0.5 * (self.df + 1)) - distnn.digamma(0.5 * self.df))
                + 0.5 * self.df.log() + lbeta)
