"""The 0-"norm" (the count of non-zeros) against PyTorch: the value (NaN counts), a LinalgVectorNormBackward0 node,
and no gradient at all from it (PyTorch's norm_backward returns an undefined one): ``x.grad`` stays None,
``autograd.grad`` refuses the input as unused (or gives None with ``allow_unused``), and another path's gradient
is left as it is."""
import numpy as np
import pytest
import torch

import distnn

pytestmark = pytest.mark.filterwarnings("error")

VALUES = np.array([[0.0, 1.5, -2.0, 0.0], [3.0, 0.0, -0.0, np.nan]], np.float32)

CALLS = {
    "vector_norm": lambda L, t: L.linalg.vector_norm(t, ord=0),
    "vector_norm dim": lambda L, t: L.linalg.vector_norm(t, ord=0, dim=1),
    "vector_norm keepdim": lambda L, t: L.linalg.vector_norm(t, 0, (0, 1), True),
    "vector_norm dtype": lambda L, t: L.linalg.vector_norm(t, ord=0, dtype=L.float64),
    "linalg.norm dim": lambda L, t: L.linalg.norm(t, ord=0, dim=1),
    "norm": lambda L, t: L.norm(t, p=0),
    "Tensor.norm": lambda L, t: t.norm(0),
    "of a product": lambda L, t: L.linalg.vector_norm(t * 2, ord=0),
}


def _np(x):
    return np.asarray(x.detach().numpy() if hasattr(x, "detach") else x)


@pytest.mark.parametrize("name", CALLS)
def test_value_node_and_no_gradient(name):
    seen = []
    for L in (torch, distnn):
        x = L.tensor(VALUES, requires_grad=True)
        out = CALLS[name](L, x)
        assert out.requires_grad
        out.sum().backward()
        assert x.grad is None
        seen.append((_np(out), str(out.dtype).split(".")[-1]))
    np.testing.assert_array_equal(seen[1][0], seen[0][0])
    assert seen[1][1] == seen[0][1]


@pytest.mark.parametrize("name", ["vector_norm", "linalg.norm dim", "Tensor.norm"])
def test_node_name(name):
    names = [CALLS[name](L, L.tensor(VALUES, requires_grad=True)).grad_fn.name() for L in (torch, distnn)]
    assert names[1] == names[0] == "LinalgVectorNormBackward0"


def test_autograd_grad_sees_an_unused_input():
    for L in (torch, distnn):
        x = L.tensor([0.0, 1.0, 2.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
            L.autograd.grad(L.linalg.vector_norm(x, 0), x)
        assert L.autograd.grad(L.linalg.vector_norm(x, 0), x, allow_unused=True) == (None,)


def test_other_paths_keep_their_gradient():
    grads = []
    for L in (torch, distnn):
        x = L.tensor([0.0, 1.0, -2.0], requires_grad=True)
        (L.linalg.vector_norm(x, 0) * 3 + (x * x).sum()).backward()
        grads.append(_np(x.grad))
    np.testing.assert_array_equal(grads[1], grads[0])
