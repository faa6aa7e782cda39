"""Activation, dropout and flatten layers against PyTorch and by hand (PReLU, maxout, inverted dropout's mask
reused in backward), and softmax without a dim warning where PyTorch would pick another."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn.testing import check_grad

from layer_oracle import compare, randn


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
