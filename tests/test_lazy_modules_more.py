"""nn.LazyConvTranspose1d/2d/3d, nn.LazyBatchNorm1d/2d/3d, nn.LazyInstanceNorm1d/2d/3d and nn.UninitializedBuffer
(PyTorch 2.13's): sizes from the first input, the same parameters as the plain layer of that shape (the same
draws from the same seed), the module becomes that layer and then matches PyTorch's with the same weights;
reprs, placeholders, refusals, state_dict/load_state_dict before the first forward."""
import numpy as np
import pytest
import torch

import distnn
import distnn.nn as nn
from distnn.distributed import DataParallel

from test_lazy_modules import _lazy_and_plain

R = np.random.default_rng(0)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)

CONV_TRANSPOSES = [
    ("1", lambda **k: nn.LazyConvTranspose1d(4, 3, stride=2, output_padding=1, **k),
     lambda c, **k: nn.ConvTranspose1d(c, 4, 3, stride=2, output_padding=1, **k), (2, 6, 5)),
    ("2", lambda **k: nn.LazyConvTranspose2d(4, (2, 3), padding=1, dilation=2, groups=2, **k),
     lambda c, **k: nn.ConvTranspose2d(c, 4, (2, 3), padding=1, dilation=2, groups=2, **k), (2, 6, 4, 5)),
    ("3", lambda **k: nn.LazyConvTranspose3d(6, 2, stride=(1, 2, 2), groups=3, **k),
     lambda c, **k: nn.ConvTranspose3d(c, 6, 2, stride=(1, 2, 2), groups=3, **k), (1, 6, 2, 3, 4)),
]


@pytest.mark.parametrize("nd,lazy_fn,plain_fn,shape", CONV_TRANSPOSES)
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_lazy_conv_transpose_draws_as_the_plain_layer_and_becomes_it(nd, lazy_fn, plain_fn, shape, batched, bias):
    x = R.standard_normal(shape if batched else shape[1:]).astype(np.float32)
    lazy, y, plain = _lazy_and_plain(lambda: lazy_fn(bias=bias), lambda: plain_fn(6, bias=bias), x)
    assert type(lazy) is type(plain) and lazy.in_channels == 6
    assert lazy.weight.shape == plain.weight.shape == (6, plain.out_channels // plain.groups) + plain.kernel_size
    np.testing.assert_array_equal(lazy.weight.data, plain.weight.data)
    if bias:
        np.testing.assert_array_equal(lazy.bias.data, plain.bias.data)
    else:
        assert lazy.bias is None
    np.testing.assert_array_equal(y.data, plain(x).data)


def test_lazy_conv_transpose_draws_from_its_own_generator():
    x = np.ones((1, 2, 3, 3, 3), dtype=np.float32)
    lazy = nn.LazyConvTranspose3d(4, 2, generator=np.random.default_rng(5))
    distnn.manual_seed(0)
    lazy(x)
    plain = nn.ConvTranspose3d(2, 4, 2, generator=np.random.default_rng(5))
    np.testing.assert_array_equal(lazy.weight.data, plain.weight.data)
    np.testing.assert_array_equal(lazy.bias.data, plain.bias.data)


@pytest.mark.parametrize("nd,lazy_fn,plain_fn,shape", CONV_TRANSPOSES)
def test_lazy_conv_transpose_then_matches_torch(nd, lazy_fn, plain_fn, shape):
    x = R.standard_normal(shape)
    lazy = lazy_fn(dtype="float64")
    xd = distnn.Tensor(x, requires_grad=True)
    y = lazy(xd)
    ref = plain_fn(6)  # (for the arguments: the torch twin is built from them)
    tm = getattr(torch.nn, f"ConvTranspose{nd}d")(6, ref.out_channels, ref.kernel_size, stride=ref.stride,
                                                   padding=ref.padding, output_padding=ref.output_padding,
                                                   groups=ref.groups, dilation=ref.dilation, dtype=torch.float64)
    with torch.no_grad():
        tm.weight.copy_(torch.from_numpy(lazy.weight.data))
        tm.bias.copy_(torch.from_numpy(lazy.bias.data))
    xt = torch.from_numpy(x).requires_grad_()
    yt = tm(xt)
    g = R.standard_normal(tuple(yt.shape))
    y.backward(g)
    yt.backward(torch.from_numpy(g))
    for ours, theirs in ((y.data, yt), (xd.grad, xt.grad), (lazy.weight.grad, tm.weight.grad),
                         (lazy.bias.grad, tm.bias.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_lazy_conv_transpose_first_call_takes_output_size():
    m = nn.LazyConvTranspose2d(4, 3, stride=2)
    assert m(np.ones((2, 3, 4, 4), dtype=np.float32), output_size=(10, 10)).shape == (2, 4, 10, 10)
    assert type(m) is nn.ConvTranspose2d


NORMS = [
    ("BatchNorm1d", {}, (6, 3)),
    ("BatchNorm1d", {"affine": False, "momentum": None}, (5, 3, 4)),
    ("BatchNorm2d", {"bias": False, "momentum": 0.3}, (4, 3, 2, 3)),
    ("BatchNorm3d", {"track_running_stats": False}, (3, 2, 2, 3, 2)),
    ("InstanceNorm1d", {}, (2, 3, 5)),
    ("InstanceNorm1d", {"affine": False, "momentum": 0.5}, (3, 6)),
    ("InstanceNorm2d", {"track_running_stats": False}, (2, 3, 4, 3)),
    ("InstanceNorm3d", {"bias": False}, (2, 3, 2, 3, 2)),
    ("InstanceNorm3d", {}, (3, 2, 2, 3)),
]


def _unbatched(name, shape):
    return name.startswith("Instance") and len(shape) == 1 + int(name[-2])


def _defaults(kw):
    """The lazy norms' defaults (PyTorch's _LazyNormBase: affine and running statistics, instance norms too)."""
    return {"affine": True, "track_running_stats": True, **kw}


@pytest.mark.parametrize("name,kw,shape", NORMS)
def test_lazy_norm_becomes_the_plain_layer_with_its_parameters_and_buffers(name, kw, shape):
    x = R.standard_normal(shape) * 2 + 1
    lazy = getattr(nn, "Lazy" + name)(dtype="float64", **kw)
    y = lazy(x)
    C = shape[0] if _unbatched(name, shape) else shape[1]
    plain = getattr(nn, name)(C, dtype="float64", **_defaults(kw))
    assert type(lazy) is type(plain) and lazy.num_features == C
    np.testing.assert_array_equal(y.data, plain(x).data)  # (the first forward: one training step each)
    lazy_state, plain_state = lazy.state_dict(), plain.state_dict()
    assert list(lazy_state) == list(plain_state)
    for k, v in plain_state.items():
        np.testing.assert_array_equal(lazy_state[k], v)
        assert lazy_state[k].dtype == v.dtype, k


@pytest.mark.parametrize("name,kw,shape", NORMS)
def test_lazy_norm_then_matches_torch_in_training_and_eval(name, kw, shape):
    lazy = getattr(nn, "Lazy" + name)(dtype="float64", **kw)
    if _unbatched(name, shape):  # (PyTorch's lazy instance norms read C from dim 1 there: see lazy_norm.py)
        tm = getattr(torch.nn, name)(shape[0], dtype=torch.float64, **_defaults(kw))
    else:
        tm = getattr(torch.nn, "Lazy" + name)(dtype=torch.float64, **kw)
    inputs = [R.standard_normal(shape) * 2 + 1 for _ in range(3)]
    for step, x in enumerate(inputs):
        training = step != 1
        if step:
            lazy.train(training)
            tm.train(training)
        if step == 1 and lazy.weight is not None:  # weights of their own from here on: copied into both
            with torch.no_grad():
                tm.weight.normal_()
                lazy.weight.data[...] = tm.weight.detach().numpy()
        xd, xt = distnn.Tensor(x, requires_grad=True), torch.from_numpy(x).requires_grad_()
        y, yt = lazy(xd), tm(xt)
        g = R.standard_normal(shape)
        y.backward(g)
        yt.backward(torch.from_numpy(g))
        np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(xd.grad, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        for pname, p in tm.named_parameters():
            np.testing.assert_allclose(getattr(lazy, pname).grad, p.grad.numpy(), rtol=1e-10, atol=1e-12)
            p.grad = None
            getattr(lazy, pname).grad = None
        for bname, b in tm.named_buffers():
            np.testing.assert_allclose(np.asarray(getattr(lazy, bname).data), b.numpy(), rtol=1e-12, atol=1e-12)
    assert type(lazy).__name__ == type(tm).__name__ == name


@pytest.mark.parametrize("make", [
    lambda m: m.LazyConvTranspose1d(4, 3, groups=2, bias=False),
    lambda m: m.LazyConvTranspose2d(4, 3, stride=2, padding=1, output_padding=1),
    lambda m: m.LazyConvTranspose3d(4, (1, 2, 3), dilation=2),
    lambda m: m.LazyBatchNorm1d(),
    lambda m: m.LazyBatchNorm2d(momentum=None, affine=False),
    lambda m: m.LazyBatchNorm3d(eps=1e-3, bias=False),
    lambda m: m.LazyInstanceNorm1d(),
    lambda m: m.LazyInstanceNorm2d(track_running_stats=False),
    lambda m: m.LazyInstanceNorm3d(affine=False),
])
def test_repr_and_placeholders_before_the_first_forward_match_torch(make):
    ours, ref = make(nn), make(torch.nn)
    assert repr(ours) == repr(ref)
    ours_state, ref_state = ours.state_dict(keep_vars=True), ref.state_dict(keep_vars=True)
    assert list(ours_state) == list(ref_state)
    for k, t in ref_state.items():
        assert type(ours_state[k]).__name__ == ("Tensor" if k == "num_batches_tracked" else type(t).__name__), k


def test_uninitialized_buffer():
    b = nn.UninitializedBuffer(dtype="float32")
    assert repr(b) == "<UninitializedBuffer>" and not b.requires_grad
    assert not isinstance(b, nn.Parameter) and not isinstance(b, nn.UninitializedParameter)
    with pytest.raises(ValueError, match="uninitialized buffer"):
        b.shape
    b.materialize((3, 2))
    assert type(b) is distnn.Tensor and b.shape == (3, 2) and b.dtype == np.float32


def test_refused_first_inputs_leave_the_layer_lazy():
    for m, bad, message in (
            (nn.LazyBatchNorm2d(), np.zeros((3, 5)), r"expected input of shape \(N, C, H, W\), got shape \(3, 5\)"),
            (nn.LazyBatchNorm1d(), np.zeros((2, 3, 4, 5)), r"expected input of shape \(N, C\) or \(N, C, L\)"),
            (nn.LazyInstanceNorm3d(), np.zeros((2, 3, 4)), r"expected 4D or 5D input \(got 3D input\)"),
            (nn.LazyConvTranspose2d(4, 3, groups=2), np.zeros((1, 3, 4, 4)), "in_channels=3 must be divisible by "
                                                                             "groups=2"),
            (nn.LazyConvTranspose3d(4, 3), np.zeros((1, 3, 4)), r"expected 4D \(unbatched\) or 5D \(batched\)")):
        with pytest.raises(ValueError, match=message):
            m(bad)
        assert type(m).__name__.startswith("Lazy") and m.has_uninitialized_params()
        assert getattr(m, "num_features", getattr(m, "in_channels", None)) == 0


def test_unbatched_instance_norm_takes_its_channels_from_dim_0():
    m = nn.LazyInstanceNorm1d()
    x = R.standard_normal((3, 6)).astype(np.float32)
    y = m(x)
    assert m.num_features == 3 and m.weight.shape == (3,)
    np.testing.assert_allclose(y.data, nn.InstanceNorm1d(3, affine=True, track_running_stats=True)(x[None]).data[0])


def test_state_dict_to_and_data_parallel_before_the_first_forward():
    m = nn.Sequential(nn.LazyBatchNorm1d(affine=False))
    with pytest.raises(ValueError, match=r"uninitialized parameters or buffers \['0.running_mean', '0.running_var'\]"):
        m.state_dict()
    with pytest.raises(ValueError, match="uninitialized parameters"):
        DataParallel(m)
    m.to("float64")
    m(np.ones((4, 3), dtype=np.float64) * np.arange(4)[:, None])
    assert m[0].running_mean.data.dtype == np.float64 and m[0].state_dict()["running_var"].shape == (3,)
    DataParallel(m)  # (after the forward: accepted)


def test_load_state_dict_before_the_first_forward():
    # affine parameters only: materialized from the checkpoint, as LazyLinear's
    src = nn.Sequential(nn.InstanceNorm2d(5, affine=True))
    src[0].weight.data[...] = np.arange(5)
    dst = nn.Sequential(nn.LazyInstanceNorm2d(track_running_stats=False))
    dst.load_state_dict(src.state_dict())
    assert type(dst[0]) is nn.InstanceNorm2d and dst[0].num_features == 5
    np.testing.assert_array_equal(dst[0].weight.data, np.arange(5))
    with pytest.raises(ValueError, match=r"'bias' \(4,\) \(this layer needs \(5,\)\)"):
        nn.LazyInstanceNorm1d(track_running_stats=False).load_state_dict({"weight": np.ones(5), "bias": np.ones(4)})
    # running statistics too (as torch loads them): buffers materialized from the checkpoint
    src = nn.BatchNorm1d(5)
    src.running_mean.data[...], src.num_batches_tracked.data[...] = np.arange(5), 3
    m = nn.LazyBatchNorm1d()
    m.load_state_dict(src.state_dict())
    assert type(m) is nn.BatchNorm1d and m.num_features == 5
    for key, value in src.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[key], value)
    # an incomplete checkpoint: refused, and the layer stays lazy
    m = nn.LazyBatchNorm1d()
    with pytest.raises(KeyError, match="missing keys: \\['running_var'\\]"):
        m.load_state_dict({k: v for k, v in src.state_dict().items() if k != "running_var"})
    assert type(m) is nn.LazyBatchNorm1d and m.num_features == 0 and m.has_uninitialized_params()


def test_optimizer_created_before_the_first_forward_updates_the_lazy_norm():
    m = nn.Sequential(nn.LazyConvTranspose1d(3, 2), nn.LazyBatchNorm1d())
    opt = distnn.optim.SGD(m.parameters(), lr=0.1)
    x = R.standard_normal((4, 2, 5)).astype(np.float32)
    before = None
    for _ in range(2):
        loss = (m(x) * distnn.Tensor(R.standard_normal((4, 3, 6)))).sum()
        before = m[1].weight.data.copy() if before is None else before
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert type(m[1]) is nn.BatchNorm1d and not np.array_equal(m[1].weight.data, before)
