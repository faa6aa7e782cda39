"""Pooling and normalization layers against PyTorch (copied weights; outputs and every gradient): max/avg/adaptive
pooling with ceil mode, LayerNorm, BatchNorm in training and eval (running statistics, momentum None, empty
batches, a batch of one), float64 gradchecks."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn.testing import check_grad

from torch_twins import torch_state_as_numpy
from layer_oracle import close, compare, randn


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
    # found by tests/test_layer_fuzz_*.py: with ceil_mode PyTorch takes a dilated kernel larger than the
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
    # found by tests/test_layer_fuzz_*.py: ceil_mode=True raised NotImplementedError. A last window running
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


def test_batchnorm_batch_of_one_names_the_layer():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match=r"BatchNorm1d '1'.*more than 1 value per channel.*\(1, 3\)"):
        model(distnn.Tensor(np.zeros((1, 3), np.float32)))
    assert int(model[1].num_batches_tracked.data) == 0  # the refused batch was not counted


@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_takes_an_empty_batch_as_torch(torch, rng, momentum):
    # found by tests/test_layer_fuzz_*.py: an empty batch in training raised "expected more than 1 value per
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
