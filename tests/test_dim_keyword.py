"""PyTorch's ``dim=`` keyword on the shape ops named as PyTorch's (cat, stack, squeeze, unsqueeze).

A PyTorch user writes ``torch.cat(xs, dim=1)``; distnn's ``cat`` took only numpy's ``axis``
and refused ``dim`` with a TypeError.
"""
import numpy as np
import pytest

import distnn as dn
import distnn.functional as F

torch = pytest.importorskip("torch")

X = np.arange(24, dtype=np.float32).reshape(2, 1, 3, 4)


@pytest.mark.parametrize("name", ["cat", "concat", "stack"])
def test_joins_take_dim(name):
    ours = getattr(F, name)([dn.tensor(X), dn.tensor(X)], dim=2).numpy()
    theirs = getattr(torch, name)([torch.from_numpy(X)] * 2, dim=2).numpy()
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(getattr(dn, name)([dn.tensor(X)] * 2, dim=-1).numpy(),
                                  getattr(torch, name)([torch.from_numpy(X)] * 2, dim=-1).numpy())


def test_squeeze_unsqueeze_take_dim():
    a, t = dn.tensor(X), torch.from_numpy(X)
    assert a.squeeze(dim=1).shape == tuple(t.squeeze(dim=1).shape)
    assert a.squeeze(dim=0).shape == tuple(t.squeeze(dim=0).shape)  # not of size 1: unchanged, as PyTorch
    assert F.squeeze(a, dim=1).shape == (2, 3, 4)
    assert a.unsqueeze(dim=-1).shape == tuple(t.unsqueeze(dim=-1).shape)
    assert F.unsqueeze(a, dim=0).shape == (1, 2, 1, 3, 4)


def test_gradient_through_dim_keyword():
    a = dn.tensor(X, requires_grad=True)
    (F.cat([a, a * 2], dim=1).sum() + F.stack([a], dim=0).unsqueeze(dim=0).squeeze(dim=0).sum()).backward()
    np.testing.assert_array_equal(a.grad, np.full(X.shape, 4.0, np.float32))


def test_numpy_axis_still_works_and_both_is_an_error():
    assert F.cat([dn.tensor(X)] * 2, axis=3).shape == (2, 1, 3, 8)
    assert F.stack([dn.tensor(X)] * 2, 1).shape == (2, 2, 1, 3, 4)
    with pytest.raises(TypeError, match="not both"):
        F.cat([dn.tensor(X)] * 2, dim=0, axis=1)
