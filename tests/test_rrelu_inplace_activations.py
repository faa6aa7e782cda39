"""nn.RReLU / F.rrelu and the in-place F.relu_, elu_, leaky_relu_, hardtanh_, selu_, celu_, threshold_, rrelu_
against PyTorch 2.13.

RReLU's training slopes are random: the oracle reads PyTorch's slopes off its output (out / x where x < 0)
and hands them to distnn through a generator whose ``unit_uniform`` returns them, so outputs and input
gradients (g times the drawn slope) match to float64 rounding. Evaluation (the fixed slope) is compared
directly, kinks and ties included.
"""
from __future__ import annotations

import numpy as np
import pytest

from layer_fuzz_harness import G, run_cases, torch  # noqa: F401  (torch: importorskip'd there)

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

TF = torch.nn.functional


class Replay:
    """A generator that hands distnn PyTorch's slopes as the uniforms they came from."""

    def __init__(self, lower, upper):
        self.lower, self.upper, self.u = lower, upper, None

    def set_slopes(self, x, out):
        slope = np.where(x < 0, out / np.where(x < 0, x, 1.0), self.lower)
        width = self.upper - self.lower
        self.u = (slope - self.lower) / width if width else np.zeros_like(slope)

    def unit_uniform(self, shape, batch_dim=None):
        assert self.u is not None and self.u.shape == tuple(shape), "distnn drew slopes PyTorch did not"
        return self.u


def _rrelu_case(c):
    shape = c.draw(shape=tuple(c.dim(4) for _ in range(c.int(0, 4))))
    training = c.draw(training=c.coin(0.7))
    x = c.normal(*shape, ties=not training) * c.pick(1.0, 10.0)  # (training: no exact zeros, see Replay)
    lower = c.draw(lower=c.pick(1 / 8, 0.0, 0.3, -0.5))
    upper = c.draw(upper=lower + c.pick(1 / 3 - 1 / 8, 0.0, 0.5, 2.0))
    # (in place with a negative slope: PyTorch's backward refuses, it cannot tell the input from the result;
    # distnn keeps its own slopes and backpropagates, as its leaky_relu(inplace=True) does)
    inplace = c.draw(inplace=lower >= 0 and c.coin(0.3))
    replay = Replay(lower, upper)
    if c.draw(module=c.coin()):
        dm = dnn.RReLU(lower, upper, inplace, generator=replay).train(training)
        tm = torch.nn.RReLU(lower, upper, inplace).train(training)
        fd, ft0 = dm, tm
    elif inplace and c.coin():
        fd = lambda a: DF.rrelu_(a, lower, upper, training, generator=replay)  # noqa: E731
        ft0 = lambda a: TF.rrelu_(a, lower, upper, training)  # noqa: E731
    else:
        fd = lambda a: DF.rrelu(a, lower, upper, training, inplace, generator=replay)  # noqa: E731
        ft0 = lambda a: TF.rrelu(a, lower, upper, training, inplace)  # noqa: E731

    def ft(a):
        before = a.detach().numpy().copy()
        out = ft0(a * 1.0 if inplace else a)
        replay.set_slopes(before, out.detach().numpy())
        return out

    return c.run(lambda a: fd(a * 1.0 if inplace else a), ft, [G(x)])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_rrelu_fuzz_matches_pytorch_with_its_slopes():
    run_cases("RReLU", _rrelu_case)


@pytest.mark.parametrize("training", [True, False])
def test_rrelu_float32_matches_pytorch(training):
    x = np.array([[-6.0, -3.0, -1.0, -0.5, 0.25, 0.5, 1.0, 3.0, 6.0, -2.2]], dtype=np.float32)
    t = torch.tensor(x.copy(), requires_grad=True)
    yt = torch.nn.RReLU(0.1, 0.4).train(training)(t)
    replay = Replay(0.1, 0.4)
    replay.set_slopes(x.astype(np.float64), yt.detach().numpy().astype(np.float64))
    d = distnn.tensor(x.copy(), requires_grad=True)
    yd = dnn.RReLU(0.1, 0.4, generator=replay).train(training)(d)
    assert yd.dtype == np.float32
    np.testing.assert_allclose(yd.numpy(), yt.detach().numpy(), rtol=1e-6, atol=1e-7)
    yd.sum().backward()
    yt.sum().backward()
    np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_rrelu_training_slopes_are_uniform_per_element_and_used_by_the_gradient():
    lower, upper = 0.1, 0.6
    x = distnn.tensor(-np.ones((400, 250)), requires_grad=True)
    y = DF.rrelu(x, lower, upper, training=True, generator=np.random.default_rng(0))
    slopes = -y.numpy()
    assert slopes.min() >= lower and slopes.max() <= upper
    assert abs(slopes.mean() - (lower + upper) / 2) < 5 * (upper - lower) / np.sqrt(12 * slopes.size)
    assert abs(slopes.var() - (upper - lower) ** 2 / 12) < 0.01 * (upper - lower) ** 2
    assert len(np.unique(slopes)) > 0.99 * slopes.size  # one per element
    (y * 3.0).sum().backward()
    np.testing.assert_array_equal(x.grad, 3.0 * slopes)  # d(x * a)/dx = a, the drawn slope
    pos = distnn.tensor(np.full((3, 4), 2.0))
    assert np.all(DF.rrelu(pos, training=True).numpy() == 2.0)
    # x = 0 is on the negative side (PyTorch's x <= 0): output 0, gradient its drawn slope, not 1
    for lib in (distnn, torch):
        z = lib.tensor(np.zeros(50), requires_grad=True)
        out = (DF if lib is distnn else TF).rrelu(z, lower, upper, training=True)
        out.sum().backward()
        grad = np.asarray(z.grad) if lib is distnn else z.grad.numpy()
        assert np.all(np.asarray(out.detach().numpy()) == 0) and np.all((grad >= lower) & (grad <= upper))
    # evaluation: leaky ReLU with (lower + upper) / 2, the module's default mode after .eval()
    m = dnn.RReLU(lower, upper).eval()
    np.testing.assert_allclose(m(distnn.tensor(np.array([-2.0, 0.0, 3.0]))).numpy(), [-0.7, 0.0, 3.0])
    assert DF.rrelu(distnn.tensor(np.array([-2.0]))).numpy()[0] == -2.0 * (1 / 8 + 1 / 3) / 2  # training=False


def test_rrelu_gradient_checks_with_fixed_slopes():
    rng = np.random.default_rng(1)
    x = rng.uniform(0.1, 2.0, (3, 5)) * rng.choice([-1.0, 1.0], (3, 5))  # away from the kink
    replay = Replay(0.2, 0.5)
    replay.u = rng.random((3, 5))
    check_grad(lambda t: DF.rrelu(t, 0.2, 0.5, True, generator=replay), x)
    check_grad(lambda t: DF.rrelu(t, 0.2, 0.5, False), x)


def test_rrelu_refusals_and_repr_match_pytorch():
    for lib, f in ((distnn, DF.rrelu), (torch, TF.rrelu)):
        for training in (True, False):
            with pytest.raises(RuntimeError, match="Lower bound should be less than or equal to the upper bound"):
                f(lib.tensor([1.0, -2.0]), 0.5, 0.2, training)
        with pytest.raises(NotImplementedError, match="not implemented for"):
            f(lib.tensor([1, -2]), training=True)
    for args in ((), (0.1, 0.3), (0.1, 0.3, True)):
        assert repr(dnn.RReLU(*args)) == repr(torch.nn.RReLU(*args))
    assert repr(dnn.RReLU(batch_dim=1)) == "RReLU(lower=0.125, upper=0.3333333333333333, batch_dim=1)"


# ---------------------------------------------------------------- the in-place functional variants
INPLACE = {
    "relu_": {}, "elu_": {"alpha": 0.7}, "leaky_relu_": {"negative_slope": 0.2},
    "hardtanh_": {"min_val": -0.5, "max_val": 2.0}, "selu_": {}, "celu_": {"alpha": 1.5},
    "threshold_": {"threshold": 0.3, "value": -2.0}, "rrelu_": {"lower": 0.1, "upper": 0.3},  # (rrelu_: eval)
}


@pytest.mark.parametrize("name", sorted(INPLACE))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inplace_function_changes_its_input_and_backpropagates_as_pytorch(name, dtype):
    kw = INPLACE[name]
    x0 = np.array([[-3.0, -1.0, -0.5, 0.0, 0.3, 0.5, 2.0, 2.5], [1.5, -0.2, 0.7, -2.5, 0.1, 3.0, -1.2, 0.9]],
                  dtype=dtype)
    # outside the graph: the memory itself changes (a view of it sees it)
    x = distnn.tensor(x0.copy())
    row = x[0]
    assert getattr(DF, name)(x, **kw) is x
    tx = torch.tensor(x0.copy())
    getattr(TF, name)(tx, **kw)
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(x.numpy(), tx.numpy(), **tol)
    np.testing.assert_array_equal(row.numpy(), x.numpy()[0])
    # while recording, on a non-leaf: the tensor takes the op's node; gradients as PyTorch's
    a = distnn.tensor(x0.copy(), requires_grad=True)
    h = a * 2.0
    assert getattr(DF, name)(h, **kw) is h
    (h * h).sum().backward()
    ta = torch.tensor(x0.copy(), requires_grad=True)
    th = ta * 2.0
    getattr(TF, name)(th, **kw)
    (th * th).sum().backward()
    np.testing.assert_allclose(h.numpy(), th.detach().numpy(), **tol)
    np.testing.assert_allclose(a.grad, ta.grad.numpy(), **tol)


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_function_refuses_a_leaf_that_requires_grad_and_an_array_as_pytorch(name):
    kw = INPLACE[name]
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad is used in an in-place operation"):
        getattr(DF, name)(distnn.tensor(np.ones(3), requires_grad=True), **kw)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
        getattr(TF, name)(torch.ones(3, requires_grad=True), **kw)
    arr = np.array([-1.0, 2.0])
    with pytest.raises(TypeError, match=f"{name}\\(\\): argument 'input' \\(position 1\\) must be Tensor"):
        getattr(DF, name)(arr, **kw)
    with pytest.raises(TypeError, match=f"{name}\\(\\): argument 'input' \\(position 1\\) must be Tensor"):
        getattr(TF, name)(arr, **kw)
    assert arr.tolist() == [-1.0, 2.0]
    with distnn.no_grad():  # (under no_grad a leaf may be changed, as in PyTorch)
        leaf = distnn.tensor(np.array([-1.0, 2.0]), requires_grad=True)
        assert getattr(DF, name)(leaf, **kw) is leaf


def test_rrelu_inplace_in_training_uses_the_drawn_slopes_for_the_gradient():
    x0 = np.array([[-1.0, -2.0, 3.0], [-0.5, 0.5, -4.0]])
    a = distnn.tensor(x0.copy(), requires_grad=True)
    h = a * 1.0
    assert DF.rrelu_(h, 0.2, 0.7, True, generator=np.random.default_rng(3)) is h
    slopes = np.where(x0 < 0, h.numpy() / x0, 1.0)
    assert np.all((slopes[x0 < 0] >= 0.2) & (slopes[x0 < 0] <= 0.7))
    h.sum().backward()
    np.testing.assert_allclose(a.grad, slopes, rtol=1e-15)
