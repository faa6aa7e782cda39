"""The lecture notes' (/work/shared/seeds) worked examples as tests, part 3: the optimizers' updates on a
quadratic (minibatch SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam), reducing the learning rate, gradient
clipping."""
import numpy as np
import pytest

import distnn.functional as F
from distnn import Tensor, nn, optim


A = np.array([[3.0, 0.5], [0.5, 1.0]])


B = np.array([1.0, -2.0])
START = np.array([0.5, 0.3])


def quadratic_grad(beta):
    return A @ beta - B  # gradient of beta^T A beta / 2 - B^T beta


def run_distnn(make_optimizer, steps=6):
    p = nn.Parameter(START.copy())
    opt = make_optimizer([p])
    path = []
    for _ in range(steps):
        opt.zero_grad()
        p.grad = quadratic_grad(p.data.copy())
        opt.step()
        path.append(p.data.copy())
    return np.array(path)


def test_minibatch_sgd_steps_along_the_mean_gradient():
    # 001, 003: beta <- beta - (alpha / k) sum_i grad L_i: the mean loss over the batch gives that gradient.
    rng = np.random.default_rng(4)
    x, t = rng.standard_normal((6, 3)), rng.standard_normal(6)
    w = nn.Parameter(np.zeros(3))
    opt = optim.SGD([w], lr=0.1)
    F.mse_loss(Tensor(x) @ w, Tensor(t)).backward()
    opt.step()
    per_example = [2 * (x[i] @ np.zeros(3) - t[i]) * x[i] for i in range(6)]
    np.testing.assert_allclose(w.data, -0.1 / 6 * np.sum(per_example, axis=0), rtol=1e-12)


def test_momentum_is_the_notes_rho_update():
    # 001: rho <- mu rho - alpha grad(beta); beta <- beta + rho. (000: Delta_t = gamma Delta_{t-1} + eta grad,
    # theta <- theta - Delta_t: the same with Delta = -rho.) PyTorch's buffer is -rho / alpha: same path.
    mu, alpha = 0.9, 0.05
    beta, rho, expected = START.copy(), np.zeros(2), []
    for _ in range(6):
        rho = mu * rho - alpha * quadratic_grad(beta)
        beta = beta + rho
        expected.append(beta)
    got = run_distnn(lambda ps: optim.SGD(ps, lr=alpha, momentum=mu))
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


def test_nesterov_is_the_notes_lookahead_update():
    # 001: rho <- mu rho - alpha grad(beta + mu rho); beta <- beta + rho. distnn (as PyTorch) stores the
    # look-ahead point beta + mu rho as the parameter, so that is what the two paths share.
    mu, alpha = 0.9, 0.05
    beta, rho, expected = START.copy(), np.zeros(2), []
    for _ in range(6):
        rho = mu * rho - alpha * quadratic_grad(beta + mu * rho)
        beta = beta + rho
        expected.append(beta + mu * rho)
    got = run_distnn(lambda ps: optim.SGD(ps, lr=alpha, momentum=mu, nesterov=True))
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


def test_adagrad_and_rmsprop_are_the_notes_updates():
    # 001: AdaGrad G <- G + g^2; RMSProp G <- lam G + (1 - lam) g^2; both beta <- beta - alpha g / sqrt(G)
    # (distnn adds eps to sqrt(G), as PyTorch; eps = 0 gives the notes' update exactly).
    alpha, lam = 0.05, 0.9
    for make, accumulate in ((lambda ps: optim.Adagrad(ps, lr=alpha, eps=0.0), lambda G, g: G + g * g),
                             (lambda ps: optim.RMSprop(ps, lr=alpha, alpha=lam, eps=0.0),
                              lambda G, g: lam * G + (1 - lam) * g * g)):
        beta, G, expected = START.copy(), np.zeros(2), []
        for _ in range(6):
            g = quadratic_grad(beta)
            G = accumulate(G, g)
            beta = beta - alpha / np.sqrt(G) * g
            expected.append(beta)
        np.testing.assert_allclose(run_distnn(make), expected, rtol=1e-13, atol=1e-15)


def test_adam_is_rmsprop_with_momentum_plus_bias_correction():
    # 001: G <- lam G + (1 - lam) g^2, g' <- lam' g' + (1 - lam') g, beta <- beta - g' / sqrt(G); distnn's
    # Adam (Kingma & Ba, as PyTorch) also scales by lr and divides each moment by (1 - lam^t).
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    beta, m, v, expected = START.copy(), np.zeros(2), np.zeros(2), []
    for t in range(1, 7):
        g = quadratic_grad(beta)
        v = b2 * v + (1 - b2) * g * g
        m = b1 * m + (1 - b1) * g
        beta = beta - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        expected.append(beta)
    np.testing.assert_allclose(run_distnn(lambda ps: optim.Adam(ps, lr=lr, betas=(b1, b2), eps=eps)), expected,
                               rtol=1e-12, atol=1e-15)


def test_reduce_lr_when_the_validation_loss_stagnates():
    # 001: reduce the learning rate every time the validation loss stagnates.
    p = nn.Parameter(np.zeros(1))
    opt = optim.SGD([p], lr=1.0)
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=2)
    lrs = []
    for val_loss in [1.0, 0.8, 0.8, 0.8, 0.8, 0.5, 0.5, 0.5, 0.5]:
        sched.step(val_loss)
        lrs.append(opt.param_groups[0]["lr"])
    # 3 evaluations without improvement (more than patience = 2) halve the rate, each time it stagnates
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]


def test_gradient_clipping_rescales_to_norm_c_and_keeps_the_direction():
    # 000: g -> C g / ||g|| when ||g|| > C; a large C turns it off.
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(1))
    for C, g in ((1.0, ([3.0, 0.0], [4.0])), (100.0, ([3.0, 0.0], [4.0]))):
        a.grad, b.grad = np.array(g[0]), np.array(g[1])
        total = nn.utils.clip_grad_norm_([a, b], C)
        assert total == pytest.approx(5.0)
        scale = min(1.0, C / 5.0)
        np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), np.array([3.0, 0.0, 4.0]) * scale, rtol=1e-5)
