"""distnn.sparse against torch 2.13, more corners: the layout of a sparse leaf's gradient in each product form
(``torch.mm``, ``@``, ``torch.matmul`` give it a dense ``.grad``, ``torch.sparse.mm`` a sparse one; the two
accumulate to a dense one), an uncoalesced sparse leaf's gradient (one entry per index, on the coalesced
indices), and ``sparse * dense`` where the dense operand adds leading dims (torch's grown, coalesced result;
its backward refused as torch's)."""
import numpy as np
import pytest

import distnn
from distnn import sparse

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")  # (torch's, not ours)
IDX = np.array([[0, 1, 1, 0], [1, 0, 2, 1]])  # ((0, 1) twice: uncoalesced)
VALS = np.array([1.0, 2.0, 3.0, -1.0])


def _leaf(m, idx=IDX, vals=VALS, size=(2, 3)):
    """A sparse leaf (``requires_grad=True``) in library ``m``."""
    return m.sparse_coo_tensor(m.tensor(idx) if m.__name__ == "torch" else idx, m.tensor(vals), size,
                               requires_grad=True)


def _dense(x):
    x = x.to_dense() if getattr(x, "is_sparse", False) else x
    return np.asarray(x.detach().numpy() if hasattr(x, "detach") else x)


PRODUCTS = {  # (the dense operand's shape, the product, the weights of its sum)
    "mm(S, D)": ((3, 4), lambda m, s, d: m.mm(s, d), (2, 4)),
    "S @ D": ((3, 4), lambda m, s, d: s @ d, (2, 4)),
    "matmul(S, D)": ((3, 4), lambda m, s, d: m.matmul(s, d), (2, 4)),
    "S @ vector": ((3,), lambda m, s, d: s @ d, (2,)),
    "mm(D, S)": ((4, 2), lambda m, s, d: m.mm(d, s), (4, 3)),
    "D @ S": ((4, 2), lambda m, s, d: d @ s, (4, 3)),
    "matmul(D, S)": ((4, 2), lambda m, s, d: m.matmul(d, s), (4, 3)),
    "matmul(3-D D, S)": ((5, 4, 2), lambda m, s, d: m.matmul(d, s), (5, 4, 3)),
}


@pytest.mark.parametrize("form", list(PRODUCTS))
def test_a_sparse_leafs_gradient_is_dense_in_torch_mm_matmul_and_at(torch, form):
    shape, product, out_shape = PRODUCTS[form]
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal(shape), rng.standard_normal(out_shape)
    grads = []
    for m in (torch, distnn):
        s, d = _leaf(m), m.tensor(x, requires_grad=True)
        (product(m, s, d) * m.tensor(w)).sum().backward()
        grads.append((s.grad, d.grad))
    (ts, td), (ds, dd) = grads
    assert not ts.is_sparse and not getattr(ds, "is_sparse", False) and isinstance(ds, distnn.Tensor)
    np.testing.assert_allclose(_dense(ds), _dense(ts), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_dense(dd), _dense(td), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("order", ["sparse first", "dense first"])
def test_torch_sparse_mm_keeps_the_gradient_sparse_and_the_sum_with_mm_is_dense(torch, order):
    rng = np.random.default_rng(5)
    idx = np.array([[0, 1, 1], [1, 0, 2]])  # (coalesced)
    x = rng.standard_normal((3, 4) if order == "sparse first" else (4, 2))
    results = []
    for m in (torch, distnn):
        s, d = _leaf(m, idx, VALS[:3]), m.tensor(x)
        pair = (s, d) if order == "sparse first" else (d, s)
        m.sparse.mm(*pair).sum().backward()
        sparse_grad = s.grad
        layout = (sparse_grad.is_sparse, sparse_grad._nnz(), _dense(sparse_grad))
        (m.mm(*pair) * 2.0).sum().backward()  # (a second pass: the dense gradient joins the sparse one)
        results.append((layout, s.grad))
    (t_layout, t_sum), (d_layout, d_sum) = results
    assert t_layout[:2] == d_layout[:2] == (True, 3)
    np.testing.assert_allclose(d_layout[2], t_layout[2], rtol=1e-12)
    assert not t_sum.is_sparse and not getattr(d_sum, "is_sparse", False)
    np.testing.assert_allclose(_dense(d_sum), _dense(t_sum), rtol=1e-12)


@pytest.mark.parametrize("dense_pass_first", [False, True])
def test_an_uncoalesced_leafs_sparse_and_dense_gradients_sum_as_torchs(torch, dense_pass_first):
    """Entries sharing an index carry one gradient (torch's sparse one is on the coalesced indices): the dense
    sum counts it once."""
    x = np.random.default_rng(7).standard_normal((3, 4))
    sums = []
    for m in (torch, distnn):
        s, d = _leaf(m), m.tensor(x)
        passes = [lambda: m.sparse.mm(s, d).sum().backward(), lambda: (m.mm(s, d) * 3.0).sum().backward()]
        for run in (passes[::-1] if dense_pass_first else passes):
            run()
        sums.append(_dense(s.grad))
    np.testing.assert_allclose(sums[1], sums[0], rtol=1e-12)


def test_values_leaf_and_no_grad_keep_their_behaviour(torch):
    """A sparse tensor built on a values leaf: the values get the (dense, per-entry) gradient, as torch's; under
    no_grad the product is the same."""
    rng = np.random.default_rng(6)
    idx = np.array([[0, 1, 1], [1, 0, 2]])
    x = rng.standard_normal((3, 4))
    grads = []
    for m in (torch, distnn):
        v = m.tensor(VALS[:3], requires_grad=True)
        s = m.sparse_coo_tensor(m.tensor(idx) if m is torch else idx, v, (2, 3))
        m.mm(s, m.tensor(x)).sum().backward()
        grads.append(v.grad)
        with m.no_grad():
            np.testing.assert_allclose(_dense(m.mm(_leaf(m, idx, VALS[:3]), m.tensor(x))),
                                       _dense(m.sparse.mm(_leaf(m, idx, VALS[:3]), m.tensor(x))))
    np.testing.assert_allclose(_dense(grads[1]), _dense(grads[0]), rtol=1e-12)


def test_mm_refusals_are_unchanged_for_a_sparse_leaf(torch):
    s = _leaf(distnn)
    with pytest.raises(RuntimeError, match="Expected dim 0 size 3"):
        distnn.mm(s, distnn.ones(4, 2, dtype=distnn.float64))
    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        distnn.mm(distnn.ones(4, 3, dtype=distnn.float64), s)


GROWING = [((2, 3), (2, 2, 3)), ((2, 3), (1, 2, 3)), ((2, 3), (4, 1, 2, 3)), ((2, 3), (2, 1, 3)),
           ((2, 3), (2, 2, 1)), ((2, 3), (3, 1, 1))]


@pytest.mark.parametrize("sizes", GROWING, ids=[f"{a}x{b}" for a, b in GROWING])
@pytest.mark.parametrize("dense_first", [False, True], ids=["s*d", "d*s"])
def test_sparse_times_a_dense_operand_with_more_dims_grows_as_torchs(torch, sizes, dense_first):
    s_size, d_shape = sizes
    rng = np.random.default_rng(8)
    idx = np.array([[1, 0, 1, 1], [2, 1, 0, 2]])  # (uncoalesced, unsorted: torch coalesces it first)
    vals, x = rng.standard_normal(4), rng.standard_normal(d_shape)
    out = []
    for m in (torch, distnn):
        s = m.sparse_coo_tensor(m.tensor(idx) if m is torch else idx, m.tensor(vals), s_size)
        d = m.tensor(x)
        out.append(d * s if dense_first else s * d)
    t, d = out
    assert isinstance(d, sparse.SparseTensor) and t.is_sparse
    assert (d.shape, d.sparse_dim(), d.dense_dim(), d._nnz(), d.is_coalesced()) == \
        (tuple(t.shape), t.sparse_dim(), t.dense_dim(), t._nnz(), t.is_coalesced())
    np.testing.assert_array_equal(d._indices().numpy(), t._indices().numpy())
    np.testing.assert_array_equal(d._values().numpy(), t._values().numpy())


def test_growth_with_dense_dims_dtypes_and_no_entries(torch):
    rng = np.random.default_rng(9)
    cases = [(np.array([[1, 0, 1]]), rng.standard_normal((3, 3)), (2, 3), (2, 2, 3), np.float64),  # hybrid
             (np.array([[1, 0], [0, 2]]), np.array([3, 4]), (2, 3), (2, 2, 3), np.float32),  # int * float32
             (np.zeros((2, 0), np.int64), np.zeros(0), (2, 3), (2, 2, 3), np.float64)]  # no entries
    for idx, vals, size, d_shape, d_dtype in cases:
        x = rng.standard_normal(d_shape).astype(d_dtype)
        t = torch.sparse_coo_tensor(torch.tensor(idx), torch.tensor(vals), size) * torch.tensor(x)
        d = distnn.sparse_coo_tensor(idx, distnn.tensor(vals), size) * distnn.tensor(x)
        assert (d.shape, d.sparse_dim(), d._nnz(), d.is_coalesced(), str(d.dtype)) == \
            (tuple(t.shape), t.sparse_dim(), t._nnz(), t.is_coalesced(), str(t.dtype).replace("torch.", ""))
        np.testing.assert_array_equal(d._indices().numpy(), t._indices().numpy())
        np.testing.assert_array_equal(d._values().numpy(), t._values().numpy())


@pytest.mark.parametrize("which", ["sparse", "dense"])
def test_growth_backward_is_refused_as_torchs(torch, which):
    message = {"sparse": "Could not run 'aten::view'", "dense": "sparse_binary_op_intersection_cpu"}[which]
    for m in (torch, distnn):
        s = m.sparse_coo_tensor(m.tensor(IDX) if m is torch else IDX, m.tensor(VALS), (2, 3),
                                requires_grad=which == "sparse")
        d = m.tensor(np.ones((2, 2, 3)), requires_grad=which == "dense")
        with pytest.raises(RuntimeError, match=message.replace("(", r"\(")):
            (s * d).to_dense().sum().backward()


def test_broadcasting_the_sparse_operands_own_dims_is_refused():
    """torch 2.13 gives ``ones(1, 3).to_sparse() * dense(2, 3)`` the size (2, 3) but only the sparse operand's
    entries (row 1 missing: not the product); distnn refuses it by name."""
    s = distnn.ones(1, 3).to_sparse()
    with pytest.raises(NotImplementedError, match=r"would broadcast the sparse operand's own dims"):
        s * distnn.ones(2, 3)
    with pytest.raises(NotImplementedError, match=r"would broadcast the sparse operand's own dims"):
        distnn.ones(2, 2, 3) * s


UNCOALESCED_FORMS = {  # (whether torch's entries are matched too, the loss)
    "sparse.mm(S, D)": (True, lambda m, s, w: m.sparse.mm(s, m.tensor(w[:3, :4])).sum()),
    "sparse.addmm": (True, lambda m, s, w: m.sparse.addmm(m.tensor(w[:2, :4]), s, m.tensor(w[:3, :4])).sum()),
    "S * D": (True, lambda m, s, w: (s * m.tensor(w[:2, :3])).to_dense().sum()),
    "S * 3": (True, lambda m, s, w: (s * 3.0).to_dense().sum()),
    "to_dense": (True, lambda m, s, w: (s.to_dense() * m.tensor(w[:2, :3])).sum()),
    "coalesce": (True, lambda m, s, w: (s.coalesce().to_dense() * m.tensor(w[:2, :3])).sum()),
    "sparse.mm(D, S)": (False, lambda m, s, w: m.sparse.mm(m.tensor(w[:4, :2]), s).sum()),
    "sparse.sum": (False, lambda m, s, w: m.sparse.sum(s) * 2.0),
    "S + S": (False, lambda m, s, w: (s + s * 2.0).to_dense().sum()),
}


@pytest.mark.parametrize("form", list(UNCOALESCED_FORMS))
def test_an_uncoalesced_sparse_leafs_gradient_counts_each_index_once_as_torchs(torch, form):
    """torch differentiates a sparse tensor's summed content: its leaf's gradient has one entry per index (on the
    coalesced indices); distnn's entries sharing an index carry one gradient, taken once."""
    exact, loss = UNCOALESCED_FORMS[form]
    w = np.random.default_rng(11).standard_normal((4, 4))
    grads = []
    for m in (torch, distnn):
        s = _leaf(m)
        loss(m, s, w).backward()
        grads.append(s.grad)
    t, d = grads
    assert t.is_sparse and isinstance(d, sparse.SparseTensor)
    np.testing.assert_allclose(_dense(d), _dense(t), rtol=1e-12)
    if exact:
        assert (d._nnz(), d.is_coalesced()) == (t._nnz(), t.is_coalesced())
        np.testing.assert_array_equal(d._indices().numpy(), t._indices().numpy())
        np.testing.assert_allclose(d._values().numpy(), t._values().numpy(), rtol=1e-12)
