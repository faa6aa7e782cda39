"""Sampling of LKJCholesky and Wishart: the draws' structure and statistics at fixed seeds (means and variances
within a few standard errors of the exact values), Wishart's redraws of singular samples, and its rsample
gradient against torch given the same underlying noise (reproduced from the seed: numpy's generator draws in
the order rsample takes them: the Chi2 diagonal, then the normals below it)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.distributions as D  # noqa: E402
from torch.distributions.multivariate_normal import _precision_to_scale_tril  # noqa: E402

N = 20000


def _t(values):
    return distnn.tensor(np.asarray(values, dtype=np.float64))


@pytest.mark.parametrize("dim", [2, 3, 5])
def test_lkj_draws_are_cholesky_factors_of_correlation_matrices_of_the_lkj_moments(dim):
    """L lower triangular with unit-norm rows and a positive diagonal; M = L L^T has mean I and off-diagonal
    variance 1 / (2 eta + dim - 1) (each r_ij is 2 Beta(a, a) - 1 with a = eta - 1 + dim/2). (torch 2.13's
    sampler fails this for dim >= 3: its rows below the second come from the wrong Beta.)"""
    eta = np.array([0.5, 1.0, 4.0])
    dist = D.LKJCholesky(dim, _t(eta))
    distnn.manual_seed(11)
    x = dist.sample((N,))
    assert tuple(x.shape) == (N, 3, dim, dim) and x.dtype == np.float64 and x.requires_grad is False
    L = np.asarray(x.data)
    assert np.all(np.triu(L, 1) == 0)
    np.testing.assert_allclose(np.linalg.norm(L, axis=-1), 1.0, rtol=0, atol=1e-12)
    assert np.all(np.diagonal(L, axis1=-2, axis2=-1) > 0)
    assert bool(np.all(dist.support.check(x))) and np.all(np.isfinite(dist.log_prob(x).data))
    M = L @ np.swapaxes(L, -1, -2)
    rows, cols = np.tril_indices(dim, -1)
    r = M[..., rows, cols]  # (N, 3, dim (dim-1)/2)
    exact_var = 1.0 / (2 * eta + dim - 1)
    se_mean = np.sqrt(exact_var / N)[:, None]
    assert np.all(np.abs(r.mean(0)) <= 5 * se_mean), r.mean(0)
    se_var = (r ** 2).std(0) / np.sqrt(N)
    assert np.all(np.abs((r ** 2).mean(0) - exact_var[:, None]) <= 5 * se_var), ((r ** 2).mean(0), exact_var)
    a = eta - 1 + dim / 2
    exact_m4 = 3 / ((2 * a + 1) * (2 * a + 3))  # (E r^4 of 2 Beta(a, a) - 1: the shape too, not only the spread)
    se_m4 = (r ** 4).std(0) / np.sqrt(N)
    assert np.all(np.abs((r ** 4).mean(0) - exact_m4[:, None]) <= 5 * se_m4), ((r ** 4).mean(0), exact_m4)
    np.testing.assert_allclose(np.diagonal(M, axis1=-2, axis2=-1), 1.0, atol=1e-12)


def test_lkj_draws_for_dim_2_have_the_density_of_log_prob():
    """For dim 2 the one free entry r = L[1, 0] has density (1 - r^2)^(eta - 1) / Z; the histogram of the draws
    matches exp(log_prob) integrated over each bin (|L[1,1]| = sqrt(1 - r^2) and the Jacobian is in log_prob)."""
    eta = 2.5
    dist = D.LKJCholesky(2, _t(eta))
    distnn.manual_seed(12)
    r = np.asarray(dist.sample((N,)).data)[:, 1, 0]
    edges = np.linspace(-1, 1, 11)
    counts = np.histogram(r, edges)[0]
    grid = np.linspace(-1 + 1e-9, 1 - 1e-9, 20001)
    L = np.zeros((grid.size, 2, 2))
    L[:, 0, 0], L[:, 1, 0], L[:, 1, 1] = 1.0, grid, np.sqrt(1 - grid ** 2)
    density = np.exp(dist.log_prob(_t(L)).data)
    assert abs(np.trapezoid(density, grid) - 1.0) < 1e-4  # (log_prob is normalized over r)
    expected = np.array([np.trapezoid(density[(grid >= a) & (grid <= b)], grid[(grid >= a) & (grid <= b)])
                         for a, b in zip(edges[:-1], edges[1:])]) * N
    assert np.all(np.abs(counts - expected) <= 5 * np.sqrt(expected) + 5), (counts, expected)


def test_lkj_sampling_is_reproducible_and_keeps_the_dtype():
    for conc in (1.0, _t([0.3, 2.0])):
        distnn.manual_seed(3)
        a = D.LKJCholesky(4, conc).sample((5,)).data
        distnn.manual_seed(3)
        np.testing.assert_array_equal(a, D.LKJCholesky(4, conc).sample((5,)).data)
    assert D.LKJCholesky(3).sample().dtype == np.float32
    assert bool(D.LKJCholesky(3).support.check(D.LKJCholesky(3).sample((50,))).all())


def test_wishart_draws_are_symmetric_positive_definite_with_mean_df_sigma():
    S = np.array([[[2.0, 0.5, 0.0], [0.5, 1.0, -0.3], [0.0, -0.3, 0.5]], [[1.0, 0.0, 0.0], [0.0, 3.0, 1.0],
                                                                            [0.0, 1.0, 1.0]]])
    dist = D.Wishart(_t([3.5, 8.0]), covariance_matrix=_t(S))
    distnn.manual_seed(21)
    x = dist.sample((N,))
    assert tuple(x.shape) == (N, 2, 3, 3) and x.dtype == np.float64 and x.requires_grad is False
    W = np.asarray(x.data)
    np.testing.assert_allclose(W, np.swapaxes(W, -1, -2), rtol=0, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(W) > 0) and bool(np.all(dist.support.check(x)))
    mean, var = np.asarray(dist.mean.data), np.asarray(dist.variance.data)
    np.testing.assert_allclose(mean, np.array([3.5, 8.0])[:, None, None] * S, rtol=1e-12)
    se = np.sqrt(var / N)
    assert np.all(np.abs(W.mean(0) - mean) <= 5 * se), (W.mean(0), mean)
    np.testing.assert_allclose(W.var(0), var, rtol=0.1)


def test_wishart_sampling_is_reproducible_from_the_seed():
    dist = D.Wishart(_t([3.0, 5.0]), scale_tril=_t(np.tril(np.ones((3, 3)))))
    distnn.manual_seed(3)
    a = dist.sample((4,)).data
    distnn.manual_seed(3)
    np.testing.assert_array_equal(a, dist.sample((4,)).data)
    assert D.Wishart(3.0, distnn.tensor(np.eye(2, dtype=np.float32))).sample((2,)).dtype == np.float32


def _gamma_draw(rng, alpha):
    """A standard Gamma draw from ``rng`` and torch's implicit derivative of it w.r.t. ``alpha``."""
    g = np.maximum(rng.standard_gamma(alpha), np.finfo(np.float64).tiny)
    return torch.tensor(g), torch._standard_gamma_grad(torch.tensor(alpha), torch.tensor(g))


@pytest.mark.parametrize("kind", ["covariance_matrix", "scale_tril", "precision_matrix"])
def test_wishart_rsample_and_its_gradients_match_torch_given_the_same_noise(kind):
    """torch's Bartlett construction written out with the draws distnn took: W = (L A)(L A)^T, A's diagonal
    sqrt(Chi2(df - i)) with torch's implicit Gamma gradient, its lower part the normals."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 3, 3))
    S = A @ np.swapaxes(A, -1, -2) / 3 + np.eye(3)
    matrix = {"covariance_matrix": S, "scale_tril": np.linalg.cholesky(S), "precision_matrix": np.linalg.inv(S)}[kind]
    df, shape = np.array([3.3, 6.0]), (4, 2)
    d = [distnn.tensor(df, requires_grad=True), distnn.tensor(matrix, requires_grad=True)]
    distnn.manual_seed(7)
    yd = D.Wishart(d[0], **{kind: d[1]}).rsample(shape[:1])
    t = [torch.tensor(df, requires_grad=True), torch.tensor(matrix, requires_grad=True)]
    L = {"covariance_matrix": torch.linalg.cholesky, "scale_tril": lambda m: m,
         "precision_matrix": _precision_to_scale_tril}[kind](t[1])
    g = np.random.default_rng(7)
    half_df = (t[0].unsqueeze(-1) - torch.arange(3.0, dtype=torch.float64)) / 2
    gamma, dgamma = _gamma_draw(g, np.broadcast_to(half_df.detach().numpy(), shape + (3,)).copy())
    chi2 = 2 * (gamma + (half_df - half_df.detach()) * dgamma)  # (Chi2(k) = 2 Gamma(k/2, 1))
    noise = torch.diag_embed(chi2.sqrt().clamp(min=torch.finfo(torch.float64).eps))
    i, j = torch.tril_indices(3, 3, -1)
    below = torch.zeros(shape + (3, 3), dtype=torch.float64)
    below[..., i, j] = torch.tensor(g.standard_normal(shape + (3,)))
    chol = L @ (noise + below)
    yt = chol @ chol.mT
    assert tuple(yd.shape) == shape + (3, 3)
    np.testing.assert_allclose(yd.data, yt.detach().numpy(), rtol=1e-12, atol=1e-13)
    u = np.random.default_rng(1).standard_normal(shape + (3, 3))
    (yd * _t(u)).sum().backward()
    (yt * torch.tensor(u)).sum().backward()
    for a, b in zip(d, t):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-9, atol=1e-11)


def test_wishart_singular_draws_are_redrawn_with_a_warning():
    """df = 2.3 for 3 x 3: Chi2(0.3) often underflows, so the Bartlett factor's last diagonal entry is clamped to
    eps and the draw is numerically singular. Without corrections some draws stay singular; with the default
    10 they are redrawn (the others kept) and the result stays differentiable."""
    df = distnn.tensor(np.array(2.3), requires_grad=True)
    with pytest.warns(UserWarning, match="Low df values detected"):
        dist = D.Wishart(df, covariance_matrix=_t(np.eye(3)))
    distnn.manual_seed(0)
    with pytest.warns(UserWarning, match="Singular sample detected"):
        raw = dist.rsample((2000,), max_try_correction=0)
    singular = ~dist.support.check(raw)
    assert singular.sum() > 0
    distnn.manual_seed(0)
    with pytest.warns(UserWarning, match="Singular sample detected"):
        fixed = dist.rsample((40, 50))
    assert tuple(fixed.shape) == (40, 50, 3, 3) and bool(dist.support.check(fixed).all())
    kept = ~singular.reshape(40, 50)
    np.testing.assert_array_equal(fixed.data[kept], raw.data.reshape(40, 50, 3, 3)[kept])
    fixed.sum().backward()
    assert df.grad is not None and np.isfinite(df.grad)
    distnn.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no warning when no draw is singular)
        D.Wishart(6.0, covariance_matrix=_t(np.eye(3))).rsample((200,))
