"""The lecture notes' (/work/shared/seeds) worked examples as tests, part 1: computational graphs and
backprop with numbers, XOR (the exact ReLU solution, the linear model), output units and their losses, hidden
units (tanh, rectifiers, PReLU, maxout)."""
import math

import numpy as np
import pytest

import distnn.functional as F
from distnn import Tensor, nn, optim

from seeds_cases import leaf


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
