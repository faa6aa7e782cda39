"""Transposing sparse COO tensors against PyTorch 2.13: ``t()``, ``t_()``, ``transpose``, ``transpose_``,
``swapaxes``, ``adjoint()``, ``mT``, ``T`` and the function forms (``distnn.t``, ``transpose``, ``swapdims``,
``adjoint``): indices and values in PyTorch's order, ``is_coalesced()``, the node's name, their refusals, and the
gradients through them: a sparse leaf's ``.grad`` (PyTorch's transposed layout), ``autograd.grad``'s, a retained
one, and the dense content; float32 and float64, leaves with sorted unique indices, flagged coalesced, and with a
repeated index."""
import numpy as np
import pytest

import distnn
from distnn import sparse

torch = pytest.importorskip("torch")

from test_sparse_grad_layout_torch import _assert_same  # noqa: E402 (after the skip: it imports torch)

IDX = {"sorted": [[0, 1, 2, 2], [1, 2, 0, 3]], "coalesced": [[0, 1, 2, 2], [1, 2, 0, 3]],
       "repeated": [[2, 0, 1, 0, 2], [0, 1, 2, 1, 3]]}
SIZE = (3, 4)
R = np.random.default_rng(5)
DTYPES = {"float32": (np.float32, torch.float32), "float64": (np.float64, torch.float64)}


def _pair(kind, dtype, requires_grad=True, idx=None, size=SIZE):
    nd, td = DTYPES[dtype]
    i = np.array(IDX[kind] if idx is None else idx)
    v = R.standard_normal(i.shape[1]).astype(nd)
    flag = True if kind == "coalesced" else None
    ours = distnn.sparse_coo_tensor(i, v, size, requires_grad=requires_grad, is_coalesced=flag)
    theirs = torch.sparse_coo_tensor(torch.tensor(i), torch.tensor(v), size, dtype=td, requires_grad=requires_grad,
                                     is_coalesced=flag)
    return ours, theirs


FORMS = {
    "t": (lambda S: S.t(), lambda T: T.t()),
    "transpose_0_1": (lambda S: S.transpose(0, 1), lambda T: T.transpose(0, 1)),
    "transpose_1_0": (lambda S: S.transpose(1, 0), lambda T: T.transpose(1, 0)),
    "transpose_neg": (lambda S: S.transpose(-1, -2), lambda T: T.transpose(-1, -2)),
    "transpose_same": (lambda S: S.transpose(1, 1), lambda T: T.transpose(1, 1)),
    "swapaxes": (lambda S: S.swapaxes(0, 1), lambda T: T.swapaxes(0, 1)),
    "adjoint": (lambda S: S.adjoint(), lambda T: T.adjoint()),
    "mT": (lambda S: S.mT, lambda T: T.mT),
    "T": (lambda S: S.T, lambda T: T.T),
    "t_twice": (lambda S: S.t().t(), lambda T: T.t().t()),
    "fn_t": (lambda S: distnn.t(S), lambda T: torch.t(T)),
    "fn_transpose": (lambda S: distnn.transpose(S, 0, 1), lambda T: torch.transpose(T, 0, 1)),
    "fn_swapdims": (lambda S: distnn.swapdims(S, 1, 0), lambda T: torch.swapdims(T, 1, 0)),
    "fn_adjoint": (lambda S: distnn.adjoint(S), lambda T: torch.adjoint(T)),
}
KINDS = ["sorted", "coalesced", "repeated"]


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("form", sorted(FORMS))
def test_transpose_forward_as_torch(form, kind, dtype):
    ours_op, theirs_op = FORMS[form]
    S, T = _pair(kind, dtype)
    Y, TY = ours_op(S), theirs_op(T)
    _assert_same(Y, TY)
    assert Y.grad_fn.name() == TY.grad_fn.name()
    assert Y.requires_grad and not Y.is_leaf
    Y, TY = ours_op(S.detach()), theirs_op(T.detach())  # (no graph: the same tensor)
    _assert_same(Y, TY)
    assert Y.grad_fn is None and not Y.requires_grad


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("form", sorted(set(FORMS) - {"t_twice"}))  # (t_twice: see the test below)
def test_leaf_grad_through_a_transpose_as_torch(form, kind, dtype):
    ours_op, theirs_op = FORMS[form]
    S, T = _pair(kind, dtype)
    Y, TY = ours_op(S), theirs_op(T)
    Y.retain_grad()
    TY.retain_grad()
    W = R.standard_normal(tuple(TY.shape)).astype(DTYPES[dtype][0])
    (Y.to_dense() * distnn.Tensor(W)).sum().backward()
    (TY.to_dense() * torch.tensor(W)).sum().backward()
    _assert_same(S.grad, T.grad)
    _assert_same(Y.grad, TY.grad)
    S2, T2 = _pair(kind, dtype)
    (g,) = distnn.autograd.grad((ours_op(S2).to_dense() * distnn.Tensor(W)).sum(), [S2])
    (tg,) = torch.autograd.grad((theirs_op(T2).to_dense() * torch.tensor(W)).sum(), [T2])
    _assert_same(g, tg)


@pytest.mark.parametrize("kind", KINDS)
def test_transposing_twice_gives_torchs_dense_gradient(kind):
    """``S.t().t()``: the content of the leaf's gradient is PyTorch's; its layout is the inner transpose's (the
    outer one hands a values-shaped gradient on: distnn carries PyTorch's layout to a leaf's own op only)."""
    S, T = _pair(kind, "float64")
    W = R.standard_normal(SIZE)
    (S.t().t().to_dense() * distnn.Tensor(W)).sum().backward()
    (T.t().t().to_dense() * torch.tensor(W)).sum().backward()
    assert S.grad.is_coalesced() == T.grad.is_coalesced()
    np.testing.assert_allclose(S.grad.to_dense().data, T.grad.to_dense().numpy(), rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_a_transpose_of_an_op_result_and_other_uses_as_torch(kind):
    S, T = _pair(kind, "float64")
    W = R.standard_normal((4, 3))
    D = R.standard_normal(SIZE)
    ours = ((S * 2.0).t().to_dense() * distnn.Tensor(W)).sum() + (S.to_dense() * distnn.Tensor(D)).sum()
    theirs = ((T * 2.0).t().to_dense() * torch.tensor(W)).sum() + (T.to_dense() * torch.tensor(D)).sum()
    ours.backward()
    theirs.backward()
    np.testing.assert_allclose(S.grad.to_dense().data, T.grad.to_dense().numpy(), rtol=1e-12)
    S, T = _pair(kind, "float64")
    ours = (S.t().to_dense() * distnn.Tensor(W)).sum() + (S.to_dense() * distnn.Tensor(D)).sum()
    theirs = (T.t().to_dense() * torch.tensor(W)).sum() + (T.to_dense() * torch.tensor(D)).sum()
    ours.backward()
    theirs.backward()
    _assert_same(S.grad, T.grad)  # (two uses summed: PyTorch's sparse addition of the two layouts)


@pytest.mark.parametrize("kind", KINDS)
def test_transpose_in_products_as_torch(kind):
    S, T = _pair(kind, "float64")
    D = R.standard_normal((3, 5))
    out = sparse.mm(S.t(), distnn.Tensor(D, requires_grad=True))
    tout = torch.sparse.mm(T.t(), torch.tensor(D, requires_grad=True))
    _assert_same(out, tout)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(S.grad.to_dense().data, T.grad.to_dense().numpy(), rtol=1e-12)
    S, T = _pair(kind, "float64")
    _assert_same(sparse.mm(S, S.t()), torch.sparse.mm(T, T.t()))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("inplace", ["t_", "transpose_"])
def test_in_place_transpose_as_torch(inplace, kind):
    S, T = _pair(kind, "float64", requires_grad=False)
    r, tr = (S.t_(), T.t_()) if inplace == "t_" else (S.transpose_(0, 1), T.transpose_(0, 1))
    assert r is S and tr is T
    _assert_same(S, T)
    L, TL = _pair(kind, "float64")
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        L.t_() if inplace == "t_" else L.transpose_(0, 1)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        TL.t_() if inplace == "t_" else TL.transpose_(0, 1)
    X, TX = L * 2.0, TL * 2.0
    X.t_() if inplace == "t_" else X.transpose_(0, 1)
    TX.t_() if inplace == "t_" else TX.transpose_(0, 1)
    _assert_same(X, TX)
    assert X.grad_fn.name() == TX.grad_fn.name()
    W = R.standard_normal((4, 3))
    (X.to_dense() * distnn.Tensor(W)).sum().backward()
    (TX.to_dense() * torch.tensor(W)).sum().backward()
    np.testing.assert_allclose(L.grad.to_dense().data, TL.grad.to_dense().numpy(), rtol=1e-12)


def test_one_dim_and_three_dim_as_torch():
    V, TV = _pair("sorted", "float64", idx=[[0, 2]], size=(3,))
    for ours, theirs in ((V.t(), TV.t()), (V.T, TV.T), (V.transpose(0, 0), TV.transpose(0, 0))):
        _assert_same(ours, theirs)
        assert ours.grad_fn.name() == theirs.grad_fn.name()
    C, TC = V.detach().coalesce(), TV.detach().coalesce()
    _assert_same(C.t(), TC.t())  # (nothing moves: the flag is kept)
    S3, T3 = _pair("sorted", "float64", idx=[[0, 1], [1, 0], [2, 2]], size=(2, 2, 3))
    _assert_same(S3.transpose(0, 2), T3.transpose(0, 2))
    _assert_same(S3.transpose(2, 1), T3.transpose(2, 1))
    W = R.standard_normal((3, 2, 2))
    (S3.transpose(0, 2).to_dense() * distnn.Tensor(W)).sum().backward()
    (T3.transpose(0, 2).to_dense() * torch.tensor(W)).sum().backward()
    _assert_same(S3.grad, T3.grad)


def test_refusals_name_the_problem_as_torch():
    S3, T3 = _pair("sorted", "float64", idx=[[0, 1], [1, 0], [2, 2]], size=(2, 2, 3))
    H = distnn.sparse_coo_tensor(np.array([[0, 1]]), np.ones((2, 3)), (2, 3))
    TH = torch.sparse_coo_tensor(torch.tensor([[0, 1]]), torch.ones(2, 3), (2, 3))
    for ours, theirs in ((S3, T3), (H, TH)):
        for op in (lambda x: x.t(), lambda x: x.t_()):
            with pytest.raises(RuntimeError) as mine:
                op(ours)
            with pytest.raises(RuntimeError) as their_error:
                op(theirs)
            assert str(mine.value) == str(their_error.value)
    with pytest.raises(RuntimeError, match="transposed dimensions must be sparse Got sparse_dim: 1, d0: 0, d1: 1"):
        H.transpose(0, 1)
    with pytest.raises(RuntimeError, match="transposed dimensions must be sparse Got sparse_dim: 1, d0: 0, d1: 1"):
        TH.transpose(0, 1)
    S, T = _pair("sorted", "float64")
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"):
        S.transpose(0, 2)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\], but got 2\)"):
        T.transpose(0, 2)
    with pytest.raises(NotImplementedError, match="Tensor.T of a 3-D sparse COO tensor"):
        S3.T


@pytest.mark.parametrize("kind", KINDS)
def test_leaf_grad_accumulates_over_passes_and_zero_as_torch(kind):
    S, T = _pair(kind, "float64")
    W = R.standard_normal((4, 3))
    for step in range(3):
        (S.t().to_dense() * distnn.Tensor(W)).sum().backward()
        (T.t().to_dense() * torch.tensor(W)).sum().backward()
        _assert_same(S.grad, T.grad)
        if step == 1:
            S.grad.zero_()
            T.grad.zero_()
            _assert_same(S.grad, T.grad)


@pytest.mark.xfail(strict=True, reason="a values-shaped gradient kept from an earlier pass (S * 2's) meets a layout "
                                       "carrier: distnn cannot tell it from one of the same pass, so counts it as "
                                       "to_dense's (coalesced); PyTorch's .grad lost the flag when AccumulateGrad "
                                       "took it over")
def test_an_earlier_passes_plain_gradient_plus_an_added_one_as_torch():
    S, T = _pair("sorted", "float64")
    W = R.standard_normal(SIZE)
    Z = distnn.sparse_coo_tensor(np.array([[0], [0]]), np.array([1.0]), SIZE)
    TZ = torch.sparse_coo_tensor(torch.tensor([[0], [0]]), torch.tensor([1.0], dtype=torch.float64), SIZE)
    ((S * 2.0).to_dense() * distnn.Tensor(W)).sum().backward()
    ((T * 2.0).to_dense() * torch.tensor(W)).sum().backward()
    ((S + Z).to_dense() * distnn.Tensor(W)).sum().backward()
    ((T + TZ).to_dense() * torch.tensor(W)).sum().backward()
    np.testing.assert_allclose(S.grad.to_dense().data, T.grad.to_dense().numpy(), rtol=1e-12)
    _assert_same(S.grad, T.grad)


@pytest.mark.xfail(strict=True, reason="PyTorch's transposed gradient keeps its layout through the ops before the "
                                       "transpose (X = S * 2: X.grad and S.grad in the transposed order, "
                                       "uncoalesced); distnn's reaches X through its values, so X and S get the "
                                       "layout of their own indices (the content agrees: see the test above)")
def test_the_transposed_layout_through_an_op_as_torch():
    S, T = _pair("repeated", "float64")
    X, TX = S * 2.0, T * 2.0
    X.retain_grad()
    TX.retain_grad()
    W = R.standard_normal((4, 3))
    (X.t().to_dense() * distnn.Tensor(W)).sum().backward()
    (TX.t().to_dense() * torch.tensor(W)).sum().backward()
    np.testing.assert_allclose(S.grad.to_dense().data, T.grad.to_dense().numpy(), rtol=1e-12)
    _assert_same(X.grad, TX.grad)
