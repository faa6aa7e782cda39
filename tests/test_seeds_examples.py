"""The lecture notes (/work/shared/seeds, the mathematical reference of distnn) as an oracle.

Each test reproduces a worked example or a formula that a note states exactly, through
distnn's public API: the numbers of a backprop example, the known exact XOR network, the
optimizer updates as the notes write them. Comments name the note (000 ... 004) a test
follows. Where a note's own arithmetic slips, the test says so and checks the right value.
"""
import math

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import Tensor, nn, optim


def leaf(values, dtype=np.float64):
    return Tensor(np.array(values, dtype=dtype), requires_grad=True)


# ------------------------------------------------------------ computation graphs (000, 004)
def test_forward_and_backward_pass_of_x_plus_y_times_x_y_squared():
    # 000: f(x, y) = (x + y) x y^2 at x = 1, y = 2 has value 12, and backpropagation gives df/dx = 16.
    x, y = leaf(1.0), leaf(2.0)
    f = (x + y) * x * y ** 2
    f.backward()
    assert float(f.item()) == 12.0
    assert float(x.grad) == 16.0
    assert float(y.grad) == 16.0  # x y^2 + (x + y) x 2y = 4 + 12


def test_a_node_used_twice_sums_the_gradients_of_its_children():
    # 004 (after Olah): c = a + b, d = b + 1, e = c d; de/db = de/dc dc/db + de/dd dd/db = 2 * 1 + 3 * 1 = 5.
    a, b = leaf(2.0), leaf(1.0)
    e = (a + b) * (b + 1)
    e.backward()
    assert (float(e.item()), float(a.grad), float(b.grad)) == (6.0, 2.0, 5.0)


def test_gradients_accumulate_across_backward_calls():
    # 000, implementation: a node's gradient slot starts at 0 and each child adds to it (a.z <- a.z + c.z).
    x = leaf(2.0)
    (x * x + x).backward()   # 2x + 1 = 5
    (3 * x).backward()       # + 3
    assert float(x.grad) == 8.0


def test_backprop_worked_example_with_numbers():
    # 004: u_in = w1 x1^3 + w2 x2, u_out = sigmoid(u_in), L = (y - u_out)^2 / 2 with y = 0,
    # w = (.02, .01), x = (3, 5): u_in = .59, u_out = .6434, L = .2070 and dL/dw1 = .6434 * .2294 * 27 = 3.9851
    # (the note rounds every factor to 4 digits; the exact product is 3.98568).
    w = leaf([0.02, 0.01])
    x = np.array([3.0, 5.0])
    u_in = w[0] * x[0] ** 3 + w[1] * x[1]
    u_out = F.sigmoid(u_in)
    loss = 0.5 * (0.0 - u_out) ** 2
    loss.backward()
    assert float(u_in.item()) == pytest.approx(0.59, abs=1e-12)
    assert float(u_out.item()) == pytest.approx(0.6434, abs=5e-5)
    assert float(loss.item()) == pytest.approx(0.2070, abs=5e-5)
    s = float(u_out.item())
    assert s * (1 - s) == pytest.approx(0.2294, abs=5e-5)  # d u_out / d u_in
    assert float(w.grad[0]) == pytest.approx(0.6434 * 0.2294 * 27, rel=2e-4)
    assert float(w.grad[0]) == pytest.approx(s * s * (1 - s) * 27, rel=1e-12)
    assert float(w.grad[1]) == pytest.approx(s * s * (1 - s) * 5, rel=1e-12)
    # One SGD step with learning rate .01. (The note writes w1 = .02 - .01 * 3.9851 = -0.0599; the
    # difference is -0.0199, an arithmetic slip, which it then rounds to -.06 for the new loss below.)
    opt = optim.SGD([w], lr=0.01)
    opt.step()
    assert float(w.data[0]) == pytest.approx(0.02 - 0.01 * 3.98568, abs=1e-5)
    # The loss with w1 = -.06 (and w2 unchanged): u_in = -1.57, u_out = .1722, L = .0148 (down from .2070).
    u_in = -0.06 * 27 + 0.01 * 5
    u_out = F.sigmoid(Tensor(np.array(u_in)))
    assert u_in == pytest.approx(-1.57)
    assert float(u_out.item()) == pytest.approx(0.1722, abs=5e-5)
    assert float((0.5 * u_out ** 2).item()) == pytest.approx(0.0148, abs=5e-5)


# ------------------------------------------------------------------ XOR (004)
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_Y = np.array([0, 1, 1, 0], dtype=np.float64)


def test_the_exact_relu_solution_of_xor():
    # 004: f(x) = w^T max(0, W^T x + c) + b with W = [[1, 1], [1, 1]], c = (0, -1), w = (1, -2), b = 0.
    hidden = nn.Linear(2, 2, dtype=np.float64)
    out = nn.Linear(2, 1, dtype=np.float64)
    hidden.weight.data[...] = [[1, 1], [1, 1]]  # distnn's weight is W^T (out, in); W is symmetric here
    hidden.bias.data[...] = [0, -1]
    out.weight.data[...] = [[1, -2]]
    out.bias.data[...] = 0
    x = Tensor(XOR_X)
    z = hidden(x)
    np.testing.assert_array_equal(z.numpy(), [[0, -1], [1, 0], [1, 0], [2, 1]])       # W^T x + c
    np.testing.assert_array_equal(F.relu(z).numpy(), [[0, 0], [1, 0], [1, 0], [2, 1]])  # max(0, .)
    net = nn.Sequential(hidden, nn.ReLU(), out)
    pred = net(x)
    np.testing.assert_array_equal(pred.numpy().ravel(), XOR_Y)
    assert float(F.mse_loss(pred.reshape(-1), Tensor(XOR_Y)).item()) == 0.0  # J = 1/4 sum (f* - f)^2


def test_a_linear_model_of_xor_learns_w_0_and_b_one_half():
    # 004: fitting f(x) = x^T w + b to XOR by least squares gives w = 0, b = .5 (it predicts .5 everywhere).
    model = nn.Linear(2, 1, dtype=np.float64, generator=np.random.default_rng(0))
    opt = optim.SGD(model.parameters(), lr=0.5)
    x, y = Tensor(XOR_X), Tensor(XOR_Y)
    for _ in range(400):
        opt.zero_grad()
        F.mse_loss(model(x).reshape(-1), y).backward()
        opt.step()
    np.testing.assert_allclose(model.weight.data, [[0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(model.bias.data, [0.5], atol=1e-6)


# -------------------------------------------------------------- output units (002, 004)
def test_softmax_subtracts_the_max_so_huge_logits_do_not_overflow():
    # 004: softmax(z) = softmax(z - max z) = softmax(z + c); log softmax(z)_i = z_i - log sum_j exp(z_j).
    z = np.array([1000.0, 1001.0, 1002.0], np.float32)  # exp(1000) overflows float32
    small = np.array([0.0, 1.0, 2.0])
    expected = np.exp(small) / np.exp(small).sum()
    np.testing.assert_allclose(F.softmax(Tensor(z), dim=0).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(F.log_softmax(Tensor(z), dim=0).numpy(), small - np.log(np.exp(small).sum()),
                               rtol=1e-6)
    loss = F.cross_entropy(Tensor(z[None]), np.array([0]))
    assert float(loss.item()) == pytest.approx(-math.log(expected[0]), rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bernoulli_output_loss_is_softplus_of_1_minus_2y_times_z(dtype):
    # 004: -log P(y | x) = -log sigmoid((2y - 1) z) = softplus((1 - 2y) z), finite for any finite z.
    z = np.array([-500.0, -30.0, -2.0, 0.0, 2.0, 30.0, 500.0], dtype)
    for label in (0.0, 1.0):
        y = np.full_like(z, label)
        loss = F.binary_cross_entropy_with_logits(Tensor(z), y, reduction="none").numpy()
        expected = np.logaddexp(0.0, (1 - 2 * label) * z.astype(np.float64))  # softplus, computed stably
        np.testing.assert_allclose(loss, expected, rtol=1e-6, atol=1e-6)


def test_cross_entropy_gradient_on_a_sigmoid_output_is_a_minus_y():
    # 002: with l = -(y log a + (1 - y) log(1 - a)), a = sigmoid(z): dl/dz = a - y (no saturation), while the
    # squared loss (a - y)^2 gives 2 (a - y) sigmoid'(z), which vanishes once the unit saturates.
    z = leaf([-5.0, -1.0, 0.5, 4.0])  # the note's saturated case: x = -1, w = 5, b = 0 gives z = -5
    y = np.array([1.0, 0.0, 1.0, 0.0])
    F.binary_cross_entropy_with_logits(z, y, reduction="sum").backward()
    a = 1 / (1 + np.exp(-z.numpy()))
    np.testing.assert_allclose(z.grad, a - y, rtol=1e-12)
    z2 = leaf(z.numpy())
    ((F.sigmoid(z2) - Tensor(y)) ** 2).sum().backward()
    np.testing.assert_allclose(z2.grad, 2 * (a - y) * a * (1 - a), rtol=1e-12)
    assert abs(z2.grad[0]) < 0.02 < abs(z.grad[0])  # saturated at z = -5 with y = 1


# ------------------------------------------------------------- hidden units (004, 001)
def test_tanh_is_a_rescaled_sigmoid():
    z = np.linspace(-6, 6, 25)  # 004: tanh(z) = 2 sigmoid(2z) - 1
    np.testing.assert_allclose(F.tanh(Tensor(z)).numpy(), 2 * F.sigmoid(Tensor(2 * z)).numpy() - 1, atol=1e-15)


def test_rectifier_variants_max_0_z_plus_alpha_min_0_z():
    # 004: g(z, a) = max(0, z) + a min(0, z): a = 0 ReLU, a small and fixed leaky ReLU, learned PReLU (001),
    # and absolute value rectification g(z) = |z| (002). (004 writes a = 1 for the absolute value; it is a = -1:
    # with a = 1, g is the identity.)
    z = np.array([[-2.0, -0.5, 0.0, 1.5]])
    for a, module in ((0.0, nn.ReLU()), (0.01, nn.LeakyReLU(0.01)), (0.25, nn.PReLU(dtype=np.float64)),
                      (-1.0, nn.PReLU(init=-1.0, dtype=np.float64))):
        np.testing.assert_allclose(module(Tensor(z)).numpy(), np.maximum(0, z) + a * np.minimum(0, z))
    np.testing.assert_array_equal(nn.PReLU(init=-1.0, dtype=np.float64)(Tensor(z)).numpy(), np.abs(z))


def test_prelu_learns_its_slope_from_the_negative_inputs():
    prelu = nn.PReLU(dtype=np.float64)
    z = leaf([[-2.0, 3.0, -0.5]])
    (prelu(z) * Tensor(np.array([[1.0, 1.0, 4.0]]))).sum().backward()
    np.testing.assert_allclose(prelu.weight.grad, [-2.0 * 1 + -0.5 * 4])  # d/da of a min(0, z)
    np.testing.assert_allclose(z.grad, [[0.25, 1.0, 0.25 * 4]])


def test_maxout_propagates_the_maximum_of_each_group():
    # 004: split z into groups, g_i(z) = max_{j in group i} z_j; the gradient reaches the maximum only.
    z = leaf([[1.0, 3.0, 5.0, 2.0, -1.0, -4.0]])
    out = nn.Maxout(pool_size=2)(z)
    np.testing.assert_array_equal(out.numpy(), [[3.0, 5.0, -1.0]])
    (out * Tensor(np.array([[10.0, 20.0, 30.0]]))).sum().backward()
    np.testing.assert_array_equal(z.grad, [[0, 10, 20, 0, 30, 0]])


# ------------------------------------------------------------------ regularizers (000, 001, 002)
def test_label_smoothing_is_the_notes_formula():
    # 000: J = -1/N sum_i [(1 - a) log p(y_i | x_i) + a/K sum_y log p(y | x_i)].
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((5, 4))
    y = np.array([0, 3, 1, 1, 2])
    a = 0.2
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -np.mean((1 - a) * logp[np.arange(5), y] + a / 4 * logp.sum(axis=1))
    got = F.cross_entropy(Tensor(logits), y, label_smoothing=a)
    assert float(got.item()) == pytest.approx(expected, rel=1e-12)
    # ... which is the cross-entropy against the smoothed target (1 - a) onehot + a uniform
    target = (1 - a) * np.eye(4)[y] + a / 4
    assert float(got.item()) == pytest.approx(-np.mean((target * logp).sum(axis=1)), rel=1e-12)


def test_layer_norm_is_the_notes_formula():
    # 000: LayerNorm_i(h) = (h_i - mean(h)) / sqrt(var(h) + eps), var with 1/H (not 1/(H - 1)).
    h = np.array([[1.0, 2.0, 4.0, 9.0], [-3.0, 0.0, 0.0, 3.0]])
    eps = 1e-5
    mu = h.mean(axis=1, keepdims=True)
    var = ((h - mu) ** 2).mean(axis=1, keepdims=True)
    expected = (h - mu) / np.sqrt(var + eps)
    np.testing.assert_allclose(nn.LayerNorm(4, eps=eps, dtype=np.float64)(Tensor(h)).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(expected.mean(axis=1), 0, atol=1e-12)  # standardized: zero mean, unit variance
    np.testing.assert_allclose(expected.var(axis=1), 1, rtol=1e-4)


def test_inverted_dropout_scales_by_1_over_1_minus_p_and_reuses_its_mask_in_backward():
    # 000: Drop_p keeps each element with probability 1 - p and divides it by 1 - p; backward applies the
    # same (saved) mask to the incoming gradient. At test time: no dropping, no rescaling.
    p = 0.3
    drop = nn.Dropout(p, generator=np.random.default_rng(5))
    u = leaf(np.ones((4, 50)))
    out = drop(u)
    kept = out.numpy() != 0
    assert 0 < kept.mean() < 1
    np.testing.assert_allclose(out.numpy()[kept], 1 / 0.7)
    z = np.random.default_rng(1).standard_normal((4, 50))
    out.backward(Tensor(z))
    np.testing.assert_allclose(u.grad, np.where(kept, z / 0.7, 0.0))  # Drop^mask(z): the same mask
    drop.eval()
    np.testing.assert_array_equal(drop(u).numpy(), u.numpy())


def test_batch_norm_normalizes_with_batch_statistics_in_training_and_running_ones_in_eval():
    # 001: standardize each unit over the minibatch (differentiable); at test time a fixed affine map.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 3)) * 4 + 1
    bn = nn.BatchNorm1d(3, momentum=1.0, dtype=np.float64)  # momentum 1: the running stats are this batch's
    out = bn(Tensor(x)).numpy()
    np.testing.assert_allclose(out, (x - x.mean(0)) / np.sqrt(x.var(0) + bn.eps), rtol=1e-12)
    bn.eval()
    x2 = rng.standard_normal((2, 3))
    unbiased = x.var(0, ddof=1)  # the running variance is the unbiased estimate, as PyTorch
    np.testing.assert_allclose(bn(Tensor(x2)).numpy(), (x2 - x.mean(0)) / np.sqrt(unbiased + bn.eps), rtol=1e-12)


def test_l2_regularization_leaves_the_biases_alone():
    # 001, 002: penalize the (unrolled) weight matrices, not the intercepts.
    model = nn.Sequential(nn.Linear(3, 4, dtype=np.float64), nn.ReLU(), nn.Linear(4, 2, dtype=np.float64))
    weights, biases = optim.split_decay_parameters(model)
    assert [p.ndim for p in weights] == [2, 2] and [p.ndim for p in biases] == [1, 1]
    before = [p.data.copy() for p in model.parameters()]
    opt = optim.SGD(optim.param_groups_no_decay(model, weight_decay=0.5), lr=0.1)
    for p in model.parameters():
        p.grad = np.zeros_like(p.data)  # only the penalty moves the parameters
    opt.step()
    for p, old in zip(model.parameters(), before):
        np.testing.assert_allclose(p.data, old * (1 - 0.1 * 0.5) if p.ndim == 2 else old)
    # weight_decay = lam is the gradient of (lam / 2) sum W^2
    w = model[0].weight
    w.grad = None
    (0.25 * optim.l2_penalty([w])).backward()
    np.testing.assert_allclose(w.grad, 0.5 * w.data)


def test_identical_initialization_keeps_the_hidden_units_identical():
    # 001: zero initialization is a very bad choice: units that start out equal get equal gradients, so they
    # remain identical. (All zeros through tanh moves nothing but the output bias; a nonzero constant shows
    # the weights moving while the units stay copies of each other.)
    hidden, out = nn.Linear(3, 4, dtype=np.float64), nn.Linear(4, 2, dtype=np.float64)
    for p in (*hidden.parameters(), *out.parameters()):
        nn.init.constant_(p, 0.1)
    net = nn.Sequential(hidden, nn.Tanh(), out)
    opt = optim.SGD(net.parameters(), lr=0.5)
    rng = np.random.default_rng(3)
    x, y = Tensor(rng.standard_normal((16, 3))), rng.integers(0, 2, 16)
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    w = hidden.weight.data
    assert not np.allclose(w, 0.1)  # trained ...
    np.testing.assert_allclose(w, np.broadcast_to(w[:1], w.shape), rtol=1e-12)  # ... yet every unit the same
    np.testing.assert_allclose(hidden.bias.data, hidden.bias.data[0], rtol=1e-12)
    np.testing.assert_allclose(out.weight.data, out.weight.data[:, :1] * np.ones((1, 4)), rtol=1e-12)


# ---------------------------------------------------------------- optimizers (000, 001)
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


# ------------------------------------------------------------------- initialization (000, 001, 002)
@pytest.mark.parametrize("init_fn, variance", [
    # 000 Kaiming: N(0, 2/n) for n inputs; 000 "Xavier": N(0, 1/n) (that is LeCun's; gain 1, no fan-out)
    (lambda w, g: nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g), lambda fi, fo: 2 / fi),
    (lambda w, g: nn.init.kaiming_normal_(w, nonlinearity="linear", generator=g), lambda fi, fo: 1 / fi),
    # Glorot's normal scheme (PyTorch's xavier_normal_): 2 / (n_in + n_out). (001 writes 1 / (d_in + d_out),
    # which is this with gain 1/sqrt(2).)
    (lambda w, g: nn.init.xavier_normal_(w, generator=g), lambda fi, fo: 2 / (fi + fo)),
    (lambda w, g: nn.init.xavier_normal_(w, gain=1 / math.sqrt(2), generator=g), lambda fi, fo: 1 / (fi + fo)),
])
def test_initialization_variances(init_fn, variance):
    fan_out, fan_in = 400, 250
    w = nn.Parameter(np.empty((fan_out, fan_in)))  # Linear's weight: (out, in)
    init_fn(w, np.random.default_rng(6))
    assert abs(w.data.mean()) < 0.02 * math.sqrt(variance(fan_in, fan_out))
    assert w.data.var() == pytest.approx(variance(fan_in, fan_out), rel=0.02)  # 1e5 draws: ~0.5% noise


def test_linear_default_init_is_uniform_within_1_over_sqrt_fan_in():
    # 002: for a sigmoid unit with D inputs, w_i uniform in [-1/sqrt(D), 1/sqrt(D)].
    layer = nn.Linear(64, 500, dtype=np.float64, generator=np.random.default_rng(7))
    bound = 1 / math.sqrt(64)
    for p in (layer.weight.data, layer.bias.data):
        assert np.abs(p).max() <= bound and np.abs(p).max() > 0.95 * bound


# --------------------------------------------------------- backprop layer by layer (002, 003)
def test_deltas_layer_by_layer_match_the_engine():
    # 003: delta^L = sigma'(z^L) (.) grad_y C; delta^l = sigma'(z^l) (.) (W^{l+1})^T delta^{l+1};
    # dC/dw_ij^l = delta_i^l a_j^{l-1}, dC/db^l = delta^l. (002 writes the same with row vectors.)
    rng = np.random.default_rng(8)
    sizes = [4, 5, 3, 2]
    layers = [nn.Linear(a, b, dtype=np.float64, generator=rng) for a, b in zip(sizes[:-1], sizes[1:])]
    x, target = rng.standard_normal(4), rng.standard_normal(2)
    a = Tensor(x)
    for layer in layers:
        a = F.sigmoid(layer(a))
    ((a - Tensor(target)) ** 2).sum().backward()  # C = ||y - yhat||^2
    # the same by hand
    acts, zs = [x], []
    for layer in layers:
        zs.append(layer.weight.data @ acts[-1] + layer.bias.data)
        acts.append(1 / (1 + np.exp(-zs[-1])))
    dsig = [s * (1 - s) for s in acts[1:]]
    delta = dsig[-1] * 2 * (acts[-1] - target)
    for l in range(len(layers) - 1, -1, -1):
        np.testing.assert_allclose(layers[l].weight.grad, np.outer(delta, acts[l]), rtol=1e-12)
        np.testing.assert_allclose(layers[l].bias.grad, delta, rtol=1e-12)
        if l:
            delta = dsig[l - 1] * (layers[l].weight.data.T @ delta)


def test_single_sigmoid_neuron_with_squared_error():
    # 003: f = sigmoid(w1 x1 + w2 x2 + b), C = (f - yhat)^2: dC/dw1 = 2 (f - yhat) (1 - f) f x1, dC/db likewise.
    w, b = leaf([0.3, -0.7]), leaf(0.1)
    x, yhat = np.array([2.0, 1.5]), 1.0
    f = F.sigmoid((w * Tensor(x)).sum() + b)
    ((f - yhat) ** 2).backward()
    s = float(f.item())
    common = 2 * (s - yhat) * (1 - s) * s
    np.testing.assert_allclose(w.grad, common * x, rtol=1e-12)
    assert float(b.grad) == pytest.approx(common, rel=1e-12)


def test_a_16x16_image_is_a_256_dimensional_input():
    # 003: each pixel of a 16 x 16 digit is one of 256 input elements (1 for ink), 10 outputs; the MLP
    # flattens an image batch itself.
    from distnn.models.mlp import MLP

    model = MLP(sizes=[256, 32, 10], generator=np.random.default_rng(9))
    images = (np.random.default_rng(10).random((3, 16, 16)) > 0.7).astype(np.float32)
    out = model(Tensor(images))
    assert tuple(out.shape) == (3, 10)
    np.testing.assert_array_equal(out.numpy(), model(Tensor(images.reshape(3, 256))).numpy())


def test_a_bag_of_words_vector_times_a_weight_matrix_sums_the_words_embeddings():
    # 003: a word is a one-hot vector over the vocabulary (3 classes: positive, negative, neutral); a linear
    # layer on it picks the word's column, so on a bag of words it sums the words' columns: an Embedding
    # lookup of the same weights is the same computation, with gradients only for the words present.
    vocab, dim = 7, 3
    emb = nn.Embedding(vocab, dim, dtype=np.float64, generator=np.random.default_rng(15))
    lin = nn.Linear(vocab, dim, bias=False, dtype=np.float64)
    lin.weight.data[...] = emb.weight.data.T
    words = np.array([1, 4, 4, 6])  # "love" ... with a repeat
    bag = np.bincount(words, minlength=vocab).astype(np.float64)
    by_lookup = emb(Tensor(words)).sum(axis=0)
    by_matmul = lin(Tensor(bag))
    np.testing.assert_allclose(by_lookup.numpy(), by_matmul.numpy(), rtol=1e-12)
    by_lookup.sum().backward()
    by_matmul.sum().backward()
    np.testing.assert_allclose(emb.weight.grad, lin.weight.grad.T, rtol=1e-12)
    assert not emb.weight.grad[[0, 2, 3, 5]].any()
    classifier = nn.Linear(dim, 3, dtype=np.float64, generator=np.random.default_rng(16))
    assert tuple(classifier(by_lookup).shape) == (3,)


# ---------------------------------------------------------- adversarial examples (002)
def test_fast_gradient_sign_example_increases_the_loss():
    # 002: x + eps sign(grad_x J(theta, x, y)); the input gradient comes from the same backward pass.
    rng = np.random.default_rng(11)
    model = nn.Sequential(nn.Linear(8, 16, dtype=np.float64, generator=rng), nn.ReLU(),
                          nn.Linear(16, 3, dtype=np.float64, generator=rng))
    x = Tensor(rng.standard_normal((5, 8)), requires_grad=True)
    y = rng.integers(0, 3, 5)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    assert x.grad is not None and x.grad.shape == (5, 8)
    x_adv = x.numpy() + 0.1 * np.sign(x.grad)
    with distnn.no_grad():
        adv_loss = F.cross_entropy(model(Tensor(x_adv)), y)
    assert float(adv_loss.item()) > float(loss.item())


# --------------------------------------------------------------- RNNs (002)
def test_truncated_bptt_cuts_the_gradient_at_the_detached_state():
    # 002: break the dependencies after a fixed number of steps: the second chunk starts from h.detach(),
    # so its loss sends no gradient into the first chunk's inputs, but the forward values are unchanged.
    rng = np.random.default_rng(12)
    rnn = nn.RNN(3, 4, dtype=np.float64, generator=rng)
    seq = rng.standard_normal((6, 2, 3))  # (T, N, I)
    full, _ = rnn(Tensor(seq))
    first_x = Tensor(seq[:3], requires_grad=True)
    out1, h1 = rnn(first_x)
    out2, _ = rnn(Tensor(seq[3:]), h1.detach())
    np.testing.assert_allclose(np.concatenate([out1.numpy(), out2.numpy()]), full.numpy(), rtol=1e-12)
    out2.sum().backward()
    assert first_x.grad is None or not np.any(first_x.grad)
    first_x2 = Tensor(seq[:3], requires_grad=True)
    out1, h1 = rnn(first_x2)
    out2, _ = rnn(Tensor(seq[3:]), h1)  # untruncated: the gradient flows back through time
    out2.sum().backward()
    assert np.any(first_x2.grad)


# --------------------------------------------------------------- attention (002)
def test_attention_is_softmax_of_scaled_dot_products_times_values():
    # 002: Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V; with identity projections MultiheadAttention
    # (one head) is exactly that.
    d = 4
    mha = nn.MultiheadAttention(d, 1, batch_first=True, dtype=np.float64)
    mha.in_proj_weight.data[...] = np.concatenate([np.eye(d)] * 3)
    mha.in_proj_bias.data[...] = 0
    mha.out_proj.weight.data[...] = np.eye(d)
    mha.out_proj.bias.data[...] = 0
    rng = np.random.default_rng(13)
    q, k, v = rng.standard_normal((1, 3, d)), rng.standard_normal((1, 5, d)), rng.standard_normal((1, 5, d))
    s = q[0] @ k[0].T / math.sqrt(d)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    for need_weights in (True, False):
        out, weights = mha(Tensor(q), Tensor(k), Tensor(v), need_weights=need_weights)
        np.testing.assert_allclose(out.numpy()[0], p @ v[0], rtol=1e-12)
        if need_weights:
            np.testing.assert_allclose(weights.numpy()[0], p, rtol=1e-12)


# ------------------------------------------------------------------ ensembles (000)
def test_an_ensemble_averages_predicted_probabilities_not_weights():
    # 000: output of network t is p_t; use (1/T) sum_t p_t. Averaging the weights is a different (bad) model.
    from distnn.train.ensemble import EnsembleModel

    rng = np.random.default_rng(14)
    members = [nn.Sequential(nn.Linear(3, 6, dtype=np.float64, generator=rng), nn.Tanh(),
                             nn.Linear(6, 4, dtype=np.float64, generator=rng)) for _ in range(3)]
    x = Tensor(rng.standard_normal((5, 3)))
    probs = [F.softmax(m(x), dim=1).numpy() for m in members]
    ensemble = EnsembleModel(members)
    np.testing.assert_allclose(F.softmax(ensemble(x), dim=1).numpy(), np.mean(probs, axis=0), rtol=1e-12)
    averaged = nn.Sequential(nn.Linear(3, 6, dtype=np.float64), nn.Tanh(), nn.Linear(6, 4, dtype=np.float64))
    for name, p in averaged.named_parameters():
        p.data[...] = np.mean([dict(m.named_parameters())[name].data for m in members], axis=0)
    assert not np.allclose(F.softmax(averaged(x), dim=1).numpy(), np.mean(probs, axis=0), atol=1e-3)
