"""``Wishart(df, covariance_matrix=None, precision_matrix=None, scale_tril=None)``: PyTorch's
``torch.distributions.Wishart``, the distribution of ``sum_k x_k x_k^T`` for ``df`` draws ``x_k ~ N(0, Sigma)``
(``df`` any real above ``p - 1`` for ``p x p`` matrices), given ``Sigma``, its inverse or its Cholesky factor.

Everything is computed from the lower Cholesky factor ``L`` of ``Sigma``, as PyTorch's. ``rsample`` is the
Bartlett decomposition: ``W = (L A)(L A)^T`` with ``A`` lower triangular, ``A_ii = sqrt(chi2(df - i))`` (the
Chi2 draws implicitly reparameterized, so a draw is differentiable in ``df`` as well as in ``Sigma``) and
standard normals below the diagonal. For ``df`` near ``p - 1`` a draw can be numerically singular; those are
drawn again, at most ``max_try_correction`` times, with a warning. (PyTorch 2.13's first singularity test
lacks a negation, so it warns "Singular sample detected." on every call and redraws the good samples once;
here the warning and the redraws are only for singular ones: the draws have the same distribution.)
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

import distnn
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module, to_numpy

from . import constraints
from .chi2 import Chi2
from .exp_family import ExponentialFamily
from .multivariate_normal import _precision_to_scale_tril
from .utils import as_tensor, lazy_property, standard_normal

_LOG_2 = math.log(2)
_MATRICES = ("covariance_matrix", "precision_matrix", "scale_tril")


def _mvdigamma(x, p):
    """The multivariate digamma ``sum_{j<p} digamma(x - j/2)``, the derivative of ``mvlgamma(x, p)``."""
    halves = as_tensor(np.arange(p) / 2, x)
    return distnn.digamma(x.unsqueeze(-1) - halves).sum(-1)


class Wishart(ExponentialFamily):
    """Density ``|X|^{(df-p-1)/2} exp(-tr(Sigma^{-1} X)/2) / (2^{df p/2} |Sigma|^{df/2} Gamma_p(df/2))`` on
    symmetric positive definite ``p x p`` matrices ``X``."""

    support = constraints.positive_definite
    has_rsample = True
    _mean_carrier_measure = 0

    @property
    def arg_constraints(self):
        return {"covariance_matrix": constraints.positive_definite,
                "precision_matrix": constraints.positive_definite, "scale_tril": constraints.lower_cholesky,
                "df": constraints.greater_than(self._event_shape[-1] - 1)}

    def __init__(self, df, covariance_matrix=None, precision_matrix=None, scale_tril=None, validate_args=None):
        given = {n: m for n, m in zip(_MATRICES, (covariance_matrix, precision_matrix, scale_tril)) if m is not None}
        if len(given) != 1:
            # (PyTorch raises AssertionError here, where its MultivariateNormal raises ValueError)
            raise AssertionError("Exactly one of covariance_matrix or precision_matrix or scale_tril may be "
                                 "specified.")
        (name, param), = given.items()
        param = as_tensor(param)
        if param.ndim < 2:
            raise ValueError(f"{name} must be at least two-dimensional, with optional leading batch dimensions")
        if param.shape[-1] != param.shape[-2]:
            raise ValueError(f"{name} must be a batch of square matrices, but has shape {tuple(param.shape)}")
        if isinstance(df, numbers.Number):
            batch_shape = tuple(param.shape[:-2])
            self.df = as_tensor(df, param)
        else:
            df = as_tensor(df, param) if not isinstance(df, Tensor) else df
            try:
                batch_shape = tuple(distnn.broadcast_shapes(tuple(param.shape[:-2]), tuple(df.shape)))
            except (RuntimeError, ValueError) as e:
                raise ValueError(f"Incompatible batch shapes: df {tuple(df.shape)}, {name} "
                                 f"{tuple(param.shape)}") from e
            self.df = df.expand(batch_shape)
        p = param.shape[-1]
        # (checked even without validate_args, as PyTorch's: below p - 1 there is no such distribution)
        if bool((self.df.data <= p - 1).any()):
            raise ValueError(f"Value of df={df} expected to be greater than ndim - 1 = {p - 1}.")
        setattr(self, name, param.expand(batch_shape + (p, p)))
        if bool((self.df.data < p).any()):
            warnings.warn("Low df values detected. Singular samples are highly likely to occur for ndim - 1 < df "
                          "< ndim.", stacklevel=2)
        super().__init__(batch_shape, (p, p), validate_args=validate_args)
        if name == "scale_tril":
            self._unbroadcasted_scale_tril = param
        elif name == "covariance_matrix":
            self._unbroadcasted_scale_tril = distnn.linalg.cholesky(param)
        else:
            self._unbroadcasted_scale_tril = _precision_to_scale_tril(param)
        self._dist_chi2 = self._bartlett_chi2()

    def _bartlett_chi2(self):
        """The Chi2(df - i) of the Bartlett factor's diagonal entries, i = 0 .. p-1."""
        p = self._event_shape[-1]
        steps = as_tensor(np.arange(p), self._unbroadcasted_scale_tril)
        return Chi2(self.df.unsqueeze(-1) - steps.expand(self._batch_shape + (p,)))

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Wishart, _instance)
        batch_shape = tuple(batch_shape)
        cov_shape = batch_shape + self._event_shape
        new._unbroadcasted_scale_tril = self._unbroadcasted_scale_tril.expand(cov_shape)
        new.df = self.df.expand(batch_shape)
        for name in _MATRICES:
            if name in self.__dict__:
                setattr(new, name, self.__dict__[name].expand(cov_shape))
        ExponentialFamily.__init__(new, batch_shape, self._event_shape, validate_args=False)
        new._validate_args = self._validate_args
        new._dist_chi2 = new._bartlett_chi2()
        return new

    def _matrix_shape(self):
        return self._batch_shape + self._event_shape

    @lazy_property
    def scale_tril(self):
        return self._unbroadcasted_scale_tril.expand(self._matrix_shape())

    @lazy_property
    def covariance_matrix(self):
        L = self._unbroadcasted_scale_tril
        return (L @ L.mT).expand(self._matrix_shape())

    @lazy_property
    def precision_matrix(self):
        L = self._unbroadcasted_scale_tril
        identity = distnn.eye(self._event_shape[-1], dtype=L.dtype).expand(tuple(L.shape))
        return distnn.cholesky_solve(identity, L).expand(self._matrix_shape())

    def _df_matrix(self):
        """``df`` shaped to scale a batch of matrices."""
        return self.df.reshape(self._batch_shape + (1, 1))

    @property
    def mean(self):
        return self._df_matrix() * self.covariance_matrix

    @property
    def mode(self):
        # (df - p - 1) Sigma, which exists only for df > p + 1: NaN elsewhere, as PyTorch's
        factor = self.df - self._event_shape[-1] - 1
        factor = distnn.where(factor > 0, factor, float("nan"))
        return factor.reshape(self._batch_shape + (1, 1)) * self.covariance_matrix

    @property
    def variance(self):
        # Var(W_ij) = df (Sigma_ij^2 + Sigma_ii Sigma_jj)
        V = self.covariance_matrix
        diag_V = V.diagonal(dim1=-2, dim2=-1)
        return self._df_matrix() * (V.pow(2) + diag_V.unsqueeze(-1) * diag_V.unsqueeze(-2))

    def _bartlett_sampling(self, sample_shape):
        p = self._event_shape[-1]
        L = self._unbroadcasted_scale_tril
        chi = self._dist_chi2.rsample(sample_shape).sqrt()
        chi = chi.clamp(min=float(np.finfo(chi.dtype).eps))  # (a zero diagonal would make the draw singular)
        normals = standard_normal(tuple(sample_shape) + self._batch_shape + (p * (p - 1) // 2,), L)
        xp = get_array_module(normals)
        below = xp.zeros(tuple(sample_shape) + self._batch_shape + (p, p), dtype=normals.dtype)
        rows, cols = np.tril_indices(p, -1)  # (PyTorch's order: row by row)
        below[..., xp.asarray(rows), xp.asarray(cols)] = normals
        chol = L @ (distnn.diag_embed(chi) + Tensor(below))
        return chol @ chol.mT

    def _singular(self, sample):
        """Which draws along ``sample_shape`` are not positive definite (in any member of the batch)."""
        bad = ~self.support.check(sample)
        batch_dims = tuple(range(bad.ndim - len(self._batch_shape), bad.ndim))
        return bad.any(axis=batch_dims) if batch_dims else bad

    def rsample(self, sample_shape=(), max_try_correction=None):
        """A reparameterized draw (Bartlett decomposition). Draws that come out singular (possible when ``df``
        is close to ``p - 1``) are drawn again, at most ``max_try_correction`` times (default 10), with a
        warning; a draw can still be singular after that (its ``log_prob`` is then -inf)."""
        if max_try_correction is None:
            max_try_correction = 10
        sample_shape = (sample_shape,) if isinstance(sample_shape, int) else tuple(sample_shape)
        # (flattened over sample_shape so that the singular draws can be replaced by index)
        flat = self._bartlett_sampling((int(np.prod(sample_shape)),))
        rows = np.flatnonzero(to_numpy(self._singular(flat)))
        if rows.size:
            warnings.warn("Singular sample detected.", stacklevel=2)
            xp = get_array_module(flat.data)
            for _ in range(max_try_correction):
                redrawn = self._bartlett_sampling((rows.size,))
                flat = distnn.index_put(flat, (Tensor(xp.asarray(rows)),), redrawn)
                rows = rows[to_numpy(self._singular(redrawn))]
                if rows.size == 0:
                    break
        return flat.reshape(self._extended_shape(sample_shape))

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        value = as_tensor(value, self.df)
        nu, p = self.df, self._event_shape[-1]
        L = self._unbroadcasted_scale_tril
        half_log_det_sigma = L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        trace = distnn.cholesky_solve(value, L).diagonal(dim1=-2, dim2=-1).sum(-1)  # tr(Sigma^{-1} X)
        return (-nu * (p * _LOG_2 / 2 + half_log_det_sigma) - distnn.mvlgamma(nu / 2, p)
                + (nu - p - 1) / 2 * distnn.linalg.slogdet(value).logabsdet - trace / 2)

    def entropy(self):
        nu, p = self.df, self._event_shape[-1]
        half_log_det_sigma = self._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
        return ((p + 1) * (p * _LOG_2 / 2 + half_log_det_sigma) + distnn.mvlgamma(nu / 2, p)
                - (nu - p - 1) / 2 * _mvdigamma(nu / 2, p) + nu * p / 2)

    @property
    def _natural_params(self):
        return -self.precision_matrix / 2, (self.df - self._event_shape[-1] - 1) / 2

    def _log_normalizer(self, x, y):
        p = self._event_shape[-1]
        return ((y + (p + 1) / 2) * (-distnn.linalg.slogdet(-2 * x).logabsdet + _LOG_2 * p)
                + distnn.mvlgamma(y + (p + 1) / 2, p))
