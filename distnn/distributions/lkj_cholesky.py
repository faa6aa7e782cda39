"""``LKJCholesky(dim, concentration=1.0)``: PyTorch's ``torch.distributions.LKJCholesky``, the LKJ distribution
of lower Cholesky factors ``L`` of ``dim x dim`` correlation matrices ``M = L L^T``, with density of ``M``
proportional to ``det(M)^(concentration - 1)`` (``concentration == 1``: uniform over correlation matrices).

Draws are the onion method of Lewandowski, Kurowicka & Joe (2009, Sec. 3.2), vectorized as PyTorch's (after
NumPyro): row ``i`` of ``L`` is ``sqrt(y_i) u_i`` off the diagonal, ``u_i`` uniform on the unit sphere of its
``i`` leading entries and ``y_i`` a Beta draw, and its diagonal entry completes the row to unit norm. The Beta
parameters are the paper's (and NumPyro's), not PyTorch 2.13's, whose rows below the second are drawn from the
wrong Beta (too wide: for dim 3, eta 1, the variance of r_31 is about 0.30 instead of 1/4). No
``rsample``, as PyTorch's. ``log_prob`` is PyTorch's (Stan's density of the Cholesky factor with the normalizer
of the paper's page 1999).
"""
from __future__ import annotations

import math
import numbers

import numpy as np

import distnn
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from . import constraints
from .beta import Beta
from .distribution import Distribution
from .utils import as_tensor, broadcast_all, standard_normal


class LKJCholesky(Distribution):
    """The LKJ distribution of Cholesky factors of correlation matrices (``concentration`` is Stan's ``eta``)."""

    arg_constraints = {"concentration": constraints.positive}
    support = constraints.corr_cholesky

    def __init__(self, dim, concentration=1.0, validate_args=None):
        if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 2:
            raise ValueError(f"Expected dim to be an integer greater than or equal to 2. Found dim={dim}.")
        self.dim = int(dim)
        (self.concentration,) = broadcast_all(concentration)
        # Row i >= 1 (i entries left of the diagonal) takes y ~ Beta(i/2, eta + (dim-2)/2 - (i-1)/2) (Sec. 3.2);
        # row 0's draw multiplies an empty sphere. With offset = 0, 0, 1, .., dim-2 that is
        # Beta(offset/2 + 1/2, eta + (dim-2)/2 - offset/2), as NumPyro's. (PyTorch 2.13 takes offset + 1/2 for
        # the first concentration, which is right for row 1 only: its draws for dim >= 3 are not LKJ's.)
        offset = as_tensor(np.concatenate([[0.0], np.arange(self.dim - 1)]), self.concentration)
        marginal_conc = self.concentration + 0.5 * (self.dim - 2)
        # (not validated here: a bad concentration is refused below by its own name, not as a Beta's)
        self._beta = Beta(0.5 * offset + 0.5, marginal_conc.unsqueeze(-1) - 0.5 * offset, validate_args=False)
        super().__init__(tuple(self.concentration.shape), (self.dim, self.dim), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LKJCholesky, _instance)
        batch_shape = tuple(batch_shape)
        new.dim = self.dim
        new.concentration = self.concentration.expand(batch_shape)
        new._beta = self._beta.expand(batch_shape + (self.dim,))
        Distribution.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape=()):
        y = self._beta.sample(sample_shape).data[..., None]
        u = standard_normal(self._extended_shape(sample_shape), self.concentration)
        xp = get_array_module(u)
        u = xp.tril(u, -1)
        norm = xp.linalg.norm(u, axis=-1, keepdims=True)
        # row 0 has no entries left of the diagonal: its zero norm would give 0/0, PyTorch fills it with 0
        u_hypersphere = u / xp.where(norm > 0, norm, 1)
        w = xp.sqrt(y) * u_hypersphere
        # the diagonal completes each row to unit norm (clamped off 0 for rounding, as PyTorch's)
        tiny = float(np.finfo(w.dtype).tiny)
        diag = xp.sqrt(xp.maximum(1 - (w * w).sum(-1), tiny))
        idx = xp.arange(self.dim)
        w[..., idx, idx] = diag
        return Tensor(w)

    def log_prob(self, value):
        # A correlation matrix has density proportional to det(M)^(eta-1) = prod_i L_ii^(2(eta-1)), and the
        # Jacobian from L to M is prod_i L_ii^(dim-i): the factor's density is prod_i L_ii^(2 eta - 2 + dim - i).
        if self._validate_args:
            self._validate_sample(value)
        diag_elems = value.diagonal(dim1=-1, dim2=-2)[..., 1:]
        order = as_tensor(np.arange(2, self.dim + 1), self.concentration)
        order = 2 * (self.concentration - 1).unsqueeze(-1) + self.dim - order
        unnormalized_log_pdf = (order * diag_elems.log()).sum(-1)
        dm1 = self.dim - 1
        alpha = self.concentration + 0.5 * dm1
        denominator = distnn.lgamma(alpha) * dm1
        numerator = distnn.mvlgamma(alpha - 0.5, dm1)
        # the paper's pi constant is dim (dim-1)/4 log(pi), mvlgamma's (dim-1)(dim-2)/4 log(pi): add the rest
        pi_constant = 0.5 * dm1 * math.log(math.pi)
        return unnormalized_log_pdf - (pi_constant + numerator - denominator)
