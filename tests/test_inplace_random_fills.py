"""The in-place random fills (``uniform_``, ``normal_``, ``bernoulli_``, ``exponential_``, ``geometric_``,
``log_normal_``, ``cauchy_``, ``random_``): their distributions (moments, ranges, exact properties), reproducibility
from a ``generator=`` or distnn's default generator (``distnn.manual_seed``), torch's refusals, and autograd (a
recorded leaf refused, a zero gradient to the old value as torch's ``UniformBackward0``). They cannot match torch's
stream, only its distributions."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn import Tensor  # noqa: E402

N = 200_000


def _fill(method, *args, dtype=np.float64, **kwargs):
    t = Tensor(np.zeros(N, dtype=dtype))
    assert getattr(t, method)(*args, generator=np.random.default_rng(7), **kwargs) is t
    assert t.dtype == dtype
    return np.asarray(t.data, dtype=np.float64)


@pytest.mark.parametrize("method, args, mean, var", [
    ("uniform_", (-2.0, 3.0), 0.5, 25 / 12),
    ("normal_", (1.5, 0.5), 1.5, 0.25),
    ("exponential_", (4.0,), 0.25, 1 / 16),
    ("geometric_", (0.25,), 4.0, 0.75 / 0.25 ** 2),
    ("log_normal_", (0.1, 0.3), np.exp(0.1 + 0.045), (np.exp(0.09) - 1) * np.exp(0.2 + 0.09)),
    ("bernoulli_", (0.3,), 0.3, 0.21),
    ("random_", (3, 9), 5.5, (6 ** 2 - 1) / 12),
])
def test_fill_moments(method, args, mean, var):
    v = _fill(method, *args)
    assert abs(v.mean() - mean) < 5 * np.sqrt(var / N)
    assert abs(v.var() - var) < 0.05 * var


def test_ranges_and_exact_properties():
    u = _fill("uniform_", -2.0, 3.0)
    assert u.min() >= -2 and u.max() < 3
    g = _fill("geometric_", 0.5, dtype=np.int64)
    assert g.min() == 1 and (g == np.round(g)).all()
    r = _fill("random_", 3, 9, dtype=np.int32)
    assert set(np.unique(r)) == set(range(3, 9))
    assert set(np.unique(_fill("random_", 4))) == {0, 1, 2, 3}  # (random_(to): [0, to))
    assert set(np.unique(_fill("random_", dtype=bool))) == {0, 1}
    big = _fill("random_", dtype=np.float32)
    assert big.min() >= 0 and big.max() <= 2 ** 24 and big.max() > 2 ** 23  # (float32: what its mantissa holds)
    assert set(np.unique(_fill("bernoulli_", 0.5, dtype=bool))) == {0, 1}
    assert (_fill("exponential_") > 0).all() and (_fill("log_normal_") > 0).all()
    c = _fill("cauchy_", 2.0, 0.5)
    assert abs(np.median(c) - 2.0) < 0.02 and abs(np.percentile(c, 75) - 2.5) < 0.02  # (median, quartile)


def test_bernoulli_with_a_tensor_of_probabilities():
    p = np.array([0.0, 1.0, 0.25])
    t = Tensor(np.zeros((N // 10, 3), dtype=np.float32))
    t.bernoulli_(Tensor(p), generator=np.random.default_rng(1))
    v = np.asarray(t.data)
    assert (v[:, 0] == 0).all() and (v[:, 1] == 1).all() and abs(v[:, 2].mean() - 0.25) < 0.01


@pytest.mark.parametrize("method, args", [
    ("uniform_", ()), ("normal_", (0.0, 2.0)), ("bernoulli_", (0.4,)), ("exponential_", ()), ("geometric_", (0.3,)),
    ("log_normal_", ()), ("cauchy_", ()), ("random_", (0, 100)),
])
def test_generator_and_default_generator_reproduce(method, args):
    a, b = Tensor(np.zeros(50)), Tensor(np.zeros(50))
    getattr(a, method)(*args, generator=np.random.default_rng(3))
    getattr(b, method)(*args, generator=np.random.default_rng(3))
    np.testing.assert_array_equal(a.data, b.data)
    distnn.manual_seed(11)
    getattr(a, method)(*args)
    second = getattr(Tensor(np.zeros(50)), method)(*args)
    distnn.manual_seed(11)
    np.testing.assert_array_equal(getattr(b, method)(*args).data, a.data)
    assert not np.array_equal(second.data, a.data)  # (the stream moves on)


@pytest.mark.parametrize("call", [
    lambda t: t.uniform_(1.0, 0.0), lambda t: t.normal_(0.0, -1.0), lambda t: t.bernoulli_(1.5),
    lambda t: t.exponential_(-1.0), lambda t: t.geometric_(0.0), lambda t: t.geometric_(1.0),
    lambda t: t.random_(5, 5), lambda t: t.long().uniform_(), lambda t: t.long().normal_(),
    lambda t: t.long().exponential_(),
])
def test_bad_parameters_are_refused_as_torch(call):
    with pytest.raises((RuntimeError, NotImplementedError)):
        call(torch.zeros(3))
    with pytest.raises(RuntimeError):
        call(Tensor(np.zeros(3, dtype=np.float32)))


@pytest.mark.parametrize("method", ["uniform_", "normal_", "bernoulli_", "random_"])
def test_autograd_a_recorded_leaf_is_refused_and_the_old_value_gets_zero(method):
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        getattr(Tensor(np.zeros(3), requires_grad=True), method)()
    grads = []
    for lib in ("torch", "distnn"):
        x = torch.ones(3, dtype=torch.float64, requires_grad=True) if lib == "torch" else \
            Tensor(np.ones(3), requires_grad=True)
        y = x * 2
        getattr(y, method)()
        assert y.requires_grad
        (y * 3).sum().backward()
        grads.append(np.asarray(x.grad))
    np.testing.assert_array_equal(grads[1], grads[0])
    np.testing.assert_array_equal(grads[1], np.zeros(3))
    p = distnn.nn.Parameter(np.zeros(4))
    with distnn.no_grad():
        getattr(p, method)()
    assert p._version == 1 and p.is_leaf and p.requires_grad
