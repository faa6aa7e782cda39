"""Sampling of distnn.distributions: draws come from distnn's default generator, so they cannot be torch's
numbers. Checked here: shapes, dtypes and support of draws; their statistics over many draws with fixed seeds
(means, variances, frequencies, covariances within a few standard errors of the exact values); reproducibility
from distnn.manual_seed; and the rsample gradients against torch given the same underlying noise (reproduced
from the seed), Gamma's against torch._standard_gamma_grad of the same draw, Dirichlet/Beta's by the exact
derivative of their mean (an unbiased reparameterization gradient averages to it)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.distributions as D  # noqa: E402
from distnn import random as drandom  # noqa: E402

N = 40000


def _t(values):
    return distnn.tensor(np.asarray(values, dtype=np.float64))


# (distribution, exact mean, exact variance)
MOMENT_CASES = {
    "Normal": lambda: D.Normal(_t([0.5, -2.0]), _t([1.0, 3.0])),
    "Uniform": lambda: D.Uniform(_t([0.0, -1.0]), _t([1.0, 3.0])),
    "Exponential": lambda: D.Exponential(_t([0.5, 4.0])),
    "Laplace": lambda: D.Laplace(_t([1.0, -1.0]), _t([0.5, 2.0])),
    "LogNormal": lambda: D.LogNormal(_t([0.0, 0.3]), _t([0.25, 0.5])),
    "Gamma": lambda: D.Gamma(_t([0.3, 2.0, 9.5]), _t([1.0, 0.5, 3.0])),
    "Beta": lambda: D.Beta(_t([0.5, 2.0]), _t([0.5, 5.0])),
    "Poisson": lambda: D.Poisson(_t([0.3, 7.5])),
    "Bernoulli": lambda: D.Bernoulli(_t([0.1, 0.5, 0.95])),
    "Binomial": lambda: D.Binomial(_t([3.0, 10.0]), probs=_t([0.2, 0.7])),
    "Dirichlet": lambda: D.Dirichlet(_t([[0.5, 1.0, 3.0], [2.0, 2.0, 2.0]])),
    "OneHotCategorical": lambda: D.OneHotCategorical(_t([0.2, 0.3, 0.5])),
    "MultivariateNormal": lambda: D.MultivariateNormal(_t([1.0, -1.0]), _t([[2.0, 0.6], [0.6, 1.0]])),
    "Mixture": lambda: D.MixtureSameFamily(D.Categorical(_t([0.3, 0.7])), D.Normal(_t([-2.0, 1.0]), _t([0.5, 1.0]))),
}


@pytest.mark.parametrize("name", list(MOMENT_CASES))
def test_draws_have_the_exact_mean_and_variance_within_a_few_standard_errors(name):
    dist = MOMENT_CASES[name]()
    distnn.manual_seed(11)
    x = dist.sample((N,))
    assert tuple(x.shape) == (N,) + dist.batch_shape + dist.event_shape
    assert x.requires_grad is False and x.dtype == np.float64
    assert bool(np.all(dist.support.check(x))) if name != "Mixture" else True
    mean, var = np.asarray(dist.mean.data), np.asarray(dist.variance.data)
    xs = np.asarray(x.data)
    se = np.sqrt(var / N)
    assert np.all(np.abs(xs.mean(0) - mean) < 6 * se + 1e-12), (xs.mean(0), mean)
    # (the variance of the sample variance is about (m4 - var^2) / N: within 10% here for every case)
    np.testing.assert_allclose(xs.var(0), var, rtol=0.1, atol=1e-12)


def test_categorical_frequencies_and_zero_probability_classes():
    probs = np.array([[0.1, 0.0, 0.6, 0.3], [0.25, 0.25, 0.25, 0.25]])
    dist = D.Categorical(_t(probs * 7.0))  # (unnormalized: normalized as torch's)
    distnn.manual_seed(3)
    x = dist.sample((N,))
    assert x.dtype == np.int64 and tuple(x.shape) == (N, 2)
    freq = np.stack([np.bincount(np.asarray(x.data)[:, b], minlength=4) / N for b in range(2)])
    assert freq[0, 1] == 0  # (a class of probability 0 is never drawn)
    np.testing.assert_allclose(freq, probs, atol=6 * np.sqrt(0.25 / N))
    lg = D.Categorical(logits=_t(np.log(probs[1:] + 1e-300)))
    assert tuple(lg.sample((5, 3)).shape) == (5, 3, 1)


def test_multivariate_normal_sample_covariance():
    cov = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])
    dist = D.MultivariateNormal(_t([1.0, 0.0, -1.0]), precision_matrix=_t(np.linalg.inv(cov)))
    distnn.manual_seed(5)
    x = np.asarray(dist.sample((N,)).data)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.05)


@pytest.mark.parametrize("name", list(MOMENT_CASES))
def test_a_seed_reproduces_the_draws_and_another_seed_changes_them(name):
    dist = MOMENT_CASES[name]()
    distnn.manual_seed(7)
    a = np.asarray(dist.sample((50,)).data)
    distnn.manual_seed(7)
    b = np.asarray(dist.sample((50,)).data)
    distnn.manual_seed(8)
    c = np.asarray(dist.sample((50,)).data)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def _noise(seed, draw):
    """The noise the next rsample after ``manual_seed(seed)`` will use: ``draw(generator)``."""
    distnn.manual_seed(seed)
    out = draw(drandom.default_generator())
    distnn.manual_seed(seed)
    return out


def _leaves(arrays):
    return ([distnn.tensor(a, requires_grad=True) for a in arrays],
            [torch.tensor(a, requires_grad=True) for a in arrays])


R = np.random.default_rng(4)  # (module-level draws only, at import: each test draws from its own below)


DRAW_PER_TEST = True  # (R: each test draws from its own generator, conftest's per_test_rng)
SHAPE, SAMPLE = (2, 3), (4,)
FULL = SAMPLE + SHAPE


def _uniform_open(g):
    return np.clip(g.random(FULL), np.finfo(np.float64).tiny, 1 - np.finfo(np.float64).eps)


# name -> (params, distnn builder, noise draw, torch's reparameterization of the noise)
RSAMPLE_CASES = {
    "Normal": ((R.standard_normal(SHAPE), R.uniform(0.5, 2, SHAPE)), D.Normal, lambda g: g.standard_normal(FULL),
               lambda e, loc, scale: loc + e * scale),
    "LogNormal": ((R.standard_normal(SHAPE), R.uniform(0.5, 2, SHAPE)), D.LogNormal,
                  lambda g: g.standard_normal(FULL), lambda e, loc, scale: (loc + e * scale).exp()),
    "Uniform": ((-R.uniform(0, 1, SHAPE), R.uniform(0.5, 2, SHAPE)), D.Uniform, lambda g: g.random(FULL),
                lambda u, lo, hi: lo + u * (hi - lo)),
    "Exponential": ((R.uniform(0.5, 2, SHAPE),), D.Exponential, _uniform_open, lambda u, rate: -u.log() / rate),
    "Laplace": ((R.standard_normal(SHAPE), R.uniform(0.5, 2, SHAPE)), D.Laplace, lambda g: g.random(FULL) * 2 - 1,
                lambda u, loc, scale: loc - scale * u.sign() * torch.log1p(-u.abs())),
    "Cauchy": ((R.standard_normal(SHAPE), R.uniform(0.5, 2, SHAPE)), D.Cauchy, lambda g: g.random(FULL),
               lambda u, loc, scale: loc + torch.tan(np.pi * (u - 0.5)) * scale),
}


@pytest.mark.parametrize("name", list(RSAMPLE_CASES))
def test_rsample_and_its_gradients_match_torch_given_the_same_noise(name):
    params, build, draw, reparam = RSAMPLE_CASES[name]
    noise = _noise(21, draw)
    d_leaves, t_leaves = _leaves(params)
    x = build(*d_leaves).rsample(SAMPLE)
    y = reparam(torch.tensor(noise), *t_leaves)
    np.testing.assert_allclose(x.data, y.detach().numpy(), rtol=1e-12, atol=1e-12)
    u = R.standard_normal(FULL)
    (x * distnn.tensor(u)).sum().backward()
    (y * torch.tensor(u)).sum().backward()
    for a, b in zip(d_leaves, t_leaves):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert build(*params).has_rsample is True


def test_multivariate_normal_rsample_gradients_through_the_cholesky_match_torch():
    n = 3
    a = R.standard_normal((2, n, n))
    cov = a @ np.swapaxes(a, -1, -2) + np.eye(n)
    loc = R.standard_normal((2, n))
    eps = _noise(9, lambda g: g.standard_normal((5, 2, n)))
    (dl, dc), (tl, tc) = _leaves([loc, cov])
    x = D.MultivariateNormal(dl, covariance_matrix=dc).rsample((5,))
    y = tl + (torch.linalg.cholesky(tc) @ torch.tensor(eps).unsqueeze(-1)).squeeze(-1)
    np.testing.assert_allclose(x.data, y.detach().numpy(), rtol=1e-12, atol=1e-12)
    u = R.standard_normal(tuple(y.shape))
    (x * distnn.tensor(u)).sum().backward()
    (y * torch.tensor(u)).sum().backward()
    np.testing.assert_allclose(dl.grad, tl.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(dc.grad, tc.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_gamma_rsample_gradient_is_torchs_implicit_gradient_of_the_same_draw():
    alpha = np.concatenate([R.uniform(0.05, 1.0, 6), R.uniform(1.0, 8.0, 6), R.uniform(8.0, 40.0, 6)])
    rate = R.uniform(0.5, 3.0, alpha.shape)
    (da, dr) = [distnn.tensor(v, requires_grad=True) for v in (alpha, rate)]
    distnn.manual_seed(2)
    x = D.Gamma(da, dr).rsample((200,))
    x.sum().backward()
    xs = torch.tensor(np.asarray(x.data) * rate)  # (the standard draws)
    dx_dalpha = torch._standard_gamma_grad(torch.tensor(alpha).expand(xs.shape), xs).numpy() / rate
    np.testing.assert_allclose(da.grad, dx_dalpha.sum(0), rtol=1e-10)
    np.testing.assert_allclose(dr.grad, (-np.asarray(x.data) / rate).sum(0), rtol=1e-10)


@pytest.mark.parametrize("which", ["Gamma", "Dirichlet", "Beta"])
def test_gamma_family_rsample_gradients_average_to_the_derivative_of_the_mean(which):
    """d E[x] / d(parameters) estimated by the mean of rsample's gradients over many draws (unbiased)."""
    if which == "Gamma":
        params = [np.array([0.4, 2.5, 12.0]), np.array([2.0, 1.0, 0.5])]
        dist = lambda a, b: D.Gamma(a, b)  # noqa: E731
        exact = lambda a, b: a / b  # noqa: E731
    elif which == "Dirichlet":
        params = [np.array([0.6, 1.5, 4.0])]
        dist = lambda a: D.Dirichlet(a)  # noqa: E731
        exact = lambda a: a / a.sum(-1, keepdim=True)  # noqa: E731
    else:
        params = [np.array([0.7, 3.0]), np.array([1.5, 0.8])]
        dist = lambda a, b: D.Beta(a, b)  # noqa: E731
        exact = lambda a, b: a / (a + b)  # noqa: E731
    weights = np.linspace(1.0, 2.0, params[0].size).reshape(params[0].shape)
    d_leaves, t_leaves = _leaves(params)
    distnn.manual_seed(13)
    x = dist(*d_leaves).rsample((N,))
    (x.mean(0) * distnn.tensor(weights)).sum().backward()
    (exact(*t_leaves) * torch.tensor(weights)).sum().backward()
    for a, b in zip(d_leaves, t_leaves):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=0.05, atol=0.01)


@pytest.mark.parametrize("dist", [D.Bernoulli(_t([0.3])), D.Categorical(_t([0.3, 0.7])), D.Poisson(_t([2.0])),
                                  D.Binomial(4, _t([0.3])), D.MixtureSameFamily(D.Categorical(_t([0.5, 0.5])),
                                                                                D.Normal(_t([0.0, 1.0]), 1.0))],
                         ids=lambda d: type(d).__name__)
def test_distributions_without_rsample_refuse_it_as_torch(dist):
    assert dist.has_rsample is False
    with pytest.raises(NotImplementedError):
        dist.rsample()


def test_sample_has_no_gradient_and_rsample_has_one():
    loc = distnn.tensor(np.zeros(3), requires_grad=True)
    n = D.Normal(loc, 1.0)
    assert n.sample((2,)).requires_grad is False
    assert n.rsample((2,)).requires_grad is True
