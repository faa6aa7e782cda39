"""Sampling of the remaining torch.distributions families: statistics of many draws at fixed seeds (means and
variances within a few standard errors of the exact values), and the rsample gradients against torch given the
same underlying noise (reproduced from the seed: numpy's generator draws in the order rsample takes them)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.distributions as D  # noqa: E402

N = 40000


def _t(values):
    return distnn.tensor(np.asarray(values, dtype=np.float64))


MOMENT_CASES = {
    "Chi2": lambda: D.Chi2(_t([0.5, 3.0, 12.0])),
    "StudentT": lambda: D.StudentT(_t([5.0, 9.0]), _t([1.0, -2.0]), _t([0.5, 2.0])),
    "FisherSnedecor": lambda: D.FisherSnedecor(_t([3.0, 10.0]), _t([12.0, 20.0])),
    "ContinuousBernoulli": lambda: D.ContinuousBernoulli(_t([0.05, 0.3, 0.5, 0.9])),
    "Geometric": lambda: D.Geometric(_t([0.1, 0.5, 1.0])),
    "NegativeBinomial": lambda: D.NegativeBinomial(_t([0.5, 4.0, 10.0]), _t([0.2, 0.5, 0.7])),
    "Multinomial": lambda: D.Multinomial(7, _t([[0.2, 0.3, 0.5], [0.9, 0.1, 0.0]])),
    "GeneralizedPareto": lambda: D.GeneralizedPareto(_t([0.0, 1.0, -1.0]), _t([1.0, 2.0, 0.5]),
                                                     _t([0.0, 0.15, -0.5])),
    "LowRankMultivariateNormal": lambda: D.LowRankMultivariateNormal(
        _t([1.0, -1.0, 0.0]), _t([[1.0, 0.0], [0.5, 0.5], [0.0, -1.0]]), _t([0.5, 1.0, 2.0])),
    "OneHotCategoricalStraightThrough": lambda: D.OneHotCategoricalStraightThrough(_t([0.2, 0.3, 0.5])),
}


@pytest.mark.parametrize("name", list(MOMENT_CASES))
def test_draws_have_the_exact_mean_and_variance_within_a_few_standard_errors(name):
    dist = MOMENT_CASES[name]()
    distnn.manual_seed(21)
    x = dist.sample((N,))
    assert tuple(x.shape) == (N,) + dist.batch_shape + dist.event_shape
    assert x.requires_grad is False and x.dtype == np.float64
    assert bool(np.all(dist.support.check(x)))
    mean, var = np.asarray(dist.mean.data), np.asarray(dist.variance.data)
    xs = np.asarray(x.data)
    se = np.sqrt(var / N)
    assert np.all(np.abs(xs.mean(0) - mean) <= 6 * se + 1e-12), (xs.mean(0), mean)
    np.testing.assert_allclose(xs.var(0), var, rtol=0.1, atol=1e-12)


def test_von_mises_draws_are_angles_of_the_circular_mean_and_variance():
    """Best & Fisher's sampler: angles in [-pi, pi); E[cos(x - loc)] = I1(k)/I0(k) = 1 - circular variance,
    E[sin(x - loc)] = 0; also small (1e-6) and large (50) concentrations."""
    loc, k = np.array([0.5, -3.0, 2.0, 0.0]), np.array([1e-6, 0.7, 4.0, 50.0])
    dist = D.VonMises(_t(loc), _t(k))
    distnn.manual_seed(5)
    x = np.asarray(dist.sample((N,)).data)
    assert x.shape == (N, 4) and np.all((x >= -np.pi) & (x < np.pi))
    c, s = np.cos(x - loc), np.sin(x - loc)
    se = np.sqrt(np.maximum(c.var(0), s.var(0)) / N)
    assert np.all(np.abs(c.mean(0) - (1 - dist.variance.data)) <= 6 * se)
    assert np.all(np.abs(s.mean(0)) <= 6 * se)
    assert dist.sample().dtype == np.float64 and D.VonMises(0.0, 1.0).sample((2,)).dtype == np.float32


def test_sampling_is_reproducible_from_the_seed():
    for make in MOMENT_CASES.values():
        distnn.manual_seed(3)
        a = make().sample((5,)).data
        distnn.manual_seed(3)
        np.testing.assert_array_equal(a, make().sample((5,)).data)


def _gamma_draw(rng, alpha):
    """A standard Gamma draw from ``rng`` and torch's implicit derivative of it w.r.t. ``alpha``."""
    g = np.maximum(rng.standard_gamma(alpha), np.finfo(np.float64).tiny)
    return torch.tensor(g), torch._standard_gamma_grad(torch.tensor(alpha), torch.tensor(g))


def _with_gradient(value, grad, param):
    """``value`` with d/d``param`` = ``grad`` (a draw's implicit reparameterization, built in torch)."""
    return value + (param - param.detach()) * grad


def test_studentT_rsample_gradients_match_torch_given_the_same_noise():
    df, loc, scale = np.array([0.7, 3.0, 11.0]), np.array([0.0, 1.0, -1.0]), np.array([1.0, 0.5, 2.0])
    d = [distnn.tensor(a, requires_grad=True) for a in (df, loc, scale)]
    distnn.manual_seed(9)
    yd = D.StudentT(*d).rsample((4,))
    rng = np.random.default_rng(9)
    X = torch.tensor(rng.standard_normal((4, 3)))
    t = [torch.tensor(a, requires_grad=True) for a in (df, loc, scale)]
    g, dg = _gamma_draw(rng, np.broadcast_to(df / 2, (4, 3)).copy())
    Z = 2 * _with_gradient(g, dg, t[0] / 2)  # (Chi2(df) = 2 Gamma(df/2, 1))
    yt = t[1] + t[2] * X * torch.rsqrt(Z / t[0])
    np.testing.assert_allclose(yd.data, yt.detach().numpy(), rtol=1e-12)
    u = np.random.default_rng(1).standard_normal((4, 3))
    (yd * _t(u)).sum().backward()
    (yt * torch.tensor(u)).sum().backward()
    for a, b in zip(d, t):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-10)


def test_fisher_snedecor_and_chi2_rsample_gradients_match_torch_given_the_same_noise():
    df1, df2 = np.array([0.8, 4.0]), np.array([2.5, 30.0])
    d1, d2 = distnn.tensor(df1, requires_grad=True), distnn.tensor(df2, requires_grad=True)
    distnn.manual_seed(4)
    yd = D.FisherSnedecor(d1, d2).rsample((3,)) + D.Chi2(d1).rsample((3,))
    rng = np.random.default_rng(4)
    t1, t2 = torch.tensor(df1, requires_grad=True), torch.tensor(df2, requires_grad=True)
    g1, dg1 = _gamma_draw(rng, np.broadcast_to(df1 / 2, (3, 2)).copy())
    g2, dg2 = _gamma_draw(rng, np.broadcast_to(df2 / 2, (3, 2)).copy())
    g3, dg3 = _gamma_draw(rng, np.broadcast_to(df1 / 2, (3, 2)).copy())
    X1, X2 = _with_gradient(g1, dg1, t1 / 2) / t1, _with_gradient(g2, dg2, t2 / 2) / t2
    yt = X1 / X2 + 2 * _with_gradient(g3, dg3, t1 / 2)
    np.testing.assert_allclose(yd.data, yt.detach().numpy(), rtol=1e-12)
    yd.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(d1.grad, t1.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(d2.grad, t2.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("name", ["ContinuousBernoulli", "GeneralizedPareto", "LowRankMultivariateNormal",
                                  "OneHotCategoricalStraightThrough"])
def test_rsample_gradients_match_torch_given_the_same_noise(name):
    """icdf of the same uniforms (ContinuousBernoulli, GeneralizedPareto), the same normals (LowRank), the
    straight-through estimator's probs gradient (OneHotCategoricalStraightThrough)."""
    rng = np.random.default_rng(2)
    if name == "ContinuousBernoulli":
        params, shape = [np.array([0.1, 0.4995, 0.5005, 0.8])], (5, 4)
        noise = lambda g: torch.tensor(g.random(shape))  # noqa: E731
        torch_draw = lambda t, g: torch.distributions.ContinuousBernoulli(*t).icdf(noise(g))  # noqa: E731
    elif name == "GeneralizedPareto":
        params, shape = [rng.standard_normal(3), np.array([0.5, 1.0, 2.0]), np.array([-0.4, 0.0, 0.6])], (5, 3)
        noise = lambda g: torch.tensor(g.random(shape))  # noqa: E731
        torch_draw = lambda t, g: torch.distributions.GeneralizedPareto(*t).icdf(noise(g))  # noqa: E731
    elif name == "LowRankMultivariateNormal":
        params, shape = [rng.standard_normal((2, 3)), rng.standard_normal((3, 2)), np.array([0.5, 1.0, 2.0])], (5, 2, 3)

        def torch_draw(t, g):
            eps_w, eps_d = torch.tensor(g.standard_normal((5, 2, 2))), torch.tensor(g.standard_normal(shape))
            return t[0] + (t[1] @ eps_w.unsqueeze(-1)).squeeze(-1) + t[2].sqrt() * eps_d
    else:
        params, shape = [np.array([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])], (5, 2, 3)
        torch_draw = None
    d = [distnn.tensor(a, requires_grad=True) for a in params]
    distnn.manual_seed(6)
    yd = getattr(D, name)(*d).rsample((5,))
    t = [torch.tensor(a, requires_grad=True) for a in params]
    if torch_draw is None:  # (the value is the one-hot draw; the gradient is that of probs)
        probs = torch.distributions.OneHotCategoricalStraightThrough(t[0]).probs
        yt = torch.tensor(yd.data) + (probs - probs.detach())
    else:
        yt = torch_draw(t, np.random.default_rng(6))
    assert tuple(yd.shape) == shape
    np.testing.assert_allclose(yd.data, yt.detach().numpy(), rtol=1e-12, atol=1e-14)
    u = rng.standard_normal(shape)
    (yd * _t(u)).sum().backward()
    (yt * torch.tensor(u)).sum().backward()
    for a, b in zip(d, t):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-10, atol=1e-12)
