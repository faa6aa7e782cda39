"""The padding modules (Constant/Zero/Reflection/Replication/CircularPad1d/2d/3d), F.pad's gaps filled
with them, PixelShuffle/PixelUnshuffle/ChannelShuffle (and their F. functions) and Softmax2d against
PyTorch 2.13 (the oracle): outputs and gradients in float64 (tight) and float32 (loose), refusals (error
type and gist; where PyTorch raises its generic RuntimeError distnn raises ValueError, as elsewhere), reprs.

Deliberate differences, each stated in its test: F.pad pads any dims in the reflect, replicate and circular
modes (PyTorch only the last 1-3 of a 2-D to 5-D input; the modules refuse as PyTorch); PyTorch's
pixel_unshuffle of an empty input returns it unchanged, of the wrong shape, distnn's has the right one.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
import distnn.functional as DF  # noqa: E402
from distnn import nn as dnn  # noqa: E402
from distnn.testing import check_grad  # noqa: E402
from torch_twins import twin_models  # noqa: E402

TF = torch.nn.functional
TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}


def _pair(fd, ft, x, dtype=np.float64, seed=1):
    """``fd``/``ft`` of the same array, backpropagated with the same random upstream gradient; the outputs
    and gradients compared."""
    x = np.asarray(x, dtype=dtype)
    d, t = distnn.tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
    yd, yt = fd(d), ft(t)
    assert tuple(yd.shape) == tuple(yt.shape) and yd.dtype == dtype
    np.testing.assert_allclose(np.asarray(yd.data), yt.detach().numpy(), **TOL[dtype])
    g = np.random.default_rng(seed).standard_normal(tuple(yt.shape)).astype(dtype)
    (yd * distnn.tensor(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(np.asarray(d.grad), t.grad.numpy(), **TOL[dtype])


def _refused_alike(fd, ft, match=None):
    """PyTorch refuses ``ft()``; distnn refuses ``fd()`` with the same error type (ValueError for PyTorch's
    RuntimeError) and a message matching ``match``."""
    with pytest.raises(Exception) as theirs:
        ft()
    want = ValueError if type(theirs.value) is RuntimeError else type(theirs.value)
    with pytest.raises(want, match=match):
        fd()
    return str(theirs.value)


# ---------------------------------------------------------------------------- F.pad
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("batched", [True, False])
def test_pad_modes_on_1_2_3_dims_match_torch(dims, mode, batched, dtype):
    """Each mode on the last 1, 2 or 3 dims of an (N, C, ...) or (C, ...) input, amounts up to PyTorch's
    bounds (reflect: the size - 1; circular: the size) and negative ones (a crop)."""
    spatial = (5, 4, 3)[:dims]
    shape = ((2,) if batched else ()) + (3,) + spatial
    hi = {"reflect": -1, "circular": 0}.get(mode, 2)  # (the largest amount: the size plus this)
    pads = [tuple(v for n in reversed(spatial) for v in (n + hi, 1)),
            tuple(v for n in reversed(spatial) for v in (-1, min(2, n + hi))),
            tuple(v for n in reversed(spatial) for v in (0, 1))]
    x = np.random.default_rng(0).standard_normal(shape)
    for pad in pads:
        kw = dict(mode=mode) if mode != "constant" else dict(value=-0.5)
        _pair(lambda a: DF.pad(a, pad, **kw), lambda a: TF.pad(a, pad, **kw), x, dtype)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_gradients_check_numerically(mode):
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5))
    check_grad(lambda a: DF.pad(a, (2, -1, 3, 1), mode=mode), x)


def test_pad_of_no_amounts_is_a_new_tensor_as_torchs():
    # (refused before: "pad_width has 0 pairs but the tensor has 3 dimensions")
    x = np.random.default_rng(3).standard_normal((2, 3, 4))
    _pair(lambda a: DF.pad(a, ()), lambda a: TF.pad(a, ()), x)
    d = distnn.tensor(x)
    for mode in ("constant", "reflect"):  # (PyTorch refuses reflect of no amounts: F.pad's laxer dims)
        y = DF.pad(d, [], mode=mode)
        assert not np.shares_memory(np.asarray(y.data), np.asarray(d.data))
        np.testing.assert_array_equal(np.asarray(y.data), x)


@pytest.mark.parametrize("pad", [(1.0, 1), (1, 2, 0.5, 0), (True, 1)])
def test_pad_refuses_amounts_that_are_not_ints_as_torch(pad):
    # (a float was read as numpy's pairs before: "pad_width has 2 pairs but the tensor has 3 dimensions")
    x = np.zeros((1, 2, 3))
    _refused_alike(lambda: DF.pad(distnn.tensor(x), pad), lambda: TF.pad(torch.tensor(x), pad), "must be ints")


def test_pad_refuses_odd_and_too_long_paddings_as_torch():
    x = np.zeros((2, 3))
    msg = _refused_alike(lambda: DF.pad(distnn.tensor(x), (1, 1, 1)), lambda: TF.pad(torch.tensor(x), (1, 1, 1)),
                         "divisible by 2")
    assert "divisible by 2" in msg
    msg = _refused_alike(lambda: DF.pad(distnn.tensor(x), (1,) * 6), lambda: TF.pad(torch.tensor(x), (1,) * 6),
                         "at most two times the input dimension")
    assert "two times the input dimension" in msg


@pytest.mark.parametrize("shape, pad", [((1, 2, 1, 3), (0, 0, 1, -2)), ((2, 2, 1, 3), (-1, 0, -2, 1)),
                                        ((1, 3), (3, -3)), ((1, 2, 4), (4, 0))])
def test_reflect_padding_not_smaller_than_the_size_is_refused_as_torch(shape, pad):
    """An amount >= its dimension, also where the crop on the other side leaves an empty result (distnn gave
    that empty result before, unchecked)."""
    x = np.random.default_rng(4).standard_normal(shape)
    msg = _refused_alike(lambda: DF.pad(distnn.tensor(x), pad, mode="reflect"),
                         lambda: TF.pad(torch.tensor(x), pad, mode="reflect"), "out of range for mode='reflect'")
    assert "Padding size should be less than the corresponding input dimension" in msg


def test_circular_padding_beyond_the_size_is_refused_as_torch():
    x = np.zeros((1, 2, 3))
    _refused_alike(lambda: DF.pad(distnn.tensor(x), (4, 0), mode="circular"),
                   lambda: TF.pad(torch.tensor(x), (4, 0), mode="circular"), "out of range for mode='circular'")


# ---------------------------------------------------------------------------- the padding modules
KINDS = ("Constant", "Zero", "Reflection", "Replication", "Circular")


def _modules(kind, dims, padding):
    name = f"{kind}Pad{dims}d"
    args = (padding, 1.5) if kind == "Constant" else (padding,)
    return getattr(dnn, name)(*args), getattr(torch.nn, name)(*args)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dims", [1, 2, 3])
def test_padding_modules_match_torch_batched_and_unbatched(kind, dims, dtype):
    rng = np.random.default_rng(dims)
    for padding in (2, tuple(int(v) for v in rng.integers(-1, 3, 2 * dims)), (1, 2) * dims):
        dm, tm = _modules(kind, dims, padding)
        assert dm.padding == tm.padding and getattr(dm, "value", None) == getattr(tm, "value", None)
        for shape in ((2, 3) + (4, 5, 3)[:dims], (3,) + (4, 5, 3)[:dims]):
            _pair(dm, tm, rng.standard_normal(shape), dtype)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("ndim", [1, 2, 3, 4, 5, 6])
def test_padding_modules_take_and_refuse_the_inputs_torch_does(kind, dims, ndim):
    """Constant padding takes any input with enough dims; the others (C, *spatial) or (N, C, *spatial) only:
    NotImplementedError from F.pad for reflect and replicate, the circular modules' own ValueError."""
    dm, tm = _modules(kind, dims, 1)
    x = np.random.default_rng(5).standard_normal((3,) * ndim)
    try:
        yt = tm(torch.tensor(x))
    except Exception:  # noqa: BLE001
        _refused_alike(lambda: dm(distnn.tensor(x)), lambda: tm(torch.tensor(x)))
        return
    np.testing.assert_array_equal(np.asarray(dm(distnn.tensor(x)).data), yt.numpy())


def test_padding_module_refusals_say_what_is_wrong():
    x = distnn.tensor(np.zeros((3, 4)))
    with pytest.raises(NotImplementedError, match="Padding size 4 is not supported for 2D input"):
        dnn.ReflectionPad2d(1)(x)
    with pytest.raises(ValueError, match=r"^expected 3D or 4D input \(got 2D input\)$"):
        dnn.CircularPad2d(1)(x)
    with pytest.raises(ValueError, match="out of range for mode='reflect'"):
        dnn.ReflectionPad1d(4)(x)
    with pytest.raises(TypeError):
        dnn.ConstantPad1d(2)  # (value has no default, as PyTorch's)
    with pytest.raises(TypeError, match="must be ints"):
        dnn.ReplicationPad1d(1.5)(x)


@pytest.mark.parametrize("make", [
    lambda nn: nn.ReflectionPad2d((1, 1, 2, 0)), lambda nn: nn.ReflectionPad1d(3), lambda nn: nn.ReflectionPad3d(1),
    lambda nn: nn.ReplicationPad1d([1, 2]), lambda nn: nn.ReplicationPad2d(2), lambda nn: nn.ReplicationPad3d(1),
    lambda nn: nn.CircularPad1d(1), lambda nn: nn.CircularPad2d((1, 2, 3, 4)), lambda nn: nn.CircularPad3d(2),
    lambda nn: nn.ConstantPad1d(2, 3.5), lambda nn: nn.ConstantPad2d((1, 0, 2, 1), -1),
    lambda nn: nn.ConstantPad3d(1, 0.0), lambda nn: nn.ZeroPad1d((1, 2)), lambda nn: nn.ZeroPad2d(1),
    lambda nn: nn.ZeroPad3d((1, 2)), lambda nn: nn.PixelShuffle(3), lambda nn: nn.PixelUnshuffle(2),
    lambda nn: nn.ChannelShuffle(4), lambda nn: nn.Softmax2d(),
])
def test_reprs_and_state_are_torchs(make):
    dm, tm = make(dnn), make(torch.nn)
    assert repr(dm) == repr(tm)
    assert dm.state_dict() == {} and tm.state_dict() == {}  # (no parameters nor buffers)


def test_zero_pads_are_constant_pads_as_torchs():
    for dims in (1, 2, 3):
        zero, const = getattr(dnn, f"ZeroPad{dims}d")(2), getattr(dnn, f"ConstantPad{dims}d")
        assert isinstance(zero, const) and zero.value == 0.0


def test_a_padding_module_in_a_network_trains_as_torchs():
    """ReflectionPad2d before a conv (a 'same' convolution with reflect borders): one SGD step in both
    libraries from the same weights gives the same weights."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 6, 5))
    tnet, dnet = twin_models(lambda nn: nn.Sequential(nn.ReflectionPad2d((1, 1, 2, 0)), nn.Conv2d(3, 4, 3), nn.ReLU()),
                             seed=None, dtype=np.float64)
    dopt, topt = distnn.optim.SGD(dnet.parameters(), lr=0.1), torch.optim.SGD(tnet.parameters(), lr=0.1)
    (dnet(distnn.tensor(x)) ** 2).mean().backward()
    (tnet(torch.tensor(x)) ** 2).mean().backward()
    dparams = dict(dnet.named_parameters())
    for name, p in tnet.named_parameters():
        np.testing.assert_allclose(np.asarray(dparams[name].grad), p.grad.numpy(), rtol=1e-10, atol=1e-12)
    dopt.step()
    topt.step()
    for name, p in tnet.named_parameters():
        np.testing.assert_allclose(np.asarray(dparams[name].data), p.detach().numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------- pixel and channel shuffles
SHUFFLES = {
    "pixel_shuffle": ((2, 18, 3, 4), 3), "pixel_shuffle_5d": ((2, 3, 8, 2, 3), 2),
    "pixel_shuffle_unbatched": ((4, 2, 5), 2), "pixel_unshuffle": ((2, 3, 6, 9), 3),
    "pixel_unshuffle_5d": ((2, 2, 1, 4, 6), 2), "pixel_unshuffle_unbatched": ((2, 4, 2), 2),
    "channel_shuffle": ((2, 6, 3, 4), 3), "channel_shuffle_3d": ((2, 8, 5), 4),
    "channel_shuffle_5d": ((1, 6, 2, 3, 2), 2),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", list(SHUFFLES))
def test_shuffles_match_torch(case, dtype):
    shape, factor = SHUFFLES[case]
    fn = "_".join(case.split("_")[:2])
    x = np.random.default_rng(7).standard_normal(shape)
    _pair(lambda a: getattr(DF, fn)(a, factor), lambda a: getattr(TF, fn)(a, factor), x, dtype)
    module = {"pixel_shuffle": "PixelShuffle", "pixel_unshuffle": "PixelUnshuffle", "channel_shuffle": "ChannelShuffle"}
    _pair(getattr(dnn, module[fn])(factor), getattr(torch.nn, module[fn])(factor), x, dtype)
    check_grad(lambda a: getattr(DF, fn)(a, factor), x)


def test_shuffles_layouts_are_torchs_documented_ones():
    x = np.arange(1, 17, dtype=np.float32).reshape(1, 4, 2, 2)  # (PyTorch's ChannelShuffle example)
    np.testing.assert_array_equal(np.asarray(dnn.ChannelShuffle(2)(distnn.tensor(x)).data)[0, :, 0, 0], [1, 9, 5, 13])
    y = np.asarray(DF.pixel_shuffle(distnn.tensor(x), 2).data)  # channel i*2 + j to offset (i, j) of each block
    np.testing.assert_array_equal(y[0, 0, :2, :2], [[1, 5], [9, 13]])
    z = np.random.default_rng(8).standard_normal((2, 3, 12, 6))
    back = DF.pixel_shuffle(DF.pixel_unshuffle(distnn.tensor(z), 3), 3)
    np.testing.assert_array_equal(np.asarray(back.data), z)
    ints = np.arange(48).reshape(1, 12, 2, 2)  # (any dtype: a permutation)
    for fn, arg in ((DF.pixel_shuffle, 2), (DF.pixel_unshuffle, 2), (DF.channel_shuffle, 3)):
        out = fn(distnn.tensor(ints), arg)
        assert out.dtype == np.int64
        np.testing.assert_array_equal(np.asarray(out.data), getattr(TF, fn.__name__)(torch.tensor(ints), arg).numpy())


def test_shuffles_of_empty_inputs():
    """The right shapes and a zero gradient. PyTorch's pixel_unshuffle returns an empty input unchanged (the
    shape wrong), and so pixel_shuffle's backward refuses its own gradient: the deliberate difference."""
    for fn, shape, r, want in ((DF.pixel_shuffle, (0, 18, 2, 2), 3, (0, 2, 6, 6)),
                               (DF.pixel_unshuffle, (0, 2, 6, 6), 3, (0, 18, 2, 2)),
                               (DF.pixel_unshuffle, (2, 0, 6, 6), 3, (2, 0, 2, 2)),
                               (DF.channel_shuffle, (0, 4, 3), 2, (0, 4, 3))):
        x = distnn.tensor(np.zeros(shape), requires_grad=True)
        y = fn(x, r)
        assert y.shape == want
        y.sum().backward()
        assert x.grad.shape == shape
    assert TF.pixel_unshuffle(torch.zeros(0, 2, 6, 6), 3).shape == (0, 2, 6, 6)  # (PyTorch's: the input's)


@pytest.mark.parametrize("call, match", [
    (lambda F, x: F.pixel_shuffle(x(2, 2), 2), "pixel_shuffle expects input to have at least 3 dimensions"),
    (lambda F, x: F.pixel_shuffle(x(5, 2, 2), 2), "input.size\\(-3\\)=5 is not divisible by 4"),
    (lambda F, x: F.pixel_shuffle(x(4, 2, 2), 0), "pixel_shuffle expects a positive upscale_factor, but got 0"),
    (lambda F, x: F.pixel_shuffle(x(2, 2), 0), "pixel_shuffle expects input to have at least 3 dimensions"),
    (lambda F, x: F.pixel_shuffle(x(4, 2, 2), -1), "positive upscale_factor, but got -1"),
    (lambda F, x: F.pixel_shuffle(x(4, 2, 2), 2.0), "'upscale_factor' .*must be int, not float"),
    (lambda F, x: F.pixel_shuffle(x(4, 2, 2), True), "'upscale_factor' .*must be int, not bool"),
    (lambda F, x: F.pixel_unshuffle(x(4, 4), 2), "pixel_unshuffle expects input to have at least 3 dimensions"),
    (lambda F, x: F.pixel_unshuffle(x(1, 3, 4), 2), "height to be divisible by downscale_factor.*size\\(-2\\)=3"),
    (lambda F, x: F.pixel_unshuffle(x(1, 4, 3), 2), "width to be divisible by downscale_factor.*size\\(-1\\)=3"),
    (lambda F, x: F.pixel_unshuffle(x(1, 4, 4), 0), "positive downscale_factor, but got 0"),
    (lambda F, x: F.pixel_unshuffle(x(2, 2), 0), "pixel_unshuffle expects input to have at least 3 dimensions"),
    (lambda F, x: F.channel_shuffle(x(2, 2), 0), "channel_shuffle expects input with > 2 dims"),
    (lambda F, x: F.pixel_unshuffle(x(1, 4, 4), 2.0), "'downscale_factor' .*must be int, not float"),
    (lambda F, x: F.channel_shuffle(x(4, 2), 2), "channel_shuffle expects input with > 2 dims.*\\[4, 2\\]"),
    (lambda F, x: F.channel_shuffle(x(1, 5, 2), 2), "Got 5 channels and 2 groups"),
    (lambda F, x: F.channel_shuffle(x(1, 4, 2), 0), "groups to divide channels in must be positive.*:0"),
    (lambda F, x: F.channel_shuffle(x(1, 4, 2), -2), "must be positive.*:-2"),
    (lambda F, x: F.channel_shuffle(x(1, 4, 2), 2.0), "'groups' .*must be int, not float"),
])
def test_shuffles_refuse_as_torch(call, match):
    """The same refusals, each message matching PyTorch's own (``match`` is checked against both)."""
    msg = _refused_alike(lambda: call(DF, lambda *s: distnn.tensor(np.zeros(s))),
                         lambda: call(TF, lambda *s: torch.zeros(s)), match)
    assert re.search(match, msg), msg


# ---------------------------------------------------------------------------- Softmax2d
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("shape", [(2, 5, 3, 4), (5, 3, 4), (0, 3, 2, 2), (1, 1, 1, 1)])
def test_softmax2d_matches_torch(shape, dtype):
    x = np.random.default_rng(9).standard_normal(shape) * 20  # (large: the max subtracted)
    _pair(dnn.Softmax2d(), torch.nn.Softmax2d(), x, dtype)
    y = np.asarray(dnn.Softmax2d()(distnn.tensor(x)).data)
    np.testing.assert_allclose(y.sum(axis=-3), np.ones(shape[:-3] + shape[-2:]), rtol=1e-12)


@pytest.mark.parametrize("ndim", [1, 2, 5])
def test_softmax2d_refuses_other_than_3d_or_4d_as_torch(ndim):
    x = np.zeros((2,) * ndim)
    msg = _refused_alike(lambda: dnn.Softmax2d()(distnn.tensor(x)), lambda: torch.nn.Softmax2d()(torch.tensor(x)))
    with pytest.raises(ValueError) as ours:
        dnn.Softmax2d()(distnn.tensor(x))
    assert str(ours.value) == msg


@pytest.mark.parametrize("shape, groups", [((2, 6, 3, 4), 3), ((2, 8, 5), 4), ((1, 4, 2), 1), ((0, 4, 3), 2)])
def test_native_channel_shuffle_is_torchs_values_without_a_derivative(shape, groups):
    """channel_shuffle's values (a new array, never a view), and as PyTorch's: an input that requires grad
    gives an output that requires grad, and a backward reaching it is refused with PyTorch's message, even
    one that also reaches other leaves; under no_grad, or for a plain input, nothing records."""
    x = np.random.default_rng(3).standard_normal(shape)
    d, t = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = distnn.native_channel_shuffle(d, groups), torch.native_channel_shuffle(t, groups)
    np.testing.assert_array_equal(np.asarray(yd.data), yt.detach().numpy())
    np.testing.assert_array_equal(np.asarray(DF.native_channel_shuffle(d, groups).data), yt.detach().numpy())
    assert yd.requires_grad and yt.requires_grad and not np.shares_memory(np.asarray(yd.data), x)
    wd, wt = distnn.tensor(np.ones(shape), requires_grad=True), torch.ones(shape, requires_grad=True)
    for lib, y, w in ((torch, yt, wt), (distnn, yd, wd)):
        with pytest.raises(RuntimeError, match="derivative for aten::native_channel_shuffle is not implemented"):
            (y * 2 + w).sum().backward()
    with distnn.no_grad():
        assert not distnn.native_channel_shuffle(d, groups).requires_grad
    assert not distnn.native_channel_shuffle(distnn.tensor(x), groups).requires_grad
    ints = np.arange(24).reshape(1, 12, 2)
    np.testing.assert_array_equal(np.asarray(distnn.native_channel_shuffle(distnn.tensor(ints), 3).data),
                                  torch.native_channel_shuffle(torch.tensor(ints), 3).numpy())


@pytest.mark.parametrize("call, match", [
    (lambda F, x: F.native_channel_shuffle(x(4, 2), 2), "channel_shuffle expects input with > 2 dims.*\\[4, 2\\]"),
    (lambda F, x: F.native_channel_shuffle(x(1, 5, 2), 2), "Got 5 channels and 2 groups"),
    (lambda F, x: F.native_channel_shuffle(x(1, 4, 2), 0), "groups to divide channels in must be positive.*:0"),
    (lambda F, x: F.native_channel_shuffle(x(1, 4, 2), 2.0), "'groups' .*must be int, not float"),
])
def test_native_channel_shuffle_refuses_as_torch(call, match):
    _refused_alike(lambda: call(distnn, lambda *s: distnn.tensor(np.zeros(s))),
                   lambda: call(torch, lambda *s: torch.zeros(s)), match)
