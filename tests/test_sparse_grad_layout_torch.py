"""The layout of sparse COO gradients against PyTorch 2.13: a sparse leaf's ``.grad`` and the retained ``.grad``
of the sparse tensor an op made from it (sparse or dense, ``is_coalesced()``, ``_nnz()``, indices and values in
PyTorch's order), what ``register_hook`` hooks receive and may return, ``autograd.grad`` with sparse tensors
made by ops as inputs, and sparse outputs with sparse ``grad_outputs``; float32 and float64, coalesced leaves
and leaves with a repeated index."""
import numpy as np
import pytest

import distnn
from distnn import sparse

torch = pytest.importorskip("torch")

IDX = {True: [[0, 1, 2, 2], [1, 2, 0, 3]], False: [[2, 0, 1, 0, 2], [0, 1, 2, 1, 3]]}  # coalesced / a repeat
SIZE = (3, 4)
R = np.random.default_rng(11)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
DTYPES = {"float32": (np.float32, torch.float32), "float64": (np.float64, torch.float64)}


def _pair(coalesced, dtype):
    nd, td = DTYPES[dtype]
    i = np.array(IDX[coalesced])
    v = R.standard_normal(i.shape[1]).astype(nd)
    ours = distnn.sparse_coo_tensor(i, v, SIZE, requires_grad=True)
    theirs = torch.sparse_coo_tensor(torch.tensor(i), torch.tensor(v), SIZE, dtype=td, requires_grad=True)
    return ours, theirs


def _dense_pair(dtype, shape=SIZE):
    a = R.standard_normal(shape).astype(DTYPES[dtype][0])
    return distnn.Tensor(a), torch.tensor(a)


def _assert_same(ours, theirs, flag=True):
    """Same layout, size, dtype and content; sparse: the same nnz, entries in PyTorch's order and (``flag``) the
    same coalesced flag."""
    assert theirs is not None and ours is not None
    assert isinstance(ours, sparse.SparseTensor) == theirs.is_sparse
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert np.dtype(ours.dtype) == np.dtype(str(theirs.dtype).replace("torch.", ""))
    tol = 1e-6 if ours.dtype == np.float32 else 1e-12
    if not theirs.is_sparse:
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=tol, atol=tol)
        return
    if flag:
        assert ours.is_coalesced() == theirs.is_coalesced()
    assert ours._nnz() == theirs._nnz()
    # (copies: numpy() would pin torch's storage, and a later zero_() + backward must resize it)
    np.testing.assert_array_equal(ours._indices().data, theirs._indices().clone().numpy())
    np.testing.assert_allclose(ours._values().data, theirs._values().detach().clone().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(ours.to_dense().data, theirs.detach().to_dense().numpy(), rtol=tol, atol=tol)


# name -> (distnn op on S, torch op on S, dense operand shape or None); each makes a sparse tensor of SIZE or
# smaller whose gradient PyTorch keeps on its own indices
OPS = {
    "mul_number": (lambda S, D: S * 2.5, lambda S, D: S * 2.5),
    "number_mul": (lambda S, D: 2.5 * S, lambda S, D: 2.5 * S),
    "div_number": (lambda S, D: S / 4.0, lambda S, D: S / 4.0),
    "neg": (lambda S, D: -S, lambda S, D: -S),
    "clone": (lambda S, D: S.clone(), lambda S, D: S.clone()),
    "coalesce": (lambda S, D: S.coalesce(), lambda S, D: S.coalesce()),
    "mul_dense": (lambda S, D: S * D, lambda S, D: S * D),
    "dense_mul": (lambda S, D: D * S, lambda S, D: D * S),
    "distnn_mul": (lambda S, D: distnn.mul(S, D), lambda S, D: torch.mul(S, D)),
    "coalesce_mul_dense": (lambda S, D: S.coalesce() * D, lambda S, D: S.coalesce() * D),
    "sparse_sum_dim0": (lambda S, D: sparse.sum(S, 0), lambda S, D: torch.sparse.sum(S, 0)),
    "sparse_sum_dim1": (lambda S, D: sparse.sum(S, 1), lambda S, D: torch.sparse.sum(S, 1)),
    "mul_number_twice": (lambda S, D: (S * 2.0) * 3.0, lambda S, D: (S * 2.0) * 3.0),
}
# Ops whose backward gives a sparse leaf a gradient off its own indices or flagged otherwise (PyTorch's sparse
# layout: distnn.sparse.layout_grads): the sum's whole gradient, grad @ other.T, grad * other, a sum of two uses
ELSEWHERE = (np.array([[0, 1], [0, 2]]), np.array([5.0, 6.0]), SIZE)
OTHER = (np.array([[0, 1, 3], [1, 2, 0]]), np.array([1.5, -2.0, 0.5]), (4, 3))
LAYOUT_OPS = dict(OPS, add_self=(lambda S, D: S + S * 2.0, lambda S, D: S + S * 2.0),
                     mul_sparse=(lambda S, D: S * S, lambda S, D: S * S),
                     add_other_pattern=(lambda S, D: S + distnn.sparse_coo_tensor(*ELSEWHERE).to(S.dtype),
                                        lambda S, D: S + torch.sparse_coo_tensor(
                                            torch.tensor(ELSEWHERE[0]), torch.tensor(ELSEWHERE[1]), SIZE).to(S.dtype)),
                     mm_sparse=(lambda S, D: sparse.mm(S, distnn.sparse_coo_tensor(*OTHER).to(S.dtype)),
                                lambda S, D: torch.sparse.mm(S, torch.sparse_coo_tensor(
                                    torch.tensor(OTHER[0]), torch.tensor(OTHER[1]), OTHER[2]).to(S.dtype))))


def _loss(Y, W):
    return (Y.to_dense() * W).sum() if isinstance(Y, (sparse.SparseTensor,)) or getattr(Y, "is_sparse", False) \
        else (Y * W).sum()


LAYOUT_CASES = [pytest.param(name, coalesced, id=f"{name}-{'coalesced' if coalesced else 'repeated_index'}")
                for name in sorted(LAYOUT_OPS) for coalesced in (True, False)]


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("name,coalesced", LAYOUT_CASES)
def test_leaf_and_retained_grads_have_torchs_layout(name, coalesced, dtype):
    ours_op, theirs_op = LAYOUT_OPS[name]
    S, T = _pair(coalesced, dtype)
    D, TD = _dense_pair(dtype)
    Y, TY = ours_op(S, D), theirs_op(T, TD)
    assert Y.is_leaf is False and TY.is_leaf is False
    Y.retain_grad()
    TY.retain_grad()
    assert Y.retains_grad and TY.retains_grad
    W, TW = _dense_pair(dtype, tuple(Y.shape))
    _loss(Y, W).backward()
    _loss(TY, TW).backward()
    _assert_same(Y.grad, TY.grad)
    _assert_same(S.grad, T.grad)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("coalesced", [True, False], ids=["coalesced", "repeated_index"])
def test_retained_grad_accumulates_over_passes(coalesced, dtype):
    S, T = _pair(coalesced, dtype)
    W, TW = _dense_pair(dtype)
    Y, TY = S * 2.0, T * 2.0
    Y.retain_grad()
    TY.retain_grad()
    Z, TZ = Y * 3.0, TY * 3.0
    for _ in range(2):
        _loss(Z, W).backward(retain_graph=True)
        _loss(TZ, TW).backward(retain_graph=True)
    _assert_same(Y.grad, TY.grad)
    _assert_same(S.grad, T.grad)
    S.retain_grad()  # (a leaf: nothing changes)
    T.retain_grad()
    _assert_same(S.grad, T.grad)


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("coalesced", [True, False], ids=["coalesced", "repeated_index"])
@pytest.mark.parametrize("on", ["leaf", "non_leaf"])
@pytest.mark.parametrize("returns", ["nothing", "scaled"])
def test_hooks_see_and_replace_the_sparse_grad_as_torch(returns, on, coalesced, dtype):
    S, T = _pair(coalesced, dtype)
    D, TD = _dense_pair(dtype)
    seen, theirs_seen = [], []

    def hook_for(log):
        def hook(g):
            log.append(g)
            return g * 10.0 if returns == "scaled" else None
        return hook

    Y, TY = S * D, T * TD
    (S if on == "leaf" else Y).register_hook(hook_for(seen))
    (T if on == "leaf" else TY).register_hook(hook_for(theirs_seen))
    W, TW = _dense_pair(dtype)
    _loss(Y, W).backward()
    _loss(TY, TW).backward()
    assert len(seen) == len(theirs_seen) == 1
    _assert_same(seen[0], theirs_seen[0])
    _assert_same(S.grad, T.grad, flag=False)  # (torch's flag: whether AccumulateGrad found the hook's log holding it)


@pytest.mark.parametrize("coalesced", [True, False], ids=["coalesced", "repeated_index"])
def test_a_leaf_hook_sees_every_use_summed_as_torch(coalesced):
    S, T = _pair(coalesced, "float64")
    seen, theirs_seen = [], []
    S.register_hook(seen.append)
    T.register_hook(theirs_seen.append)
    (sparse.sum(S * 2.0) + sparse.sum(S, 0).to_dense().pow(2).sum()).backward()
    (torch.sparse.sum(T * 2.0) + torch.sparse.sum(T, 0).to_dense().pow(2).sum()).backward()
    assert len(seen) == len(theirs_seen) == 1
    np.testing.assert_allclose(seen[0].to_dense().data, theirs_seen[0].to_dense().numpy(), rtol=1e-12)
    _assert_same(S.grad, T.grad, flag=False)


def test_hook_refusals_name_the_problem():
    S, T = _pair(True, "float64")
    S.register_hook(lambda g: g.to_dense())
    T.register_hook(lambda g: g.to_dense())
    with pytest.raises(RuntimeError, match="changed the type of value"):
        sparse.sum(S * 2.0).backward()
    with pytest.raises(RuntimeError, match="changed the type of value"):
        torch.sparse.sum(T * 2.0).backward()
    S, _ = _pair(True, "float64")
    elsewhere = distnn.sparse_coo_tensor(np.array([[0], [0]]), np.array([5.0]), SIZE)
    S.register_hook(lambda g: elsewhere)  # (torch takes it: distnn's gradient lives on the leaf's indices)
    with pytest.raises(NotImplementedError, match="indices the tensor does not have"):
        sparse.sum(S * 2.0).backward()
    plain = distnn.sparse_coo_tensor(np.array(IDX[True]), np.ones(4), SIZE)
    with pytest.raises(RuntimeError, match="does not require gradient"):
        plain.register_hook(print)
    on_values = distnn.sparse_coo_tensor(np.array(IDX[True]), distnn.Tensor(np.ones(4), requires_grad=True), SIZE)
    with pytest.raises(NotImplementedError, match="values tensor that requires grad"):
        on_values.retain_grad()


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("coalesced", [True, False], ids=["coalesced", "repeated_index"])
@pytest.mark.parametrize("name", sorted(OPS))
def test_grad_of_a_sparse_tensor_made_by_an_op_as_torch(name, coalesced, dtype):
    ours_op, theirs_op = OPS[name]
    S, T = _pair(coalesced, dtype)
    D, TD = _dense_pair(dtype)
    Y, TY = ours_op(S, D), theirs_op(T, TD)
    W, TW = _dense_pair(dtype, tuple(Y.shape))
    g_y, g_s = distnn.autograd.grad(_loss(Y * 3.0, W), [Y, S])
    t_y, t_s = torch.autograd.grad(_loss(TY * 3.0, TW), [TY, T])
    _assert_same(g_y, t_y)
    _assert_same(g_s, t_s, flag=False)  # (torch's returned leaf gradient is flagged as it flowed; .grad is not)
    assert S.grad is None and Y.grad is None


def _on_indices_of(TY, dtype):
    """A sparse gradient with one entry at each index of ``TY`` (sorted), for distnn and for torch."""
    c = TY.detach().coalesce()
    i = c.indices().numpy()
    v = R.standard_normal(i.shape[1]).astype(DTYPES[dtype][0])
    return (distnn.sparse_coo_tensor(i, v, tuple(c.shape)),
            torch.sparse_coo_tensor(torch.tensor(i), torch.tensor(v), tuple(c.shape)))


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("coalesced", [True, False], ids=["coalesced", "repeated_index"])
@pytest.mark.parametrize("name", sorted(set(OPS) - {"mul_dense", "dense_mul", "distnn_mul", "coalesce_mul_dense"})
                         + ["leaf", "mul_dense"])
def test_sparse_output_with_sparse_grad_outputs_as_torch(name, coalesced, dtype):
    S, T = _pair(coalesced, dtype)
    D, TD = _dense_pair(dtype)
    ours_op, theirs_op = OPS[name] if name != "leaf" else (lambda S, D: S, lambda S, D: S)
    Y, TY = ours_op(S, D), theirs_op(T, TD)
    G, TG = _on_indices_of(TY, dtype)
    (g,) = distnn.autograd.grad(Y, [S], G, retain_graph=True)
    (tg,) = torch.autograd.grad(TY, [T], TG, retain_graph=True)
    _assert_same(g, tg, flag=name != "sparse_sum_dim0" and name != "sparse_sum_dim1")  # (torch's: as it flowed)
    if name != "leaf":
        Y.backward(G)
        TY.backward(TG)
        _assert_same(S.grad, T.grad)


def test_sparse_output_refusals_name_the_problem():
    S, T = _pair(True, "float64")
    with pytest.raises(RuntimeError, match="implicitly created only for scalar outputs"):
        distnn.autograd.grad(S * 2.0, [S])
    with pytest.raises(RuntimeError, match="implicitly created only for scalar outputs"):
        torch.autograd.grad(T * 2.0, [T])
    with pytest.raises(NotImplementedError, match="sparse one on the output's indices"):
        distnn.autograd.grad(S * 2.0, [S], distnn.Tensor(np.ones(SIZE)))
    part = distnn.sparse_coo_tensor(np.array([[0], [1]]), np.array([1.0]), SIZE)  # (torch passes it on as it is)
    with pytest.raises(NotImplementedError, match="one entry at each index of the output"):
        distnn.autograd.grad(S * 2.0, [S], part)
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        distnn.autograd.grad(S * 2.0, [S], distnn.sparse_coo_tensor(np.array([[0], [1]]), np.array([1.0]), (3, 3)))
    on_values = distnn.sparse_coo_tensor(np.array(IDX[True]), distnn.Tensor(np.ones(4), requires_grad=True), SIZE)
    with pytest.raises(NotImplementedError, match="values tensor that requires grad"):
        distnn.autograd.grad(sparse.sum(on_values), [on_values])


@pytest.mark.parametrize("coalesced", [True, False], ids=["coalesced", "repeated_index"])
def test_create_graph_grad_of_a_sparse_tensor_made_by_an_op(coalesced):
    S, T = _pair(coalesced, "float64")
    D, TD = _dense_pair("float64")
    D.requires_grad_(True)
    TD.requires_grad_(True)
    Y, TY = S * 2.0, T * 2.0
    (g,) = distnn.autograd.grad((Y.to_dense() * D).pow(2).sum(), [Y], create_graph=True)
    (tg,) = torch.autograd.grad((TY.to_dense() * TD).pow(2).sum(), [TY], create_graph=True)
    _assert_same(g, tg)
    (gd,) = distnn.autograd.grad(sparse.sum(g), [D])
    (tgd,) = torch.autograd.grad(torch.sparse.sum(tg), [TD])
    _assert_same(gd, tgd)


@pytest.mark.parametrize("coalesced", [True, False], ids=["coalesced", "repeated_index"])
def test_a_leaf_hook_in_a_create_graph_pass_as_torch(coalesced):
    S, T = _pair(coalesced, "float64")
    D, TD = _dense_pair("float64")
    D.requires_grad_(True)
    TD.requires_grad_(True)
    S.register_hook(lambda g: g * 3.0)
    T.register_hook(lambda g: g * 3.0)
    (g,) = distnn.autograd.grad((S.to_dense() * D).pow(2).sum(), [S], create_graph=True)
    (tg,) = torch.autograd.grad((T.to_dense() * TD).pow(2).sum(), [T], create_graph=True)
    _assert_same(g, tg, flag=False)
    (gd,) = distnn.autograd.grad(sparse.sum(g), [D])
    (tgd,) = torch.autograd.grad(torch.sparse.sum(tg), [TD])
    _assert_same(gd, tgd)


@pytest.mark.parametrize("coalesced", [True, False], ids=["coalesced", "repeated_index"])
def test_backward_inputs_a_sparse_tensor_made_by_an_op_as_torch(coalesced):
    S, T = _pair(coalesced, "float32")
    W, TW = _dense_pair("float32")
    Y, TY = S * 2.0, T * 2.0
    _loss(Y, W).backward(inputs=[Y])
    _loss(TY, TW).backward(inputs=[TY])
    _assert_same(Y.grad, TY.grad)
    assert S.grad is None and T.grad is None
