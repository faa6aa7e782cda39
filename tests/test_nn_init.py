"""Initializers: PyTorch's formulas and gains, explicit generators, layers' default initialization."""
import math

import numpy as np
import pytest

import distnn
from distnn import nn
from distnn.nn import init


def param(*shape, dtype=np.float32):
    return nn.Parameter(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize("name,arg", [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                                      ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2), ("selu", None)])
def test_calculate_gain_matches_torch(torch, name, arg):
    assert init.calculate_gain(name, arg) == pytest.approx(torch.nn.init.calculate_gain(name, arg))


def test_calculate_gain_rejects_unknown():
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


@pytest.mark.parametrize("shape", [(30, 20), (8, 4, 3, 3), (16, 3, 5)])
def test_fans_match_torch(torch, shape):
    assert init._calculate_fan_in_and_fan_out(param(*shape)) == \
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_fans_need_two_dims():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(param(5))


def _bound_and_std(kind, shape, **kw):
    fan_in = shape[1] * int(np.prod(shape[2:]))
    fan_out = shape[0] * int(np.prod(shape[2:]))
    if kind == "xavier_uniform_":
        a = kw.get("gain", 1) * math.sqrt(6 / (fan_in + fan_out))
        return a, a / math.sqrt(3)
    if kind == "xavier_normal_":
        return None, kw.get("gain", 1) * math.sqrt(2 / (fan_in + fan_out))
    fan = fan_in if kw.get("mode", "fan_in") == "fan_in" else fan_out
    gain = init.calculate_gain(kw.get("nonlinearity", "leaky_relu"), kw.get("a", 0))
    if kind == "kaiming_uniform_":
        b = gain * math.sqrt(3 / fan)
        return b, b / math.sqrt(3)
    return None, gain / math.sqrt(fan)


@pytest.mark.parametrize("kind,kw", [
    ("xavier_uniform_", {}), ("xavier_uniform_", dict(gain=2.0)), ("xavier_normal_", {}),
    ("kaiming_uniform_", {}), ("kaiming_uniform_", dict(a=math.sqrt(5))),
    ("kaiming_uniform_", dict(mode="fan_out", nonlinearity="relu")),
    ("kaiming_normal_", dict(nonlinearity="relu")), ("kaiming_normal_", dict(mode="fan_out", a=0.1)),
])
def test_distribution_statistics(kind, kw):
    shape = (64, 32, 3, 3)
    p = getattr(init, kind)(param(*shape), generator=np.random.default_rng(0), **kw)
    bound, std = _bound_and_std(kind, shape, **kw)
    w = p.data
    assert abs(w.std() - std) < 0.03 * std
    assert abs(w.mean()) < 0.03 * std
    if bound is not None:
        assert np.abs(w).max() <= bound * (1 + 1e-6)
        assert np.abs(w).max() > 0.99 * bound


def test_same_as_torch_formula_spread(torch):
    # torch and distnn draw different numbers, but the same distribution: compare spreads on a big tensor.
    t = torch.empty(256, 128)
    torch.manual_seed(0)
    torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5))
    d = init.kaiming_uniform_(param(256, 128), a=math.sqrt(5), generator=np.random.default_rng(0))
    assert abs(float(t.abs().max()) - float(np.abs(d.data).max())) < 1e-3
    assert abs(float(t.std()) - float(d.data.std())) < 2e-3


def test_generator_makes_runs_reproducible():
    a = init.normal_(param(5, 5), generator=np.random.default_rng(42))
    b = init.normal_(param(5, 5), generator=np.random.default_rng(42))
    np.testing.assert_array_equal(a.data, b.data)
    distnn.random.manual_seed(3)
    c = init.uniform_(param(5, 5))
    distnn.random.manual_seed(3)
    d = init.uniform_(param(5, 5))
    np.testing.assert_array_equal(c.data, d.data)
    assert not np.array_equal(a.data, init.normal_(param(5, 5), generator=np.random.default_rng(43)).data)


def test_constant_zeros_ones_uniform_normal():
    p = param(3, 4)
    assert (init.constant_(p, 2.5).data == 2.5).all()
    assert (init.zeros_(p).data == 0).all()
    assert (init.ones_(p).data == 1).all()
    u = init.uniform_(param(1000), -2, 3, generator=np.random.default_rng(1)).data
    assert u.min() >= -2 and u.max() < 3 and abs(u.mean() - 0.5) < 0.15
    n = init.normal_(param(4000), 1.0, 2.0, generator=np.random.default_rng(1)).data
    assert abs(n.mean() - 1.0) < 0.1 and abs(n.std() - 2.0) < 0.1
    assert p.dtype == np.float32


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 2, 3)])
def test_orthogonal(shape):
    p = init.orthogonal_(param(*shape, dtype=np.float64), gain=2.0, generator=np.random.default_rng(0))
    m = p.data.reshape(shape[0], -1)
    rows, cols = m.shape
    gram = m @ m.T if rows <= cols else m.T @ m
    np.testing.assert_allclose(gram, 4.0 * np.eye(min(rows, cols)), atol=1e-10)


def test_default_layer_init_matches_torch_ranges(torch):
    lin = nn.Linear(50, 30, generator=np.random.default_rng(0))
    bound = 1 / math.sqrt(50)
    for p in (lin.weight, lin.bias):
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.9 * bound
    conv = nn.Conv2d(6, 16, 5, generator=np.random.default_rng(0))
    bound = 1 / math.sqrt(6 * 25)
    for p in (conv.weight, conv.bias):
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.9 * bound
    t = torch.nn.Conv2d(6, 16, 5)
    assert float(t.weight.detach().abs().max()) <= bound
    # weights and biases keep PyTorch's shapes
    assert conv.weight.shape == tuple(t.weight.shape) and conv.bias.shape == tuple(t.bias.shape)
    assert nn.PReLU(4).weight.data.tolist() == [0.25] * 4
    bn = nn.BatchNorm2d(3)
    assert bn.weight.data.tolist() == [1, 1, 1] and bn.bias.data.tolist() == [0, 0, 0]


def test_layers_share_default_generator_deterministically():
    distnn.random.manual_seed(11)
    a = nn.Linear(4, 3)
    distnn.random.manual_seed(11)
    b = nn.Linear(4, 3)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
