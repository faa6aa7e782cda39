"""Item assignment into a complex tensor while recording (``y[idx] = v``) against PyTorch 2.13: the values, the
node's name (CopySlices, or IndexPutBackward0 for an index of tensors, lists or masks), and the gradients of the
leaf under ``y`` and of ``v`` (complex or real: a real ``v`` gets the real part, in its own dtype) for real losses:
``(|y|^2).sum()``, ``y.real`` and ``y.imag`` weighted, and ``(y * w).real`` with a complex ``w``.

Bitwise where the arithmetic is the same (the linear losses, a value broadcast over at most two elements);
``|y|^2`` to a tolerance (its backward rounds differently)."""
import numpy as np
import pytest
import torch

import distnn
from parity_draws import draw as _draw, grad_of as _grad

TARGETS = ["complex64", "complex128"]
VALUES = ["float32", "float64", "complex64", "complex128"]
INDEXES = {  # name -> (index, value shape)
    "int": ((1,), (4,)),
    "slice_broadcast": ((slice(0, 2),), (1, 4)),
    "column": ((Ellipsis, 2), (3,)),
    "list": (([0, 2],), (2, 4)),
    "mask": ("mask", (6,)),
    "int_and_list": ((1, [0, 3]), (2,)),
}
LOSSES = ["abs2", "parts", "linear"]


def _run(L, target, value, index_name, loss, grads):
    rng = np.random.default_rng(11)
    index, value_shape = INDEXES[index_name]
    if index == "mask":
        index = (L.tensor(np.array([[True, False, True, False]] * 3)),)
    leaf = L.tensor(_draw(rng, (3, 4), target), requires_grad=grads[0])
    source = L.tensor(_draw(rng, value_shape, value), requires_grad=grads[1])
    y = leaf * 1 if grads[0] else leaf.clone()
    v = source
    if np.dtype(value) != np.dtype(target) and index_name in ("list", "mask", "int_and_list"):
        v = source.to(getattr(L, target))  # (PyTorch's index_put_ refuses another dtype: cast, recorded)
    y[index] = v
    seen = [y.grad_fn.name(), y.detach().numpy().tolist()]
    if loss == "abs2":
        total = (y.abs() ** 2).sum()
    elif loss == "parts":
        total = (y.real * L.tensor(rng.standard_normal((3, 4)))).sum() + (y.imag * 3).sum()
    else:
        total = (y * L.tensor(_draw(rng, (3, 4), "complex128"))).real.sum()
    total.backward()
    return seen + [_grad(leaf), _grad(source)]


def _close(a, b, tol):
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, (float, complex)):
        return abs(a - b) <= tol * (1 + abs(a))
    return a == b


@pytest.mark.parametrize("grads", [(True, True), (True, False), (False, True)], ids=["both", "y", "v"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("index_name", sorted(INDEXES))
@pytest.mark.parametrize("value", VALUES)
@pytest.mark.parametrize("target", TARGETS)
def test_complex_item_assignment_gradients_as_torch(target, value, index_name, loss, grads):
    want = _run(torch, target, value, index_name, loss, grads)
    got = _run(distnn, target, value, index_name, loss, grads)
    assert got[0] == want[0]
    assert got[1] == want[1]
    assert _close(got[2:], want[2:], 1e-5 if loss == "abs2" else 0.0)


def test_a_real_value_into_a_complex_tensor_gets_the_real_part():
    """``y.imag.sum()`` does not depend on a real value written into ``y``: its gradient is zero, real."""
    for L in (torch, distnn):
        v = L.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        y = L.zeros(3, 4, dtype=L.complex64)
        y[1] = v
        (y.imag.sum() + 2 * y.real.sum()).backward()
        assert str(v.grad.dtype).endswith("float32")
        assert np.asarray(v.grad.numpy() if hasattr(v.grad, "numpy") else v.grad).tolist() == [2.0] * 4
