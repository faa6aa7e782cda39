"""``GeneralizedPareto(loc, scale, concentration)``: PyTorch's ``torch.distributions.GeneralizedPareto``.

With ``z = (x - loc) / scale`` and ``c = concentration``, the survival function is ``(1 + c z)^{-1/c}``
(``e^{-z}`` at ``c = 0``); the support is ``[loc, inf)`` for ``c >= 0`` and ``[loc, loc - scale / c]`` for
``c < 0``. ``c`` within ``isclose`` of 0 takes the exponential formulas (with ``c`` replaced by 1 in the unused
branch, so its gradient stays finite), as PyTorch's. ``rsample`` is ``icdf(u)`` for uniform ``u``.
"""
from __future__ import annotations

import numbers

import distnn

from . import constraints
from .distribution import Distribution
from .utils import as_tensor, broadcast_all, standard_uniform


def _isclose_zero(t):
    """``torch.isclose(t, 0)`` with its default tolerances (``|t| <= 1e-8``)."""
    return t.abs() <= 1e-8


class GeneralizedPareto(Distribution):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive, "concentration": constraints.real}
    has_rsample = True

    def __init__(self, loc, scale, concentration, validate_args=None):
        self.loc, self.scale, self.concentration = broadcast_all(loc, scale, concentration)
        numbers_only = all(isinstance(v, numbers.Number) for v in (loc, scale, concentration))
        super().__init__(() if numbers_only else self.loc.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(GeneralizedPareto, batch_shape, _instance, ("loc", "scale", "concentration"))

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        lower = self.loc
        c = self.concentration
        upper = distnn.where(c < 0, lower - self.scale / distnn.where(c < 0, c, -1.0), float("inf"))
        return constraints.interval(lower, upper)

    def _z(self, x):
        return (as_tensor(x, self.loc) - self.loc) / self.scale

    def _safe_concentration(self):
        eq_zero = _isclose_zero(self.concentration)
        return eq_zero, distnn.where(eq_zero, 1.0, self.concentration)

    def rsample(self, sample_shape=()):
        u = distnn.Tensor(standard_uniform(self._extended_shape(sample_shape), self.loc))
        return self.icdf(u)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = self._z(value)
        eq_zero, safe_conc = self._safe_concentration()
        y = 1 / safe_conc + distnn.ones_like(z)
        where_nonzero = distnn.where(y == 0, y, y * (safe_conc * z).log1p())
        return -self.scale.log() - distnn.where(eq_zero, z, where_nonzero)

    def log_survival_function(self, value):
        if self._validate_args:
            self._validate_sample(value)
        z = self._z(value)
        eq_zero, safe_conc = self._safe_concentration()
        return distnn.where(eq_zero, -z, -(safe_conc * z).log1p() / safe_conc)

    def log_cdf(self, value):
        return (-self.log_survival_function(value).exp()).log1p()

    def cdf(self, value):
        return self.log_cdf(value).exp()

    def icdf(self, value):
        eq_zero, safe_conc = self._safe_concentration()
        logu = (-as_tensor(value, self.loc)).log1p()
        where_nonzero = self.loc + self.scale / safe_conc * (-safe_conc * logu).expm1()
        return distnn.where(eq_zero, self.loc - self.scale * logu, where_nonzero)

    @property
    def mean(self):
        valid = self.concentration < 1
        safe_conc = distnn.where(valid, self.concentration, 0.5)
        return distnn.where(valid, self.loc + self.scale / (1 - safe_conc), float("nan"))

    @property
    def variance(self):
        valid = self.concentration < 0.5
        safe_conc = distnn.where(valid, self.concentration, 0.25)
        return distnn.where(valid, self.scale ** 2 / ((1 - safe_conc) ** 2 * (1 - 2 * safe_conc)), float("nan"))

    def entropy(self):
        return (self.scale.log() + self.concentration + 1).expand(self._batch_shape)

    @property
    def mode(self):
        return self.loc
