"""Dropout1d/2d/3d, AlphaDropout, FeatureAlphaDropout (modules and F. functions) against PyTorch 2.13.

Random masks cannot match PyTorch's generator, so the oracle replays PyTorch's own draws: each case runs
PyTorch, reruns it from the same RNG state on ones (which shows its noise: 0 where dropped), and hands
that noise to distnn through a generator whose ``keep_mask`` returns it (asserting the mask shape distnn
asks for: one value per (sample, channel) for channel dropout). Outputs and input gradients then match to
float64 rounding. Statistics and exact properties (masks shared over a channel's map, the scale, alpha
dropout keeping mean and variance, evaluation the identity) are tested on distnn's own draws.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from layer_fuzz_harness import G, run_cases, torch  # noqa: F401  (torch: importorskip'd there)

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402
from distnn import random as dn_random  # noqa: E402

TF = torch.nn.functional
ALPHA = 1.7580993408473766
FNAME = {"Dropout1d": "dropout1d", "Dropout2d": "dropout2d", "Dropout3d": "dropout3d",
         "AlphaDropout": "alpha_dropout", "FeatureAlphaDropout": "feature_alpha_dropout"}


class Replay:
    """A generator that hands distnn the keep mask PyTorch drew, asserting distnn asks for that shape."""

    def __init__(self):
        self.keep = None
        self.asked = []

    def keep_mask(self, shape, p, batch_dim=None):
        self.asked.append(tuple(shape))
        assert self.keep is not None, "distnn drew a mask where PyTorch drew none"
        assert tuple(shape) == self.keep.shape, f"mask shape {tuple(shape)} asked, PyTorch's noise is {self.keep.shape}"
        return self.keep


def _torch_noise(name, ones_out, ndim):
    """PyTorch's keep mask in the shape distnn asks for, from the op's output on ones (kept: > 0)."""
    keep = ones_out.detach().numpy() > 0
    if name in ("AlphaDropout",):
        return keep
    batched = not ((name == "Dropout1d" and ndim == 2) or (name == "Dropout3d" and ndim != 5))
    b = keep if batched else keep[None]
    if b.ndim < 2:
        return b  # (no mask is drawn: PyTorch refuses such input, or p makes it an identity)
    nc = b[(slice(None), slice(None)) + (0,) * (b.ndim - 2)]
    return nc if batched else nc[0][None]


def _channel_case(c, name):
    lo, hi = {"Dropout1d": (2, 3), "Dropout2d": (3, 4), "Dropout3d": (4, 5)}.get(name, (0, 5))
    if c.coin(0.15):  # the ranks PyTorch warns about or refuses
        lo, hi = 0, 6
    shape = c.draw(shape=tuple(c.dim(4) for _ in range(c.int(lo, hi))))
    x = c.normal(*shape)
    p = c.draw(p=c.pick(0.5, 0.2, 0.9, 0.0, 1.0))
    training = c.draw(training=c.coin(0.8))
    inplace = c.draw(inplace=c.coin(0.3))
    module = c.draw(module=c.coin())
    replay = Replay()
    if module:
        dm = getattr(dnn, name)(p, inplace, generator=replay)
        tm = getattr(torch.nn, name)(p, inplace)
        dm.train(training)
        tm.train(training)
        fd, ft0 = dm, tm
    else:
        fd = (lambda f: lambda a: f(a, p, training, inplace, generator=replay))(getattr(DF, FNAME[name]))
        ft0 = (lambda f: lambda a: f(a, p, training, inplace))(getattr(TF, FNAME[name]))

    def ft(a):
        state = torch.get_rng_state()
        out = ft0(a * 1.0 if inplace else a)
        after = torch.get_rng_state()
        torch.set_rng_state(state)
        with torch.no_grad():
            replay.keep = _torch_noise(name, ft0(torch.ones_like(a)), a.dim())
        torch.set_rng_state(after)
        return out

    ok = c.run(lambda a: fd(a * 1.0 if inplace else a), ft, [G(x)])
    if ok and training and 0 < p < 1 and x.size:
        assert replay.asked, c.where(": no mask was drawn")
    return ok


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", sorted(FNAME))
def test_fuzz_matches_pytorch_with_its_masks(name):
    run_cases(name, lambda c: _channel_case(c, name))


@pytest.mark.parametrize("name", sorted(FNAME))
def test_float32_matches_pytorch_with_its_masks(name):
    shape = {"Dropout1d": (4, 3, 5), "Dropout2d": (4, 3, 2, 5), "Dropout3d": (4, 3, 2, 2, 3)}.get(name, (4, 3, 5))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    torch.manual_seed(3)
    t = torch.tensor(x, requires_grad=True)
    yt = getattr(torch.nn, name)(0.4).train()(t)
    torch.manual_seed(3)
    replay = Replay()
    replay.keep = _torch_noise(name, getattr(torch.nn, name)(0.4).train()(torch.ones(shape)), len(shape))
    d = distnn.tensor(x, requires_grad=True)
    yd = getattr(dnn, name)(0.4, generator=replay).train()(d)
    assert yd.dtype == np.float32
    np.testing.assert_allclose(yd.numpy(), yt.detach().numpy(), rtol=1e-6, atol=1e-6)
    g = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    (yd * distnn.tensor(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(d.grad, t.grad.numpy(), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- exact properties and statistics
@pytest.mark.parametrize("fn, shape, batched", [
    (DF.dropout1d, (40, 30, 7), True), (DF.dropout1d, (300, 7), False), (DF.dropout2d, (30, 40, 2, 3), True),
    (DF.dropout3d, (30, 40, 2, 1, 3), True), (DF.dropout3d, (300, 2, 2, 3), False)])
def test_channel_dropout_zeroes_whole_channels_and_scales_the_rest(fn, shape, batched):
    p = 0.3
    y = fn(distnn.tensor(np.ones(shape)), p, generator=np.random.default_rng(0)).numpy()
    lead = 2 if batched else 1
    per_channel = y.reshape(shape[:lead] + (-1,))
    assert np.all(per_channel == per_channel[..., :1])  # one value over each channel's map
    values = per_channel[..., 0]
    assert set(np.unique(values)) == {0.0, 1 / (1 - p)}
    sigma = np.sqrt(p * (1 - p) / values.size)
    assert abs((values == 0).mean() - p) < 5 * sigma


@pytest.mark.parametrize("feature", [False, True])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_alpha_dropout_keeps_zero_mean_and_unit_variance(feature, p):
    x = np.random.default_rng(1).standard_normal((2000, 50, 4) if feature else (200, 1000))
    rng = np.random.default_rng(2)
    fn = DF.feature_alpha_dropout if feature else DF.alpha_dropout
    y = fn(distnn.tensor(x), p, training=True, generator=rng).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.var() - 1) < 0.03
    a = (1 / ((ALPHA ** 2 * p + 1) * (1 - p))) ** 0.5
    dropped = np.isclose(y, a * ALPHA * (p - 1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(y[~dropped], a * x[~dropped] + a * ALPHA * p, rtol=1e-12, atol=1e-14)  # kept: a x + b
    sigma = np.sqrt(p * (1 - p) / (dropped.size if not feature else dropped.size / 4))
    assert abs(dropped.mean() - p) < 5 * sigma
    if feature:  # a channel is dropped whole
        assert np.all(dropped == dropped[..., :1])


def test_alpha_dropout_mean_and_variance_after_selu():
    # the purpose: SELU's fixed point (mean 0, variance 1) survives the dropout
    x = DF.selu(distnn.tensor(np.random.default_rng(3).standard_normal((400, 500))))
    y = dnn.AlphaDropout(0.2, generator=np.random.default_rng(4)).train()(x).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.var() - 1) < 0.03


@pytest.mark.parametrize("name", sorted(FNAME))
def test_evaluation_is_the_identity_and_p_one_gives_zeros(name):
    shape = {"Dropout3d": (2, 3, 4, 5, 2), "Dropout2d": (2, 3, 4, 5)}.get(name, (2, 3, 4))
    x = distnn.tensor(np.random.default_rng(5).standard_normal(shape), requires_grad=True)
    m = getattr(dnn, name)(0.5).eval()
    assert m(x) is x  # as PyTorch's, the input itself
    y = getattr(dnn, name)(1.0).train()(x)
    assert y.numpy().shape == shape and np.all(y.numpy() == 0)
    y.sum().backward()
    assert np.all(x.grad == 0)
    assert getattr(DF, FNAME[name])(x, 0.0, True) is x


def test_masks_come_from_distnns_generators_reproducibly():
    x = distnn.tensor(np.ones((8, 6, 5)))
    distnn.manual_seed(11)
    a = DF.dropout1d(x, 0.5).numpy()
    distnn.manual_seed(11)
    np.testing.assert_array_equal(DF.dropout1d(x, 0.5).numpy(), a)
    assert not np.array_equal(DF.dropout1d(x, 0.5).numpy(), a)  # the stream moves on
    b = DF.alpha_dropout(x, 0.5, True, generator=np.random.default_rng(7)).numpy()
    np.testing.assert_array_equal(DF.alpha_dropout(x, 0.5, True, generator=np.random.default_rng(7)).numpy(), b)
    with dn_random.use_generator(np.random.default_rng(7)):  # the lent default, as dropout's
        np.testing.assert_array_equal(DF.alpha_dropout(x, 0.5, True).numpy(), b)


def test_inplace_changes_the_input_and_follows_the_in_place_rules():
    x = distnn.tensor(np.ones((6, 4, 3, 2)))
    assert DF.dropout2d(x, 0.5, True, True, generator=np.random.default_rng(0)) is x
    assert set(np.unique(x.numpy())) <= {0.0, 2.0}
    unbatched = distnn.tensor(np.ones((4, 3)))
    assert DF.dropout1d(unbatched, 0.5, inplace=True) is unbatched and unbatched.numpy().shape == (4, 3)
    leaf = distnn.tensor(np.ones((2, 3, 4)), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad is used in an in-place operation"):
        DF.feature_alpha_dropout(leaf, 0.5, True, True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        torch.nn.functional.feature_alpha_dropout(torch.ones(2, 3, 4, requires_grad=True), 0.5, True, True)
    # PyTorch's AlphaDropout / FeatureAlphaDropout modules never pass inplace on: neither do distnn's
    y = distnn.tensor(np.ones((4, 5)))
    out = dnn.AlphaDropout(0.5, inplace=True).train()(y)
    assert out is not y and np.all(y.numpy() == 1)


# ---------------------------------------------------------------- refusals and warnings, as PyTorch's
def _outcome(fn, *args):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            out = fn(*args)
            result = ("ok", tuple(out.shape))
        except (RuntimeError, ValueError, TypeError) as e:
            result = (type(e).__name__, str(e).split(" (")[0][:60])
    return result, [str(m.message)[:40] for m in w if issubclass(m.category, UserWarning)]


@pytest.mark.parametrize("fname", sorted(FNAME.values()))
@pytest.mark.parametrize("ndim", range(7))
@pytest.mark.parametrize("training", [True, False])
def test_ranks_refused_and_warned_about_as_pytorch(fname, ndim, training):
    shape = (2, 3, 2, 2, 1, 2)[:ndim]
    d = _outcome(getattr(DF, fname), distnn.tensor(np.ones(shape)), 0.5, training)
    t = _outcome(getattr(TF, fname), torch.ones(shape), 0.5, training)
    assert d == t


def test_refusals_match_pytorch():
    for fname in FNAME.values():
        for p in (-0.1, 1.5):
            with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got"):
                getattr(DF, fname)(distnn.tensor(np.ones((2, 3, 4))), p)
    for name in FNAME:
        with pytest.raises(ValueError, match="dropout probability has to be between 0 and 1, but got 2"):
            getattr(dnn, name)(2)
    ints = distnn.tensor(np.ones((2, 3, 4), dtype=np.int64))
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type"):
        DF.dropout1d(ints, 0.5)
    with pytest.raises(RuntimeError, match="result type Float can't be cast to the desired output type"):
        TF.dropout1d(torch.ones(2, 3, 4, dtype=torch.int64), 0.5)
    assert DF.alpha_dropout(ints, 0.5) is ints  # (not training: the identity, as PyTorch's)


def test_repr_matches_pytorch():
    for name in FNAME:
        for args in ((), (0.2,), (0.3, True)):
            assert repr(getattr(dnn, name)(*args)) == repr(getattr(torch.nn, name)(*args))
    assert repr(dnn.AlphaDropout(0.2, batch_dim=1)) == "AlphaDropout(p=0.2, inplace=False, batch_dim=1)"


def test_a_layers_own_generator_is_checkpointed():
    model = dnn.Sequential(dnn.Linear(3, 4), dnn.Dropout2d(0.5, generator=np.random.default_rng(1)),
                           dnn.AlphaDropout(0.1, generator=np.random.default_rng(2)))
    states = dn_random.module_generator_states(model)
    assert sorted(states) == ["1", "2"]
    model[1].generator.random(3)
    dn_random.set_module_generator_states(model, states)
    assert model[1].generator.bit_generator.state == states["1"]
    assert model.state_dict().keys() == {"0.weight", "0.bias"}  # (no parameters or buffers of their own)
