"""``Dirichlet(concentration)``: PyTorch's ``torch.distributions.Dirichlet``, on the simplex of the last dim.

``rsample`` normalizes independent Gamma draws (``x = g / sum(g)``, ``g_i ~ Gamma(c_i, 1)``) and is
reparameterized implicitly through each coordinate's marginal Beta (:mod:`._dirichlet_sample`): given the same
draw its gradient is PyTorch's (``_dirichlet_grad``).
"""
from __future__ import annotations

import distnn

from . import constraints
from ._dirichlet_sample import sample_dirichlet
from .exp_family import ExponentialFamily
from .utils import as_tensor


class Dirichlet(ExponentialFamily):
    arg_constraints = {"concentration": constraints.independent(constraints.positive, 1)}
    support = constraints.simplex
    has_rsample = True

    def __init__(self, concentration, validate_args=None):
        concentration = as_tensor(concentration)
        if concentration.ndim < 1:
            raise ValueError("`concentration` parameter must be at least one-dimensional.")
        self.concentration = concentration
        super().__init__(tuple(concentration.shape[:-1]), tuple(concentration.shape[-1:]),
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return self._expand_params(Dirichlet, batch_shape, _instance, ("concentration",))

    def rsample(self, sample_shape=()):
        return sample_dirichlet(self.concentration.expand(self._extended_shape(sample_shape)))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        c = self.concentration
        return (distnn.xlogy(c - 1.0, as_tensor(value, c)).sum(-1) + distnn.lgamma(c.sum(-1))
                - distnn.lgamma(c).sum(-1))

    @property
    def mean(self):
        return self.concentration / self.concentration.sum(-1, keepdim=True)

    @property
    def mode(self):
        c = self.concentration
        cm1 = (c - 1).clamp(min=0.0)
        mode = cm1 / cm1.sum(-1, keepdim=True)
        # all concentrations below 1: the density is largest at a vertex, the one of the largest concentration
        # (PyTorch's argmax over the 0/0 row, which picks the first)
        all_small = (c < 1).all(-1, keepdim=True)
        first = distnn.functional.one_hot(mode.argmax(dim=-1), c.shape[-1]).astype(c.dtype)
        return distnn.where(all_small, first, mode)

    @property
    def variance(self):
        c = self.concentration
        con0 = c.sum(-1, keepdim=True)
        return c * (con0 - c) / (con0.pow(2) * (con0 + 1))

    def entropy(self):
        c = self.concentration
        k = c.shape[-1]
        a0 = c.sum(-1)
        return (distnn.lgamma(c).sum(-1) - distnn.lgamma(a0) - (k - a0) * distnn.digamma(a0)
                - ((c - 1.0) * distnn.digamma(c)).sum(-1))

    @property
    def _natural_params(self):
        return (self.concentration,)

    def _log_normalizer(self, x):
        return distnn.lgamma(x).sum(-1) - distnn.lgamma(x.sum(-1))
