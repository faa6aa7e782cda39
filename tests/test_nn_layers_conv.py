"""Linear and convolution layers against PyTorch (copied weights; outputs and every gradient), float64
gradchecks, padding modes, and bad input naming the layer."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn.testing import check_grad

from layer_oracle import compare, randn


@pytest.mark.parametrize("shape,bias", [((5, 7), True), ((2, 3, 7), True), ((5, 7), False), ((7,), True)])
def test_linear_matches_torch(torch, rng, shape, bias):
    compare(torch, nn.Linear(7, 4, bias=bias), torch.nn.Linear(7, 4, bias=bias), randn(rng, *shape))


def test_linear_bad_input_names_layer():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(ValueError, match=r"Linear '2'.*in_features=5.*\(6, 4\)"):
        model(distnn.Tensor(np.zeros((6, 3), np.float32)))


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
    # found by tests/test_layer_fuzz_*.py: padding_mode other than 'zeros' raised NotImplementedError
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
