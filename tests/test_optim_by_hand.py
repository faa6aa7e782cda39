"""distnn.optim's updates by hand and by the papers' formulas: SGD momentum, Nesterov, Adam's first step, AdamW's
decoupled decay, AdaGrad, LARS (excluded groups, Nesterov, eps, scale invariance) and LAMB (trust ratio)."""
import numpy as np
import pytest

from distnn.nn import Parameter
from distnn.optim import LAMB, LARS, SGD, Adagrad, Adam, AdamW

from optim_cases import SHAPES, STEPS, grads, init_params, run_distnn, run_torch


def test_sgd_momentum_two_steps_by_hand():
    p = Parameter(np.array([1.0, -2.0]))
    opt = SGD([p], lr=0.1, momentum=0.9)
    g0, g1 = np.array([0.5, 1.0]), np.array([-1.0, 2.0])
    p.grad = g0.copy()
    opt.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.1 * 0.5, -2.0 - 0.1 * 1.0], rtol=1e-15)
    p.grad = g1.copy()
    opt.step()
    buf = 0.9 * g0 + g1
    np.testing.assert_allclose(p.data, np.array([1.0, -2.0]) - 0.1 * g0 - 0.1 * buf, rtol=1e-15)
    np.testing.assert_allclose(opt.state[p]["momentum_buffer"], buf, rtol=1e-15)


def test_nesterov_step_by_hand():
    p = Parameter(np.array([0.0]))
    opt = SGD([p], lr=1.0, momentum=0.5, nesterov=True)
    p.grad = np.array([2.0])
    opt.step()  # buf = 2; d = 2 + 0.5*2 = 3
    assert p.data[0] == -3.0


@pytest.mark.parametrize("cls", [Adam, AdamW])
def test_adam_first_step_has_magnitude_lr(cls):
    """Bias correction makes m_hat = g and v_hat = g^2 at t=1, so the first update is lr * g/|g|."""
    g = np.array([1e-6, -3.0, 250.0, -1e-3])
    p = Parameter(np.zeros(4))
    opt = cls([p], lr=0.01, eps=1e-15, weight_decay=0.0)
    p.grad = g.copy()
    opt.step()
    np.testing.assert_allclose(p.data, -0.01 * np.sign(g), rtol=1e-7)


def test_adamw_decay_is_decoupled():
    """With a zero gradient AdamW only shrinks the weights by (1 - lr*wd); Adam's coupled decay does more."""
    p = Parameter(np.array([2.0, -4.0]))
    opt = AdamW([p], lr=0.1, weight_decay=0.5)
    p.grad = np.zeros(2)
    opt.step()
    np.testing.assert_allclose(p.data, [2.0 * 0.95, -4.0 * 0.95], rtol=1e-15)


def test_adagrad_one_step_by_hand():
    p = Parameter(np.array([1.0]))
    opt = Adagrad([p], lr=0.5, initial_accumulator_value=1.0, eps=0.0)
    p.grad = np.array([3.0])
    opt.step()  # sum = 1 + 9 = 10
    np.testing.assert_allclose(p.data, [1.0 - 0.5 * 3.0 / np.sqrt(10.0)], rtol=1e-15)


def _lars_reference(params, grads_fn, steps, lr, momentum, wds, eta, eps, adapt):
    """You, Gitman & Ginsburg (2017), Algorithm 1, with the global rate applied outside the buffer."""
    w = [p.copy() for p in params]
    v = [np.zeros_like(p) for p in params]
    for t in range(steps):
        g = grads_fn(w, t)
        for i in range(len(w)):
            wd = wds[i]
            wn, gn = np.linalg.norm(w[i]), np.linalg.norm(g[i])
            local = eta * wn / (gn + wd * wn + eps) if (adapt[i] and wn > 0 and gn > 0) else 1.0
            v[i] = momentum * v[i] + local * (g[i] + wd * w[i])
            w[i] = w[i] - lr * v[i]
    return w


def _lamb_reference(params, grads_fn, steps, lr, b1, b2, eps, wd, adapt):
    """You et al. (2019), Algorithm 2 (LAMB), phi = identity."""
    w = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t in range(1, steps + 1):
        g = grads_fn(w, t - 1)
        for i in range(len(w)):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            mh, vh = m[i] / (1 - b1 ** t), v[i] / (1 - b2 ** t)
            r = mh / (np.sqrt(vh) + eps) + wd * w[i]
            wn, rn = np.linalg.norm(w[i]), np.linalg.norm(r)
            trust = wn / rn if (adapt[i] and wn > 0 and rn > 0) else 1.0
            w[i] = w[i] - lr * trust * r
    return w


def _groups_excluding_vectors(ps, extra):
    return [{"params": [p for p in ps if p.data.ndim >= 2]},
            {"params": [p for p in ps if p.data.ndim < 2], "weight_decay": 0.0, **extra}]


@pytest.mark.parametrize("momentum,wd", [(0.9, 1e-4), (0.0, 0.0), (0.5, 0.01)])
def test_lars_matches_paper_formula(momentum, wd):
    start = init_params()
    ours = run_distnn(LARS, dict(lr=2.0, momentum=momentum, weight_decay=wd, trust_coefficient=0.01))
    ref = _lars_reference(start, grads, STEPS, 2.0, momentum, [wd] * len(start), 0.01, 1e-8, [True] * len(start))
    for a, b, s in zip(ours, ref, start):
        assert not np.allclose(b, s)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


def test_lars_excluded_group_is_plain_sgd_momentum():
    """A group with layer_adaptation=False and no weight decay (biases, norms) is SGD with momentum."""
    start = init_params()
    ours = run_distnn(LARS, dict(lr=0.5, momentum=0.9, weight_decay=1e-3, trust_coefficient=0.02),
                       groups=lambda ps: _groups_excluding_vectors(ps, {"layer_adaptation": False}))
    adapt = [len(s) >= 2 for s in SHAPES]
    ref = _lars_reference(start, grads, STEPS, 0.5, 0.9, [1e-3 if a else 0.0 for a in adapt], 0.02, 1e-8, adapt)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


def _lars_nesterov_lookahead_reference(params, grads_fn, steps, lr, mu, wd, eta, eps):
    """The lecture notes' Nesterov momentum (001: rho <- mu rho - alpha grad(beta + mu rho); beta <- beta + rho)
    with LARS's layer-wise rate: the scaled gradient trust * (g + wd * w) taken at the look-ahead point
    w = beta + mu rho, its norms too. Returns the look-ahead points, which an optimizer holds as the parameters
    (as PyTorch's SGD does; see test_seeds_examples)."""
    beta = [p.copy() for p in params]
    rho = [np.zeros_like(p) for p in params]
    for t in range(steps):
        ahead = [b + mu * r for b, r in zip(beta, rho)]
        g = grads_fn(ahead, t)
        for i in range(len(beta)):
            wn, gn = np.linalg.norm(ahead[i]), np.linalg.norm(g[i])
            trust = eta * wn / (gn + wd * wn + eps) if (wn > 0 and gn > 0) else 1.0
            rho[i] = mu * rho[i] - lr * trust * (g[i] + wd * ahead[i])
            beta[i] = beta[i] + rho[i]
    return [b + mu * r for b, r in zip(beta, rho)]


@pytest.mark.parametrize("momentum,wd", [(0.9, 1e-4), (0.5, 0.0)])
def test_lars_nesterov_is_the_notes_lookahead_update_with_layer_wise_rates(momentum, wd):
    start = init_params()
    ours = run_distnn(LARS, dict(lr=2.0, momentum=momentum, weight_decay=wd, trust_coefficient=0.01,
                                  nesterov=True))
    ref = _lars_nesterov_lookahead_reference(start, grads, STEPS, 2.0, momentum, wd, 0.01, 1e-8)
    plain = run_distnn(LARS, dict(lr=2.0, momentum=momentum, weight_decay=wd, trust_coefficient=0.01))
    for a, b, c in zip(ours, ref, plain):
        assert not np.allclose(b, c)  # (Nesterov's path is not plain momentum's)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


def test_lars_nesterov_without_adaptation_is_torch_sgd_nesterov(torch):
    """A group with layer_adaptation=False (biases, norms) is SGD with momentum: with nesterov, PyTorch's."""
    def groups(ps):
        return [{"params": ps, "layer_adaptation": False}]

    ours = run_distnn(LARS, dict(lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True), groups=groups)
    ref = run_torch(torch, torch.optim.SGD, dict(lr=0.05, momentum=0.9, weight_decay=1e-3, nesterov=True))
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_lars_takes_the_eps_of_its_trust_ratio():
    w, g = np.array([3.0, 4.0]), np.array([0.0, 1.0])  # ||w|| = 5, ||g|| = 1
    p = Parameter(w.copy())
    opt = LARS([p], lr=1.0, momentum=0.0, trust_coefficient=0.1, eps=1.0)
    p.grad = g.copy()
    opt.step()
    assert opt.state[p]["trust_ratio"] == 0.1 * 5 / (1 + 1.0)
    np.testing.assert_allclose(p.data, w - 0.25 * g, rtol=1e-15)


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_lamb_matches_paper_formula(wd):
    start = init_params()
    ours = run_distnn(LAMB, dict(lr=0.01, weight_decay=wd))
    ref = _lamb_reference(start, grads, STEPS, 0.01, 0.9, 0.999, 1e-6, wd, [True] * len(start))
    for a, b, s in zip(ours, ref, start):
        assert not np.allclose(b, s)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-10)


def test_lars_update_is_invariant_to_gradient_scale():
    """The trust ratio makes the step size depend on ||w||, not on the gradient's magnitude."""
    rng = np.random.default_rng(3)
    w0, g = rng.standard_normal((50, 40)), rng.standard_normal((50, 40))
    steps = []
    for scale in (1e-3, 1.0, 1e3):
        p = Parameter(w0.copy())
        opt = LARS([p], lr=1.0, momentum=0.0, trust_coefficient=0.02, eps=0.0)
        p.grad = g * scale
        opt.step()
        steps.append(p.data - w0)
        np.testing.assert_allclose(np.linalg.norm(p.data - w0), 0.02 * np.linalg.norm(w0), rtol=1e-12)
        np.testing.assert_allclose(opt.state[p]["trust_ratio"],
                                   0.02 * np.linalg.norm(w0) / np.linalg.norm(g * scale), rtol=1e-12)
    np.testing.assert_allclose(steps[0], steps[2], rtol=1e-10)


def test_lamb_update_norm_is_lr_times_weight_norm():
    rng = np.random.default_rng(4)
    w0 = rng.standard_normal((30, 20))
    for scale in (1e-4, 1e4):
        p = Parameter(w0.copy())
        opt = LAMB([p], lr=0.1, weight_decay=0.01)
        p.grad = rng.standard_normal((30, 20)) * scale
        opt.step()
        np.testing.assert_allclose(np.linalg.norm(p.data - w0), 0.1 * np.linalg.norm(w0), rtol=1e-10)


def test_lamb_zero_weights_use_trust_one_and_clamp():
    p = Parameter(np.zeros(4))
    opt = LAMB([p], lr=0.1, eps=0.0)
    p.grad = np.array([1.0, -2.0, 3.0, -4.0])
    opt.step()  # r = sign(g) at t=1; trust 1 because ||w|| = 0
    np.testing.assert_allclose(p.data, -0.1 * np.sign(p.grad), rtol=1e-12)
    assert opt.state[p]["trust_ratio"] == 1.0
    assert LAMB.trust_ratio(50.0, 2.0, max_weight_norm=10.0) == 5.0
