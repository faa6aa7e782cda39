"""Differences from PyTorch (2.13, float64 CPU) found in an audit and fixed, each against PyTorch as the
oracle: ELU's gradient at NaN, SELU/CELU's precision near 0, F.normalize for every p (0, negative, -inf),
RNN/GRU refusing ``proj_size`` with PyTorch's ValueError, one prefix on the convolutions' error messages,
the adaptive pools (and ``interpolate(mode='area')``) to an output size of 0, clamp/relu under an inf or NaN
gradient, and group/instance norm of an empty input (no numpy warnings).

Deliberate differences (each stated in its test): the gradient through an empty adaptive-pool output is a
zero one, where PyTorch's backward refuses it (its forward accepts the size); instance norm of an empty batch
leaves the running statistics alone (PyTorch's become NaN).
"""
from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402

TF = torch.nn.functional


def _both(fd, ft, a, upstream_seed=3):
    """``fd`` and ``ft`` of the same float64 array, backpropagated with the same random upstream gradient:
    (distnn output, gradient), (torch output, gradient) as numpy."""
    d, t = distnn.tensor(a.copy(), requires_grad=True), torch.tensor(a.copy(), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yd, yt = fd(d), ft(t)
        g = np.random.default_rng(upstream_seed).standard_normal(tuple(yt.shape))
        (yd * distnn.tensor(g)).sum().backward()
        (yt * torch.tensor(g)).sum().backward()
    gd = np.zeros(a.shape) if d.grad is None else np.asarray(d.grad)
    gt = np.zeros(a.shape) if t.grad is None else t.grad.numpy()
    return (np.asarray(yd.data), gd), (yt.detach().numpy(), gt)


def _assert_same(d, t, rtol=1e-12):
    for a, b in zip(d, t):
        assert a.shape == b.shape
        scale = np.nanmax(np.abs(np.where(np.isfinite(b), b, 0)), initial=1.0)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True)


# ----------------------------------------------------------------------------- ELU family
EDGES = np.array([math.nan, -math.inf, -1e-20, -1e-10, -0.0, 0.0, 1e-10, -0.5, 2.0, math.inf])


@pytest.mark.parametrize("name, fd, ft", [
    ("elu", lambda x: DF.elu(x), lambda x: TF.elu(x)),
    ("elu_alpha", lambda x: DF.elu(x, alpha=0.3), lambda x: TF.elu(x, alpha=0.3)),
    ("elu_module", lambda x: dnn.ELU(alpha=2.0)(x), lambda x: torch.nn.ELU(alpha=2.0)(x)),
    ("selu", lambda x: DF.selu(x), lambda x: TF.selu(x)),
    ("celu", lambda x: DF.celu(x, alpha=0.5), lambda x: TF.celu(x, alpha=0.5)),
], ids=lambda v: v if isinstance(v, str) else "")
def test_elu_family_at_nan_zero_and_tiny_inputs_is_pytorchs(name, fd, ft):
    """A NaN input takes the positive side's gradient (g, not NaN), as PyTorch's elu_backward: distnn's ELU
    took the negative one. Tiny negative inputs keep their relative precision (expm1): SELU/CELU computed
    e^x - 1 (0 at x = -1e-20, 8e-8 off at -1e-10)."""
    (od, gd), (ot, gt) = _both(fd, ft, EDGES)
    np.testing.assert_allclose(od, ot, rtol=1e-15, atol=0, equal_nan=True)
    np.testing.assert_allclose(gd, gt, rtol=1e-15, atol=0, equal_nan=True)
    assert not np.isnan(gd[0])


# ----------------------------------------------------------------------------- F.normalize, every p
P_ALL = (0.0, -1.0, -2.0, -0.5, 0.5, 1.0, 1.5, 2.0, 3.0, math.inf, -math.inf)
NORM_INPUTS = {
    "random": np.random.default_rng(0).standard_normal((3, 4)),
    "zeros": np.array([[0.0, 0.0, 0.0], [1.0, 0.0, -2.0], [0.0, 3.0, 0.0]]),
    "ties": np.array([[1.0, -1.0, 0.5], [2.0, 2.0, -2.0], [1e-13, 0.0, 0.0]]),
    "nan": np.array([[1.0, math.nan, 0.5], [2.0, 0.0, -2.0]]),
    "inf": np.array([[1.0, math.inf, 0.5], [2.0, 0.0, -2.0]]),
    "empty_batch": np.zeros((0, 3)),
}


@pytest.mark.parametrize("inputs", sorted(NORM_INPUTS))
@pytest.mark.parametrize("p", P_ALL)
def test_normalize_takes_every_p_as_pytorch(p, inputs):
    """p = 0 (the count of non-zeros, no gradient through the norm), negative p and -inf (the smallest |x|)
    were refused ("p must be > 0"); PyTorch's values and gradients, at zeros, ties, NaN and inf too."""
    a = NORM_INPUTS[inputs]
    _assert_same(*_both(lambda x: DF.normalize(x, p=p, dim=1), lambda x: TF.normalize(x, p=p, dim=1), a))
    if a.size:  # (over the empty dimension: the next test)
        _assert_same(*_both(lambda x: DF.normalize(x, p=p, dim=0, eps=0.5),
                            lambda x: TF.normalize(x, p=p, dim=0, eps=0.5), a))


@pytest.mark.parametrize("p", (-1.0, -0.5, math.inf, -math.inf))
def test_normalize_over_an_empty_dimension_is_refused_as_pytorch(p):
    """sum(|x|^p)^(1/p) for p < 0, max and min over no values have no value: PyTorch refuses, so does distnn
    (p = 0 and p > 0 give an empty result, as PyTorch's)."""
    with pytest.raises(RuntimeError):
        TF.normalize(torch.zeros((2, 0), dtype=torch.float64), p=p, dim=1)
    with pytest.raises(ValueError, match="empty"):
        DF.normalize(distnn.tensor(np.zeros((2, 0))), p=p, dim=1)
    for q in (0.0, 0.5, 2.0):
        assert DF.normalize(distnn.tensor(np.zeros((2, 0))), p=q, dim=1).shape == (2, 0)


@pytest.mark.parametrize("name, fd, ft", [
    ("clamp_min", lambda x: x.clamp(0.5, None), lambda x: x.clamp(0.5, None)),
    ("clamp_max", lambda x: distnn.clamp(x, max=0.5), lambda x: torch.clamp(x, max=0.5)),
    ("clamp_tensor_bounds", lambda x: distnn.clamp(distnn.tensor(np.zeros(5)), x - 0.5, x + 0.5),
     lambda x: torch.clamp(torch.zeros(5, dtype=torch.float64), x - 0.5, x + 0.5)),
    ("relu", lambda x: DF.relu(x - 0.5), lambda x: TF.relu(x - 0.5)),
    ("relu_module", lambda x: dnn.ReLU()(x - 0.5), lambda x: torch.nn.ReLU()(x - 0.5)),
], ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_an_inf_or_nan_gradient_at_a_cut_entry_gives_zero_as_pytorch(name, fd, ft, bad):
    """clamp and relu passed g * mask: inf * 0 = NaN where the entry was cut (F.normalize of a row with an inf
    and a 0 norm met it: the clamp to eps cuts the inf gradient of x / norm^2); PyTorch's give 0 there."""
    a = np.array([0.0, 1.0, -3.0, 0.25, 2.0])
    up = np.array([bad, 1.0, bad, bad, bad])
    d, t = distnn.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (fd(d) * distnn.tensor(up)).sum().backward()
        (ft(t) * torch.tensor(up)).sum().backward()
    np.testing.assert_array_equal(np.asarray(d.grad), t.grad.numpy())


# ----------------------------------------------------------------------------- RNN/GRU proj_size
@pytest.mark.parametrize("proj_size", [0, 2])
@pytest.mark.parametrize("cls", ["RNN", "GRU"])
def test_rnn_and_gru_refuse_proj_size_with_pytorchs_value_error(cls, proj_size):
    """PyTorch's RNN and GRU refuse the keyword itself (0 too) with a ValueError naming LSTM; distnn raised
    Python's TypeError of an unknown keyword."""
    msg = "proj_size argument is only supported for LSTM, not RNN or GRU"
    with pytest.raises(ValueError, match=re.escape(msg)):
        getattr(torch.nn, cls)(4, 3, proj_size=proj_size)
    with pytest.raises(ValueError, match=re.escape(msg)):
        getattr(dnn, cls)(4, 3, proj_size=proj_size)
    getattr(dnn, cls)(4, 3, 2, dtype=np.float64)  # (the other arguments as before)


# ----------------------------------------------------------------------------- convolutions' messages
CONV_ERRORS = [
    (lambda: dnn.Conv1d(2, 3, 3), (1, 3, 5), r"input channels"),
    (lambda: dnn.Conv1d(2, 3, 3), (1, 2, 2), r"kernel size \(3,\) .*larger than the padded input \(2,\)"),
    (lambda: dnn.Conv1d(2, 3, 3, padding=-1), (1, 2, 5), r"padding must be non-negative"),
    (lambda: dnn.Conv1d(2, 3, 3, padding=3, padding_mode="reflect"), (1, 2, 2), r"out of range"),
    (lambda: dnn.Conv2d(2, 3, 3), (1, 3, 5, 5), r"3 channels"),
    (lambda: dnn.Conv2d(2, 3, 3, padding=3, padding_mode="reflect"), (1, 2, 2, 2), r"out of range"),
    (lambda: dnn.Conv3d(2, 3, 3), (1, 2, 2, 2, 2), r"larger than the padded input"),
    (lambda: dnn.Conv3d(2, 3, 3, padding=3, padding_mode="circular"), (1, 2, 2, 2, 2), r"out of range"),
    (lambda: dnn.ConvTranspose1d(2, 3, 3), (1, 3, 5), r"input has 3 channels but the weight \(2, 3, 3\)"),
    (lambda: dnn.ConvTranspose1d(2, 3, 3, padding=3), (1, 2, 1), r"output size \(-3,\) is negative"),
    (lambda: dnn.ConvTranspose2d(2, 3, 3), (1, 3, 5, 5), r"input has 3 channels"),
]


@pytest.mark.parametrize("make, shape, match", CONV_ERRORS)
def test_convolution_errors_carry_one_prefix_in_the_layers_terms(make, shape, match):
    """"ConvTranspose1d: conv_transpose1d: ...", "Conv1d: conv1d: ...", "Conv3d: conv3d: ...": the layer's
    name once; Conv1d and ConvTranspose1d's messages gave the shapes of the conv2d they run as ((1, 3) kernels,
    (2, 3, 1, 3) weights)."""
    layer = make()
    with pytest.raises(ValueError, match=match) as info:
        dnn.Sequential(layer)(distnn.tensor(np.zeros(shape)))
    msg = str(info.value)
    name = type(layer).__name__
    assert msg.startswith(f"{name} '0': "), msg
    assert not re.match(rf"{name} '0': (conv|pad)\w*: ", msg), msg
    assert ", 1, " not in msg.split("(input shape")[0] or len(shape) > 3, msg  # (no conv2d view of a 1-D one)


def test_functional_conv1d_errors_are_in_1d_terms():
    x, w = distnn.tensor(np.zeros((1, 2, 2))), distnn.tensor(np.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match=r"^conv1d: kernel size \(3,\) \(dilated: \(3,\)\) is larger than the padded "
                                         r"input \(2,\) \(input shape \(1, 2, 2\)"):
        DF.conv1d(x, w)
    with pytest.raises(ValueError, match=r"^conv_transpose1d: input has 2 channels but the weight \(3, 2, 3\)"):
        DF.conv_transpose1d(x, w)


# ----------------------------------------------------------------------------- adaptive pools to size 0
ZERO_SIZES = [0, (0, 2), (2, 0), (None, 0), (0, None)]


def _empty_case(fd, ft, shape):
    """Forward as PyTorch (the same empty shape); the gradient: zeros of the input's shape, where PyTorch's
    backward refuses ("Expected grad_output to have non-zero size") -- the deliberate difference."""
    a = np.arange(float(np.prod(shape))).reshape(shape)
    d, t = distnn.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    yd, yt = fd(d), ft(t)
    yd, yt = (yd[0], yt[0]) if isinstance(yd, tuple) else (yd, yt)
    assert tuple(yd.shape) == tuple(yt.shape) and 0 in tuple(yt.shape)
    assert yd.dtype == np.float64
    with pytest.raises(RuntimeError, match="non-zero size"):
        yt.sum().backward()
    yd.sum().backward()
    np.testing.assert_array_equal(np.asarray(d.grad), np.zeros(shape))


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (3, 4, 5), (0, 3, 4, 5)])
@pytest.mark.parametrize("size", ZERO_SIZES, ids=str)
def test_adaptive_pools_to_an_empty_output_as_pytorch(size, shape):
    """Refused ("output_size must be positive"); PyTorch gives an empty output."""
    _empty_case(lambda x: DF.adaptive_avg_pool2d(x, size), lambda x: TF.adaptive_avg_pool2d(x, size), shape)
    _empty_case(lambda x: dnn.AdaptiveAvgPool2d(size)(x), lambda x: torch.nn.AdaptiveAvgPool2d(size)(x), shape)
    _empty_case(lambda x: DF.adaptive_max_pool2d(x, size), lambda x: TF.adaptive_max_pool2d(x, size), shape)
    d, t = (DF.adaptive_max_pool2d(distnn.tensor(np.ones(shape)), size, return_indices=True),
            TF.adaptive_max_pool2d(torch.ones(shape, dtype=torch.float64), size, return_indices=True))
    assert tuple(d[1].shape) == tuple(t[1].shape) and d[1].dtype == np.int64
    _empty_case(lambda x: dnn.AdaptiveMaxPool2d(size)(x), lambda x: torch.nn.AdaptiveMaxPool2d(size)(x), shape)


@pytest.mark.parametrize("shape", [(2, 3, 5), (3, 5)])
def test_adaptive_avg_pool1d_to_an_empty_output_as_pytorch(shape):
    _empty_case(lambda x: DF.adaptive_avg_pool1d(x, 0), lambda x: TF.adaptive_avg_pool1d(x, 0), shape)
    _empty_case(lambda x: dnn.AdaptiveAvgPool1d(0)(x), lambda x: torch.nn.AdaptiveAvgPool1d(0)(x), shape)


@pytest.mark.parametrize("shape, kw", [
    ((2, 3, 5), dict(size=0)), ((2, 3, 5), dict(scale_factor=0.1)), ((2, 3, 4, 5), dict(size=(2, 0))),
    ((2, 3, 4, 5), dict(size=0)), ((2, 3, 4, 5), dict(scale_factor=0.2)),
], ids=str)
def test_interpolate_area_to_an_empty_output_as_pytorch(shape, kw):
    _empty_case(lambda x: DF.interpolate(x, mode="area", **kw), lambda x: TF.interpolate(x, mode="area", **kw), shape)


def test_adaptive_pool_refusals_are_pytorchs():
    """A negative size, and an input with an empty H or W (no cells for a window's mean: adaptive_avg_pool2d
    divided by zero, adaptive_avg_pool1d gave NaN), are refused as PyTorch; an empty C only by the max pool."""
    for fd, ft, shape, size in [
        (DF.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, (2, 3, 4, 5), -1),
        (DF.adaptive_max_pool2d, TF.adaptive_max_pool2d, (2, 3, 4, 5), (2, -1)),
        (DF.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, (2, 3, 0, 5), (2, 2)),
        (DF.adaptive_avg_pool2d, TF.adaptive_avg_pool2d, (2, 3, 4, 0), 0),
        (DF.adaptive_avg_pool1d, TF.adaptive_avg_pool1d, (2, 3, 0), 2),
        (DF.adaptive_max_pool2d, TF.adaptive_max_pool2d, (2, 0, 4, 5), 2),
    ]:
        with pytest.raises(RuntimeError):
            ft(torch.zeros(shape, dtype=torch.float64), size)
        with pytest.raises(ValueError):
            fd(distnn.tensor(np.zeros(shape)), size)
    out = DF.adaptive_avg_pool2d(distnn.tensor(np.zeros((2, 0, 4, 5))), 2)  # (PyTorch's forward takes it too)
    assert out.shape == TF.adaptive_avg_pool2d(torch.zeros((2, 0, 4, 5)), 2).shape


# ----------------------------------------------------------------------------- group/instance norm of nothing
@pytest.mark.parametrize("which", ["group_norm", "instance_norm", "GroupNorm", "InstanceNorm1d"])
def test_group_and_instance_norm_of_an_empty_batch_as_pytorch_without_warnings(which):
    """An empty batch: PyTorch's output and gradients (zeros for the weight and bias); distnn's numpy warned
    "Mean of empty slice" (group_norm reshaped it to groups of no values; instance_norm's backward did too)."""
    def run(lib):
        x = (torch.tensor if lib is torch else distnn.tensor)(np.zeros((0, 4, 3)), requires_grad=True)
        if which in ("GroupNorm", "InstanceNorm1d"):
            nn_ = torch.nn if lib is torch else dnn
            m = (nn_.GroupNorm(2, 4) if which == "GroupNorm" else nn_.InstanceNorm1d(4, affine=True)).double()
            y, params = m(x), [m.weight, m.bias]
        else:
            w, b = ((torch.tensor if lib is torch else distnn.tensor)(np.full(4, v), requires_grad=True)
                    for v in (1.5, 0.5))
            f = getattr(TF if lib is torch else DF, which)
            y, params = (f(x, 2, w, b) if which == "group_norm" else f(x, weight=w, bias=b)), [w, b]
        y.sum().backward()
        return [np.asarray(y.detach().numpy() if lib is torch else y.data)] + [
            np.asarray(t.grad.numpy() if lib is torch else t.grad) for t in [x] + params]

    if which in ("instance_norm", "InstanceNorm1d"):  # (PyTorch's with a weight fails there: an IndexError)
        with pytest.raises(IndexError):
            run(torch)
        ref = [np.zeros((0, 4, 3)), np.zeros((0, 4, 3)), np.zeros(4), np.zeros(4)]  # (its group norm's)
    else:
        ref = run(torch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = run(distnn)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_empty_spatial_group_and_instance_norm_warn_of_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in (lambda x: DF.group_norm(x, 2), lambda x: DF.instance_norm(x)):
            x = distnn.tensor(np.zeros((2, 4, 0)), requires_grad=True)
            y = f(x)
            y.sum().backward()
            assert y.shape == (2, 4, 0) and x.grad.shape == (2, 4, 0)


def test_instance_norm_of_an_empty_batch_leaves_the_running_statistics_alone():
    """A deliberate difference: PyTorch's running statistics become NaN (a mean over no instance), which
    poisons every later evaluation; distnn's stay, as batch norm's do in both libraries on an empty batch."""
    tm = torch.nn.InstanceNorm1d(3, track_running_stats=True)
    tm(torch.zeros((0, 3, 4)))
    assert torch.isnan(tm.running_mean).all()
    dm = dnn.InstanceNorm1d(3, track_running_stats=True)
    dm(distnn.tensor(np.zeros((0, 3, 4), np.float32)))
    np.testing.assert_array_equal(np.asarray(dm.running_mean), np.zeros(3))
    np.testing.assert_array_equal(np.asarray(dm.running_var), np.ones(3))
    bm = torch.nn.BatchNorm1d(3)
    bm(torch.zeros((0, 3)))
    assert not torch.isnan(bm.running_mean).any()
