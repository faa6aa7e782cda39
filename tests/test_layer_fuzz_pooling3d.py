"""Seeded fuzz of the 3-D pools and the adaptive pools added with them against PyTorch (the oracle), with
tests/layer_fuzz_harness.py: random valid arguments and shapes, float64, outputs (and indices) and input
gradients compared.

Covered: MaxPool3d and F.max_pool3d (return_indices, dilation, ceil_mode, ties, NaN), AvgPool3d and
F.avg_pool3d (count_include_pad, divisor_override, ceil_mode), AdaptiveAvgPool3d, AdaptiveMaxPool3d,
AdaptiveMaxPool1d and their F. functions; F.interpolate's 'area' mode on 5-D inputs. Also: float32
against PyTorch, errors that name the op, and a small 3-D classifier trained through the public API.

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

from layer_fuzz_harness import G, batch_shape as _batch, float32_pair, op_registry, run_cases  # noqa: E402
from test_layer_fuzz_more_layers import _module_or_functional, classifier_losses  # noqa: E402

TF = torch.nn.functional
OPS, op = op_registry()


def _triple_or_int(c, lo, hi):
    return c.pick(c.int(lo, hi), tuple(c.int(lo, hi) for _ in range(3)))


def _three(v):
    return (v,) * 3 if isinstance(v, int) else tuple(v)


def _pool3d_config(c, dilation=True):
    k = _triple_or_int(c, 1, 3)
    kk = _three(k)
    stride = c.pick(None, _triple_or_int(c, 1, 3))
    padding = c.pick(0, c.int(0, min(kk) // 2), tuple(c.int(0, a // 2) for a in kk))
    d = _triple_or_int(c, 1, 2) if dilation else 1
    shape = _batch(c, c.int(1, 2), c.int(1, 5), c.int(1, 5), c.int(1, 6))
    return c.draw(k=k, stride=stride, padding=padding, dilation=d, ceil_mode=c.coin(), shape=shape)


def _with_nan(c, x):
    if x.size and c.coin(0.1):  # NaN: the last NaN of a window wins, as PyTorch's
        x.flat[c.rng.integers(0, x.size, 3)] = np.nan
    return x


@op("MaxPool3d")
def _maxpool3d(c):
    k, stride, padding, d, ceil, shape = _pool3d_config(c)
    ri = c.draw(return_indices=c.coin())
    kw = dict(stride=stride, padding=padding, dilation=d, ceil_mode=ceil, return_indices=ri)
    x = _with_nan(c, c.normal(*shape, ties=True))
    try:
        empty = bool(torch.isinf(TF.max_pool3d(torch.from_numpy(x), k, **{**kw, "return_indices": False})).any())
    except RuntimeError:
        empty = False
    if empty:  # a dilated window of padding only: left out, as for MaxPool2d (test_layer_fuzz.py)
        return False
    dm, tm = _module_or_functional(c, "MaxPool3d", "max_pool3d", k, **kw)
    return c.run(dm, tm, [G(x)])


@op("AvgPool3d")
def _avgpool3d(c):
    k, stride, padding, _, ceil, shape = _pool3d_config(c, dilation=False)
    cip, div = c.draw(count_include_pad=c.coin(), divisor_override=c.pick(None, None, c.int(1, 5)))
    dm, tm = _module_or_functional(c, "AvgPool3d", "avg_pool3d", k, stride=stride, padding=padding, ceil_mode=ceil,
                                   count_include_pad=cip, divisor_override=div)
    return c.run(dm, tm, [G(c.normal(*shape))])


def _adaptive3d_size(c):
    return c.pick(c.int(1, 6), tuple(c.int(1, 6) for _ in range(3)), (None, c.int(1, 6), c.int(1, 6)),
                  (c.int(1, 6), None, None))


@op("AdaptiveAvgPool3d")
def _adaptive_avg3d(c):
    shape = _batch(c, c.int(1, 2), c.int(1, 6), c.int(1, 6), c.int(1, 6))
    size = c.draw(output_size=_adaptive3d_size(c), shape=shape)[0]
    dm, tm = _module_or_functional(c, "AdaptiveAvgPool3d", "adaptive_avg_pool3d", size)
    return c.run(dm, tm, [G(c.normal(*shape))])


@op("AdaptiveMaxPool3d")
def _adaptive_max3d(c):
    shape = _batch(c, c.int(1, 2), c.int(1, 6), c.int(1, 6), c.int(1, 6))
    size, _, ri = c.draw(output_size=_adaptive3d_size(c), shape=shape, return_indices=c.coin())
    x = _with_nan(c, c.normal(*shape, ties=True))
    dm, tm = _module_or_functional(c, "AdaptiveMaxPool3d", "adaptive_max_pool3d", size, return_indices=ri)
    return c.run(dm, tm, [G(x)])


@op("AdaptiveMaxPool1d")
def _adaptive_max1d(c):
    shape = c.draw(shape=(c.int(1, 3),) * c.coin(0.8) + (c.int(1, 3), c.int(1, 9)))
    size, ri = c.draw(output_size=c.pick(c.int(1, 10), (c.int(1, 10),)), return_indices=c.coin())
    x = _with_nan(c, c.normal(*shape, ties=True))
    dm, tm = _module_or_functional(c, "AdaptiveMaxPool1d", "adaptive_max_pool1d", size, return_indices=ri)
    return c.run(dm, tm, [G(x)])


@op("F.interpolate area 5-D")
def _interpolate_area3d(c):
    shape = c.draw(shape=(c.int(1, 2), c.int(1, 2), c.int(1, 5), c.int(1, 5), c.int(1, 5)))
    size = c.draw(size=c.pick(c.int(1, 6), tuple(c.int(1, 6) for _ in range(3))))
    return c.run(lambda x: DF.interpolate(x, size=size, mode="area"),
                 lambda x: TF.interpolate(x, size=size, mode="area"), [G(c.normal(*shape))])


# ---------------------------------------------------------------------------- the fuzz
@pytest.mark.parametrize("name", sorted(OPS))
def test_pooling3d_fuzz_matches_pytorch(name):
    run_cases(name, OPS[name])


# ---------------------------------------------------------------------------- fixed cases
@pytest.mark.parametrize("layer, args, shape", [
    ("MaxPool3d", (3, 2, 1), (2, 3, 5, 6, 7)),
    ("AvgPool3d", (3, 2, 1), (2, 3, 5, 6, 7)),
    ("AdaptiveAvgPool3d", ((2, 3, 4),), (2, 3, 5, 6, 7)),
    ("AdaptiveMaxPool3d", ((2, 3, 4),), (2, 3, 5, 6, 7)),
    ("AdaptiveMaxPool1d", (4,), (2, 3, 9)),
])
def test_pooling_float32_matches_pytorch(layer, args, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    float32_pair(getattr(dnn, layer)(*args), getattr(torch.nn, layer)(*args), x)


def test_indices_are_pytorchs_and_flat_per_volume():
    x = np.random.default_rng(1).standard_normal((2, 2, 4, 5, 6))
    for fd, ft, args in ((DF.max_pool3d, TF.max_pool3d, (3, 2, 1)),
                         (DF.adaptive_max_pool3d, TF.adaptive_max_pool3d, ((3, 2, 4),))):
        d, t = fd(distnn.tensor(x), *args, return_indices=True), ft(torch.from_numpy(x), *args, return_indices=True)
        assert d[1].dtype == np.int64 and not d[1].requires_grad
        np.testing.assert_array_equal(np.asarray(d[1].data), t[1].numpy())
        flat = x.reshape(2, 2, -1)  # the indices address each (N, C) volume flat
        np.testing.assert_array_equal(np.take_along_axis(flat, np.asarray(d[1].data).reshape(2, 2, -1), -1),
                                      np.asarray(d[0].data).reshape(2, 2, -1))


def test_pooling3d_errors_name_the_op():
    x = distnn.tensor(np.zeros((2, 3, 4, 4, 4)))
    with pytest.raises(ValueError, match="^max_pool3d: .*larger than the padded input"):
        DF.max_pool3d(x, 5)
    with pytest.raises(ValueError, match="^avg_pool3d: padding"):
        DF.avg_pool3d(x, 2, padding=2)
    with pytest.raises(ValueError, match="^max_pool3d: expected a 5-D input"):
        DF.max_pool3d(x[0, 0], 2)
    with pytest.raises(ValueError, match="^adaptive_avg_pool3d: output_size must be an int or a triple"):
        DF.adaptive_avg_pool3d(x, (2, 2))
    with pytest.raises(ValueError, match="^adaptive_max_pool1d: "):
        DF.adaptive_max_pool1d(x, 2)
    with pytest.raises(ValueError, match="AdaptiveMaxPool3d"):
        dnn.AdaptiveMaxPool3d(2)(x[0, 0])
    # refused as PyTorch's, padding or not
    with pytest.raises(ValueError, match="^avg_pool3d: .* smaller than the kernel size"):
        DF.avg_pool3d(x, (2, 5, 2), padding=(0, 2, 0))
    with pytest.raises(ValueError, match="divisor_override"):
        DF.avg_pool3d(x, 2, divisor_override=0)


def test_unbatched_input_is_a_batch_of_one():
    x = np.random.default_rng(2).standard_normal((3, 4, 5, 6))
    for fd, ft, args in ((DF.max_pool3d, TF.max_pool3d, (2,)), (DF.avg_pool3d, TF.avg_pool3d, (2, 1, 1)),
                         (DF.adaptive_avg_pool3d, TF.adaptive_avg_pool3d, (3,)),
                         (DF.adaptive_max_pool3d, TF.adaptive_max_pool3d, ((2, None, 4),))):
        np.testing.assert_allclose(np.asarray(fd(distnn.tensor(x), *args).data),
                                   ft(torch.from_numpy(x), *args).numpy(), rtol=1e-12)


def test_module_reprs_are_pytorchs():
    for args in ((3,), (3, 2, 1), ((2, 3, 3), (1, 2, 2), (1, 1, 0))):
        assert repr(dnn.AvgPool3d(*args)).split("(")[0] == "AvgPool3d"
        assert dnn.MaxPool3d(*args).extra_repr().startswith(f"kernel_size={args[0]}")
    assert repr(dnn.AdaptiveMaxPool1d(4)) == repr(torch.nn.AdaptiveMaxPool1d(4))
    assert repr(dnn.AdaptiveAvgPool3d((2, 3, 4))) == repr(torch.nn.AdaptiveAvgPool3d((2, 3, 4)))


def test_a_small_3d_classifier_trains():
    """Volumes holding a bar along depth (label 0) or along width (label 1); conv3d, pools, a linear head."""
    distnn.manual_seed(0)
    rng = np.random.default_rng(0)
    n = 48
    x = np.zeros((n, 1, 6, 6, 6), dtype=np.float32)
    y = rng.integers(0, 2, n)
    for v, label in zip(x, y):
        a, b = rng.integers(0, 6, 2)
        if label:
            v[0, a, b, :] = 1.0
        else:
            v[0, :, a, b] = 1.0
    x += 0.1 * rng.standard_normal(x.shape).astype(np.float32)
    model = dnn.Sequential(dnn.Conv3d(1, 6, 3, padding=1), dnn.ReLU(), dnn.MaxPool3d(2), dnn.AvgPool3d(3, 1, 1),
                           dnn.AdaptiveMaxPool3d((1, 1, 3)), dnn.Flatten(), dnn.Linear(18, 2))
    losses = classifier_losses(model, x, y)
    assert losses[-1] < 0.5 * losses[0], losses
