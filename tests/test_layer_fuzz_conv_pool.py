"""Seeded fuzz (tests/layer_fuzz_harness.py) of distnn's linear, flatten, convolution and pooling layers and their
functional forms against PyTorch over their hyper-parameters: Linear, F.linear, Identity, Flatten, Unflatten,
Conv1d, Conv2d, F.conv1d/conv2d (padding modes), MaxPool2d, MaxUnpool2d, AvgPool2d, AdaptiveAvgPool2d.

Left out, at its generator with the reason: a dilated max-pool window of padding only (PyTorch inconsistent)
and max_unpool2d to an empty plane with indices that cannot fit it (a deliberate refusal)."""
from __future__ import annotations

import pytest

import distnn.functional as DF
from distnn import nn as dnn

from layer_fuzz_harness import C, G, TF, batch_shape, layer_input, op_registry, padding_only_window, run_cases


torch = pytest.importorskip("torch")
OPS, op = op_registry()


def _pair_or_int(c, lo, hi):
    return c.pick(c.int(lo, hi), (c.int(lo, hi), c.int(lo, hi)))


def _two(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ---- linear, identity, flatten
@op("Linear")
def _linear(c):
    fin, fout, bias = c.draw(fin=c.int(1, 6), fout=c.int(1, 6), bias=c.coin())
    shape = c.draw(shape=tuple(c.dim(3) for _ in range(c.int(0, 2))) + (fin,))
    dm, tm = dnn.Linear(fin, fout, bias=bias), torch.nn.Linear(fin, fout, bias=bias)
    c.randomize(dm)
    return c.run(dm, tm, [layer_input(c, shape)], dm, tm)


@op("F.linear")
def _f_linear(c):
    fin, fout, bias = c.draw(fin=c.int(1, 6), fout=c.int(1, 6), bias=c.coin())
    shape = c.draw(shape=tuple(c.dim(3) for _ in range(c.int(0, 2))) + (fin,))
    args = [G(c.normal(*shape)), G(c.normal(fout, fin)), G(c.normal(fout)) if bias else None]
    return c.run(DF.linear, TF.linear, args)


@op("Identity/Flatten/Unflatten")
def _flatten(c):
    nd = c.int(1, 4)
    shape = tuple(c.dim(3) for _ in range(nd))
    which = c.draw(which=c.pick("Identity", "Flatten", "Unflatten"), shape=shape)[0]
    if which == "Identity":
        dm, tm = dnn.Identity(3, k=1), torch.nn.Identity(3, k=1)
    elif which == "Flatten":
        s, e = c.draw(start=c.int(-nd, nd - 1), end=c.int(-nd, nd - 1))
        dm, tm = dnn.Flatten(s, e), torch.nn.Flatten(s, e)
    else:
        d = c.draw(dim=c.int(-nd, nd - 1))
        size = shape[d]
        split = c.pick((size,), (1, size), (size, 1), (1, size, 1))
        dm, tm = dnn.Unflatten(d, split), torch.nn.Unflatten(d, split)
    return c.run(dm, tm, [G(c.normal(*shape))])


# ---- convolutions
def _conv_config(c, nd):
    groups = c.pick(1, 1, 2, 3)
    cin, cout = groups * c.int(1, 2), groups * c.int(1, 3)
    k = c.pick(c.int(1, 4), tuple(c.int(1, 4) for _ in range(nd)))
    stride = c.pick(1, c.int(1, 3), tuple(c.int(1, 3) for _ in range(nd)))
    dilation = c.pick(1, c.int(1, 3), tuple(c.int(1, 3) for _ in range(nd)))
    padding = c.pick(0, c.int(0, 3), tuple(c.int(0, 3) for _ in range(nd)), "valid", "same")
    if padding == "same" and stride != 1 and stride != (1,) * nd:
        stride = 1  # PyTorch refuses 'same' with strides
    bias = c.coin(0.7)
    size = tuple(c.int(1, 9) for _ in range(nd))
    shape = batch_shape(c, cin, *size)
    return c.draw(groups=groups, cin=cin, cout=cout, k=k, stride=stride, dilation=dilation, padding=padding,
                  bias=bias, shape=shape)


def _padding_mode(c):
    return c.draw(padding_mode=c.pick("zeros", "zeros", "reflect", "replicate", "circular"))


def _conv_module(c, nd, name):
    """Conv1d/Conv2d (``name``) in both libraries from one drawn configuration."""
    groups, cin, cout, k, stride, dilation, padding, bias, shape = _conv_config(c, nd)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias,
              padding_mode=_padding_mode(c))
    try:
        tm = getattr(torch.nn, name)(cin, cout, k, **kw)
    except (ValueError, RuntimeError):
        return False
    dm = getattr(dnn, name)(cin, cout, k, **kw)
    c.randomize(dm)
    return c.run(dm, tm, [layer_input(c, shape)], dm, tm)


@op("Conv2d")
def _conv2d(c):
    return _conv_module(c, 2, "Conv2d")


@op("Conv1d")
def _conv1d(c):
    return _conv_module(c, 1, "Conv1d")


@op("F.conv2d/F.conv1d")
def _f_conv(c):
    nd = c.draw(nd=c.int(1, 2))
    groups, cin, cout, k, stride, dilation, padding, bias, shape = _conv_config(c, nd)
    if len(shape) == nd + 1:
        shape = (1,) + shape  # (the functional forms take a batch)
    kk = (k,) * nd if isinstance(k, int) else k
    args = [G(c.normal(*shape)), G(c.normal(cout, cin // groups, *kk)), G(c.normal(cout)) if bias else None,
            stride, padding, dilation, groups]
    return c.run(DF.conv1d if nd == 1 else DF.conv2d, TF.conv1d if nd == 1 else TF.conv2d, args)


# ---- pooling
def _pool_config(c, dilation=True):
    k = _pair_or_int(c, 1, 4)
    kk = (k, k) if isinstance(k, int) else k
    stride = c.pick(None, _pair_or_int(c, 1, 3))
    padding = c.pick(0, c.int(0, min(kk) // 2), (c.int(0, kk[0] // 2), c.int(0, kk[1] // 2)))
    d = _pair_or_int(c, 1, 2) if dilation else 1
    ceil = c.coin()
    shape = batch_shape(c, c.int(1, 3), c.int(1, 9), c.int(1, 9))
    return c.draw(k=k, stride=stride, padding=padding, dilation=d, ceil_mode=ceil, shape=shape)


@op("MaxPool2d")
def _maxpool(c):
    k, stride, padding, d, ceil, shape = _pool_config(c)
    ri = c.draw(return_indices=c.coin())
    kw = dict(stride=stride, padding=padding, dilation=d, ceil_mode=ceil, return_indices=ri)
    x = c.normal(*shape, ties=True)
    if padding_only_window(TF.max_pool2d, x, k, kw):
        return False
    if c.coin():
        dm, tm = dnn.MaxPool2d(k, **kw), torch.nn.MaxPool2d(k, **kw)
    else:
        def dm(x):
            return DF.max_pool2d(x, k, **kw)

        def tm(x):
            return TF.max_pool2d(x, k, **kw)
    return c.run(dm, tm, [G(x)])


@op("MaxUnpool2d")
def _maxunpool(c):
    k, stride, padding, _, _, shape = _pool_config(c, dilation=False)
    kw = dict(stride=stride, padding=padding)
    x = torch.from_numpy(c.normal(*shape, ties=True))
    try:
        pooled, idx = TF.max_pool2d(x, k, return_indices=True, **kw)
    except RuntimeError:
        return False
    size = None
    if c.coin(0.3):
        size = c.draw(output_size=tuple(x.shape[-2:]) if c.coin() or x.ndim == 3 else tuple(x.shape))
    elif min((pooled.shape[d] - 1) * s - 2 * p + kk for d, s, p, kk in zip(
            (-2, -1), _two(stride if stride is not None else k), _two(padding), _two(k))) <= 0:
        # PyTorch returns an empty plane for a default output size of 0 without looking at the indices
        # (which cannot fit there); distnn refuses them. Left out (see the finding list).
        return False
    dm, tm = dnn.MaxUnpool2d(k, **kw), torch.nn.MaxUnpool2d(k, **kw)
    if size is None:
        return c.run(dm, tm, [G(c.normal(*pooled.shape)), C(idx.numpy())])
    return c.run(lambda a, i: dm(a, i, size), lambda a, i: tm(a, i, size), [G(c.normal(*pooled.shape)),
                                                                           C(idx.numpy())])


@op("AvgPool2d")
def _avgpool(c):
    k, stride, padding, _, ceil, shape = _pool_config(c, dilation=False)
    cip, div = c.draw(count_include_pad=c.coin(), divisor_override=c.pick(None, None, c.int(1, 5)))
    kw = dict(stride=stride, padding=padding, ceil_mode=ceil, count_include_pad=cip, divisor_override=div)
    if c.coin():
        dm, tm = dnn.AvgPool2d(k, **kw), torch.nn.AvgPool2d(k, **kw)
    else:
        def dm(x):
            return DF.avg_pool2d(x, k, **kw)

        def tm(x):
            return TF.avg_pool2d(x, k, **kw)
    return c.run(dm, tm, [G(c.normal(*shape))])


@op("AdaptiveAvgPool2d")
def _adaptive(c):
    shape = batch_shape(c, c.int(1, 3), c.int(1, 9), c.int(1, 9))
    size = c.pick(c.int(1, 10), (c.int(1, 10), c.int(1, 10)), (None, c.int(1, 10)), (c.int(1, 10), None))
    c.draw(output_size=size, shape=shape)
    if c.coin():
        dm, tm = dnn.AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size)
    else:
        def dm(x):
            return DF.adaptive_avg_pool2d(x, size)

        def tm(x):
            return TF.adaptive_avg_pool2d(x, size)
    return c.run(dm, tm, [G(c.normal(*shape))])


@pytest.mark.filterwarnings("ignore:dropout option adds dropout after all but last recurrent layer")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's, where a result is NaN as PyTorch's (empty means)
@pytest.mark.parametrize("name", sorted(OPS))
def test_layer_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])
