"""Divergences from torch that tests/test_view_inplace_fuzz_torch.py found, each reduced to its smallest program
(torch as the oracle)."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")


def _leaf(lib, a):
    return torch.tensor(np.array(a), requires_grad=True) if lib is torch else distnn.Tensor(np.array(a), requires_grad=True)


def _grad(x):
    return x.grad.numpy() if isinstance(x, torch.Tensor) else np.asarray(x.grad)


@pytest.mark.parametrize("write", ["fill_", "setitem", "mul_"])
def test_zero_dim_view_written_in_place_then_used(write):
    """A 0-d indexing view written in place while recording, then used: its gradient reaches the write's node
    as a numpy scalar (distnn's SetItem backward did ``g.copy(); ga[index] = 0`` on it: a TypeError)."""
    grads = []
    for lib in (torch, distnn):
        x = _leaf(lib, [0.1, 0.9, 0.3])
        h = x.clone()
        s = h[1]
        if write == "fill_":
            s.fill_(2.0)
        elif write == "setitem":
            s[...] = 2.0
        else:
            s.mul_(2.0)
        (s * 3.0 + (h * h).sum()).backward()
        grads.append(_grad(x))
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-13)


@pytest.mark.parametrize("shape,dim,sizes", [((0, 1), 1, [-1]), ((0, 4), 1, [2, -1]), ((3, 0), 0, [-1, 3]),
                                             ((2, 0, 3), 2, [3, -1])])
def test_unflatten_minus_one_of_an_empty_tensor(shape, dim, sizes):
    """unflatten's -1 comes from the dim unflattened (torch's), not from all the elements: an empty tensor's is not
    ambiguous (distnn passed the -1 to reshape, which refused it as ambiguous)."""
    want = torch.zeros(shape).unflatten(dim, sizes)
    got = distnn.zeros(shape).unflatten(dim, sizes)
    assert got.shape == tuple(want.shape)
