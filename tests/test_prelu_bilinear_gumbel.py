"""F.prelu, F.bilinear / nn.Bilinear and F.gumbel_softmax against PyTorch 2.13 (the oracle).

prelu and bilinear: a seeded fuzz with tests/layer_fuzz_harness.py (the same float64 weights and inputs,
outputs and every gradient compared tightly), float32 (loosely), PyTorch's refusals, Bilinear's parameters,
initialisation, repr and state_dict. gumbel_softmax draws its noise from distnn's generators, so its
samples cannot be PyTorch's: its distribution is tested (the Gumbel-max trick's category frequencies, the
logistic log-ratios), and its formula against PyTorch's own lines given the same noise (recovered from a
soft sample), the hard straight-through gradient exactly.

``DISTNN_LAYER_FUZZ_CASES`` / ``DISTNN_LAYER_FUZZ_START`` as for test_layer_fuzz.py (default 4 cases per op).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402
from distnn import random as dn_random  # noqa: E402
from distnn.data.batch_random import BatchShareGenerator  # noqa: E402
from distnn.testing import check_grad  # noqa: E402

from layer_fuzz_harness import C, G, layer_input as _input, float32_pair, op_registry, run_cases, trains  # noqa: E402
from torch_twins import copy_distnn_weights, copy_torch_weights  # noqa: E402

TF = torch.nn.functional
OPS, op = op_registry()


# ---------------------------------------------------------------------------- prelu
@op("F.prelu")
def _prelu(c):
    shape = c.draw(shape=tuple(c.dim(4) for _ in range(c.int(0, 4))))
    channels = shape[1] if len(shape) >= 2 else 1
    weight = c.draw(weight=c.pick("0d", "one", "per_channel"))
    wshape = {"0d": (), "one": (1,), "per_channel": (channels,)}[weight]
    x = c.normal(*shape, ties=True)  # (zeros: the kink; PyTorch's gradient there is the slope's)
    args = [G(x) if c.coin(0.85) else C(x), G(c.normal(*wshape)) if c.coin(0.85) else C(c.normal(*wshape))]
    return c.run(DF.prelu, TF.prelu, args)


@op("PReLU")
def _prelu_module(c):
    num = c.draw(num_parameters=c.pick(1, c.int(1, 4)))
    shape = (c.dim(3), num) + tuple(c.dim(3) for _ in range(c.int(0, 2))) if num > 1 or c.coin() else \
        tuple(c.dim(3) for _ in range(c.int(0, 3)))
    c.draw(shape=shape)
    dm, tm = dnn.PReLU(num), torch.nn.PReLU(num)
    c.randomize(dm)
    return c.run(dm, tm, [_input(c, shape)], dm, tm)


# ---------------------------------------------------------------------------- bilinear
@op("F.bilinear")
def _bilinear(c):
    i1, i2, out, bias = c.draw(in1=c.int(1, 4), in2=c.int(1, 4), out=c.dim(4), bias=c.coin(0.7))
    lead = c.draw(lead=tuple(c.dim(3) for _ in range(c.int(0, 2))))
    args = [G(c.normal(*lead, i1)) if c.coin(0.9) else C(c.normal(*lead, i1)),
            G(c.normal(*lead, i2)) if c.coin(0.9) else C(c.normal(*lead, i2)),
            G(c.normal(out, i1, i2)) if c.coin(0.9) else C(c.normal(out, i1, i2)),
            G(c.normal(out)) if bias else None]
    return c.run(DF.bilinear, TF.bilinear, args)


@op("Bilinear")
def _bilinear_module(c):
    i1, i2, out, bias = c.draw(in1=c.int(1, 4), in2=c.int(1, 4), out=c.int(1, 4), bias=c.coin(0.7))
    lead = c.draw(lead=tuple(c.dim(3) for _ in range(c.int(0, 2))))
    dm, tm = dnn.Bilinear(i1, i2, out, bias=bias), torch.nn.Bilinear(i1, i2, out, bias=bias)
    c.randomize(dm)
    return c.run(dm, tm, [_input(c, lead + (i1,)), _input(c, lead + (i2,))], dm, tm)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", sorted(OPS))
def test_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])


def test_prelu_module_and_function_refusals_are_pytorchs():
    x = np.zeros((2, 3, 4))
    for w, err, match in ((np.zeros((3, 1)), ValueError, "scalar or 1D"), (np.zeros(4), ValueError, "channel size = 3"),
                          (np.zeros(3, np.float32), TypeError, "type promoting")):
        with pytest.raises(RuntimeError):
            TF.prelu(torch.from_numpy(x), torch.from_numpy(w))
        with pytest.raises(err, match=match):
            DF.prelu(distnn.tensor(x), distnn.tensor(w))
    with pytest.raises(RuntimeError):  # one channel in a 1-D input, as PyTorch counts it
        TF.prelu(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="channel size = 1"):
        DF.prelu(distnn.tensor(np.zeros(3)), distnn.tensor(np.zeros(3)))


def test_prelu_gradient_of_a_0d_weight_is_0d_and_checks():
    rng = np.random.default_rng(0)
    x, w = distnn.tensor(rng.standard_normal((2, 3)), requires_grad=True), distnn.tensor(np.array(0.3),
                                                                                          requires_grad=True)
    DF.prelu(x, w).sum().backward()
    assert w.grad.shape == ()
    check_grad(DF.prelu, rng.standard_normal((2, 3, 4)), rng.random(3))
    check_grad(DF.prelu, rng.standard_normal((2, 3)), np.array(0.25))


def test_bilinear_refusals_are_pytorchs():
    r = np.random.default_rng(0).standard_normal
    cases = [((r((5, 3)), r((1, 4)), r((2, 3, 4))), ValueError, "batch dimensions do not match at dim 0"),
             ((r((2, 5, 3)), r((5, 4)), r((2, 3, 4))), ValueError, "input dimensions do not match"),
             ((r((5, 2)), r((5, 4)), r((2, 3, 4))), ValueError, "input1 size does not match"),
             ((r((5, 3)), r((5, 5)), r((2, 3, 4))), ValueError, "input2 size does not match"),
             ((r((5, 3)), r((5, 4)), r((2, 3, 4)), r(3)), ValueError, "bias size does not match"),
             ((r((5, 3)), r((5, 4)), r((2, 3, 4)), r((1, 2))), ValueError, "bias size does not match"),
             ((r((5, 3)), r((5, 4)).astype(np.float32), r((2, 3, 4))), RuntimeError,
              "All tensors must have the same dtype, got input1: double, input2: float"),
             ((r(()), r(()), r((2, 1, 1))), IndexError, "at least 1 dimension")]
    for args, err, match in cases:
        with pytest.raises(IndexError if err is IndexError else RuntimeError):
            TF.bilinear(*(torch.from_numpy(np.asarray(a)) for a in args))
        with pytest.raises(err, match=match):
            DF.bilinear(*(distnn.tensor(np.asarray(a)) for a in args))
    with pytest.raises(ValueError, match="in1_features must be > 0"):
        torch.nn.Bilinear(0, 4, 2)
    with pytest.raises(ValueError, match="in1_features must be > 0"):
        dnn.Bilinear(0, 4, 2)
    with pytest.raises(RuntimeError, match="negative dimension"):
        torch.nn.Bilinear(3, -1, 2)
    with pytest.raises(ValueError, match="negative"):
        dnn.Bilinear(3, -1, 2)


@pytest.mark.parametrize("bias", [True, False])
def test_bilinear_parameters_initialisation_repr_and_state_dict_are_pytorchs(bias):
    distnn.manual_seed(0)
    dm, tm = dnn.Bilinear(9, 4, 300, bias=bias), torch.nn.Bilinear(9, 4, 300, bias=bias)
    assert repr(dm) == repr(tm)
    dstate, tstate = dm.state_dict(), tm.state_dict()
    assert list(dstate) == list(tstate)
    for k, v in tstate.items():
        assert tuple(np.asarray(dstate[k]).shape) == tuple(v.shape) and np.asarray(dstate[k]).dtype == np.float32
    bound = 1 / math.sqrt(9)  # U(-1/sqrt(in1_features), +): 1/3, not in2's 1/2 nor a fan-in of in1 * in2
    for name, p in dm.named_parameters():
        w = np.asarray(p.data)
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound, name
        assert abs(w.mean()) < 0.05 and abs(w.std() - bound / math.sqrt(3)) < 0.02, name
    # torch's state_dict loads into distnn's module and the outputs agree (and back)
    copy_torch_weights(tm, dm)
    x1, x2 = np.random.default_rng(1).standard_normal((5, 9)), np.random.default_rng(2).standard_normal((5, 4))
    yd = dm(distnn.tensor(x1.astype(np.float32)), distnn.tensor(x2.astype(np.float32))).numpy()
    yt = tm(torch.from_numpy(x1).float(), torch.from_numpy(x2).float()).detach().numpy()
    np.testing.assert_allclose(yd, yt, rtol=1e-5, atol=1e-5)
    tm2 = torch.nn.Bilinear(9, 4, 300, bias=bias)
    copy_distnn_weights(dm, tm2)
    np.testing.assert_array_equal(tm2.weight.detach().numpy(), tstate["weight"].numpy())


def test_float32_matches_pytorch():
    x = np.random.default_rng(3).standard_normal((6, 4)).astype(np.float32)

    class Pair(dnn.Module):  # (float32_pair feeds one input: the second is a function of it)
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, a):
            return self.m(a, a * a)

    class TPair(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, a):
            return self.m(a, a * a)

    float32_pair(Pair(dnn.Bilinear(4, 4, 3)), TPair(torch.nn.Bilinear(4, 4, 3)), x)
    float32_pair(dnn.PReLU(4), torch.nn.PReLU(4), x)


def test_a_small_model_with_bilinear_trains():
    distnn.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    target = (x[:, :3] * x[:, 3:]).sum(axis=1, keepdims=True)  # a bilinear form of the two halves

    class Net(dnn.Module):
        def __init__(self):
            super().__init__()
            self.b = dnn.Bilinear(3, 3, 1)

        def forward(self, a):
            return self.b(a[:, :3], a[:, 3:])

    first, last = trains(Net(), x, target, steps=60, lr=0.05)
    assert last < 0.2 * first, (first, last)


# ---------------------------------------------------------------------------- gumbel_softmax
def _torch_gumbel_softmax(logits, gumbels, tau, hard, dim):
    """PyTorch 2.13's F.gumbel_softmax body, its noise given (its lines after the draw, as they are)."""
    gumbels = (logits + gumbels) / tau
    y_soft = gumbels.softmax(dim)
    if hard:
        index = y_soft.max(dim, keepdim=True)[1]
        y_hard = torch.zeros_like(logits, memory_format=torch.legacy_contiguous_format).scatter_(dim, index, 1.0)
        return y_hard - y_soft.detach() + y_soft
    return y_soft


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("tau, dim, shape", [(1.0, -1, (5, 4)), (0.5, 1, (3, 4, 2)), (2.0, 0, (6,))])
def test_gumbel_softmax_is_pytorchs_formula_on_the_same_noise(tau, dim, shape, hard):
    """The noise of seed s, recovered from a soft sample of zero logits (log of it: the noise less a constant
    per slice along ``dim``, which the softmax does not see), fed to PyTorch's lines: the same output and
    logits gradient as distnn's sample of seed s."""
    rng = np.random.default_rng(4)
    logits, up = rng.standard_normal(shape), rng.standard_normal(shape)
    noise = np.log(DF.gumbel_softmax(distnn.tensor(np.zeros(shape)), dim=dim,
                                     generator=np.random.default_rng(7)).numpy())
    d = distnn.tensor(logits, requires_grad=True)
    yd = DF.gumbel_softmax(d, tau=tau, hard=hard, dim=dim, generator=np.random.default_rng(7))
    (yd * distnn.tensor(up)).sum().backward()
    t = torch.tensor(logits, requires_grad=True)
    yt = _torch_gumbel_softmax(t, torch.from_numpy(noise), tau, hard, dim)
    (yt * torch.from_numpy(up)).sum().backward()
    np.testing.assert_allclose(yd.numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(d.grad), t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_hard_sample_is_one_hot_with_the_soft_samples_gradient_exactly():
    rng = np.random.default_rng(5)
    logits, up = rng.standard_normal((50, 6)), rng.standard_normal((50, 6))
    grads, outs = {}, {}
    for hard in (False, True):
        x = distnn.tensor(logits, requires_grad=True)
        y = DF.gumbel_softmax(x, tau=0.7, hard=hard, generator=np.random.default_rng(9))
        (y * distnn.tensor(up)).sum().backward()
        grads[hard], outs[hard] = np.asarray(x.grad), y.numpy()
    np.testing.assert_array_equal(grads[True], grads[False])  # straight through: the soft sample's, bit for bit
    hot = np.eye(6)[outs[False].argmax(axis=1)]
    np.testing.assert_allclose(outs[True], hot, atol=1e-15, rtol=0)  # (y_hard - y_soft + y_soft: rounding only)
    check_grad(lambda z: DF.gumbel_softmax(z, tau=0.7, generator=np.random.default_rng(9)), logits[:4])


def test_gumbel_max_frequencies_and_log_ratios_have_their_distribution():
    """argmax of a sample is category i with probability softmax(logits)_i; log y_i - log y_j of a soft sample
    is (l_i - l_j + Logistic(0, 1)) / tau: mean (l_i - l_j) / tau, variance pi^2 / 3 / tau^2."""
    logits, tau, n = np.array([1.0, 0.0, -0.5, 2.0]), 0.5, 20000
    distnn.manual_seed(0)
    y = DF.gumbel_softmax(distnn.tensor(np.tile(logits, (n, 1))), tau=tau).numpy()
    p = np.exp(logits) / np.exp(logits).sum()
    freq = np.bincount(y.argmax(axis=1), minlength=4) / n
    assert (np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n)).all(), (freq, p)
    r = np.log(y[:, 0]) - np.log(y[:, 1])
    assert abs(r.mean() - (logits[0] - logits[1]) / tau) < 4 * np.sqrt(np.pi ** 2 / 3) / tau / np.sqrt(n)
    assert abs(r.var() / (np.pi ** 2 / 3 / tau ** 2) - 1) < 0.05
    hard = DF.gumbel_softmax(distnn.tensor(np.tile(logits, (n, 1))), tau=tau, hard=True).numpy()
    assert set(np.unique(np.round(hard, 12))) == {0.0, 1.0} and np.allclose(hard.sum(axis=1), 1)


def test_gumbel_softmax_edges_and_refusals_are_pytorchs():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        DF.gumbel_softmax(distnn.tensor(np.zeros((2, 3))), eps=1e-5)
    assert [str(x.message) for x in w] == ["`eps` parameter is deprecated and has no effect."]
    assert DF.gumbel_softmax(distnn.tensor(np.array(0.5)), hard=True).numpy() == 1.0  # (0-d: one category)
    assert DF.gumbel_softmax(distnn.tensor(np.zeros((0, 4))), hard=True).shape == (0, 4)
    assert DF.gumbel_softmax(distnn.tensor(np.zeros((2, 3), np.float32))).dtype == np.float32
    for args, kw, err in (((np.zeros((3, 4)),), dict(dim=3), IndexError),
                          ((np.zeros((3, 0)),), dict(hard=True), IndexError),
                          ((np.ones((3, 4), np.int64),), {}, (TypeError, RuntimeError))):
        with pytest.raises(err if err is IndexError else RuntimeError):
            TF.gumbel_softmax(torch.from_numpy(args[0]), **kw)
        with pytest.raises(err):
            DF.gumbel_softmax(distnn.tensor(args[0]), **kw)


@pytest.mark.parametrize("total, world", [(6, 2), (6, 3)])
def test_gumbel_noise_is_the_same_on_any_number_of_ranks(total, world):
    logits = np.random.default_rng(1).standard_normal((total, 5))

    def run(rows):
        with dn_random.use_generator(BatchShareGenerator([3, 1], total, rows)):
            return DF.gumbel_softmax(distnn.tensor(logits[rows]), tau=0.5).numpy()

    whole = run(np.arange(total))
    for rank in range(world):
        rows = np.arange(rank, total, world)
        np.testing.assert_allclose(run(rows), whole[rows], rtol=1e-12, atol=1e-15)
