"""A gradient reaches each input in that input's dtype, as in PyTorch, also when an op promoted (a float32
tensor plus a float64 one is float64): ``autograd.grad`` returned the promoted float64 gradient for a float32
input, and a ``create_graph`` pass handed a float64 gradient to a float32 matmul's graph backward, which then
refused it as mixed dtypes."""
import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")

A = np.random.RandomState(0).randn(3, 3).astype(np.float32)


def _loss(lib, a):
    eye = lib.tensor(np.eye(3))  # float64: the sum promotes
    y = a @ a.mT + eye
    return (y @ y).sum() + (a * eye).sum()


@pytest.mark.parametrize("create_graph", [False, True])
def test_grad_is_in_the_inputs_dtype_and_matches_torch(create_graph):
    ours = distnn.tensor(A, requires_grad=True)
    theirs = torch.tensor(A, requires_grad=True)
    g, = distnn.autograd.grad(_loss(distnn, ours), ours, create_graph=create_graph)
    t, = torch.autograd.grad(_loss(torch, theirs), theirs, create_graph=create_graph)
    assert str(g.dtype) == str(t.dtype).replace("torch.", "") == "float32"
    np.testing.assert_allclose(g.numpy(), t.detach().numpy(), rtol=1e-5)
    if create_graph:
        h, = distnn.autograd.grad((g * g).sum(), ours)
        u, = torch.autograd.grad((t * t).sum(), theirs)
        assert str(h.dtype) == "float32"
        np.testing.assert_allclose(h.numpy(), u.numpy(), rtol=1e-4)


def test_grad_of_an_intermediate_input_is_in_its_dtype():
    a = distnn.tensor(A, requires_grad=True)
    mid = a * 2  # float32, a non-leaf input of grad
    g, = distnn.autograd.grad((mid + distnn.tensor(np.ones(3))).sum(), mid)
    assert str(g.dtype) == "float32"
