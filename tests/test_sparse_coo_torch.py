"""distnn.sparse (COO tensors) against torch.sparse: construction and its checks, the metadata, repr, coalesce,
to_dense / to_sparse, sparse + sparse, dense +/- sparse, sparse * number, sparse.sum, sparse.mm / addmm with
the gradients of the dense operands and of the sparse values (float64 tight, float32 loose), and the
refusals of ops without a sparse form."""
import numpy as np
import pytest

import distnn
from distnn import sparse

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")  # (torch's, not ours)
TOL = {np.float64: 1e-12, np.float32: 2e-6}
IDX = np.array([[0, 1, 1, 0, 2], [2, 0, 2, 2, 1]])  # (0, 2) twice: uncoalesced
VALS = np.array([3.0, 4.0, 5.0, -1.0, 2.5])


def _pair(torch, idx, vals, size, dtype=np.float64, requires_grad=True):
    """The same sparse tensor in both libraries, their values leaves (gradients land there)."""
    vd = distnn.tensor(vals.astype(dtype), requires_grad=requires_grad)
    vt = torch.tensor(vals.astype(dtype), requires_grad=requires_grad)
    return (distnn.sparse_coo_tensor(idx, vd, size), torch.sparse_coo_tensor(torch.from_numpy(idx), vt, size),
            vd, vt)


def _close(d, t, dtype=np.float64):
    t = t.to_dense() if getattr(t, "is_sparse", False) else t
    d = d.coalesce().to_dense() if isinstance(d, sparse.SparseTensor) else d
    np.testing.assert_allclose(d.numpy() if hasattr(d, "numpy") else d, t.detach().numpy(), rtol=TOL[dtype],
                               atol=TOL[dtype])


def test_metadata_coalesce_and_dense_match_torch(torch):
    d, t, _, _ = _pair(torch, IDX, VALS, (3, 4), requires_grad=False)
    assert d.layout is distnn.sparse_coo and repr(d.layout) == "distnn.sparse_coo" and d.is_sparse
    assert (d.shape, d.sparse_dim(), d.dense_dim(), d._nnz(), d.is_coalesced()) == \
        (tuple(t.shape), t.sparse_dim(), t.dense_dim(), t._nnz(), t.is_coalesced())
    c, tc = d.coalesce(), t.coalesce()
    assert c.is_coalesced() and c._nnz() == tc._nnz() == 4 and c.coalesce() is c
    np.testing.assert_array_equal(c.indices().numpy(), tc.indices().numpy())
    np.testing.assert_array_equal(c.values().numpy(), tc.values().numpy())
    _close(d.to_dense(), t.to_dense())
    assert not distnn.ones(2).is_sparse and distnn.ones(2).layout is distnn.strided
    for method in ("indices", "values"):  # (an uncoalesced tensor's are refused, as torch's)
        with pytest.raises(RuntimeError, match=f"Cannot get {method} on an uncoalesced tensor"):
            getattr(d, method)()
    assert d._values() is not None and d._indices().shape == (2, 5)


def test_repr_is_torchs(torch):
    s = distnn.sparse_coo_tensor([[0, 1]], [1.0, 2.0], (3,))
    assert repr(s) == ("tensor(indices=tensor([[0, 1]]),\n"
                       "       values=tensor([1., 2.]),\n"
                       "       size=(3,), nnz=2, layout=distnn.sparse_coo)")
    cases = [lambda m: m.sparse_coo_tensor([[0, 1]], [1.0, 2.0], requires_grad=True),
             lambda m: m.sparse_coo_tensor([[0, 1]], m.tensor(np.array([1.0, 2.0])), requires_grad=True) * 2.0,
             lambda m: m.sparse_coo_tensor(m.tensor(np.zeros((1, 0), dtype=np.int64)), m.tensor(np.zeros(0)), (3,)),
             lambda m: m.sparse_coo_tensor([[0, 1], [1, 1]], [True, False], (3, 2))]
    for build in cases:
        assert repr(build(distnn)) == repr(build(torch)).replace("torch.", "distnn.")


def test_defaults_size_dtype_and_hybrid_tensors(torch):
    d = distnn.sparse_coo_tensor([[0, 3]], [1.0, 2.0])
    t = torch.sparse_coo_tensor([[0, 3]], [1.0, 2.0])
    assert d.shape == tuple(t.shape) == (4,) and d.dtype == np.float32
    assert distnn.sparse_coo_tensor([[0, 1]], [1, 2]).dtype == np.int64
    assert distnn.sparse_coo_tensor([[0, 1]], [1.0, 2.0], dtype=np.float64).dtype == np.float64
    rows = np.arange(6.0).reshape(3, 2)  # dense dims: each entry a row of 2
    d, t, vd, vt = _pair(torch, np.array([[0, 2, 0]]), rows, (4, 2))
    assert d.dense_dim() == t.dense_dim() == 1
    _close(d.to_dense(), t.to_dense())
    g = np.random.default_rng(0).standard_normal((4, 2))
    (d.to_dense() * distnn.tensor(g)).sum().backward()
    (t.to_dense() * torch.tensor(g)).sum().backward()
    _close(vd.grad, vt.grad)


# (indices, values, size, keyword arguments, error, message): torch's refusals
REFUSALS = [
    ([0, 1], [1.0, 2.0], (2,), {}, RuntimeError, "indices must be sparse_dim x nnz"),
    ([[0, 1]], [1.0, 2.0, 3.0], (2,), {}, RuntimeError, "indices and values must have same nnz, but got nnz from "
                                                        "indices: 2, nnz from values: 3"),
    ([[0, 1]], [1.0, 2.0], (2, 3), {}, RuntimeError, "'len\\(size\\) == sparse_dim \\+ dense_dim' is not satisfied"),
    ([[0, 1]], [[1.0, 2.0], [3.0, 4.0]], (2, 3), {}, RuntimeError, "values has incorrect size"),
    ([[0, 5]], [1.0, 2.0], (2,), {}, RuntimeError, "size is inconsistent with indices: for dim 0, size is 2 but "
                                                   "found index 5"),
    ([[0, -1]], [1.0, 2.0], (2,), {}, RuntimeError, "found negative index -1 for dim 0"),
    ([[1, 0]], [1.0, 2.0], (2,), dict(is_coalesced=True, check_invariants=True), RuntimeError,
     "cannot set is_coalesced to true if indices correspond to uncoalesced COO tensor"),
]


@pytest.mark.parametrize("idx,vals,size,kw,err,match", REFUSALS, ids=[r[-1][:30] for r in REFUSALS])
def test_construction_refusals_match_torch(torch, idx, vals, size, kw, err, match):
    with pytest.raises(err, match=match):
        distnn.sparse_coo_tensor(idx, vals, size, **kw)
    with pytest.raises(Exception):  # (torch refuses the out-of-range index only with check_invariants)
        torch.sparse_coo_tensor(idx, vals, size, **{"check_invariants": True, **kw})


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_arithmetic_matches_torch_with_gradients(torch, dtype):
    rng = np.random.default_rng(1)
    a, ta, va, vta = _pair(torch, IDX, VALS, (3, 4), dtype)
    b, tb, vb, vtb = _pair(torch, np.array([[2, 1, 0], [3, 0, 2]]), rng.standard_normal(3), (3, 4), dtype)
    dense = rng.standard_normal((3, 4)).astype(dtype)
    s, ts = a + b * 2.0 - b / 4.0, ta + tb * 2.0 - tb / 4.0
    assert isinstance(s, sparse.SparseTensor) and s._nnz() == ts._nnz()  # (torch's walk of both operands)
    _close(s, ts, dtype)
    out = distnn.tensor(dense) + s - 3.0 * a  # dense + sparse and dense - sparse are dense
    tout = torch.tensor(dense) + ts - 3.0 * ta
    assert isinstance(out, distnn.Tensor)
    _close(out, tout, dtype)
    g = rng.standard_normal((3, 4)).astype(dtype)
    (out * distnn.tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    _close(va.grad, vta.grad, dtype)
    _close(vb.grad, vtb.grad, dtype)
    _close((-a).coalesce(), -ta, dtype)


def test_sparse_sum_matches_torch(torch):
    hybrid = np.random.default_rng(2).standard_normal((5, 2))
    d, t, vd, vt = _pair(torch, IDX, hybrid, (3, 4, 2))
    for dim in [None, 0, 1, 2, (0, 1), (0, 2), -1, (1, 2)]:
        rd, rt = sparse.sum(d, dim), torch.sparse.sum(t, dim)
        assert isinstance(rd, sparse.SparseTensor) == rt.is_sparse, dim
        if rt.is_sparse:
            assert rd.is_coalesced() and rd.shape == tuple(rt.shape)
            np.testing.assert_array_equal(rd.indices().numpy(), rt.coalesce().indices().numpy())
        _close(rd, rt)
    (sparse.sum(d, 1).to_dense() * 2.0).sum().backward()
    (torch.sparse.sum(t, 1).to_dense() * 2.0).sum().backward()
    _close(vd.grad, vt.grad)
    with pytest.raises(IndexError, match="Dimension out of range"):
        sparse.sum(d, 3)
    with pytest.raises(RuntimeError, match="dim 0 appears multiple times"):
        sparse.sum(d, (0, 0))


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_mm_and_addmm_match_torch_with_gradients(torch, dtype):
    rng = np.random.default_rng(3)
    d, t, vd, vt = _pair(torch, IDX, VALS, (3, 4), dtype)
    m2 = rng.standard_normal((4, 5)).astype(dtype)
    m = rng.standard_normal((3, 5)).astype(dtype)
    bd, bt = distnn.tensor(m2, requires_grad=True), torch.tensor(m2, requires_grad=True)
    md, mt = distnn.tensor(m, requires_grad=True), torch.tensor(m, requires_grad=True)
    yd = sparse.addmm(md, d, bd, beta=0.5, alpha=2.0) + d @ bd
    yt = torch.sparse.addmm(mt, t, bt, beta=0.5, alpha=2.0) + torch.sparse.mm(t, bt)
    _close(yd, yt, dtype)
    g = rng.standard_normal((3, 5)).astype(dtype)
    (yd * distnn.tensor(g)).sum().backward()
    (yt * torch.tensor(g)).sum().backward()
    for a, b in [(vd, vt), (bd, bt), (md, mt)]:
        _close(a.grad, b.grad, dtype)
    with pytest.raises(RuntimeError, match="Expected dim 0 size 4, got 3"):
        sparse.mm(d, distnn.ones(3, 2))


def test_sparse_leaf_grad_is_sparse_on_its_indices(torch):
    idx = np.array([[0, 1, 1], [2, 0, 2]])
    d = distnn.sparse_coo_tensor(idx, [1.0, 2.0, 3.0], (2, 3), dtype=np.float64, requires_grad=True)
    t = torch.sparse_coo_tensor(torch.from_numpy(idx), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), (2, 3),
                                requires_grad=True)
    m = np.random.default_rng(4).standard_normal((3, 4))
    sparse.mm(d, distnn.tensor(m)).sum().backward()
    torch.sparse.mm(t, torch.tensor(m)).sum().backward()
    assert d.is_leaf and isinstance(d.grad, sparse.SparseTensor)
    np.testing.assert_array_equal(d.grad._indices().numpy(), t.grad._indices().numpy())
    np.testing.assert_allclose(d.grad._values().numpy(), t.grad._values().numpy(), rtol=1e-12)


def test_to_sparse_matches_torch_and_passes_gradients(torch):
    x = np.random.default_rng(5).standard_normal((3, 4, 2))
    x[1] = 0
    x[0, 2] = 0
    for sd in [None, 1, 2]:
        xd, xt = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        sd_, st = (xd.to_sparse(), xt.to_sparse()) if sd is None else (xd.to_sparse(sd), xt.to_sparse(sd))
        assert sd_.is_coalesced() and sd_._nnz() == st._nnz() and sd_.sparse_dim() == st.sparse_dim()
        np.testing.assert_array_equal(sd_.indices().numpy(), st.coalesce().indices().numpy())
        (sd_.values() * 3.0).sum().backward()
        (st.coalesce().values() * 3.0).sum().backward()
        np.testing.assert_allclose(xd.grad, xt.grad.numpy())
    assert xd.to_sparse_coo()._nnz() == torch.tensor(x).to_sparse_coo()._nnz()
    assert xd.to_dense() is xd
    s = xd.to_sparse(1)
    assert s.to_sparse() is s
    with pytest.raises(RuntimeError, match="to_sparse: conversion from Sparse to Sparse with sparse_dim"):
        s.to_sparse(2)


def test_ops_without_a_sparse_form_refuse_by_name(torch):
    s = distnn.sparse_coo_tensor(IDX, VALS, (3, 4))
    dense = distnn.ones(3, 4)
    with pytest.raises(NotImplementedError, match="Tensor.exp is not supported for sparse COO tensors"):
        s.exp()
    with pytest.raises(NotImplementedError, match="sparse COO tensors"):
        distnn.functional.relu(s)
    with pytest.raises(NotImplementedError, match="sparse COO tensors"):
        np.asarray(s)
    with pytest.raises(NotImplementedError, match="sparse COO tensors"):
        dense / s  # (dense * sparse is sparse: tests/test_sparse_products_torch.py)
    with pytest.raises(RuntimeError, match=r"add\(sparse, dense\) is not supported. Use add\(dense, sparse\)"):
        s + dense
    with pytest.raises(RuntimeError, match=r"add\(sparse, dense\) is not supported"):
        torch.sparse_coo_tensor(torch.from_numpy(IDX), torch.tensor(VALS), (3, 4)) + torch.ones(3, 4)
    with pytest.raises(RuntimeError, match=r"sub\(sparse, dense\) is not supported"):
        s - dense
    with pytest.raises(RuntimeError, match="expected sizes of the sparse tensors to match"):
        s + distnn.sparse_coo_tensor([[0]], [1.0], (3,))
    assert not hasattr(s, "view")  # (hasattr answers False: the refusal is an AttributeError too)


def test_gradcheck_of_the_sparse_ops():
    rng = np.random.default_rng(6)
    v = distnn.tensor(VALS, requires_grad=True)
    b = distnn.tensor(rng.standard_normal((4, 2)), requires_grad=True)
    h = distnn.tensor(rng.standard_normal((5, 2)), requires_grad=True)
    x = distnn.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    sp = lambda vals, size=(3, 4): distnn.sparse_coo_tensor(IDX, vals, size)  # noqa: E731
    checks = [(lambda v, b: sparse.mm(sp(v), b), (v, b)),
              (lambda v: sp(v).coalesce().to_dense(), (v,)),
              (lambda h: sparse.sum(sp(h, (3, 4, 2)), (1, 2)).to_dense(), (h,)),
              (lambda h, b: b - sp(h, (3, 4, 2)).coalesce().to_dense()[1], (h, b)),
              (lambda x: x.to_sparse(1).values() * x.to_sparse().coalesce().values().sum(), (x,))]
    for fn, inputs in checks:
        assert distnn.autograd.gradcheck(fn, inputs)


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_coalesce_dense_and_sum_match_torch(torch, seed):
    rng = np.random.default_rng(200 + seed)
    sd, dd = int(rng.integers(1, 4)), int(rng.integers(0, 2))
    size = tuple(int(s) for s in rng.integers(1, 4, size=sd + dd))
    nnz = int(rng.integers(0, 8))
    idx = np.stack([rng.integers(0, size[k], nnz) for k in range(sd)]) if nnz else np.zeros((sd, 0), np.int64)
    vals = rng.standard_normal((nnz,) + size[sd:])
    d, t, vd, vt = _pair(torch, idx, vals, size)
    c, tc = d.coalesce(), t.coalesce()
    np.testing.assert_array_equal(c.indices().numpy(), tc.indices().numpy())
    _close(c.values(), tc.values())
    _close(d.to_dense(), t.to_dense())
    dim = tuple(sorted(rng.choice(len(size), size=int(rng.integers(1, len(size) + 1)), replace=False).tolist()))
    rd, rt = sparse.sum(d, dim), torch.sparse.sum(t, dim)
    assert isinstance(rd, sparse.SparseTensor) == rt.is_sparse
    _close(rd, rt)
