"""Layers vs PyTorch (copied weights; outputs and every gradient), float64 gradient checks, modes, errors."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn.testing import check_grad
from torch_twins import torch_state_as_numpy


# ----------------------------------------------------------------- helpers
def close(a, b, rtol=1e-4, what=""):
    """Elementwise within rtol, with an absolute floor of rtol times the tensor's scale."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    scale = max(float(np.abs(b).max()) if b.size else 0.0, 1e-12)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=what)


def compare(torch, dmod, tmod, x, *, grad_input=True, rtol=1e-4, seed=0):
    """Load tmod's weights into dmod, run both on x, compare outputs, input grads and parameter grads."""
    dmod.load_state_dict(torch_state_as_numpy(tmod))
    xd = distnn.Tensor(x.copy(), requires_grad=grad_input)
    xt = torch.tensor(x.copy(), requires_grad=grad_input)
    yd, yt = dmod(xd), tmod(xt)
    close(yd.numpy(), yt.detach().numpy(), rtol, "output")
    g = np.random.default_rng(seed).standard_normal(yt.shape).astype(x.dtype)
    yd.backward(g)
    yt.backward(torch.tensor(g))
    if grad_input:
        close(xd.grad, xt.grad.numpy(), rtol, "input grad")
    tparams = dict(tmod.named_parameters())
    dparams = dict(dmod.named_parameters())
    assert list(dparams) == list(tparams)
    for name, p in dparams.items():
        assert p.grad is not None, f"no grad for {name}"
        close(p.grad, tparams[name].grad.numpy(), rtol, f"grad of {name}")
    return yd, yt


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------ linear
@pytest.mark.parametrize("shape,bias", [((5, 7), True), ((2, 3, 7), True), ((5, 7), False), ((7,), True)])
def test_linear_matches_torch(torch, rng, shape, bias):
    compare(torch, nn.Linear(7, 4, bias=bias), torch.nn.Linear(7, 4, bias=bias), randn(rng, *shape))


def test_linear_bad_input_names_layer():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(ValueError, match=r"Linear '2'.*in_features=5.*\(6, 4\)"):
        model(distnn.Tensor(np.zeros((6, 3), np.float32)))


# -------------------------------------------------------------------- conv
CONV_CASES = [
    dict(cin=3, cout=4, k=3),
    dict(cin=3, cout=4, k=3, stride=2, padding=1),
    dict(cin=2, cout=3, k=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2)),
    dict(cin=4, cout=6, k=3, padding=2, dilation=2, groups=2),
    dict(cin=4, cout=4, k=3, padding=1, groups=4, bias=False),  # depthwise
    dict(cin=3, cout=2, k=4, padding="same"),
    dict(cin=1, cout=6, k=5),  # LeNet's first layer
]


def _conv_kwargs(c):
    return dict(stride=c.get("stride", 1), padding=c.get("padding", 0), dilation=c.get("dilation", 1),
                groups=c.get("groups", 1), bias=c.get("bias", True))


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_conv2d_matches_torch(torch, rng, case):
    kw = _conv_kwargs(case)
    x = randn(rng, 2, case["cin"], 9, 8)
    compare(torch, nn.Conv2d(case["cin"], case["cout"], case["k"], **kw),
            torch.nn.Conv2d(case["cin"], case["cout"], case["k"], **kw), x)


def test_conv2d_first_layer_no_input_grad(torch, rng):
    # The input does not require grad: only weight/bias gradients are computed.
    compare(torch, nn.Conv2d(1, 3, 3), torch.nn.Conv2d(1, 3, 3), randn(rng, 3, 1, 6, 6), grad_input=False)


@pytest.mark.parametrize("case", [dict(k=3), dict(k=3, stride=2, padding=1), dict(k=2, dilation=2, groups=2),
                                  dict(k=4, padding="same")])
def test_conv1d_matches_torch(torch, rng, case):
    kw = _conv_kwargs(case)
    compare(torch, nn.Conv1d(4, 6, case["k"], **kw), torch.nn.Conv1d(4, 6, case["k"], **kw), randn(rng, 3, 4, 11))


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("kw", [dict(padding=1), dict(padding=(2, 1), stride=2, dilation=(1, 2)),
                                dict(padding="same", dilation=2), dict(padding="valid")])
def test_conv_padding_modes_match_torch(torch, rng, mode, kw):
    # found by tests/test_layer_fuzz.py: padding_mode other than 'zeros' raised NotImplementedError
    x = rng.standard_normal((2, 2, 7, 6))
    compare(torch, nn.Conv2d(2, 3, (3, 2), padding_mode=mode, **kw).double(),
            torch.nn.Conv2d(2, 3, (3, 2), padding_mode=mode, **kw).double(), x, rtol=1e-12)
    kw1 = {k: v if isinstance(v, (int, str)) else v[0] for k, v in kw.items()}
    for xx in (x[:, :, 0], x[0, :, 0]):  # (unbatched too)
        compare(torch, nn.Conv1d(2, 3, 3, padding_mode=mode, **kw1).double(),
                torch.nn.Conv1d(2, 3, 3, padding_mode=mode, **kw1).double(), xx, rtol=1e-12)


def test_conv_padding_mode_errors():
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(1, 1, 3, padding_mode="edge")
    conv = nn.Conv2d(1, 1, 3, padding=3, padding_mode="reflect")
    with pytest.raises(ValueError, match="Conv2d.*out of range for mode='reflect'"):  # (PyTorch refuses too)
        conv(distnn.Tensor(np.zeros((1, 1, 3, 3))))


@pytest.mark.parametrize("stride,padding,dilation,groups", [
    (1, 0, 1, 1), (2, 1, 1, 1), ((2, 1), (0, 2), (2, 1), 1), (1, 1, 1, 2), (3, 2, 2, 1),
])
def test_conv2d_gradcheck_float64(rng, stride, padding, dilation, groups):
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((2 * groups, 4 // groups, 3, 2))
    b = rng.standard_normal(2 * groups)
    check_grad(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups), x, w, b)


def test_conv1d_gradcheck_float64(rng):
    x, w, b = rng.standard_normal((2, 3, 9)), rng.standard_normal((4, 3, 3)), rng.standard_normal(4)
    check_grad(lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1), x, w, b)


def test_conv2d_bad_input_names_layer_and_shapes():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 4, 5))
    with pytest.raises(ValueError, match=r"Conv2d '0'.*3 channels|Conv2d '0'.*channels"):
        model(distnn.Tensor(np.zeros((2, 1, 9, 9), np.float32)))
    with pytest.raises(ValueError, match=r"Conv2d '0'.*4-D.*\(9, 9\)"):
        model(distnn.Tensor(np.zeros((9, 9), np.float32)))
    with pytest.raises(ValueError, match=r"Conv2d '1'.*kernel size \(5, 5\).*larger.*\(4, 4\)"):
        model(distnn.Tensor(np.zeros((2, 3, 6, 6), np.float32)))


def test_conv_argument_errors():
    with pytest.raises(ValueError, match="padding='same'.*strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="divisible by groups=2"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv1d.*expected 4 input channels.*\(2, 3, 9\)"):
        nn.Conv1d(4, 2, 3)(distnn.Tensor(np.zeros((2, 3, 9), np.float32)))


def test_conv2d_unbatched_input(rng):
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = randn(rng, 2, 5, 5)
    out = conv(distnn.Tensor(x))
    np.testing.assert_allclose(out.numpy(), conv(distnn.Tensor(x[None])).numpy()[0], rtol=1e-6)


# ----------------------------------------------------------------- pooling
def _with_ties(rng, *shape):
    # ReLU output: many exact zeros, so windows hold ties; PyTorch routes the gradient to the first maximum.
    x = np.maximum(randn(rng, *shape), 0)
    x[0, 0, :2, :2] = 0.5  # an all-equal window of non-zeros
    return x


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=2, stride=1, dilation=2), dict(kernel_size=3, stride=2, ceil_mode=True),
                                dict(kernel_size=(3, 2), stride=(1, 2))])
def test_maxpool2d_matches_torch(torch, rng, kw):
    compare(torch, nn.MaxPool2d(**kw), torch.nn.MaxPool2d(**kw), _with_ties(rng, 2, 3, 9, 8))


@pytest.mark.parametrize("kw,shape", [(dict(kernel_size=(2, 4), dilation=2, ceil_mode=True), (2, 2, 8, 4)),
                                      (dict(kernel_size=3, stride=3, dilation=2, ceil_mode=True), (1, 2, 7, 3)),
                                      (dict(kernel_size=(1, 3), stride=(1, 2), padding=(0, 1), dilation=2,
                                            ceil_mode=True, return_indices=True), (1, 1, 5, 2))])
def test_maxpool2d_ceil_mode_window_past_the_input_matches_torch(torch, rng, kw, shape):
    # found by tests/test_layer_fuzz.py: with ceil_mode PyTorch takes a dilated kernel larger than the
    # padded input as long as one window starts inside it; distnn refused it ("larger than the padded input")
    x = rng.standard_normal(shape)
    xd, xt = distnn.Tensor(x.copy(), requires_grad=True), torch.tensor(x.copy(), requires_grad=True)
    yd, yt = nn.MaxPool2d(**kw)(xd), torch.nn.MaxPool2d(**kw)(xt)
    if kw.get("return_indices"):
        np.testing.assert_array_equal(yd[1].numpy(), yt[1].numpy())
        yd, yt = yd[0], yt[0]
    np.testing.assert_array_equal(yd.numpy(), yt.detach().numpy())
    g = rng.standard_normal(yt.shape)
    yd.backward(g)
    yt.backward(torch.tensor(g))
    np.testing.assert_array_equal(xd.grad, xt.grad.numpy())
    with pytest.raises(ValueError, match="larger than the padded input"):  # no window at all: refused, as PyTorch
        F.max_pool2d(xd, kw["kernel_size"], kw.get("stride"), kw.get("padding", 0), kw["dilation"])


@pytest.mark.parametrize("kw", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
                                dict(kernel_size=(2, 3), stride=1)])
def test_avgpool2d_matches_torch(torch, rng, kw):
    compare(torch, nn.AvgPool2d(**kw), torch.nn.AvgPool2d(**kw), randn(rng, 2, 3, 9, 8))


@pytest.mark.parametrize("kw", [dict(kernel_size=3, stride=2, ceil_mode=True),
                                dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
                                dict(kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True, count_include_pad=False),
                                dict(kernel_size=2, stride=3, ceil_mode=True, divisor_override=3)])
def test_avgpool2d_ceil_mode_matches_torch(torch, rng, kw):
    # found by tests/test_layer_fuzz.py: ceil_mode=True raised NotImplementedError. A last window running
    # past the padded input divides by its cells inside it (PyTorch's rule), not by the kernel's size.
    x = rng.standard_normal((2, 3, 8, 7))
    compare(torch, nn.AvgPool2d(**kw), torch.nn.AvgPool2d(**kw), x, rtol=1e-12)
    compare(torch, nn.AvgPool2d(**kw), torch.nn.AvgPool2d(**kw), x[0], rtol=1e-12)  # unbatched


@pytest.mark.parametrize("size", [1, (3, 4), (4, 3), (2, None)])
def test_adaptive_avgpool2d_matches_torch(torch, rng, size):
    compare(torch, nn.AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size), randn(rng, 2, 3, 8, 8))
    compare(torch, nn.AdaptiveAvgPool2d(size), torch.nn.AdaptiveAvgPool2d(size), randn(rng, 2, 3, 7, 9))


def test_pools_gradcheck_float64(rng):
    x = rng.standard_normal((2, 3, 7, 6))
    check_grad(lambda x: F.max_pool2d(x, 3, 2, 1), x)
    check_grad(lambda x: F.max_pool2d(x, 2, 1, 0, dilation=2), x)
    check_grad(lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), x)
    check_grad(lambda x: F.avg_pool2d(x, 2), x)
    check_grad(lambda x: F.adaptive_avg_pool2d(x, (3, 4)), x)


def test_pool_kernel_larger_than_input_names_layer():
    model = nn.Sequential(nn.MaxPool2d(2), nn.MaxPool2d(4))
    with pytest.raises(ValueError, match=r"MaxPool2d '1'.*larger than the padded input"):
        model(distnn.Tensor(np.zeros((1, 1, 6, 6), np.float32)))


# ----------------------------------------------------------- normalization
@pytest.mark.parametrize("shape,norm,affine", [((4, 8), 8, True), ((2, 3, 4, 5), (4, 5), True), ((3, 6), 6, False)])
def test_layernorm_matches_torch(torch, rng, shape, norm, affine):
    d, t = nn.LayerNorm(norm, elementwise_affine=affine), torch.nn.LayerNorm(norm, elementwise_affine=affine)
    if affine:  # non-trivial affine parameters
        with torch.no_grad():
            t.weight.copy_(torch.tensor(randn(rng, *t.weight.shape)))
            t.bias.copy_(torch.tensor(randn(rng, *t.bias.shape)))
    compare(torch, d, t, 3 * randn(rng, *shape) + 1)


def test_layernorm_gradcheck_float64(rng):
    x, w, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    check_grad(lambda x, w, b: F.layer_norm(x, (4, 5), w, b), x, w, b)


@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (6, 4)), ("BatchNorm1d", (5, 4, 3)), ("BatchNorm2d", (3, 4, 5, 2))])
def test_batchnorm_train_and_eval_match_torch(torch, rng, cls, shape):
    d, t = getattr(nn, cls)(4, momentum=0.2), getattr(torch.nn, cls)(4, momentum=0.2)
    with torch.no_grad():
        t.weight.copy_(torch.tensor(randn(rng, 4)))
        t.bias.copy_(torch.tensor(randn(rng, 4)))
    for step in range(4):  # several training steps: running statistics must track PyTorch's
        compare(torch, d, t, 2 * randn(rng, *shape) + 0.5, seed=step) if step == 0 else None
        if step:
            x = 2 * randn(rng, *shape) + 0.5
            d(distnn.Tensor(x))
            t(torch.tensor(x))
    sd_t = torch_state_as_numpy(t)
    for k, v in d.state_dict().items():
        close(v, sd_t[k], 1e-5, k)
    assert int(d.num_batches_tracked.data) == 4
    d.eval(), t.eval()
    y = randn(rng, *shape)
    compare(torch, d, t, y)


def test_batchnorm_momentum_none_and_no_running_stats(torch, rng):
    for kw in (dict(momentum=None), dict(track_running_stats=False), dict(affine=False), dict(bias=False)):
        d, t = nn.BatchNorm2d(3, **kw), torch.nn.BatchNorm2d(3, **kw)
        for _ in range(3):
            x = randn(rng, 4, 3, 2, 2) * 3 + 1
            close(d(distnn.Tensor(x)).numpy(), t(torch.tensor(x)).detach().numpy(), 1e-4, str(kw))
        sd_t = torch_state_as_numpy(t)
        assert list(d.state_dict()) == list(sd_t)
        for k, v in d.state_dict().items():
            close(v, sd_t[k], 1e-5, f"{kw} {k}")
        d.eval(), t.eval()
        x = randn(rng, 4, 3, 2, 2)
        close(d(distnn.Tensor(x)).numpy(), t(torch.tensor(x)).detach().numpy(), 1e-4, f"eval {kw}")


def test_batchnorm_gradcheck_float64(rng):
    x, w, b = rng.standard_normal((4, 3, 2, 3)), rng.standard_normal(3), rng.standard_normal(3)
    check_grad(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), x, w, b)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    check_grad(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), x, w, b)


def test_batchnorm_bad_input_names_layer():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(5))
    with pytest.raises(ValueError, match=r"BatchNorm2d '1'.*5 channels.*\(2, 4, 3, 3\)"):
        model(distnn.Tensor(np.zeros((2, 3, 3, 3), np.float32)))
    with pytest.raises(ValueError, match=r"BatchNorm1d.*\(N, C\) or \(N, C, L\)"):
        nn.BatchNorm1d(3)(distnn.Tensor(np.zeros((2, 3, 4, 4), np.float32)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(distnn.Tensor(np.zeros((1, 3), np.float32)))


def test_batchnorm_updates_buffers_in_place(rng):
    # Data parallelism and checkpoints hold references to the buffers: they must stay the same arrays.
    bn = nn.BatchNorm2d(2)
    rm, rv, nbt = bn.running_mean.data, bn.running_var.data, bn.num_batches_tracked.data
    bn(distnn.Tensor(randn(rng, 3, 2, 4, 4)))
    assert bn.running_mean.data is rm and bn.running_var.data is rv and bn.num_batches_tracked.data is nbt
    assert not (rm == 0).all() and int(nbt) == 1


def test_batchnorm_eval_leaves_running_stats_alone(rng):
    bn = nn.BatchNorm2d(2).eval()
    before = bn.state_dict()
    bn(distnn.Tensor(randn(rng, 3, 2, 4, 4)))
    for k, v in bn.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


# ------------------------------------------------------------- activations
ACTS = [
    ("ReLU", {}), ("LeakyReLU", dict(negative_slope=0.2)), ("ELU", dict(alpha=0.7)), ("GELU", {}),
    ("GELU", dict(approximate="tanh")), ("Tanh", {}), ("Sigmoid", {}), ("Softplus", dict(beta=2.0, threshold=5.0)),
    ("Softmax", dict(dim=1)), ("LogSoftmax", dict(dim=-1)), ("PReLU", {}), ("PReLU", dict(num_parameters=3)),
]


@pytest.mark.parametrize("name,kw", ACTS, ids=[f"{n}{k}" for n, k in ACTS])
def test_activation_matches_torch(torch, rng, name, kw):
    x = 3 * randn(rng, 4, 3, 5)
    compare(torch, getattr(nn, name)(**kw), getattr(torch.nn, name)(**kw), x)


def test_prelu_gradcheck_float64(rng):
    from distnn.nn.activation import _PReLU

    x = rng.standard_normal((3, 4, 2))
    check_grad(lambda x, a: _PReLU.apply(x, a), x, rng.random(4))
    check_grad(lambda x, a: _PReLU.apply(x, a), x, rng.random(1))


def test_maxout_by_hand(rng):
    x = randn(rng, 3, 6)
    m = nn.Maxout(pool_size=3)
    xd = distnn.Tensor(x, requires_grad=True)
    y = m(xd)
    expected = np.stack([x[:, 0:3].max(1), x[:, 3:6].max(1)], axis=1)
    np.testing.assert_array_equal(y.numpy(), expected)
    y.sum().backward()
    grad = np.zeros_like(x)
    for g in range(2):
        grad[np.arange(3), 3 * g + x[:, 3 * g:3 * g + 3].argmax(1)] = 1
    np.testing.assert_array_equal(xd.grad, grad)
    # over channels of a feature map
    fm = randn(rng, 2, 4, 3, 3)
    out = nn.Maxout(2)(distnn.Tensor(fm)).numpy()
    np.testing.assert_array_equal(out, fm.reshape(2, 2, 2, 3, 3).max(2))  # groups of channels (0, 1), (2, 3)
    with pytest.raises(ValueError, match="not divisible by pool_size=4"):
        nn.Maxout(4)(distnn.Tensor(x))


# ------------------------------------------------------ dropout and flatten
def test_dropout_train_and_eval():
    x = np.ones((200, 50), np.float32)
    d = nn.Dropout(0.3, generator=np.random.default_rng(5))
    xd = distnn.Tensor(x, requires_grad=True)
    y = d(xd).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)  # inverted dropout scaling
    d(xd).sum().backward()
    d.eval()
    np.testing.assert_array_equal(d(distnn.Tensor(x)).numpy(), x)
    # the same generator state gives the same mask
    a = nn.Dropout(0.5, generator=np.random.default_rng(1))(distnn.Tensor(x)).numpy()
    b = nn.Dropout(0.5, generator=np.random.default_rng(1))(distnn.Tensor(x)).numpy()
    np.testing.assert_array_equal(a, b)


def test_dropout_mask_reused_in_backward():
    d = nn.Dropout(0.5, generator=np.random.default_rng(2))
    x = distnn.Tensor(np.full((10, 10), 2.0, np.float32), requires_grad=True)
    y = d(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, (y.numpy() != 0) * 2.0)


def test_flatten_matches_torch(torch, rng):
    compare(torch, nn.Flatten(), torch.nn.Flatten(), randn(rng, 2, 3, 4, 5))
    compare(torch, nn.Flatten(0, 2), torch.nn.Flatten(0, 2), randn(rng, 2, 3, 4, 5))


# ------------------------------------------------- state dicts and a model
def _lenet(lib):
    return lib.nn.Sequential(
        lib.nn.Conv2d(1, 6, 5, padding=2, bias=False), lib.nn.BatchNorm2d(6), lib.nn.ReLU(), lib.nn.MaxPool2d(2),
        lib.nn.Conv2d(6, 16, 5), lib.nn.ReLU(), lib.nn.AvgPool2d(2), lib.nn.Flatten(),
        lib.nn.Linear(16 * 5 * 5, 32), lib.nn.LayerNorm(32), lib.nn.Tanh(), lib.nn.Linear(32, 10),
    )


def test_model_from_torch_state_dict(torch, rng):
    t, d = _lenet(torch), _lenet(distnn)
    assert list(d.state_dict()) == list(t.state_dict())
    compare(torch, d, t, randn(rng, 4, 1, 28, 28), rtol=2e-4)


def test_state_dict_round_trip(rng):
    a, b = _lenet(distnn), _lenet(distnn)
    a(distnn.Tensor(randn(rng, 4, 1, 28, 28)))  # move BN running stats off their defaults
    b.load_state_dict(a.state_dict())
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)
    a.eval(), b.eval()
    x = distnn.Tensor(randn(rng, 2, 1, 28, 28))
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())


def test_state_dict_shape_mismatch_is_reported():
    sd = nn.Sequential(nn.Conv2d(1, 6, 5), nn.Linear(4, 3)).state_dict()
    model = nn.Sequential(nn.Conv2d(1, 6, 3), nn.Linear(4, 3))
    with pytest.raises(ValueError, match=r"'0.weight'.*\(6, 1, 5, 5\).*\(6, 1, 3, 3\)"):
        model.load_state_dict(sd)


def test_layers_accept_dtype_and_generator():
    a = nn.Conv2d(3, 4, 3, dtype=np.float64, generator=np.random.default_rng(7))
    b = nn.Conv2d(3, 4, 3, dtype=np.float64, generator=np.random.default_rng(7))
    assert a.weight.dtype == np.float64 and a.bias.dtype == np.float64
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    lin = nn.Linear(5, 2, dtype=np.float64, generator=np.random.default_rng(7))
    assert lin(distnn.Tensor(np.ones((1, 5)))).dtype == np.float64


# ------------------------------------------------ malformed arguments and raw inputs
@pytest.mark.parametrize("make,match", [
    (lambda: nn.Conv1d(2, 3, 3, padding=(1, 2)), r"Conv1d.*padding.*\(1, 2\)"),
    (lambda: nn.Conv1d(2, 3, 3, stride=(1, 2)), r"Conv1d.*stride.*\(1, 2\)"),
    (lambda: nn.Conv1d(2, 3, (3, 3)), r"Conv1d.*kernel_size.*\(3, 3\)"),
    (lambda: nn.AdaptiveAvgPool2d((2, 2, 2)), r"output_size.*\(2, 2, 2\)"),
    (lambda: nn.AvgPool2d(2, divisor_override=0), r"divisor_override.*0"),
    (lambda: nn.AvgPool2d(2, divisor_override=-2), r"divisor_override.*-2"),
])
def test_malformed_layer_arguments_are_refused(make, match):
    # PyTorch refuses each of these; distnn once used half of a pair, or divided by the kernel size.
    x1, x2 = distnn.Tensor(np.ones((1, 2, 6), np.float32)), distnn.Tensor(np.ones((1, 2, 6, 6), np.float32))
    with pytest.raises(ValueError, match=match):
        layer = make()
        layer(x1 if isinstance(layer, nn.Conv1d) else x2)


def test_malformed_functional_conv1d_and_pool_arguments_are_refused():
    x, w = distnn.Tensor(np.ones((1, 2, 6), np.float32)), distnn.Tensor(np.ones((3, 2, 3), np.float32))
    with pytest.raises(ValueError, match=r"conv1d.*padding.*\(1, 2\)"):
        F.conv1d(x, w, padding=(1, 2))
    with pytest.raises(ValueError, match=r"conv1d.*stride.*\(2, 2\)"):
        F.conv1d(x, w, stride=(2, 2))
    with pytest.raises(ValueError, match=r"conv1d.*padding must be non-negative"):
        F.conv1d(x, w, padding=-1)
    x4 = distnn.Tensor(np.ones((1, 2, 6, 6), np.float32))
    with pytest.raises(ValueError, match="divisor_override"):
        F.avg_pool2d(x4, 2, divisor_override=0)
    np.testing.assert_allclose(F.avg_pool2d(x4, 2, divisor_override=2).numpy(), 2.0)


def test_conv1d_negative_padding_names_the_layer():
    model = nn.Sequential(nn.Conv1d(2, 3, 3, padding=-1))
    with pytest.raises(ValueError, match=r"Conv1d '0'.*padding must be non-negative"):
        model(distnn.Tensor(np.ones((1, 2, 6), np.float32)))


def test_layers_take_a_raw_numpy_input_like_the_others(rng):
    # Linear, ReLU, Conv2d... take a numpy array as a constant input; Dropout, Flatten and Conv1d crashed.
    x = randn(rng, 2, 3, 4)
    y = nn.Dropout(0.5, generator=np.random.default_rng(1))(x)
    np.testing.assert_array_equal(
        y.numpy(), nn.Dropout(0.5, generator=np.random.default_rng(1))(distnn.Tensor(x)).numpy())
    np.testing.assert_array_equal(nn.Flatten()(x).numpy(), x.reshape(2, 12))
    np.testing.assert_array_equal(nn.Unflatten(1, (3, 1))(x).numpy(), x.reshape(2, 3, 1, 4))
    conv = nn.Conv1d(3, 2, 3)
    np.testing.assert_array_equal(conv(x).numpy(), conv(distnn.Tensor(x)).numpy())
    np.testing.assert_array_equal(conv(x[0]).numpy(), conv(distnn.Tensor(x[0])).numpy())  # unbatched
    w = distnn.Tensor(randn(rng, 2, 3, 3))
    np.testing.assert_array_equal(F.conv1d(x, w).numpy(), F.conv1d(distnn.Tensor(x), w).numpy())
    conv2 = nn.Conv2d(2, 2, 3)
    np.testing.assert_array_equal(conv2(x[:2]).numpy(), conv2(distnn.Tensor(x[:2])).numpy())  # unbatched


def test_batchnorm_batch_of_one_names_the_layer():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match=r"BatchNorm1d '1'.*more than 1 value per channel.*\(1, 3\)"):
        model(distnn.Tensor(np.zeros((1, 3), np.float32)))
    assert int(model[1].num_batches_tracked.data) == 0  # the refused batch was not counted


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_takes_an_empty_batch_as_torch(torch, rng, momentum):
    # found by tests/test_layer_fuzz.py: an empty batch in training raised "expected more than 1 value per
    # channel" (PyTorch refuses exactly one value; zero gives an empty output, the running statistics left
    # alone and the batch counted)
    d, t = nn.BatchNorm2d(3, momentum=momentum).double(), torch.nn.BatchNorm2d(3, momentum=momentum).double()
    x = rng.standard_normal((0, 3, 2, 2))
    xd, xt = distnn.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yd, yt = d(xd), t(xt)
    assert yd.shape == tuple(yt.shape) == (0, 3, 2, 2)
    yd.sum().backward()
    yt.sum().backward()
    assert xd.grad.shape == (0, 3, 2, 2)
    np.testing.assert_array_equal(d.weight.grad, t.weight.grad.numpy())
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        np.testing.assert_array_equal(getattr(d, name).data, getattr(t, name).numpy())
    assert F.batch_norm(xd, None, None, training=False).shape == (0, 3, 2, 2)  # (PyTorch's shortcut takes it)


def test_batchnorm_eval_backward_after_a_training_forward(rng):
    # An eval forward, then a training forward (which updates the running statistics in place), then the
    # eval output's backward: the weight gradient must use the statistics the eval forward used.
    bn, ref = nn.BatchNorm2d(3), nn.BatchNorm2d(3)
    bn.running_mean.data[...] = randn(rng, 3)
    ref.load_state_dict(bn.state_dict())
    x = randn(rng, 2, 3, 4, 4)
    y = bn.eval()(distnn.Tensor(x, requires_grad=True))
    bn.train()(distnn.Tensor(randn(rng, 4, 3, 4, 4) + 5))
    y.sum().backward()
    ref.eval()(distnn.Tensor(x, requires_grad=True)).sum().backward()
    np.testing.assert_allclose(bn.weight.grad, ref.weight.grad, rtol=1e-6)


def test_softmax_modules_without_dim_warn_where_pytorch_would_pick_another_dimension(torch):
    import warnings as _w

    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    for ours, theirs in ((nn.Softmax(), torch.nn.Softmax(dim=1)), (nn.LogSoftmax(), torch.nn.LogSoftmax(dim=1))):
        # 2-D input: both take the last dimension (PyTorch's implicit dim 1), no warning here
        with _w.catch_warnings():
            _w.simplefilter("error")
            got = ours(distnn.Tensor(x[:, :, 0, 0])).data
        np.testing.assert_allclose(got, theirs(torch.from_numpy(x[:, :, 0, 0])).numpy(), rtol=1e-5, atol=1e-6)
        # 4-D input: PyTorch's implicit choice is dim 1, ours the last: said
        with pytest.warns(UserWarning, match=r"without dim takes the last dimension \(3\) of this 4-D input; "
                                             r"PyTorch's deprecated implicit choice is dim=1"):
            got = ours(distnn.Tensor(x)).data
        last = type(ours)(dim=-1)(distnn.Tensor(x)).data
        np.testing.assert_array_equal(got, last)
    np.testing.assert_allclose(nn.Softmax(dim=1)(distnn.Tensor(x)).data,
                               torch.nn.Softmax(dim=1)(torch.from_numpy(x)).numpy(), rtol=1e-5, atol=1e-6)



def test_functional_softmax_without_dim_or_axis_warns_where_pytorch_would_pick_another_dimension():
    import warnings as _w

    x = distnn.Tensor(np.random.default_rng(1).standard_normal((2, 3, 4)).astype(np.float32))
    for fn in (F.softmax, F.log_softmax):
        with pytest.warns(UserWarning, match=r"without dim takes the last dimension \(2\) of this 3-D input; "
                                             r"PyTorch's deprecated implicit choice is dim=0"):
            got = fn(x).data
        with _w.catch_warnings():
            _w.simplefilter("error")  # an explicit dim or axis (numpy's keyword) is never questioned
            np.testing.assert_array_equal(got, fn(x, dim=-1).data)
            np.testing.assert_array_equal(got, fn(x, axis=2).data)
            np.testing.assert_array_equal(fn(x, 0).data, fn(x, dim=0).data)


def test_softmax_axis_none_keeps_numpys_meaning_every_element():
    import warnings as _w

    x = distnn.Tensor(np.random.default_rng(2).standard_normal((2, 3, 4)).astype(np.float32))
    with _w.catch_warnings():
        _w.simplefilter("error")  # an explicit axis=None is not the implicit choice: no warning
        for out in (F.softmax(x, axis=None), x.softmax(axis=None), F.softmax(x, None)):
            assert out.shape == (2, 3, 4) and abs(float(out.data.sum()) - 1.0) < 1e-5
        np.testing.assert_allclose(np.exp(F.log_softmax(x, axis=None).data).sum(), 1.0, rtol=1e-5)
