"""nn.AdaptiveLogSoftmaxWithLoss against PyTorch's (the oracle): PyTorch's weights copied into distnn's module,
then forward's (output, loss), log_prob, predict and the gradients of the input and every parameter compared,
float64 tight and float32 loose, over a seeded fuzz of sizes, cutoffs, div_value, head_bias and targets (all in
the shortlist, all in one cluster, clusters left empty). Also: parameter and state_dict names, repr, init,
reset_parameters, the unbatched form and refusals as PyTorch's.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn import nn as dnn  # noqa: E402
from distnn.testing import check_grad  # noqa: E402
from torch_twins import twin_models  # noqa: E402

FUZZ = 30
# (PyTorch warns when a tail's first Linear has no features: in_features // div_value ** (i + 1) == 0)
pytestmark = pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")


def _pair(args, kwargs, dtype=np.float64, seed=0):
    tm, dm = twin_models(lambda nn: nn.AdaptiveLogSoftmaxWithLoss(*args, **kwargs), seed, dtype)
    return dm, tm


def _compare(dm, tm, x, target, rtol, atol):
    xd, xt = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    od, ot = dm(xd, target), tm(xt, torch.from_numpy(np.asarray(target)))
    assert type(od).__name__ == "_ASMoutput" and od._fields == ("output", "loss")
    np.testing.assert_allclose(od.output.numpy(), ot.output.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(od.loss.numpy(), ot.loss.detach().numpy(), rtol=rtol, atol=atol)
    assert od.output.dtype == x.dtype and od.output.shape == tuple(ot.output.shape) and od.loss.shape == ()
    g = np.random.default_rng(1).standard_normal(tuple(ot.output.shape)).astype(x.dtype)
    ((od.output * distnn.tensor(g)).sum() + od.loss * 0.5).backward()
    ((ot.output * torch.from_numpy(g)).sum() + ot.loss * 0.5).backward()
    np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=rtol, atol=atol)
    tparams = dict(tm.named_parameters())
    for name, p in dm.named_parameters():
        tg = tparams[name].grad
        if tg is None:  # a tail no target reached: no gradient in either
            assert p.grad is None or not np.any(p.grad), name
            continue
        np.testing.assert_allclose(p.grad, tg.numpy(), rtol=rtol, atol=atol, err_msg=name)
    np.testing.assert_allclose(dm.log_prob(x).numpy(), tm.log_prob(torch.from_numpy(x)).detach().numpy(),
                               rtol=rtol, atol=atol)
    pd, pt = dm.predict(x).numpy(), tm.predict(torch.from_numpy(x)).numpy()
    assert pd.dtype == np.int64
    np.testing.assert_array_equal(pd, pt)


def _config(rng):
    n_classes = int(rng.integers(2, 40))
    k = int(rng.integers(1, min(n_classes - 1, 4) + 1))
    cutoffs = sorted(rng.choice(np.arange(1, n_classes), size=k, replace=False).tolist())
    in_features = int(rng.integers(1, 24))
    div = float(rng.choice([1.0, 2.0, 4.0, 1.5]))
    return (in_features, n_classes, cutoffs), dict(div_value=div, head_bias=bool(rng.random() < 0.5))


def _targets(rng, n, cutoffs, n_classes):
    kind = rng.integers(4)
    if kind == 0:  # all in the shortlist
        return rng.integers(0, cutoffs[0], n)
    if kind == 1:  # all in the last cluster
        return rng.integers(cutoffs[-1], n_classes, n)
    return rng.integers(0, n_classes, n)


@pytest.mark.parametrize("seed", range(FUZZ))
def test_fuzz_float64_matches_pytorch(seed):
    rng = np.random.default_rng([seed, 7])
    args, kwargs = _config(rng)
    dm, tm = _pair(args, kwargs, seed=seed)
    n = int(rng.integers(1, 12))
    x = rng.standard_normal((n, args[0])) * 2
    _compare(dm, tm, x, _targets(rng, n, args[2], args[1]), 1e-10, 1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_float32_matches_pytorch(seed):
    rng = np.random.default_rng([seed, 8])
    dm, tm = _pair((20, 50, [5, 17, 30]), dict(div_value=2.0, head_bias=seed % 2 == 0), np.float32, seed)
    x = rng.standard_normal((16, 20)).astype(np.float32)
    _compare(dm, tm, x, rng.integers(0, 50, 16), 1e-4, 1e-5)


def test_predict_takes_each_of_pytorchs_paths():
    """All rows' head argmax in the shortlist, none, and some: the same classes as PyTorch's."""
    dm, tm = _pair((6, 12, [3, 7]), dict(head_bias=True))
    x = np.random.default_rng(2).standard_normal((9, 6))
    for bias in ([9, 9, 9, -9, -9], [-9, -9, -9, 9, 9], [0, 0, 0, 0, 0]):
        with torch.no_grad():
            tm.head.bias.copy_(torch.tensor(bias, dtype=torch.float64))
        dm.head.bias.data[...] = bias
        pd, pt = dm.predict(x).numpy(), tm.predict(torch.from_numpy(x)).numpy()
        np.testing.assert_array_equal(pd, pt)
        np.testing.assert_array_equal(pd, dm.log_prob(x).numpy().argmax(1))
    assert (pd < 3).any() and (pd >= 3).any()


def test_unbatched_input_with_a_0d_target():
    dm, tm = _pair((5, 9, [2, 6]), {})
    x = np.random.default_rng(3).standard_normal(5)
    for t in (1, 4, 8):
        od, ot = dm(x, np.array(t)), tm(torch.from_numpy(x), torch.tensor(t))
        assert od.output.shape == () and od.loss.shape == ()
        np.testing.assert_allclose(od.output.numpy(), ot.output.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(od.loss.numpy(), ot.loss.detach().numpy(), rtol=1e-12)


def test_gradient_checker_agrees():
    dm = dnn.AdaptiveLogSoftmaxWithLoss(7, 15, [3, 8], div_value=2.0, head_bias=True).double()
    x = np.random.default_rng(4).standard_normal((6, 7))
    t = np.array([0, 4, 9, 14, 2, 8])
    check_grad(lambda a: dm(a, t).output, x)
    check_grad(lambda a: dm.log_prob(a), x)


def test_names_repr_init_and_state_dict_are_pytorchs():
    dm, tm = _pair((32, 100, [10, 40]), dict(div_value=4.0, head_bias=True))
    assert [n for n, _ in dm.named_parameters()] == [n for n, _ in tm.named_parameters()] == [
        "head.weight", "head.bias", "tail.0.0.weight", "tail.0.1.weight", "tail.1.0.weight", "tail.1.1.weight"]
    assert {k: tuple(v.shape) for k, v in dm.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in tm.state_dict().items()}
    assert repr(dm) == repr(tm)
    assert (dm.cutoffs, dm.shortlist_size, dm.n_clusters, dm.head_size) == \
        (tm.cutoffs, tm.shortlist_size, tm.n_clusters, tm.head_size) == ([10, 40, 100], 10, 2, 12)
    # Linear's init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for each weight, drawn again by reset_parameters
    # (from a generator of its own: the 12 head biases' largest |value| falls below 0.8 * bound for 0.8 ** 12 =
    # 7 % of draws, and the shared default generator's state depends on the tests run before this one)
    with distnn.random.use_generator(np.random.default_rng(0)):
        fresh = dnn.AdaptiveLogSoftmaxWithLoss(64, 100, [10, 40], head_bias=True)
    for name, p in fresh.named_parameters():
        fan_in = p.shape[1] if p.ndim == 2 else 64
        bound = 1 / np.sqrt(fan_in)
        assert np.abs(p.numpy()).max() <= bound and np.abs(p.numpy()).max() > 0.8 * bound, name
    before = fresh.head.weight.numpy().copy()
    fresh.reset_parameters()
    assert not np.array_equal(before, fresh.head.weight.numpy())
    copy = dnn.AdaptiveLogSoftmaxWithLoss(32, 100, [10, 40], head_bias=True).double()
    copy.load_state_dict(dm.state_dict())
    x = np.random.default_rng(5).standard_normal((4, 32))
    np.testing.assert_array_equal(copy.log_prob(x).numpy(), dm.log_prob(x).numpy())


@pytest.mark.parametrize("cutoffs", [[], [5, 3], [0, 4], [4, 10], [3, 3, 5], [2.5, 6]])
def test_bad_cutoffs_are_refused_as_pytorch(cutoffs):
    with pytest.raises(ValueError) as theirs:
        torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs)
    with pytest.raises(ValueError) as ours:
        dnn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs)
    assert str(theirs.value).split(" (")[0] in str(ours.value)


X = np.random.default_rng(6).standard_normal((4, 8))


@pytest.mark.parametrize("kind, x, target, gist", [
    ("above", X, np.array([0, 3, 10, 2]), r"Target values should be in \[0, 9\], but values in range \[0, 10\]"),
    ("negative", X, np.array([0, -1, 5, 2]), r"Target values should be in \[0, 9\]"),
    ("batch", X, np.array([0, 1, 2]), "same size in the batch dimension"),
    ("1d target, 3d input", X.reshape(4, 2, 4), np.array([0, 1, 2, 3]), "1D target tensor expects 2D input"),
    ("0d target, 2d input", X, np.array(3), "0D target tensor expects 1D input"),
    ("2d target", X, np.zeros((4, 1), np.int64), "multi-target not supported"),
])
def test_bad_targets_are_refused_as_pytorch(kind, x, target, gist):
    dm, tm = _pair((8, 10, [3, 6]), {})
    with pytest.raises(RuntimeError, match=gist):
        tm(torch.from_numpy(x), torch.from_numpy(target))
    with pytest.raises(RuntimeError, match=gist):
        dm(x, target)


def test_a_float_target_is_refused():
    dm, tm = _pair((8, 10, [3, 6]), {})
    with pytest.raises(RuntimeError):
        tm(torch.from_numpy(X), torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64))
    with pytest.raises(RuntimeError, match="integer class indices"):
        dm(X, np.array([0.0, 1.0, 2.0, 3.0]))
