"""``kl_divergence`` closed forms of PyTorch's (torch.distributions.kl) that involve ContinuousBernoulli,
Geometric and LowRankMultivariateNormal, each written as PyTorch writes it. A pair where ``q`` puts no mass on
part of ``p``'s support is inf of ``p``'s parameter's shape (no gradient), as PyTorch's ``_infinite_like``."""
from __future__ import annotations

import math

import distnn

from .beta import Beta
from .continuous_bernoulli import ContinuousBernoulli
from .exponential import Exponential
from .gamma import Gamma
from .geometric import Geometric
from .kl import register_kl
from .laplace import Laplace
from .lowrank_multivariate_normal import _batch_lowrank_logdet, _batch_lowrank_mahalanobis, LowRankMultivariateNormal
from .multivariate_normal import MultivariateNormal, _whiten
from .normal import Normal
from .uniform import Uniform

_INF = float("inf")


def _infinite_like(t):
    return distnn.full_like(t.detach(), _INF)


def _batch_trace_XXT(X):
    return X.pow(2).sum((-2, -1))


def _check_event_shapes(p, q):
    if p.event_shape != q.event_shape:
        raise ValueError("KL-divergence between two (Low Rank) Multivariate Normals with different event shapes "
                         "cannot be computed")


@register_kl(ContinuousBernoulli, ContinuousBernoulli)
def _kl_continuous_bernoulli_continuous_bernoulli(p, q):
    t1 = p.mean * (p.logits - q.logits)
    t2 = p._cont_bern_log_norm() + (-p.probs).log1p()
    t3 = -q._cont_bern_log_norm() - (-q.probs).log1p()
    return t1 + t2 + t3


@register_kl(ContinuousBernoulli, Exponential)
def _kl_continuous_bernoulli_exponential(p, q):
    return -p.entropy() - q.rate.log() + q.rate * p.mean


@register_kl(ContinuousBernoulli, Normal)
def _kl_continuous_bernoulli_normal(p, q):
    t1 = -p.entropy()
    t2 = 0.5 * (math.log(2.0 * math.pi) + (q.loc / q.scale).pow(2)) + q.scale.log()
    t3 = (p.variance + p.mean.pow(2) - 2.0 * q.loc * p.mean) / (2.0 * q.scale.pow(2))
    return t1 + t2 + t3


@register_kl(ContinuousBernoulli, Uniform)
def _kl_continuous_bernoulli_uniform(p, q):
    result = -p.entropy() + (q.high - q.low).log()
    # (inf where q.low >= 0 or q.high <= 1: PyTorch's test, which also flags a q covering [0, 1] exactly)
    return distnn.where((q.low >= 0.0) | (q.high <= 1.0), _INF, result)


def _kl_to_continuous_bernoulli(p, q):
    """``-H(p) - E_p[x] logit(q) - log(1 - q) - log C(q)``, for a ``p`` on [0, 1]."""
    return -p.entropy() - p.mean * q.logits - (-q.probs).log1p() - q._cont_bern_log_norm()


@register_kl(Beta, ContinuousBernoulli)
def _kl_beta_continuous_bernoulli(p, q):
    return _kl_to_continuous_bernoulli(p, q)


@register_kl(Uniform, ContinuousBernoulli)
def _kl_uniform_continuous_bernoulli(p, q):
    result = _kl_to_continuous_bernoulli(p, q)
    return distnn.where((p.high >= 1.0) | (p.low <= 0.0), _INF, result)


@register_kl(Exponential, ContinuousBernoulli)
def _kl_exponential_continuous_bernoulli(p, q):
    return _infinite_like(p.rate)


@register_kl(Gamma, ContinuousBernoulli)
def _kl_gamma_continuous_bernoulli(p, q):
    return _infinite_like(p.concentration)


@register_kl(Laplace, ContinuousBernoulli)
@register_kl(Normal, ContinuousBernoulli)
def _kl_loc_continuous_bernoulli(p, q):
    return _infinite_like(p.loc)


@register_kl(Geometric, Geometric)
def _kl_geometric_geometric(p, q):
    return -p.entropy() - (-q.probs).log1p() / p.probs - q.logits


def _lowrank_A(q):
    """``L_C^{-1} W^T D^{-1}`` of a LowRankMultivariateNormal ``q`` (``A^T A`` is Woodbury's correction)."""
    qWt_qDinv = q._unbroadcasted_cov_factor.mT / q._unbroadcasted_cov_diag.unsqueeze(-2)
    L = q._capacitance_tril
    batch = tuple(distnn.broadcast_shapes(tuple(L.shape[:-2]), tuple(qWt_qDinv.shape[:-2])))
    return distnn.linalg.solve_triangular(L.expand(batch + tuple(L.shape[-2:])),
                                          qWt_qDinv.expand(batch + tuple(qWt_qDinv.shape[-2:])), upper=False)


def _q_lowrank_terms(p, q):
    """``log|q cov|`` and the Mahalanobis term of ``p.loc`` under ``q``."""
    logdet = _batch_lowrank_logdet(q._unbroadcasted_cov_factor, q._unbroadcasted_cov_diag, q._capacitance_tril)
    term3 = _batch_lowrank_mahalanobis(q._unbroadcasted_cov_factor, q._unbroadcasted_cov_diag, q.loc - p.loc,
                                       q._capacitance_tril)
    return logdet, term3


@register_kl(LowRankMultivariateNormal, LowRankMultivariateNormal)
def _kl_lowrankmultivariatenormal_lowrankmultivariatenormal(p, q):
    _check_event_shapes(p, q)
    q_logdet, term3 = _q_lowrank_terms(p, q)
    term1 = q_logdet - _batch_lowrank_logdet(p._unbroadcasted_cov_factor, p._unbroadcasted_cov_diag,
                                             p._capacitance_tril)
    # tr(q_cov^{-1} p_cov) with q_cov^{-1} = q_D^{-1} - A^T A and p_cov = p_D + p_W p_W^T
    A = _lowrank_A(q)
    term21 = (p._unbroadcasted_cov_diag / q._unbroadcasted_cov_diag).sum(-1)
    term22 = _batch_trace_XXT(p._unbroadcasted_cov_factor * q._unbroadcasted_cov_diag.rsqrt().unsqueeze(-1))
    term23 = _batch_trace_XXT(A * p._unbroadcasted_cov_diag.sqrt().unsqueeze(-2))
    term24 = _batch_trace_XXT(A @ p._unbroadcasted_cov_factor)
    return 0.5 * (term1 + term21 + term22 - term23 - term24 + term3 - p.event_shape[0])


@register_kl(MultivariateNormal, LowRankMultivariateNormal)
def _kl_multivariatenormal_lowrankmultivariatenormal(p, q):
    _check_event_shapes(p, q)
    q_logdet, term3 = _q_lowrank_terms(p, q)
    term1 = q_logdet - 2 * p._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    A = _lowrank_A(q)
    term21 = _batch_trace_XXT(p._unbroadcasted_scale_tril * q._unbroadcasted_cov_diag.rsqrt().unsqueeze(-1))
    term22 = _batch_trace_XXT(A @ p._unbroadcasted_scale_tril)
    return 0.5 * (term1 + term21 - term22 + term3 - p.event_shape[0])


@register_kl(LowRankMultivariateNormal, MultivariateNormal)
def _kl_lowrankmultivariatenormal_multivariatenormal(p, q):
    _check_event_shapes(p, q)
    term1 = 2 * q._unbroadcasted_scale_tril.diagonal(dim1=-2, dim2=-1).log().sum(-1) - _batch_lowrank_logdet(
        p._unbroadcasted_cov_factor, p._unbroadcasted_cov_diag, p._capacitance_tril)
    term3 = _whiten(q._unbroadcasted_scale_tril, q.loc - p.loc).pow(2).sum(-1)
    # tr(q_cov^{-1} p_cov) = |L_q^{-1} p_W|^2 + |L_q^{-1} p_D^{1/2}|^2
    batch = tuple(distnn.broadcast_shapes(tuple(q._unbroadcasted_scale_tril.shape[:-2]),
                                          tuple(p._unbroadcasted_cov_factor.shape[:-2])))
    n = p.event_shape[0]
    q_scale_tril = q._unbroadcasted_scale_tril.expand(batch + (n, n))
    p_cov_factor = p._unbroadcasted_cov_factor.expand(batch + (n, p.cov_factor.shape[-1]))
    p_cov_diag = distnn.diag_embed(p._unbroadcasted_cov_diag.sqrt()).expand(batch + (n, n))
    term21 = _batch_trace_XXT(distnn.linalg.solve_triangular(q_scale_tril, p_cov_factor, upper=False))
    term22 = _batch_trace_XXT(distnn.linalg.solve_triangular(q_scale_tril, p_cov_diag, upper=False))
    return 0.5 * (term1 + term21 + term22 + term3 - p.event_shape[0])
