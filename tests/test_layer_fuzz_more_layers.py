"""Seeded fuzz of the layers added after test_layer_fuzz.py against PyTorch (the oracle), with its harness:
random valid hyper-parameters and shapes, the same float64 weights and buffers in both libraries, and
outputs, input gradients, parameter gradients and buffers (running statistics) compared after every step.

Covered: ConvTranspose1d, ConvTranspose2d (and their ``output_size`` argument), F.conv_transpose1d,
F.conv_transpose2d, GroupNorm, F.group_norm, InstanceNorm1d, InstanceNorm2d (training and eval steps,
running statistics), F.instance_norm, AdaptiveMaxPool2d and F.adaptive_max_pool2d (return_indices, ties,
NaN), MaxPool1d, AvgPool1d, AdaptiveAvgPool1d and their F. functions.

Also, per layer: a float32 check against PyTorch, and a small model using it trained through the public
API for a few steps (its loss must fall).

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
from distnn import optim  # noqa: E402

from layer_fuzz_harness import (G, batch_shape as _batch, layer_input as _input, float32_pair,  # noqa: E402
                                op_registry, padding_only_window, run_cases, run_functional_norm, trains)

TF = torch.nn.functional
OPS, op = op_registry()


def _tuple_or_int(c, nd, lo, hi):
    return c.pick(c.int(lo, hi), tuple(c.int(lo, hi) for _ in range(nd)))


def _nd(v, nd):
    return (v,) * nd if isinstance(v, int) else tuple(v)


# ---- transposed convolutions
def _conv_transpose_config(c, nd):
    groups = c.pick(1, 1, 2, 3)
    cin, cout = groups * c.int(1, 2), groups * c.int(1, 3)
    k = _tuple_or_int(c, nd, 1, 4)
    stride = c.pick(1, _tuple_or_int(c, nd, 1, 3))
    dilation = c.pick(1, _tuple_or_int(c, nd, 1, 3))
    padding = c.pick(0, _tuple_or_int(c, nd, 0, 3))
    # output_padding must be below the stride or the dilation (PyTorch's rule), drawn so it mostly is
    output_padding = c.pick(0, 0, tuple(c.int(0, max(s, d) - 1) for s, d in zip(_nd(stride, nd), _nd(dilation, nd))),
                            _tuple_or_int(c, nd, 0, 2))
    bias = c.coin(0.7)
    shape = _batch(c, cin, *(c.int(1, 6) for _ in range(nd)))
    if len(shape) == nd + 2 and shape[0] == 0 and any(
            o >= s and o >= d for o, s, d in zip(_nd(output_padding, nd), _nd(stride, nd), _nd(dilation, nd))):
        # PyTorch skips its output_padding check for an empty batch; distnn refuses as for any batch. Drawn again.
        shape = (1,) + shape[1:]
    return c.draw(groups=groups, cin=cin, cout=cout, k=k, stride=stride, dilation=dilation, padding=padding,
                  output_padding=output_padding, bias=bias, shape=shape)


@op("ConvTranspose1d/2d")
def _conv_transpose(c):
    nd = c.draw(nd=c.int(1, 2))
    groups, cin, cout, k, stride, dilation, padding, output_padding, bias, shape = _conv_transpose_config(c, nd)
    kw = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups, bias=bias,
              dilation=dilation)
    name = f"ConvTranspose{nd}d"
    try:
        tm = getattr(torch.nn, name)(cin, cout, k, **kw)
    except (ValueError, RuntimeError):
        return False
    dm = getattr(dnn, name)(cin, cout, k, **kw)
    c.randomize(dm)
    how = c.draw(output_size=c.pick(None, None, "spatial", "full"))
    if how is None:
        return c.run(dm, tm, [_input(c, shape)], dm, tm)
    # an output_size within the valid range (or, now and then, one past it: both must refuse)
    kk, ss, pp, dd = _nd(k, nd), _nd(stride, nd), _nd(padding, nd), _nd(dilation, nd)
    size = [(shape[len(shape) - nd + d] - 1) * ss[d] - 2 * pp[d] + dd[d] * (kk[d] - 1) + 1 + c.int(0, ss[d])
            for d in range(nd)]
    if how == "full":
        size = list(shape[:len(shape) - nd]) + size
    c.draw(size=size)
    return c.run(lambda x: dm(x, size), lambda x: tm(x, size), [_input(c, shape)], dm, tm)


@op("F.conv_transpose1d/2d")
def _f_conv_transpose(c):
    nd = c.draw(nd=c.int(1, 2))
    groups, cin, cout, k, stride, dilation, padding, output_padding, bias, shape = _conv_transpose_config(c, nd)
    args = [G(c.normal(*shape)), G(c.normal(cin, cout // groups, *_nd(k, nd))), G(c.normal(cout)) if bias else None,
            stride, padding, output_padding, groups, dilation]
    name = f"conv_transpose{nd}d"
    return c.run(getattr(DF, name), getattr(TF, name), args)


# ---- group and instance normalization
@op("GroupNorm/F.group_norm")
def _group_norm(c):
    G_ = c.int(1, 3)
    C_ = G_ * c.int(1, 3)
    c.draw(G=G_, C=C_)
    shape = c.draw(shape=(c.dim(3), C_) + tuple(c.int(1, 4) for _ in range(c.int(0, 2))))
    affine, bias, eps = c.draw(affine=c.coin(0.7), bias=c.coin(0.7), eps=c.pick(1e-5, 1e-3, 0.5))
    if c.draw(functional=c.coin(0.3)):
        args = [G(c.normal(*shape)), G(c.normal(C_), False) if affine else None,
                G(c.normal(C_), False) if affine and c.coin() else None]
        return c.run(lambda x, w, b: DF.group_norm(x, G_, w, b, eps), lambda x, w, b: TF.group_norm(x, G_, w, b, eps),
                     args)
    kw = dict(eps=eps, affine=affine, bias=bias)
    dm, tm = dnn.GroupNorm(G_, C_, **kw), torch.nn.GroupNorm(G_, C_, **kw)
    c.randomize(dm)
    return c.run(dm, tm, [_input(c, shape)], dm, tm)


@op("InstanceNorm1d/2d")
def _instance_norm(c):
    which = c.draw(which=c.pick("1d", "2d"))
    C_ = c.int(1, 4)
    spatial = (c.int(1, 5),) if which == "1d" else (c.int(1, 4), c.int(1, 4))
    affine, bias, track = c.draw(affine=c.coin(), bias=c.coin(0.7), track=c.coin(0.6))
    momentum, eps = c.draw(momentum=c.pick(0.1, 0.5, None, 0.0, 1.0), eps=c.pick(1e-5, 1e-3, 0.5))
    # (an empty batch only without running statistics: see F.instance_norm's generator)
    shape = (c.dim(3) if not track else c.int(1, 3), C_) + spatial if c.coin(0.85) else (C_,) + spatial
    modes = c.draw(modes=[c.coin(0.7) for _ in range(3)])
    c.draw(shape=shape)
    kw = dict(eps=eps, momentum=momentum, affine=affine, track_running_stats=track, bias=bias)
    name = f"InstanceNorm{which}"
    dm, tm = getattr(dnn, name)(C_, **kw), getattr(torch.nn, name)(C_, **kw)
    c.randomize(dm)
    inputs = [c.normal(*shape) * c.pick(1.0, 3.0) + c.pick(0.0, 2.0) for _ in range(3)]
    return c.run(dm, tm, lambda s: [G(inputs[s])], dm, tm, steps=3, modes=modes)


@op("F.instance_norm")
def _f_instance_norm(c):
    C_ = c.int(1, 4)
    shape = c.draw(shape=(c.dim(3), C_) + tuple(c.int(1, 4) for _ in range(c.int(1, 2))))
    use, momentum, eps, w, b, running = c.draw(use_input_stats=c.coin(0.7), momentum=c.pick(0.1, 0.7, 0.0),
                                               eps=c.pick(1e-5, 0.1), weight=c.coin(), bias=c.coin(),
                                               running=c.coin(0.7))
    if shape[0] == 0 and running and use:
        # An empty batch: PyTorch's running statistics become NaN (the mean over no instance), distnn leaves
        # them alone, as its batch_norm does (and PyTorch's batch_norm). Left out.
        return False
    return run_functional_norm(c, shape, C_, w, b, running, lambda *a: DF.instance_norm(*a, use, momentum, eps),
                               lambda *a: TF.instance_norm(*a, use, momentum, eps))


# ---- pooling
def _module_or_functional(c, module, functional, *args, **kw):
    """The pooling layer in both libraries as a module or, half the time, as its F. function."""
    if c.draw(functional=c.coin()):
        return (lambda x: getattr(DF, functional)(x, *args, **kw)), (lambda x: getattr(TF, functional)(x, *args, **kw))
    return getattr(dnn, module)(*args, **kw), getattr(torch.nn, module)(*args, **kw)


@op("AdaptiveMaxPool2d")
def _adaptive_max(c):
    shape = _batch(c, c.int(1, 3), c.int(1, 9), c.int(1, 9))
    size = c.pick(c.int(1, 10), (c.int(1, 10), c.int(1, 10)), (None, c.int(1, 10)), (c.int(1, 10), None))
    ri = c.draw(output_size=size, shape=shape, return_indices=c.coin())[2]
    x = c.normal(*shape, ties=True)
    if x.size and c.coin(0.1):  # NaN: the last NaN of a window wins, as PyTorch's
        x.flat[c.rng.integers(0, x.size, 3)] = np.nan
    dm, tm = _module_or_functional(c, "AdaptiveMaxPool2d", "adaptive_max_pool2d", size, return_indices=ri)
    return c.run(dm, tm, [G(x)])


def _pool1d_config(c, dilation=True):
    k = c.int(1, 4)
    stride = c.pick(None, c.int(1, 3))
    padding = c.int(0, k // 2)
    d = c.int(1, 3) if dilation else 1
    shape = (c.int(0, 3) if c.coin(0.1) else c.int(1, 3),) * c.coin(0.8) + (c.int(1, 3), c.int(1, 9))
    return c.draw(k=k, stride=stride, padding=padding, dilation=d, ceil_mode=c.coin(), shape=shape)


@op("MaxPool1d")
def _maxpool1d(c):
    k, stride, padding, d, ceil, shape = _pool1d_config(c)
    ri = c.draw(return_indices=c.coin())
    kw = dict(stride=stride, padding=padding, dilation=d, ceil_mode=ceil, return_indices=ri)
    x = c.normal(*shape, ties=True)
    if padding_only_window(TF.max_pool1d, x, k, kw):  # left out, as for MaxPool2d
        return False
    dm, tm = _module_or_functional(c, "MaxPool1d", "max_pool1d", k, **kw)
    return c.run(dm, tm, [G(x)])


@op("AvgPool1d")
def _avgpool1d(c):
    k, stride, padding, _, ceil, shape = _pool1d_config(c, dilation=False)
    cip = c.draw(count_include_pad=c.coin())
    dm, tm = _module_or_functional(c, "AvgPool1d", "avg_pool1d", k, stride=stride, padding=padding, ceil_mode=ceil,
                                   count_include_pad=cip)
    return c.run(dm, tm, [G(c.normal(*shape))])


@op("AdaptiveAvgPool1d")
def _adaptive_avg1d(c):
    shape = c.draw(shape=(c.int(1, 3),) * c.coin(0.8) + (c.int(1, 3), c.int(1, 9)))
    size = c.draw(output_size=c.pick(c.int(1, 10), (c.int(1, 10),)))
    dm, tm = _module_or_functional(c, "AdaptiveAvgPool1d", "adaptive_avg_pool1d", size)
    return c.run(dm, tm, [G(c.normal(*shape))])


# ---------------------------------------------------------------------------- the fuzz
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's, where a result is NaN as PyTorch's (empty means)
@pytest.mark.parametrize("name", sorted(OPS))
def test_more_layers_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])


# ---------------------------------------------------------------------------- float32
def test_conv_transpose2d_float32_matches_pytorch():
    torch.manual_seed(0)
    tm = torch.nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    dm = dnn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 6)).astype(np.float32)
    float32_pair(dm, tm, x)


def test_conv_transpose_parameters_and_initialisation_are_pytorchs():
    dm, tm = dnn.ConvTranspose2d(4, 6, (3, 2), groups=2), torch.nn.ConvTranspose2d(4, 6, (3, 2), groups=2)
    assert dm.weight.shape == tuple(tm.weight.shape) == (4, 3, 3, 2)
    assert dm.bias.shape == (6,) and dm.kernel_size == tm.kernel_size and dm.output_padding == tm.output_padding
    bound = 1 / np.sqrt(3 * 3 * 2)  # fan-in: C_out/groups * kh * kw, as PyTorch's
    w = np.asarray(dm.weight.data)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    assert np.abs(np.asarray(dm.bias.data)).max() <= bound
    assert dnn.ConvTranspose1d(2, 4, 3).weight.shape == (2, 4, 3)
    with pytest.raises(ValueError, match="zeros"):
        dnn.ConvTranspose2d(2, 2, 3, padding_mode="reflect")


def test_group_norm_float32_matches_pytorch():
    torch.manual_seed(0)
    tm = torch.nn.GroupNorm(2, 6)
    with torch.no_grad():
        tm.weight.normal_()
        tm.bias.normal_()
    x = (np.random.default_rng(0).standard_normal((3, 6, 4, 5)) * 3 + 1).astype(np.float32)
    float32_pair(dnn.GroupNorm(2, 6), tm, x)


@pytest.mark.parametrize("training", [True, False])
def test_instance_norm_float32_matches_pytorch(training):
    tm = torch.nn.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=0.3)
    dm = dnn.InstanceNorm2d(3, affine=True, track_running_stats=True, momentum=0.3)
    with torch.no_grad():
        tm.weight.normal_()
        tm.bias.normal_()
        tm.running_mean.normal_()
        tm.running_var.uniform_(0.5, 2.0)
    tm.train(training)
    dm.train(training)
    x = (np.random.default_rng(0).standard_normal((2, 3, 4, 5)) * 3 + 1).astype(np.float32)
    float32_pair(dm, tm, x)
    for name, b in tm.named_buffers():
        np.testing.assert_allclose(np.asarray(getattr(dm, name).data), b.numpy(), rtol=1e-5, atol=1e-6)


def test_group_and_instance_norm_parameters_are_pytorchs():
    for dm, tm in ((dnn.GroupNorm(3, 6), torch.nn.GroupNorm(3, 6)),
                   (dnn.GroupNorm(3, 6, affine=False), torch.nn.GroupNorm(3, 6, affine=False)),
                   (dnn.GroupNorm(3, 6, bias=False), torch.nn.GroupNorm(3, 6, bias=False)),
                   (dnn.InstanceNorm1d(4), torch.nn.InstanceNorm1d(4)),
                   (dnn.InstanceNorm2d(4, affine=True, track_running_stats=True),
                    torch.nn.InstanceNorm2d(4, affine=True, track_running_stats=True))):
        dstate, tstate = dm.state_dict(), tm.state_dict()
        assert sorted(dstate) == sorted(tstate), type(dm).__name__
        for k, v in tstate.items():
            np.testing.assert_array_equal(np.asarray(dstate[k]), v.numpy())
        assert repr(dm) == repr(tm)
    with pytest.raises(ValueError, match="divisible"):
        dnn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="num_features"):
        dnn.InstanceNorm1d(3, affine=True)(distnn.tensor(np.zeros((2, 4, 5))))


@pytest.mark.parametrize("layer", ["AdaptiveMaxPool2d", "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d"])
def test_pooling_float32_matches_pytorch(layer):
    args = {"AdaptiveMaxPool2d": ((3, 2),), "MaxPool1d": (3, 2, 1), "AvgPool1d": (3, 2, 1),
            "AdaptiveAvgPool1d": (4,)}[layer]
    shape = (2, 3, 7, 5) if layer.endswith("2d") else (2, 3, 9)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    float32_pair(getattr(dnn, layer)(*args), getattr(torch.nn, layer)(*args), x)


def test_pooling_errors_name_the_op():
    x = distnn.tensor(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="^max_pool1d: "):
        DF.max_pool1d(x, 9)
    with pytest.raises(ValueError, match="^avg_pool1d: "):
        DF.avg_pool1d(x, 9)
    with pytest.raises(ValueError, match="AdaptiveMaxPool2d"):
        dnn.AdaptiveMaxPool2d(2)(x[0])


# ---------------------------------------------------------------------------- training through the public API
def _digits(n, rng):
    """Digit-like 8x8 images: a few random strokes (bars) on a dark background, in [0, 1]."""
    x = np.zeros((n, 1, 8, 8), dtype=np.float32)
    for img in x:
        for _ in range(2):
            if rng.random() < 0.5:
                r = rng.integers(1, 7)
                img[0, r, rng.integers(0, 3):rng.integers(5, 8)] = 1.0
            else:
                col = rng.integers(1, 7)
                img[0, rng.integers(0, 3):rng.integers(5, 8), col] = 1.0
    return x


def test_a_conv_autoencoder_with_conv_transpose2d_trains():
    distnn.manual_seed(0)
    x = _digits(32, np.random.default_rng(0))
    model = dnn.Sequential(
        dnn.Conv2d(1, 8, 3, stride=2, padding=1), dnn.ReLU(),          # 8x8 -> 4x4
        dnn.Conv2d(8, 16, 3, stride=2, padding=1), dnn.ReLU(),         # -> 2x2
        dnn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1), dnn.ReLU(),  # -> 4x4
        dnn.ConvTranspose2d(8, 1, 4, stride=2, padding=1),             # -> 8x8
    )
    first, last = trains(model, x, x, steps=30, lr=0.01)
    assert last < 0.5 * first, (first, last)


def classifier_losses(model, x, y, steps=25, lr=0.02):
    """Adam on the cross entropy of model(x) against the class labels y: every step's loss."""
    opt = optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = DF.cross_entropy(model(distnn.tensor(x)), distnn.tensor(y))
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    return losses


def _bars(n, rng):
    """Images holding one horizontal (label 0) or vertical (label 1) bar, and their labels."""
    x = np.zeros((n, 1, 8, 8), dtype=np.float32)
    y = rng.integers(0, 2, n)
    for img, label in zip(x, y):
        r, a = rng.integers(0, 8), rng.integers(0, 3)
        if label:
            img[0, a:a + 5, r] = 1.0
        else:
            img[0, r, a:a + 5] = 1.0
    return x + 0.1 * rng.standard_normal(x.shape).astype(np.float32), y


class _Rows(dnn.Module):
    """(N, 1, 8, 8) images as (N, 8, 8) sequences of rows: the 1-D layers' (N, C, L) input."""

    def forward(self, x):
        return x.reshape(x.shape[0], 8, 8)


@pytest.mark.parametrize("layer", ["GroupNorm", "InstanceNorm2d", "AdaptiveMaxPool2d", "1d pools"])
def test_a_small_classifier_with_the_layer_trains(layer):
    distnn.manual_seed(0)
    norm = {"GroupNorm": lambda: dnn.GroupNorm(2, 8),
            "InstanceNorm2d": lambda: dnn.InstanceNorm2d(8, affine=True, track_running_stats=True)}.get(layer)
    if layer == "1d pools":
        model = dnn.Sequential(_Rows(), dnn.Conv1d(8, 8, 3, padding=1), dnn.ReLU(), dnn.MaxPool1d(2),
                               dnn.AvgPool1d(3, 1, 1), dnn.AdaptiveAvgPool1d(2), dnn.Flatten(), dnn.Linear(16, 2))
    else:
        model = dnn.Sequential(dnn.Conv2d(1, 8, 3, padding=1), norm() if norm else dnn.Identity(), dnn.ReLU(),
                               dnn.Conv2d(8, 8, 3, padding=1), dnn.ReLU(),
                               dnn.AdaptiveMaxPool2d((1, 2)) if layer == "AdaptiveMaxPool2d" else dnn.AdaptiveAvgPool2d(1),
                               dnn.Flatten(), dnn.Linear(16 if layer == "AdaptiveMaxPool2d" else 8, 2))
    x, y = _bars(64, np.random.default_rng(0))
    losses = classifier_losses(model, x, y)
    assert losses[-1] < 0.5 * losses[0], losses
    model.eval()  # (InstanceNorm2d then normalizes with its running statistics, as PyTorch's)
    assert np.isfinite(np.asarray(model(distnn.tensor(x)).data)).all()
