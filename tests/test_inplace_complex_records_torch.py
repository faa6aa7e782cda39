"""In-place ops on a complex tensor that requires grad are recorded, as PyTorch's: the gradient goes through the
in-place op (before, only real float tensors recorded one, so ``y.mul_(2)`` on a complex ``y`` left ``y``'s old
node and its gradient came back silently without the factor; ``copy_`` of a same-shaped complex source was
written with no node at all)."""
import numpy as np
import pytest
import torch

import distnn

pytestmark = pytest.mark.filterwarnings("error")

OPS = {  # name -> (lib, y, other) -> y changed in place
    "mul_": lambda L, y, o: y.mul_(o),
    "mul_ number": lambda L, y, o: y.mul_(2 - 1j),
    "add_": lambda L, y, o: y.add_(o),
    "add_ alpha": lambda L, y, o: y.add_(o, alpha=3),
    "sub_": lambda L, y, o: y.sub_(o),
    "div_": lambda L, y, o: y.div_(o),
    "neg_": lambda L, y, o: y.neg_(),
    "exp_": lambda L, y, o: y.exp_(),
    "lerp_ number": lambda L, y, o: y.lerp_(o, 0.3 + 0.2j),
    "lerp_ tensor": lambda L, y, o: y.lerp_(o, o * 0.25),
    "copy_": lambda L, y, o: y.copy_(o * 2),
}


@pytest.mark.parametrize("op", OPS)
def test_gradient_through_the_inplace_op(op):
    rng = np.random.default_rng([31, list(OPS).index(op)])
    z = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    other = rng.standard_normal(4) + 1j * rng.standard_normal(4) + 2
    g = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    seen = []
    for L in (torch, distnn):
        a, b = L.tensor(z, requires_grad=True), L.tensor(other, requires_grad=True)
        y = a * 1
        OPS[op](L, y, b)
        grads = L.autograd.grad(y, (a, b), L.tensor(g), allow_unused=True)
        seen.append((y.grad_fn.name(), [None if x is None else np.asarray(x.numpy() if hasattr(x, "numpy") else x)
                                        for x in grads]))
    if op != "copy_":  # (distnn's copy_ records a where, WhereBackward0, for a real tensor too)
        assert seen[1][0] == seen[0][0]
    for mine, theirs in zip(seen[1][1], seen[0][1]):
        assert (mine is None) == (theirs is None)
        if theirs is not None:
            np.testing.assert_allclose(mine, theirs, rtol=1e-13, atol=1e-13)
