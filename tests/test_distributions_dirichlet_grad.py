"""Dirichlet's and Beta's rsample gradient against torch (2.13) as the oracle: given the same draw, distnn's
per-draw reparameterization gradient is torch's (``_Dirichlet_backward``, i.e. ``torch._dirichlet_grad``),
float64 tight, over concentrations that reach each of its approximations (the series near 0 and near 1, the
saddle-point expansion where both Beta parameters exceed 6, the rational correction elsewhere)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.distributions.dirichlet import _Dirichlet_backward  # noqa: E402

import distnn  # noqa: E402
import distnn.distributions as D  # noqa: E402

R = np.random.default_rng(3)  # (module-level draws only, at import: each test draws from its own below)


DRAW_PER_TEST = True  # (R: each test draws from its own generator, conftest's per_test_rng)


def _branches(x, alpha):
    """How many coordinates fall in each approximation of torch's dirichlet_grad_one."""
    total = alpha.sum(-1, keepdims=True)
    beta, boundary = total - alpha, total * x * (1 - x)
    near_0 = (x <= 0.5) & (boundary < 2.5)
    near_1 = ~near_0 & (x >= 0.5) & (boundary < 0.75)
    mid = ~near_0 & ~near_1 & (alpha > 6) & (beta > 6)
    return near_0.sum(), near_1.sum(), mid.sum(), (~near_0 & ~near_1 & ~mid).sum()


CONCENTRATIONS = {
    "mixed": np.array([[0.3, 2.0, 9.0, 15.0], [0.05, 0.7, 1.5, 4.0]]),
    "large": np.array([[7.0, 8.0, 30.0], [12.0, 6.5, 90.0]]),
    "small": np.array([[0.1, 0.2], [0.02, 0.5]]),
    "random": np.exp(R.uniform(-3.0, 4.0, (3, 5))),
}


@pytest.mark.parametrize("name", sorted(CONCENTRATIONS))
def test_dirichlet_rsample_gradient_is_torchs_for_the_same_draw(name):
    conc = CONCENTRATIONS[name]
    c = distnn.tensor(conc, requires_grad=True)
    distnn.manual_seed(5)
    x = D.Dirichlet(c).rsample((300,))
    weights = R.standard_normal(tuple(x.shape))
    (x * distnn.tensor(weights)).sum().backward()
    draw = x.detach().numpy()
    alpha = np.broadcast_to(conc, draw.shape)
    ref = _Dirichlet_backward(torch.tensor(draw), torch.tensor(alpha), torch.tensor(weights)).numpy().sum(0)
    np.testing.assert_allclose(np.asarray(c.grad), ref, rtol=1e-10, atol=1e-12)
    if name == "mixed":  # (the draws reach every approximation)
        assert all(n > 0 for n in _branches(draw, alpha))


def test_dirichlet_grad_per_coordinate_against_torch_dirichlet_grad():
    # one cotangent per coordinate isolates each coordinate's own derivative d x_i / d alpha_i / (1 - x_i)
    conc = np.exp(R.uniform(-3.0, 4.0, (4000, 3)))
    c = distnn.tensor(conc, requires_grad=True)
    x = D.Dirichlet(c).rsample()
    draw = x.detach().numpy()
    for i in range(3):
        c.grad = None
        one_hot = np.zeros(draw.shape)
        one_hot[:, i] = 1.0
        (x * distnn.tensor(one_hot)).sum().backward(retain_graph=i < 2)  # (the same draw each time)
        d = torch._dirichlet_grad(torch.tensor(draw), torch.tensor(conc),
                                  torch.tensor(conc.sum(-1, keepdims=True)).expand(conc.shape)).numpy()
        np.testing.assert_allclose(np.asarray(c.grad)[:, i], d[:, i] * (1 - draw[:, i]), rtol=1e-10, atol=1e-300)


def test_beta_rsample_gradient_is_torchs_for_the_same_draw():
    a, b = np.array([0.4, 2.0, 8.0, 20.0]), np.array([[1.5], [0.1], [9.0]])
    c1, c0 = distnn.tensor(a, requires_grad=True), distnn.tensor(b, requires_grad=True)
    distnn.manual_seed(9)
    x = D.Beta(c1, c0).rsample((200,))
    weights = R.standard_normal(tuple(x.shape))
    (x * distnn.tensor(weights)).sum().backward()
    # torch's Beta draws the first coordinate of a two-class Dirichlet: the same gradient given that draw
    draw = x.detach().numpy()
    pair = np.stack([draw, 1 - draw], -1)
    conc = np.stack(np.broadcast_arrays(a, b), -1)
    ref = _Dirichlet_backward(torch.tensor(pair), torch.tensor(np.broadcast_to(conc, pair.shape)),
                              torch.tensor(np.stack([weights, np.zeros_like(weights)], -1))).numpy().sum(0)
    np.testing.assert_allclose(np.asarray(c1.grad), ref[..., 0].sum(0), rtol=1e-9)
    np.testing.assert_allclose(np.asarray(c0.grad), ref[..., 1].sum(1, keepdims=True), rtol=1e-9)


def test_dirichlet_rsample_gradient_float32():
    conc = np.array([[0.5, 3.0, 12.0], [8.0, 9.0, 0.2]], dtype=np.float32)
    c = distnn.tensor(conc, requires_grad=True)
    x = D.Dirichlet(c).rsample((100,))
    assert x.dtype == c.dtype
    weights = R.standard_normal(tuple(x.shape)).astype(np.float32)
    (x * distnn.tensor(weights)).sum().backward()
    assert np.asarray(c.grad).dtype == np.float32
    draw = x.detach().numpy()
    ref = _Dirichlet_backward(torch.tensor(draw), torch.tensor(np.broadcast_to(conc, draw.shape)),
                              torch.tensor(weights)).numpy().sum(0)
    np.testing.assert_allclose(np.asarray(c.grad), ref, rtol=2e-3, atol=1e-4)


def test_dirichlet_draws_stay_on_the_simplex_inside_the_open_interval():
    x = D.Dirichlet(distnn.tensor(np.array([1e-3, 1e-3, 2.0]))).rsample((500,)).numpy()
    np.testing.assert_allclose(x.sum(-1), 1.0, rtol=1e-12)
    assert (x > 0).all() and (x < 1).all()
