"""``create_graph=True`` gradients of sparse COO tensors against PyTorch 2.13: the node that made the gradient
(``grad_fn.name()``), its entries and values, and the second-order gradient through it; leaves with sorted unique
indices and with a repeated index, and sparse tensors made by ops."""
import numpy as np
import pytest

import distnn
from distnn import sparse

torch = pytest.importorskip("torch")

IDX = {"sorted": [[0, 1, 2, 2], [1, 2, 0, 3]], "repeated": [[2, 0, 1, 0, 2], [0, 1, 2, 1, 3]]}
SIZE = (3, 4)
R = np.random.default_rng(7)


def _pairs(kind):
    i = np.array(IDX[kind])
    v, d = R.standard_normal(i.shape[1]), R.standard_normal(SIZE)
    return ((distnn.sparse_coo_tensor(i, v, SIZE, requires_grad=True), distnn.Tensor(d, requires_grad=True)),
            (torch.sparse_coo_tensor(torch.tensor(i), torch.tensor(v), SIZE, requires_grad=True),
             torch.tensor(d, requires_grad=True)))


def _other(lib):
    i, v = [[0, 1], [0, 2]], [5.0, -6.0]
    if lib is torch:
        return torch.sparse_coo_tensor(torch.tensor(i), torch.tensor(v, dtype=torch.float64), SIZE)
    return distnn.sparse_coo_tensor(np.array(i), np.array(v), SIZE)


# name -> loss(L, D, lib) and the tensor to differentiate (the leaf, or a sparse tensor made by an op)
CASES = {
    "to_dense": lambda L, D, lib: ((L.to_dense() * D).pow(2).sum(), L),
    "mul_number": lambda L, D, lib: (((L * 2.0).to_dense() * D).pow(2).sum(), L),
    "mul_dense": lambda L, D, lib: (((L * D).to_dense() * D).sum(), L),
    "t": lambda L, D, lib: ((L.t().to_dense() * D.t()).pow(2).sum(), L),
    "transpose": lambda L, D, lib: ((L.transpose(0, 1).to_dense() * D.t()).pow(2).sum(), L),
    "add_self": lambda L, D, lib: (((L + L * 3.0).to_dense() * D).pow(2).sum(), L),
}
ADD_OTHER = {"add": (lambda L, D, lib: (((L + _other(lib)).to_dense() * D).pow(2).sum(), L), "SparseMaskBackward0"),
             "add_alpha": (lambda L, D, lib: ((_other(lib).add(L, alpha=2.0).to_dense() * D).pow(2).sum(), L),
                           "MulBackward1")}


@pytest.mark.parametrize("kind", sorted(IDX))
@pytest.mark.parametrize("name", sorted(CASES) + ["made_by_mul"])
def test_create_graph_gradient_node_and_second_order_as_torch(name, kind):
    (L, D), (TL, TD) = _pairs(kind)
    if name == "made_by_mul":
        Y, TY = L * 2.0, TL * 2.0
        loss, x = (Y.to_dense() * D).pow(2).sum(), Y
        tloss, tx = (TY.to_dense() * TD).pow(2).sum(), TY
    else:
        loss, x = CASES[name](L, D, distnn)
        tloss, tx = CASES[name](TL, TD, torch)
    (g,) = distnn.autograd.grad(loss, [x], create_graph=True)
    (tg,) = torch.autograd.grad(tloss, [tx], create_graph=True)
    assert g.grad_fn is not None and g.grad_fn.name() == tg.grad_fn.name()
    np.testing.assert_allclose(g.to_dense().data, tg.detach().to_dense().numpy(), rtol=1e-12, atol=1e-12)
    (gd,) = distnn.autograd.grad(sparse.sum(g), [D])
    (tgd,) = torch.autograd.grad(torch.sparse.sum(tg), [TD])
    np.testing.assert_allclose(gd.data, tgd.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(IDX))
def test_a_leaf_hook_sees_a_named_gradient_as_torch(kind):
    (L, D), (TL, TD) = _pairs(kind)
    seen, theirs = [], []
    L.register_hook(lambda g: seen.append(g.grad_fn.name()))
    TL.register_hook(lambda g: theirs.append(g.grad_fn.name()))
    distnn.autograd.grad(((L * 2.0).to_dense() * D).pow(2).sum(), [L], create_graph=True)
    torch.autograd.grad(((TL * 2.0).to_dense() * TD).pow(2).sum(), [TL], create_graph=True)
    assert seen == theirs == ["MulBackward0"]


@pytest.mark.parametrize("form", sorted(ADD_OTHER))
@pytest.mark.parametrize("kind", sorted(IDX))
def test_create_graph_through_an_add_with_other_indices(kind, form):
    """``create_graph=True`` keeps a leaf's gradient on its own indices (the layout carriers of
    :mod:`distnn.sparse.layout_grads` are for plain passes): the node and the content there are PyTorch's."""
    (L, D), (TL, TD) = _pairs(kind)
    op, node = ADD_OTHER[form]
    loss, x = op(L, D, distnn)
    tloss, tx = op(TL, TD, torch)
    (g,) = distnn.autograd.grad(loss, [x], create_graph=True)
    (tg,) = torch.autograd.grad(tloss, [tx], create_graph=True)
    assert g.grad_fn.name() == tg.grad_fn.name() == node
    mask = np.zeros(SIZE, bool)
    mask[tuple(np.array(IDX[kind]))] = True
    np.testing.assert_allclose(g.to_dense().data, np.where(mask, tg.detach().to_dense().numpy(), 0), rtol=1e-12)
