"""``MultivariateNormal(loc, covariance_matrix=None, precision_matrix=None, scale_tril=None)``: PyTorch's
``torch.distributions.MultivariateNormal``. Everything is computed from the Cholesky factor ``L`` of the
covariance (given as ``scale_tril``, or by :func:`distnn.linalg.cholesky`), with :mod:`distnn.linalg`'s
differentiable ``cholesky`` and ``solve_triangular``."""
from __future__ import annotations

import math

import distnn

from . import constraints
from .distribution import Distribution
from .utils import as_tensor, lazy_property, standard_normal


def _broadcast_shapes(*shapes):
    return tuple(distnn.broadcast_shapes(*shapes))


def _precision_to_scale_tril(P):
    """The lower Cholesky factor of ``P^{-1}`` without inverting ``P``: ``P = U U^T`` with ``U`` upper (the
    Cholesky factor of ``P`` with rows and columns reversed, flipped back), so ``P^{-1} = U^{-T} U^{-1}`` and
    ``U^{-T}`` is lower triangular (PyTorch's construction)."""
    Lf = distnn.linalg.cholesky(P.flip((-2, -1)))
    L_inv = Lf.flip((-2, -1)).transpose(-2, -1)
    eye = distnn.eye(P.shape[-1], dtype=P.dtype).expand(L_inv.shape)
    return distnn.linalg.solve_triangular(L_inv, eye, upper=False)


def _whiten(L, x):
    """``L^{-1} x`` for vectors ``x`` (L broadcast over their batch)."""
    n = x.shape[-1]
    batch = _broadcast_shapes(tuple(L.shape[:-2]), tuple(x.shape[:-1]))
    Lb, xb = L.expand(batch + (n, n)), x.expand(batch + (n,))
    return distnn.linalg.solve_triangular(Lb, xb.unsqueeze(-1), upper=False).squeeze(-1)


class MultivariateNormal(Distribution):
    arg_constraints = {"loc": constraints.real_vector, "covariance_matrix": constraints.positive_definite,
                       "precision_matrix": constraints.positive_definite, "scale_tril": constraints.lower_cholesky}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        loc = as_tensor(loc)
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        if (covariance_matrix is not None) + (scale_tril is not None) + (precision_matrix is not None) != 1:
            raise ValueError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be specified.")
        name, matrix = next((n, m) for n, m in (("scale_tril", scale_tril), ("covariance_matrix", covariance_matrix),
                                                ("precision_matrix", precision_matrix)) if m is not None)
        matrix = as_tensor(matrix)
        if matrix.ndim < 2:
            raise ValueError(f"{name} matrix must be at least two-dimensional, with optional leading batch "
                             "dimensions" if name == "scale_tril" else
                             f"{name} must be at least two-dimensional, with optional leading batch dimensions")
        batch_shape = _broadcast_shapes(tuple(matrix.shape[:-2]), tuple(loc.shape[:-1]))
        setattr(self, name, matrix.expand(batch_shape + tuple(matrix.shape[-2:])))
        self.loc = loc.expand(batch_shape + tuple(loc.shape[-1:]))
        super().__init__(batch_shape, tuple(self.loc.shape[-1:]), validate_args=validate_args)
        if name == "scale_tril":
            self._unbroadcasted_scale_tril = matrix
        elif name == "covariance_matrix":
            self._unbroadcasted_scale_tril = distnn.linalg.cholesky(matrix)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(matrix)

    def expand(self, batch_shape, _instance=None):
        new = self._expand_params(MultivariateNormal, batch_shape, _instance,
                                  ("loc", "covariance_matrix", "scale_tril", "precision_matrix"))
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril
        return new

    def _matrix_shape(self):
        return self._batch_shape + self._event_shape + self._event_shape

    @lazy_property
    def scale_tril(self):
        return self._unbroadcasted_scale_tril.expand(self._matrix_shape())

    @lazy_property
    def covariance_matrix(self):
        L = self._unbroadcasted_scale_tril
        return (L @ L.transpose(-2, -1)).expand(self._matrix_shape())

    @lazy_property
    def precision_matrix(self):
        L = self._unbroadcasted_scale_tril
        eye = distnn.eye(L.shape[-1], dtype=L.dtype).expand(L.shape)
        L_inv = distnn.linalg.solve_triangular(L, eye, upper=False)
        return (L_inv.transpose(-2, -1) @ L_inv).expand(self._matrix_shape())

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return self._unbroadcasted_scale_tril.pow(2).sum(-1).expand(self._batch_shape + self._event_shape)

    def rsample(self, sample_shape=()):
        """``loc + L eps`` with ``eps ~ N(0, I)``."""
        eps = distnn.Tensor(standard_normal(self._extended_shape(sample_shape), self.loc))
        return self.loc + (self._unbroadcasted_scale_tril @ eps.unsqueeze(-1)).squeeze(-1)

    def _half_log_det(self):
        return self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        diff = as_tensor(value, self.loc) - self.loc
        M = (_whiten(self._unbroadcasted_scale_tril, diff) ** 2).sum(-1)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + M) - self._half_log_det()

    def entropy(self):
        H = 0.5 * self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + self._half_log_det()
        return H if len(self._batch_shape) == 0 else H.expand(self._batch_shape)
