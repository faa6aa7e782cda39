"""Division by zero and the logarithm/square root of 0 or of negatives give inf and NaN as PyTorch's do, forward
and backward, with no numpy RuntimeWarning escaping (PyTorch is silent); an integer ``//`` or ``%`` by zero is
refused with PyTorch's RuntimeError("ZeroDivisionError")."""
import warnings

import numpy as np
import pytest
import torch

import distnn

VALUES = [0.0, -0.0, 1.0, -1.0, 2.5, -3.0]

OPS = {
    "x / 0": lambda x: x / 0,
    "x / x": lambda x: x / x,
    "0 / x": lambda x: 0 / x,
    "1 / x": lambda x: 1 / x,
    "x ** -1": lambda x: x**-1,
    "log": lambda x: x.log(),
    "sqrt": lambda x: x.sqrt(),
    "x // 0": lambda x: x // 0,
    "x % 0": lambda x: x % 0,
    "2 // x": lambda x: 2 // x,
    "x % x": lambda x: x % x,
}


def _same(ours, theirs):
    """Equal values, NaN where NaN, infinities and zeros with the same signs."""
    ours, theirs = np.asarray(ours), theirs.detach().numpy()
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)
    assert (np.signbit(ours) == np.signbit(theirs))[~np.isnan(theirs)].all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(OPS))
def test_matches_torch_without_warnings(name, dtype):
    op = OPS[name]
    x = distnn.tensor(np.array(VALUES, dtype=dtype), requires_grad=True)
    t = torch.tensor(np.array(VALUES, dtype=dtype), requires_grad=True)
    ty = op(t)
    assert ty.requires_grad
    try:
        ty.backward(torch.ones_like(ty))
    except RuntimeError as e:  # (// has no derivative in PyTorch: its backward is refused, as here)
        refused = str(e)
    else:
        refused = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning fails the test
        y = op(x)
        _same(y.data, ty)
        assert y.requires_grad
        if refused:
            with pytest.raises(RuntimeError, match=refused):
                y.backward(distnn.ones_like(y))
            return
        y.backward(distnn.ones_like(y))
    _same(x.grad, t.grad)


def test_divisor_gradient_at_zero_matches_torch():
    w = distnn.tensor([0.0, 1.0, -1.0, 0.0], requires_grad=True)
    x = distnn.tensor([0.0, 0.0, 0.0, 2.0], requires_grad=True)
    tw, tx = (torch.tensor(v.data.tolist(), requires_grad=True) for v in (w, x))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (w / x).backward(distnn.ones(4))
    (tw / tx).backward(torch.ones(4))
    _same(w.grad, tw.grad)
    _same(x.grad, tx.grad)


@pytest.mark.parametrize("op", [lambda a, b: a // b, lambda a, b: a % b])
@pytest.mark.parametrize("divisor", [0, "tensor", "reflected"])
def test_integer_division_by_zero_is_refused_as_torch(op, divisor):
    def run(lib):
        a = lib.tensor([3, -4, 5])
        if divisor == 0:
            return op(a, 0)
        if divisor == "tensor":
            return op(a, lib.tensor([1, 0, 2]))
        return op(7, lib.tensor([1, 0, 2]))

    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        run(torch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            run(distnn)


@pytest.mark.parametrize("dtype", [("int32", torch.int32), ("int64", torch.int64), ("uint8", torch.uint8)])
def test_integer_floor_division_and_remainder_keep_torch_dtypes(dtype):
    values = [1, 7, 200] if dtype[0] == "uint8" else [-7, 1, 9]
    a, t = distnn.tensor(np.array(values, dtype=dtype[0])), torch.tensor(values, dtype=dtype[1])
    for op in (lambda v: v // 2, lambda v: v % 3, lambda v: 100 // v, lambda v: 100 % v, lambda v: v % 2.5,
               lambda v: v // 2.5):
        ours, theirs = op(a), op(t)
        assert str(ours.dtype).replace("distnn.", "") == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours.data, theirs.numpy())


@pytest.mark.parametrize("how", ["backward", "autograd.grad"])
def test_infinite_gradients_meeting_in_backward_are_quiet(how):
    """+inf and -inf gradients summed into one leaf give NaN silently,
    as in PyTorch; numpy warned from inside the engine ("invalid value encountered in add")."""
    def loss(m, x):
        return m.log(x).sum() + m.sqrt(x).sum() + (1 / x).sum()

    theirs = torch.tensor([0.0, -1.0, 2.0], requires_grad=True)
    loss(torch, theirs).backward()
    x = distnn.tensor([0.0, -1.0, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = loss(distnn, x)
        got = y.backward() or x.grad if how == "backward" else distnn.autograd.grad(y, x)[0].numpy()
    np.testing.assert_allclose(got, theirs.grad.numpy(), rtol=1e-6)
