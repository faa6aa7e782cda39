"""``LowRankMultivariateNormal(loc, cov_factor, cov_diag)``: PyTorch's
``torch.distributions.LowRankMultivariateNormal``, the Gaussian of covariance ``W W^T + diag(D)`` for
``W = cov_factor`` (``n x m``) and ``D = cov_diag``.

``log_prob`` and ``entropy`` never form the ``n x n`` covariance: the Woodbury identity and the matrix
determinant lemma reduce them to the ``m x m`` capacitance ``C = I + W^T D^{-1} W`` (its Cholesky factor), as
PyTorch's. ``rsample`` is ``loc + W eps_W + sqrt(D) eps_D``, differentiable in all three parameters.
"""
from __future__ import annotations

import math

import distnn

from . import constraints
from .distribution import Distribution
from .multivariate_normal import _whiten
from .utils import as_tensor, lazy_property, standard_normal


def _batch_capacitance_tril(W, D):
    """The Cholesky factor of ``I + W^T D^{-1} W``."""
    m = W.shape[-1]
    K = (W.mT / D.unsqueeze(-2)) @ W
    return distnn.linalg.cholesky(K + distnn.eye(m, dtype=K.dtype))


def _batch_lowrank_logdet(W, D, capacitance_tril):
    """``log|W W^T + D| = log|C| + log|D|`` (the matrix determinant lemma)."""
    return 2 * capacitance_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1) + D.log().sum(-1)


def _batch_lowrank_mahalanobis(W, D, x, capacitance_tril):
    """``x^T (W W^T + D)^{-1} x = x^T D^{-1} x - |L_C^{-1} W^T D^{-1} x|^2`` (Woodbury)."""
    Wt_Dinv = W.mT / D.unsqueeze(-2)
    Wt_Dinv_x = (Wt_Dinv @ x.unsqueeze(-1)).squeeze(-1)
    return (x.pow(2) / D).sum(-1) - _whiten(capacitance_tril, Wt_Dinv_x).pow(2).sum(-1)


class LowRankMultivariateNormal(Distribution):
    arg_constraints = {"loc": constraints.real_vector, "cov_factor": constraints.independent(constraints.real, 2),
                       "cov_diag": constraints.independent(constraints.positive, 1)}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, cov_factor, cov_diag, validate_args=None):
        loc, cov_factor, cov_diag = as_tensor(loc), as_tensor(cov_factor), as_tensor(cov_diag)
        if loc.ndim < 1:
            raise ValueError("loc must be at least one-dimensional.")
        event_shape = tuple(loc.shape[-1:])
        if cov_factor.ndim < 2:
            raise ValueError("cov_factor must be at least two-dimensional, with optional leading batch dimensions")
        if tuple(cov_factor.shape[-2:-1]) != event_shape:
            raise ValueError(f"cov_factor must be a batch of matrices with shape {event_shape[0]} x m")
        if tuple(cov_diag.shape[-1:]) != event_shape:
            raise ValueError(f"cov_diag must be a batch of vectors with shape {event_shape}")
        try:
            loc_, self.cov_factor, cov_diag_ = distnn.broadcast_tensors(loc.unsqueeze(-1), cov_factor,
                                                                        cov_diag.unsqueeze(-1))
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"Incompatible batch shapes: loc {tuple(loc.shape)}, cov_factor "
                             f"{tuple(cov_factor.shape)}, cov_diag {tuple(cov_diag.shape)}") from e
        self.loc, self.cov_diag = loc_[..., 0], cov_diag_[..., 0]
        self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag = cov_factor, cov_diag
        self._capacitance_tril = _batch_capacitance_tril(cov_factor, cov_diag)
        super().__init__(tuple(self.loc.shape[:-1]), event_shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LowRankMultivariateNormal, _instance)
        loc_shape = tuple(batch_shape) + self._event_shape
        new.loc = self.loc.expand(loc_shape)
        new.cov_diag = self.cov_diag.expand(loc_shape)
        new.cov_factor = self.cov_factor.expand(loc_shape + tuple(self.cov_factor.shape[-1:]))
        new._unbroadcasted_cov_factor = self._unbroadcasted_cov_factor
        new._unbroadcasted_cov_diag = self._unbroadcasted_cov_diag
        new._capacitance_tril = self._capacitance_tril
        Distribution.__init__(new, tuple(batch_shape), self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _matrix_shape(self):
        return self._batch_shape + self._event_shape + self._event_shape

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @lazy_property
    def variance(self):
        return (self._unbroadcasted_cov_factor.pow(2).sum(-1) + self._unbroadcasted_cov_diag).expand(
            self._batch_shape + self._event_shape)

    @lazy_property
    def scale_tril(self):
        # D^{1/2} chol(I + D^{-1/2} W W^T D^{-1/2}): a lower factor of the covariance without forming it first
        n = self._event_shape[0]
        sqrt_d = self._unbroadcasted_cov_diag.sqrt().unsqueeze(-1)
        Dinvsqrt_W = self._unbroadcasted_cov_factor / sqrt_d
        K = Dinvsqrt_W @ Dinvsqrt_W.mT + distnn.eye(n, dtype=sqrt_d.dtype)
        return (sqrt_d * distnn.linalg.cholesky(K)).expand(self._matrix_shape())

    @lazy_property
    def covariance_matrix(self):
        W = self._unbroadcasted_cov_factor
        return (W @ W.mT + distnn.diag_embed(self._unbroadcasted_cov_diag)).expand(self._matrix_shape())

    @lazy_property
    def precision_matrix(self):
        # D^{-1} - A^T A with A = L_C^{-1} W^T D^{-1} (Woodbury)
        Wt_Dinv = self._unbroadcasted_cov_factor.mT / self._unbroadcasted_cov_diag.unsqueeze(-2)
        L = self._capacitance_tril
        batch = tuple(distnn.broadcast_shapes(tuple(L.shape[:-2]), tuple(Wt_Dinv.shape[:-2])))
        A = distnn.linalg.solve_triangular(L.expand(batch + tuple(L.shape[-2:])),
                                           Wt_Dinv.expand(batch + tuple(Wt_Dinv.shape[-2:])), upper=False)
        precision = distnn.diag_embed(self._unbroadcasted_cov_diag.reciprocal()) - A.mT @ A
        return precision.expand(self._matrix_shape())

    def rsample(self, sample_shape=()):
        shape = self._extended_shape(sample_shape)
        eps_W = distnn.Tensor(standard_normal(shape[:-1] + tuple(self.cov_factor.shape[-1:]), self.loc))
        eps_D = distnn.Tensor(standard_normal(shape, self.loc))
        return (self.loc + (self._unbroadcasted_cov_factor @ eps_W.unsqueeze(-1)).squeeze(-1)
                + self._unbroadcasted_cov_diag.sqrt() * eps_D)

    def _log_det(self):
        return _batch_lowrank_logdet(self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag,
                                     self._capacitance_tril)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        diff = as_tensor(value, self.loc) - self.loc
        M = _batch_lowrank_mahalanobis(self._unbroadcasted_cov_factor, self._unbroadcasted_cov_diag, diff,
                                       self._capacitance_tril)
        return -0.5 * (self._event_shape[0] * math.log(2 * math.pi) + self._log_det() + M)

    def entropy(self):
        H = 0.5 * (self._event_shape[0] * (1.0 + math.log(2 * math.pi)) + self._log_det())
        return H if len(self._batch_shape) == 0 else H.expand(self._batch_shape)
