"""Seeded fuzz of ConvTranspose3d, F.conv_transpose3d and InstanceNorm3d against PyTorch (the oracle), with
tests/layer_fuzz_harness.py: random valid arguments and shapes (stride, padding, output_padding, dilation,
groups, bias, the ``output_size`` argument; affine, track_running_stats, momentum, train/eval steps), float64
weights and buffers shared by both libraries, and outputs, input and parameter gradients and running
statistics compared after every step.

Also: float32 against PyTorch, parameters/initialization/repr as PyTorch's, refusals, and a small 3-D
autoencoder trained through the public API.

``DISTNN_LAYER_FUZZ_CASES`` sets the number of cases per op (default 4), ``DISTNN_LAYER_FUZZ_START`` the
first seed, as for tests/layer_fuzz_harness.py.
"""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402

from layer_fuzz_harness import (G, batch_shape as _batch, layer_input as _input, float32_pair, op_registry,
    run_cases, trains)# noqa: E402

TF = torch.nn.functional
OPS, op = op_registry()


def _triple_or_int(c, lo, hi):
    return c.pick(c.int(lo, hi), tuple(c.int(lo, hi) for _ in range(3)))


def _three(v):
    return (v,) * 3 if isinstance(v, int) else tuple(v)


def _config(c):
    groups = c.pick(1, 1, 2, 3)
    cin, cout = groups * c.int(1, 2), groups * c.int(1, 2)
    k = _triple_or_int(c, 1, 3)
    stride = c.pick(1, _triple_or_int(c, 1, 3))
    dilation = c.pick(1, _triple_or_int(c, 1, 2))
    padding = c.pick(0, _triple_or_int(c, 0, 2))
    # output_padding must be below the stride or the dilation (PyTorch's rule), drawn so it mostly is
    output_padding = c.pick(0, 0, tuple(c.int(0, max(s, d) - 1) for s, d in zip(_three(stride), _three(dilation))),
                            _triple_or_int(c, 0, 2))
    bias = c.coin(0.7)
    shape = _batch(c, cin, c.int(1, 4), c.int(1, 4), c.int(1, 5))
    if len(shape) == 5 and shape[0] == 0 and any(
            o >= s and o >= d for o, s, d in zip(_three(output_padding), _three(stride), _three(dilation))):
        # PyTorch skips its output_padding check for an empty batch; distnn refuses as for any batch. Drawn again.
        shape = (1,) + shape[1:]
    return c.draw(groups=groups, cin=cin, cout=cout, k=k, stride=stride, dilation=dilation, padding=padding,
                  output_padding=output_padding, bias=bias, shape=shape)


@op("ConvTranspose3d")
def _conv_transpose3d(c):
    groups, cin, cout, k, stride, dilation, padding, output_padding, bias, shape = _config(c)
    kw = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups, bias=bias,
              dilation=dilation)
    try:
        tm = torch.nn.ConvTranspose3d(cin, cout, k, **kw)
    except (ValueError, RuntimeError):
        return False
    dm = dnn.ConvTranspose3d(cin, cout, k, **kw)
    c.randomize(dm)
    how = c.draw(output_size=c.pick(None, None, "spatial", "full"))
    if how is None:
        return c.run(dm, tm, [_input(c, shape)], dm, tm)
    # an output_size within the valid range (or, now and then, one past it: both must refuse)
    kk, ss, pp, dd = _three(k), _three(stride), _three(padding), _three(dilation)
    size = [(shape[len(shape) - 3 + d] - 1) * ss[d] - 2 * pp[d] + dd[d] * (kk[d] - 1) + 1 + c.int(0, ss[d])
            for d in range(3)]
    if how == "full":
        size = list(shape[:len(shape) - 3]) + size
    c.draw(size=size)
    return c.run(lambda x: dm(x, size), lambda x: tm(x, size), [_input(c, shape)], dm, tm)


@op("F.conv_transpose3d")
def _f_conv_transpose3d(c):
    groups, cin, cout, k, stride, dilation, padding, output_padding, bias, shape = _config(c)
    args = [G(c.normal(*shape)), G(c.normal(cin, cout // groups, *_three(k))), G(c.normal(cout)) if bias else None,
            stride, padding, output_padding, groups, dilation]
    return c.run(DF.conv_transpose3d, TF.conv_transpose3d, args)


@op("InstanceNorm3d")
def _instance_norm3d(c):
    C_ = c.int(1, 4)
    spatial = (c.int(1, 3), c.int(1, 3), c.int(1, 4))
    affine, bias, track = c.draw(affine=c.coin(), bias=c.coin(0.7), track=c.coin(0.6))
    momentum, eps = c.draw(momentum=c.pick(0.1, 0.5, None, 0.0, 1.0), eps=c.pick(1e-5, 1e-3, 0.5))
    # (an empty batch only without running statistics: see test_layer_fuzz_more_layers' InstanceNorm1d/2d)
    shape = (c.dim(3) if not track else c.int(1, 3), C_) + spatial if c.coin(0.85) else (C_,) + spatial
    modes = c.draw(modes=[c.coin(0.7) for _ in range(3)])
    c.draw(shape=shape)
    kw = dict(eps=eps, momentum=momentum, affine=affine, track_running_stats=track, bias=bias)
    dm, tm = dnn.InstanceNorm3d(C_, **kw), torch.nn.InstanceNorm3d(C_, **kw)
    c.randomize(dm)
    inputs = [c.normal(*shape) * c.pick(1.0, 3.0) + c.pick(0.0, 2.0) for _ in range(3)]
    return c.run(dm, tm, lambda s: [G(inputs[s])], dm, tm, steps=3, modes=modes)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's, where a result is NaN as PyTorch's (empty means)
@pytest.mark.parametrize("name", sorted(OPS))
def test_conv_transpose3d_and_instance_norm3d_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])


# ---------------------------------------------------------------------------- float32
def test_conv_transpose3d_float32_matches_pytorch():
    torch.manual_seed(0)
    tm = torch.nn.ConvTranspose3d(4, 6, (2, 3, 3), stride=(1, 2, 2), padding=1, output_padding=(0, 1, 1), groups=2,
                                  dilation=(2, 1, 1))
    dm = dnn.ConvTranspose3d(4, 6, (2, 3, 3), stride=(1, 2, 2), padding=1, output_padding=(0, 1, 1), groups=2,
                             dilation=(2, 1, 1))
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 4, 5)).astype(np.float32)
    float32_pair(dm, tm, x)


@pytest.mark.parametrize("training", [True, False])
def test_instance_norm3d_float32_matches_pytorch(training):
    tm = torch.nn.InstanceNorm3d(3, affine=True, track_running_stats=True, momentum=0.3)
    dm = dnn.InstanceNorm3d(3, affine=True, track_running_stats=True, momentum=0.3)
    with torch.no_grad():
        tm.weight.normal_()
        tm.bias.normal_()
        tm.running_mean.normal_()
        tm.running_var.uniform_(0.5, 2.0)
    tm.train(training)
    dm.train(training)
    x = (np.random.default_rng(0).standard_normal((2, 3, 3, 4, 5)) * 3 + 1).astype(np.float32)
    float32_pair(dm, tm, x)
    for name, b in tm.named_buffers():
        np.testing.assert_allclose(np.asarray(getattr(dm, name).data), b.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- parameters, repr, refusals
def test_conv_transpose3d_parameters_initialisation_and_repr_are_pytorchs():
    kw = dict(stride=2, padding=(1, 0, 1), output_padding=(1, 0, 0), groups=2, dilation=(1, 2, 1))
    dm, tm = dnn.ConvTranspose3d(4, 6, (3, 2, 2), **kw), torch.nn.ConvTranspose3d(4, 6, (3, 2, 2), **kw)
    assert dm.weight.shape == tuple(tm.weight.shape) == (4, 3, 3, 2, 2)
    assert dm.bias.shape == (6,) and repr(dm) == repr(tm)
    bound = 1 / np.sqrt(3 * 3 * 2 * 2)  # fan-in: C_out/groups * kd * kh * kw, as PyTorch's
    w = np.asarray(dm.weight.data)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.abs(np.asarray(dm.bias.data)).max() <= bound
    assert repr(dnn.ConvTranspose3d(2, 2, 1, bias=False)) == repr(torch.nn.ConvTranspose3d(2, 2, 1, bias=False))
    kw = dict(stride=2, dilation=2, output_padding=1)  # (dilation before output_padding in every ConvTranspose's repr)
    assert repr(dnn.ConvTranspose1d(2, 2, 3, **kw)) == repr(torch.nn.ConvTranspose1d(2, 2, 3, **kw))
    assert repr(dnn.ConvTranspose2d(2, 2, 3, **kw)) == repr(torch.nn.ConvTranspose2d(2, 2, 3, **kw))
    assert sorted(dm.state_dict()) == sorted(tm.state_dict())


def test_conv_transpose3d_refusals_name_the_problem():
    x = distnn.tensor(np.zeros((1, 2, 3, 3, 3)))
    w = distnn.tensor(np.zeros((2, 1, 3, 3, 3)))
    with pytest.raises(ValueError, match="^conv_transpose3d: output padding must be smaller"):
        DF.conv_transpose3d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="^conv_transpose3d: input has 3 channels"):
        DF.conv_transpose3d(distnn.tensor(np.zeros((1, 3, 3, 3, 3))), w)
    with pytest.raises(ValueError, match="^conv_transpose3d: .*triple"):
        DF.conv_transpose3d(x, w, stride=(1, 2))
    with pytest.raises(ValueError, match="^conv_transpose3d: expected an input"):
        DF.conv_transpose3d(x, w[0])
    m = dnn.ConvTranspose3d(2, 2, 3, stride=2)
    with pytest.raises(ValueError, match=r"^ConvTranspose3d: expected a 5-D input"):
        m(x[0, 0])
    with pytest.raises(ValueError, match=r"^ConvTranspose3d: requested an output size of \[9, 9, 9\], but valid "
                                         r"sizes range from \[7, 7, 7\] to \[8, 8, 8\]"):
        m(x, (9, 9, 9))
    with pytest.raises(ValueError, match="zeros"):
        dnn.ConvTranspose3d(2, 2, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="divisible by groups"):
        dnn.ConvTranspose3d(3, 2, 3, groups=2)


def test_instance_norm3d_state_repr_and_refusals_are_pytorchs():
    for kw in ({}, {"affine": True, "track_running_stats": True}, {"affine": True, "bias": False}):
        dm, tm = dnn.InstanceNorm3d(4, **kw), torch.nn.InstanceNorm3d(4, **kw)
        dstate, tstate = dm.state_dict(), tm.state_dict()
        assert sorted(dstate) == sorted(tstate) and repr(dm) == repr(tm)
        for k, v in tstate.items():
            np.testing.assert_array_equal(np.asarray(dstate[k]), v.numpy())
    with pytest.raises(ValueError, match=r"expected 4D or 5D input \(got 3D input\)"):
        dnn.InstanceNorm3d(2)(distnn.tensor(np.zeros((2, 3, 4))))
    with pytest.raises(ValueError, match="num_features"):
        dnn.InstanceNorm3d(3, affine=True)(distnn.tensor(np.zeros((2, 4, 2, 2, 2))))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        dnn.InstanceNorm3d(3)(distnn.tensor(np.zeros((2, 3, 1, 1, 1))))


def test_unbatched_inputs_are_a_batch_of_one():
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5))
    m = dnn.ConvTranspose3d(2, 3, 2, stride=2).double()
    np.testing.assert_allclose(m(x).data, m(x[None]).data[0], rtol=1e-12, atol=1e-12)
    n = dnn.InstanceNorm3d(2, affine=True, track_running_stats=True).double()
    np.testing.assert_allclose(n(x).data, n(x[None]).data[0], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------- training through the public API
def test_a_3d_conv_autoencoder_with_conv_transpose3d_and_instance_norm3d_trains():
    distnn.manual_seed(0)
    rng = np.random.default_rng(0)
    x = np.zeros((16, 1, 4, 4, 4), dtype=np.float32)  # a random axis-aligned bar in each volume
    for v in x:
        a, b, axis = rng.integers(0, 4), rng.integers(0, 4), rng.integers(0, 3)
        idx = [a, b]
        idx.insert(axis, slice(None))
        v[(0, *idx)] = 1.0
    model = dnn.Sequential(
        dnn.Conv3d(1, 8, 3, stride=2, padding=1), dnn.InstanceNorm3d(8, affine=True), dnn.ReLU(),  # 4^3 -> 2^3
        dnn.ConvTranspose3d(8, 1, 3, stride=2, padding=1, output_padding=1),                      # -> 4^3
    )
    first, last = trains(model, x, x, steps=30, lr=0.01)
    assert last < 0.5 * first, (first, last)
