"""The lecture notes' (/work/shared/seeds) worked examples as tests, part 2: regularization (label smoothing,
layer and batch norm, inverted dropout, L2 leaving biases alone), identical initialization, initialization
variances."""
import math

import numpy as np
import pytest

import distnn.functional as F
from distnn import Tensor, nn, optim

from seeds_cases import leaf


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
