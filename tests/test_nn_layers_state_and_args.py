"""Layers' state dicts (from torch's, round trip, shape mismatches), dtype and generator arguments, malformed
arguments refused, raw numpy input."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn

from layer_oracle import compare, randn


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
