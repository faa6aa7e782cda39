"""``distnn.autograd.grad`` (and ``backward(inputs=...)``) with sparse COO leaves as inputs, against PyTorch:
the returned gradient has the layout ``backward`` gives the leaf's ``.grad`` (sparse or dense), its shape and
values, for each product form and the elementwise ops distnn has for sparse tensors."""
import numpy as np
import pytest

import distnn
from distnn import sparse

torch = pytest.importorskip("torch")

IDX = {True: [[0, 1, 2], [1, 0, 2]], False: [[2, 0, 2, 1], [2, 1, 2, 0]]}  # coalesced / with a repeat
VALS = {True: [1.0, 2.0, 3.0], False: [1.0, 2.0, 3.0, 4.0]}
R = np.random.default_rng(7)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)
D = R.standard_normal((3, 4))
D3 = R.standard_normal((3, 3))


def _leaves(coalesced):
    i, v = np.array(IDX[coalesced]), np.array(VALS[coalesced])
    ours = distnn.sparse_coo_tensor(i, v, (3, 3), requires_grad=True)
    theirs = torch.sparse_coo_tensor(torch.tensor(i), torch.tensor(v), (3, 3), requires_grad=True)
    return ours, theirs


def _dense(x):
    return x.to_dense().data if isinstance(x, sparse.SparseTensor) else x.data


def _assert_same_grad(ours, theirs):
    assert isinstance(ours, sparse.SparseTensor) == theirs.is_sparse
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(_dense(ours), theirs.to_dense().numpy(), rtol=1e-12, atol=1e-12)
    if theirs.is_sparse and theirs.is_coalesced():  # (torch's entries are deterministic then)
        np.testing.assert_array_equal(ours._indices().data, theirs._indices().numpy())
        np.testing.assert_allclose(ours._values().data, theirs._values().numpy(), rtol=1e-12)
    elif theirs.is_sparse:
        c_ours, c_theirs = ours.coalesce(), theirs.coalesce()
        np.testing.assert_array_equal(c_ours._indices().data, c_theirs._indices().numpy())
        np.testing.assert_allclose(c_ours._values().data, c_theirs._values().numpy(), rtol=1e-12)


def _t(a):
    return torch.tensor(a)


def _n(a):
    return distnn.Tensor(a)


# name -> (distnn loss of S, torch loss of S)
CASES = {
    "mm": (lambda S: distnn.mm(S, _n(D)).sum(), lambda S: torch.mm(S, _t(D)).sum()),
    "mm_dense_sparse": (lambda S: distnn.mm(_n(D.T), S).sum(), lambda S: torch.mm(_t(D.T), S).sum()),
    "matmul": (lambda S: (S @ _n(D)).sum(), lambda S: (S @ _t(D)).sum()),
    "matmul_vector": (lambda S: (S @ _n(D[:, 0])).pow(2).sum(), lambda S: (S @ _t(D[:, 0])).pow(2).sum()),
    "rmatmul": (lambda S: (_n(D.T) @ S).sum(), lambda S: (_t(D.T) @ S).sum()),
    "distnn_matmul": (lambda S: distnn.matmul(S, _n(D)).sum(), lambda S: torch.matmul(S, _t(D)).sum()),
    "sparse_mm": (lambda S: sparse.mm(S, _n(D)).pow(2).sum(), lambda S: torch.sparse.mm(S, _t(D)).pow(2).sum()),
    "sparse_mm_dense_sparse": (lambda S: sparse.mm(_n(D.T), S).sum(), lambda S: torch.sparse.mm(_t(D.T), S).sum()),
    "sparse_mm_sparse_sparse": (lambda S: sparse.sum(sparse.mm(S, S)),
                                lambda S: torch.sparse.sum(torch.sparse.mm(S, S))),
    "sparse_addmm": (lambda S: sparse.addmm(_n(np.ones((3, 4))), S, _n(D)).sum(),
                     lambda S: torch.sparse.addmm(_t(np.ones((3, 4))), S, _t(D)).sum()),
    "mul_dense": (lambda S: sparse.sum(S * _n(D3)), lambda S: torch.sparse.sum(S * _t(D3))),
    "dense_mul": (lambda S: sparse.sum(_n(D3) * S), lambda S: torch.sparse.sum(_t(D3) * S)),
    "mul_number": (lambda S: sparse.sum(S * 2.5), lambda S: torch.sparse.sum(S * 2.5)),
    "mul_sparse": (lambda S: sparse.sum(S * S), lambda S: torch.sparse.sum(S * S)),
    "distnn_mul": (lambda S: sparse.sum(distnn.mul(S, _n(D3))), lambda S: torch.sparse.sum(torch.mul(S, _t(D3)))),
    "to_dense": (lambda S: (S.to_dense() * _n(D3)).sum(), lambda S: (S.to_dense() * _t(D3)).sum()),
    "coalesce": (lambda S: sparse.sum(S.coalesce() * 3.0), lambda S: torch.sparse.sum(S.coalesce() * 3.0)),
    "sparse_sum": (lambda S: sparse.sum(S), lambda S: torch.sparse.sum(S)),
    "sparse_sum_dim": (lambda S: sparse.sum(S, 0).to_dense().pow(2).sum(),
                       lambda S: torch.sparse.sum(S, 0).to_dense().pow(2).sum()),
    "add_sparse": (lambda S: sparse.sum(S + S * 2.0), lambda S: torch.sparse.sum(S + S * 2.0)),
    "dense_plus_sparse": (lambda S: (_n(D3) + S).pow(2).sum(), lambda S: (_t(D3) + S).pow(2).sum()),
    "dense_minus_sparse": (lambda S: (_n(D3) - S).pow(2).sum(), lambda S: (_t(D3) - S).pow(2).sum()),
    "add_alpha": (lambda S: distnn.add(_n(D3), S, alpha=2.5).pow(2).sum(),
                  lambda S: torch.add(_t(D3), S, alpha=2.5).pow(2).sum()),
    "sub_alpha": (lambda S: distnn.sub(_n(D3), S, alpha=2.5).pow(2).sum(),
                  lambda S: torch.sub(_t(D3), S, alpha=2.5).pow(2).sum()),
    "neg_div": (lambda S: sparse.sum(-S / 4.0), lambda S: torch.sparse.sum(-S / 4.0)),
    "mm_and_sparse_use": (lambda S: distnn.mm(S, _n(D)).sum() + sparse.sum(S * 2.0),
                          lambda S: torch.mm(S, _t(D)).sum() + torch.sparse.sum(S * 2.0)),
}


@pytest.mark.parametrize("coalesced", [True, False], ids=["coalesced", "repeated_index"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_of_sparse_leaf_matches_torch(name, coalesced):
    ours_fn, theirs_fn = CASES[name]
    S, T = _leaves(coalesced)
    (g,) = distnn.autograd.grad(ours_fn(S), [S])
    (tg,) = torch.autograd.grad(theirs_fn(T), [T])
    _assert_same_grad(g, tg)
    assert S.grad is None  # returned, not accumulated


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_equals_what_backward_puts_in_dot_grad(name):
    S, _ = _leaves(False)
    (g,) = distnn.autograd.grad(CASES[name][0](S), [S])
    S2, _ = _leaves(False)
    CASES[name][0](S2).backward()
    assert isinstance(g, sparse.SparseTensor) == isinstance(S2.grad, sparse.SparseTensor)
    np.testing.assert_array_equal(_dense(g), _dense(S2.grad))


def test_sparse_and_dense_inputs_together_with_retain_graph():
    S, T = _leaves(True)
    W, TW = distnn.Tensor(D.copy(), requires_grad=True), torch.tensor(D.copy(), requires_grad=True)
    out, tout = sparse.mm(S, W).pow(2).sum(), torch.sparse.mm(T, TW).pow(2).sum()
    gs, gw = distnn.autograd.grad(out, [S, W], retain_graph=True)
    tgs, tgw = torch.autograd.grad(tout, [T, TW], retain_graph=True)
    _assert_same_grad(gs, tgs)
    np.testing.assert_allclose(gw.data, tgw.numpy(), rtol=1e-12)
    (again,) = distnn.autograd.grad(out, [S])  # the graph was kept
    _assert_same_grad(again, tgs)


def test_same_sparse_leaf_twice_in_inputs():
    S, T = _leaves(True)
    a, b = distnn.autograd.grad(sparse.sum(S * 3.0), [S, S])
    ta, tb = torch.autograd.grad(torch.sparse.sum(T * 3.0), [T, T])
    _assert_same_grad(a, ta)
    _assert_same_grad(b, tb)


def test_grad_outputs_for_a_dense_output():
    S, T = _leaves(False)
    G = R.standard_normal((3, 4))
    (g,) = distnn.autograd.grad(distnn.mm(S, _n(D)), [S], grad_outputs=_n(G))
    (tg,) = torch.autograd.grad(torch.mm(T, _t(D)), [T], grad_outputs=_t(G))
    _assert_same_grad(g, tg)


def test_sparse_grad_outputs_for_a_dense_output():
    S, T = _leaves(True)
    G = np.zeros((3, 4))
    G[0, 1], G[2, 3] = 5.0, -2.0
    go = distnn.sparse_coo_tensor(np.array([[0, 2], [1, 3]]), np.array([5.0, -2.0]), (3, 4))
    tgo = torch.sparse_coo_tensor(torch.tensor([[0, 2], [1, 3]]), torch.tensor([5.0, -2.0], dtype=torch.float64),
                                  (3, 4))
    for ours_mm, theirs_mm in ((distnn.mm, torch.mm), (sparse.mm, torch.mm)):
        (g,) = distnn.autograd.grad(ours_mm(S, _n(D)), [S], grad_outputs=go)
        (tg,) = torch.autograd.grad(theirs_mm(T, _t(D)), [T], grad_outputs=tgo)
        np.testing.assert_allclose(_dense(g), tg.to_dense().numpy() if ours_mm is distnn.mm
                                   else (tg.to_dense() * (T.detach().to_dense() != 0)).numpy(), rtol=1e-12)
    (tg,) = torch.autograd.grad(torch.mm(T, _t(D)), [T], grad_outputs=_t(G))
    (g,) = distnn.autograd.grad(distnn.mm(S, _n(D)), [S], grad_outputs=go)
    _assert_same_grad(g, tg)  # a sparse grad_outputs acts as its dense one


def test_allow_unused_and_materialize_grads():
    S, T = _leaves(True)
    W, TW = distnn.Tensor(D3.copy(), requires_grad=True), torch.tensor(D3.copy(), requires_grad=True)
    gs, gw = distnn.autograd.grad((W * 2.0).sum(), [S, W], allow_unused=True)
    tgs, tgw = torch.autograd.grad((TW * 2.0).sum(), [T, TW], allow_unused=True)
    assert gs is None and tgs is None
    np.testing.assert_allclose(gw.data, tgw.numpy())
    gs, _ = distnn.autograd.grad((W * 2.0).sum(), [S, W], materialize_grads=True)
    tgs, _ = torch.autograd.grad((TW * 2.0).sum(), [T, TW], materialize_grads=True)
    assert isinstance(gs, sparse.SparseTensor) and tgs.is_sparse
    assert gs._nnz() == tgs._nnz() == 0 and tuple(gs.shape) == tuple(tgs.shape)
    assert tuple(gs._indices().shape) == tuple(tgs._indices().shape)
    with pytest.raises(RuntimeError, match="appears to not have been used"):
        distnn.autograd.grad((W * 2.0).sum(), [S])


def test_float32_leaf_keeps_its_dtype():
    i = np.array(IDX[True])
    S = distnn.sparse_coo_tensor(i, np.array(VALS[True], dtype=np.float32), (3, 3), requires_grad=True)
    T = torch.sparse_coo_tensor(torch.tensor(i), torch.tensor(VALS[True], dtype=torch.float32), (3, 3),
                                requires_grad=True)
    for ours, theirs in ((sparse.sum(S * 2.0), torch.sparse.sum(T * 2.0)),
                         (distnn.mm(S, _n(D.astype(np.float32))).sum(), torch.mm(T, _t(D.astype(np.float32))).sum())):
        (g,) = distnn.autograd.grad(ours, [S])
        (tg,) = torch.autograd.grad(theirs, [T])
        assert str(g.dtype) == str(tg.dtype).replace("torch.", "")
        np.testing.assert_allclose(_dense(g), tg.to_dense().numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", ["mm", "sparse_mm", "mul_dense", "to_dense"])
def test_backward_inputs_fills_only_the_sparse_leaf(name):
    S, T = _leaves(False)
    W, TW = distnn.Tensor(D3.copy(), requires_grad=True), torch.tensor(D3.copy(), requires_grad=True)
    ours_fn, theirs_fn = CASES[name]
    (ours_fn(S) + (W * 2.0).sum()).backward(inputs=[S])
    (theirs_fn(T) + (TW * 2.0).sum()).backward(inputs=[T])
    assert W.grad is None and TW.grad is None
    _assert_same_grad(S.grad, T.grad)
    distnn.autograd.backward([ours_fn(S)], inputs=[S])  # a second pass adds into .grad, as torch's
    torch.autograd.backward([theirs_fn(T)], inputs=[T])
    _assert_same_grad(S.grad, T.grad)


def test_is_grads_batched_with_a_sparse_input_is_refused_as_torch():
    S, T = _leaves(True)
    with pytest.raises(NotImplementedError):
        torch.autograd.grad(torch.sparse.mm(T, _t(D)), [T], grad_outputs=torch.ones(2, 3, 4, dtype=torch.float64),
                            is_grads_batched=True)
    with pytest.raises(NotImplementedError, match="is_grads_batched"):
        distnn.autograd.grad(sparse.mm(S, _n(D)), [S], grad_outputs=_n(np.ones((2, 3, 4))), is_grads_batched=True)


def test_refusals_name_the_problem():
    S, _ = _leaves(True)
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):  # (a new S * 2.0)
        distnn.autograd.grad(sparse.sum(S * 2.0), [S * 2.0])
    with pytest.raises(NotImplementedError, match="sparse one on the output's indices"):
        distnn.autograd.grad(S * 2.0, [S], grad_outputs=_n(np.ones((3, 3))))
    plain = distnn.sparse_coo_tensor(np.array(IDX[True]), np.array(VALS[True]), (3, 3))
    with pytest.raises(RuntimeError, match="does not require grad"):
        distnn.autograd.grad(sparse.sum(S * 2.0), [plain])


# create_graph=True: torch 2.13 supports it for these products; the returned gradient is differentiated again
# (against the dense operands) and compared too.
GRAPH_CASES = {
    "sparse_mm": (lambda S, D, D3: sparse.mm(S, D).pow(2).sum(), lambda S, D, D3: torch.sparse.mm(S, D).pow(2).sum()),
    "mm": (lambda S, D, D3: distnn.mm(S, D).pow(2).sum(), lambda S, D, D3: torch.mm(S, D).pow(2).sum()),
    "mm_dense_sparse": (lambda S, D, D3: distnn.mm(D.T, S).pow(2).sum(),
                        lambda S, D, D3: torch.mm(D.T, S).pow(2).sum()),
    "sparse_mm_dense_sparse": (lambda S, D, D3: sparse.mm(D.T, S).pow(2).sum(),
                               lambda S, D, D3: torch.sparse.mm(D.T, S).pow(2).sum()),
    "mul_dense": (lambda S, D, D3: sparse.sum(S * D3 * D3), lambda S, D, D3: torch.sparse.sum(S * D3 * D3)),
    "to_dense": (lambda S, D, D3: (S.to_dense() * D3).pow(2).sum(), lambda S, D, D3: (S.to_dense() * D3).pow(2).sum()),
    "dense_plus_sparse": (lambda S, D, D3: (D3 + S).pow(2).sum(), lambda S, D, D3: (D3 + S).pow(2).sum()),
    "two_sparse_uses": (lambda S, D, D3: sparse.sum(S * D3) + sparse.mm(S, D).sum(),
                        lambda S, D, D3: torch.sparse.sum(S * D3) + torch.sparse.mm(S, D).sum()),
}


def _operands():
    ours = (distnn.Tensor(D.copy(), requires_grad=True), distnn.Tensor(D3.copy(), requires_grad=True))
    theirs = (torch.tensor(D.copy(), requires_grad=True), torch.tensor(D3.copy(), requires_grad=True))
    return ours, theirs


@pytest.mark.parametrize("coalesced", [True, False], ids=["coalesced", "repeated_index"])
@pytest.mark.parametrize("name", sorted(GRAPH_CASES))
def test_create_graph_gradient_differentiates_again_as_torch(name, coalesced):
    ours_fn, theirs_fn = GRAPH_CASES[name]
    S, T = _leaves(coalesced)
    (Dd, D3d), (Dt, D3t) = _operands()
    (g,) = distnn.autograd.grad(ours_fn(S, Dd, D3d), [S], create_graph=True)
    (tg,) = torch.autograd.grad(theirs_fn(T, Dt, D3t), [T], create_graph=True)
    _assert_same_grad(g, tg.detach())
    W = R.standard_normal((3, 3))
    ours2 = distnn.autograd.grad((_dense_tensor(g) * _n(W)).sum(), [Dd, D3d], materialize_grads=True)
    theirs2 = torch.autograd.grad((tg.to_dense() * _t(W)).sum(), [Dt, D3t], materialize_grads=True)
    for a, b in zip(ours2, theirs2):
        np.testing.assert_allclose(_dense(a), b.to_dense().numpy(), rtol=1e-10, atol=1e-12)


def _dense_tensor(g):
    return g.to_dense() if isinstance(g, sparse.SparseTensor) else g


def test_create_graph_refuses_a_dense_and_a_sparse_gradient_meeting_as_torch():
    S, T = _leaves(True)
    (Dd, D3d), (Dt, D3t) = _operands()
    with pytest.raises(RuntimeError, match=r"add\(sparse, dense\) is not supported"):
        torch.autograd.grad(torch.mm(T, Dt).sum() + torch.sparse.sum(T * D3t), [T], create_graph=True)
    with pytest.raises(RuntimeError, match=r"add\(sparse, dense\) is not supported"):
        distnn.autograd.grad(distnn.mm(S, Dd).sum() + sparse.sum(S * D3d), [S], create_graph=True)


@pytest.mark.parametrize("with_inputs", [True, False], ids=["inputs", "all_leaves"])
@pytest.mark.parametrize("name", ["mm", "mul_dense"])
def test_backward_create_graph_gives_the_sparse_leaf_torchs_grad(name, with_inputs):
    S, T = _leaves(False)
    (Dd, D3d), (Dt, D3t) = _operands()
    ours_fn, theirs_fn = GRAPH_CASES[name]
    distnn.autograd.backward(ours_fn(S, Dd, D3d), create_graph=True, inputs=[S] if with_inputs else None)
    theirs_fn(T, Dt, D3t).backward(create_graph=True, inputs=[T] if with_inputs else None)
    _assert_same_grad(S.grad, T.grad.detach())
    for ours, theirs in ((Dd.grad, Dt.grad), (D3d.grad, D3t.grad)):
        assert (ours is None) == (theirs is None)
        if ours is not None:
            assert isinstance(ours, sparse.SparseTensor) == theirs.is_sparse
            np.testing.assert_allclose(ours.to_dense().data if isinstance(ours, sparse.SparseTensor) else ours,
                                       theirs.detach().to_dense().numpy(), rtol=1e-12)


def test_a_single_sparse_input_not_in_a_list():
    S, T = _leaves(True)
    (g,) = distnn.autograd.grad(sparse.sum(S * 2.0), S)
    (tg,) = torch.autograd.grad(torch.sparse.sum(T * 2.0), T)
    _assert_same_grad(g, tg)


HYBRID = {  # a sparse leaf with a dense dim: size (4, 2), sparse_dim 1, index 2 repeated
    "sparse_sum": (lambda S: sparse.sum(S * 2.0), lambda T: torch.sparse.sum(T * 2.0)),
    "sparse_sum_dim": (lambda S: sparse.sum(S, 1).to_dense().pow(2).sum(),
                       lambda T: torch.sparse.sum(T, 1).to_dense().pow(2).sum()),
    "to_dense": (lambda S: (S.to_dense() * _n(D[:2].T)).sum(), lambda T: (T.to_dense() * _t(D[:2].T)).sum()),
    "mul_dense": (lambda S: sparse.sum(S * _n(D[:2].T)), lambda T: torch.sparse.sum(T * _t(D[:2].T))),
    "dense_plus_sparse": (lambda S: (_n(D[:2].T) + S).pow(2).sum(), lambda T: (_t(D[:2].T) + T).pow(2).sum()),
}


@pytest.mark.parametrize("name", sorted(HYBRID))
def test_grad_of_a_hybrid_sparse_leaf(name):
    i, v = np.array([[2, 0, 2]]), np.arange(6.0).reshape(3, 2) + 1
    S = distnn.sparse_coo_tensor(i, v, (4, 2), requires_grad=True)
    T = torch.sparse_coo_tensor(torch.tensor(i), torch.tensor(v), (4, 2), requires_grad=True)
    (g,) = distnn.autograd.grad(HYBRID[name][0](S), [S])
    (tg,) = torch.autograd.grad(HYBRID[name][1](T), [T])
    _assert_same_grad(g, tg)
