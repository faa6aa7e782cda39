"""nn.LazyLinear and nn.LazyConv1d/2d/3d (PyTorch 2.13's lazy modules): sizes from the first input, the same
draws as the non-lazy layer of that shape, the module becomes that layer; optimizers, load_state_dict, to(),
state_dict and DataParallel before the first forward."""
import numpy as np
import pytest
import torch

import distnn
import distnn.nn as nn
import distnn.optim as optim
from distnn.distributed import DataParallel


def _lazy_and_plain(lazy_fn, plain_fn, x, seed=7):
    """A lazy layer called on ``x`` after seeding, and the plain layer built after the same seed."""
    distnn.manual_seed(123)
    lazy = lazy_fn()
    distnn.manual_seed(seed)
    y = lazy(x)
    distnn.manual_seed(seed)
    return lazy, y, plain_fn()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bias", [True, False])
def test_lazy_linear_draws_as_linear_and_becomes_linear(dtype, bias):
    x = np.random.default_rng(0).standard_normal((5, 2, 6)).astype(dtype)
    lazy, y, plain = _lazy_and_plain(lambda: nn.LazyLinear(4, bias=bias, dtype=dtype),
                                     lambda: nn.Linear(6, 4, bias=bias, dtype=dtype), x)
    assert type(lazy) is nn.Linear and lazy.in_features == 6
    assert lazy.weight.data.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(lazy.weight.data, plain.weight.data)
    if bias:
        np.testing.assert_array_equal(lazy.bias.data, plain.bias.data)
    else:
        assert lazy.bias is None
    np.testing.assert_array_equal(y.data, plain(x).data)


def test_lazy_linear_forward_and_backward_match_torch():
    x = np.random.default_rng(1).standard_normal((3, 5))
    lazy = nn.LazyLinear(2, dtype="float64")
    xt = distnn.Tensor(x, requires_grad=True)
    y = lazy(xt)
    ref = torch.nn.Linear(5, 2, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(lazy.weight.data))
        ref.bias.copy_(torch.from_numpy(lazy.bias.data))
    xr = torch.from_numpy(x).requires_grad_()
    yr = ref(xr)
    g = np.random.default_rng(2).standard_normal((3, 2))
    y.backward(g)
    yr.backward(torch.from_numpy(g))
    np.testing.assert_allclose(y.data, yr.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(xt.grad, xr.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lazy.weight.grad, ref.weight.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lazy.bias.grad, ref.bias.grad.numpy(), rtol=1e-12, atol=1e-12)


CONVS = [
    ("1", lambda **k: nn.LazyConv1d(4, 3, **k), lambda c, **k: nn.Conv1d(c, 4, 3, **k), (2, 6, 9)),
    ("2", lambda **k: nn.LazyConv2d(4, 3, stride=2, padding=1, **k),
     lambda c, **k: nn.Conv2d(c, 4, 3, stride=2, padding=1, **k), (2, 6, 7, 8)),
    ("3", lambda **k: nn.LazyConv3d(4, 2, groups=2, **k), lambda c, **k: nn.Conv3d(c, 4, 2, groups=2, **k),
     (1, 6, 3, 4, 5)),
]


@pytest.mark.parametrize("nd,lazy_fn,plain_fn,shape", CONVS)
@pytest.mark.parametrize("batched", [True, False])
def test_lazy_conv_draws_as_conv_and_becomes_conv(nd, lazy_fn, plain_fn, shape, batched):
    x = np.random.default_rng(3).standard_normal(shape if batched else shape[1:]).astype(np.float32)
    lazy, y, plain = _lazy_and_plain(lazy_fn, lambda: plain_fn(6), x)
    assert type(lazy) is type(plain) and lazy.in_channels == 6
    np.testing.assert_array_equal(lazy.weight.data, plain.weight.data)
    np.testing.assert_array_equal(lazy.bias.data, plain.bias.data)
    np.testing.assert_array_equal(y.data, plain(x).data)


@pytest.mark.parametrize("make,x_shape", [
    (lambda m: m.LazyLinear(3), (2, 4)),
    (lambda m: m.LazyLinear(3, bias=False), (4,)),
    (lambda m: m.LazyConv1d(4, 3, padding=1, bias=False), (1, 2, 5)),
    (lambda m: m.LazyConv2d(4, 3, stride=2, padding=1), (1, 5, 8, 8)),
    (lambda m: m.LazyConv2d(4, (2, 3), dilation=2, groups=2), (4, 8, 8)),
    (lambda m: m.LazyConv3d(4, 3, groups=2), (1, 6, 4, 4, 4)),
])
def test_repr_before_and_after_match_torch(make, x_shape):
    ours, ref = make(nn), make(torch.nn)
    assert repr(ours) == repr(ref)
    ours(np.zeros(x_shape, dtype=np.float32))
    ref(torch.zeros(x_shape))
    assert repr(ours) == repr(ref)
    assert type(ours).__name__ == type(ref).__name__


def test_uninitialized_parameter_refuses_shape_and_bad_first_inputs():
    m = nn.LazyLinear(3)
    assert isinstance(m.weight, nn.UninitializedParameter) and repr(m.weight) == "<UninitializedParameter>"
    assert m.has_uninitialized_params()
    with pytest.raises(ValueError, match="uninitialized parameter"):
        m.weight.shape
    with pytest.raises(ValueError, match="at least one dimension"):
        m(np.float32(1.0))
    c = nn.LazyConv3d(4, 3, groups=2)
    with pytest.raises(ValueError, match="in_channels=5 must be divisible by groups=2"):
        c(np.zeros((1, 5, 4, 4, 4)))
    with pytest.raises(ValueError, match=r"expected 4D \(unbatched\) or 5D \(batched\)"):
        c(np.zeros((1, 4, 4)))
    assert c.in_channels == 0 and type(c) is nn.LazyConv3d  # a refused input leaves it lazy
    c(np.zeros((1, 6, 4, 4, 4), dtype=np.float32))
    assert type(c) is nn.Conv3d and c.weight.shape == (4, 3, 3, 3, 3)


@pytest.mark.parametrize("opt_cls", [optim.SGD, optim.Adam, optim.Adagrad])
def test_optimizer_created_before_first_forward_trains_as_one_created_after(opt_cls):
    """The optimizer holds the same parameter objects; state appears at the first step with the real shapes."""
    x = np.random.default_rng(4).standard_normal((8, 5))
    kw = {"lr": 0.1, "momentum": 0.9} if opt_cls is optim.SGD else {"lr": 0.1}
    runs = []
    for early in (True, False):
        distnn.manual_seed(0)
        m = nn.LazyLinear(2, dtype="float64")
        opt = opt_cls(m.parameters(), **kw) if early else None
        for step in range(3):
            loss = (m(x) ** 2).sum()
            if opt is None:
                opt = opt_cls(m.parameters(), **kw)
            opt.zero_grad()
            loss.backward()
            opt.step()
        runs.append((m.weight.data.copy(), m.bias.data.copy()))
        state = opt.state[m.weight]
        assert all(v.shape == (2, 5) for v in state.values() if isinstance(v, np.ndarray) and v.ndim)
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_load_state_dict_materializes_from_the_checkpoint():
    src = nn.Sequential(nn.Linear(5, 3), nn.Conv1d(3, 2, 1))
    dst = nn.Sequential(nn.LazyLinear(3), nn.LazyConv1d(2, 1))
    dst.load_state_dict(src.state_dict())
    assert type(dst[0]) is nn.Linear and dst[0].in_features == 5
    assert type(dst[1]) is nn.Conv1d and dst[1].in_channels == 3
    for k, v in src.state_dict().items():
        np.testing.assert_array_equal(dst.state_dict()[k], v)
    torch_sd = {"weight": torch.randn(3, 7), "bias": torch.randn(3)}  # a PyTorch state dict loads as well
    m = nn.LazyLinear(3)
    m.load_state_dict(torch_sd)
    np.testing.assert_array_equal(m.weight.data, torch_sd["weight"].numpy())


def test_load_state_dict_refuses_shapes_that_do_not_fit_and_partial_loads():
    m = nn.LazyLinear(3)
    with pytest.raises(ValueError, match=r"'weight' \(4, 5\) \(this layer needs \(3, 5\)\)"):
        m.load_state_dict({"weight": np.zeros((4, 5)), "bias": np.zeros(3)})
    assert type(m) is nn.LazyLinear and m.in_features == 0 and m.has_uninitialized_params()
    with pytest.raises(ValueError, match="lacks \\['bias'\\]"):
        m.load_state_dict({"weight": np.zeros((3, 5))}, strict=False)
    with pytest.raises(KeyError, match="missing keys"):
        m.load_state_dict({"weight": np.zeros((3, 5))})
    assert m.has_uninitialized_params()


def test_to_dtype_before_first_forward():
    m = nn.Sequential(nn.LazyLinear(3), nn.LazyLinear(2))
    m.to("float64")
    y = m(np.ones((2, 4)))
    assert y.data.dtype == np.float64 and m[0].weight.data.dtype == np.float64
    assert m[1].weight.shape == (2, 3)


def test_state_dict_before_first_forward_refuses_and_keep_vars_gives_placeholders():
    m = nn.Sequential(nn.Linear(2, 4), nn.LazyLinear(3))
    with pytest.raises(ValueError, match=r"uninitialized parameters or buffers \['1.weight', '1.bias'\].*forward"):
        m.state_dict()
    tensors = m.state_dict(keep_vars=True)
    assert isinstance(tensors["1.weight"], nn.UninitializedParameter)
    m(np.ones((1, 2), dtype=np.float32))
    assert m.state_dict()["1.weight"].shape == (3, 4)


def test_data_parallel_refuses_uninitialized_parameters():
    m = nn.Sequential(nn.LazyLinear(3))
    with pytest.raises(ValueError, match="uninitialized parameters.*run a forward pass"):
        DataParallel(m)
    m(np.ones((2, 4), dtype=np.float32))
    DataParallel(m)  # (after the forward: accepted)
