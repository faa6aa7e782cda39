"""distnn.sparse's products against torch 2.13's, the same values: sparse * dense, dense * sparse and sparse *
sparse (which entries the result holds, ``is_coalesced()``), dense @ sparse (mm, matmul, @, sparse.mm) and
sparse @ sparse, with the gradients of the values and of the dense operands and their layouts (float64 tight,
float32 loose), a small fuzz over shapes and nnz (empty, repeated indices), sparse + sparse's coalesced flag,
and torch's refusals."""
import numpy as np
import pytest

import distnn
from distnn import sparse

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning",
                                        "ignore:Sparse CSR tensor support:UserWarning")  # (torch's, not ours)
TOL = {np.float64: 1e-12, np.float32: 2e-5}
DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])


def _pair(torch, idx, vals, size, dtype=np.float64, coalesce=False):
    """The same sparse tensor in both libraries, made from values leaves (their gradients compared)."""
    vd = distnn.tensor(np.asarray(vals, dtype=dtype), requires_grad=True)
    vt = torch.tensor(np.asarray(vals, dtype=dtype), requires_grad=True)
    d = distnn.sparse_coo_tensor(np.asarray(idx), vd, size)
    t = torch.sparse_coo_tensor(torch.from_numpy(np.asarray(idx, dtype=np.int64)), vt, size)
    return (d.coalesce(), t.coalesce(), vd, vt) if coalesce else (d, t, vd, vt)


def _close(d, t, dtype=np.float64):
    d = d.to_dense() if isinstance(d, sparse.SparseTensor) else d
    t = t.to_dense() if getattr(t, "is_sparse", False) else t
    np.testing.assert_allclose(np.asarray(d.numpy() if hasattr(d, "numpy") else d), t.detach().numpy(),
                               rtol=TOL[dtype], atol=TOL[dtype])


def _same_sparse(d, t, dtype=np.float64):
    """The same entries, in the same order, and the same coalesced flag (torch's kernels decide both)."""
    assert isinstance(d, sparse.SparseTensor) and t.is_sparse
    assert (d.shape, d._nnz(), d.is_coalesced()) == (tuple(t.shape), t._nnz(), t.is_coalesced())
    np.testing.assert_array_equal(d._indices().numpy(), t._indices().numpy())
    _close(d._values(), t._values(), dtype)


def _grads_close(pairs, dtype=np.float64):
    """Each (distnn leaf, torch leaf)'s gradient as dense, None read as zeros (torch leaves an unreached one
    None)."""
    for d, t in pairs:
        gd = np.zeros(d.shape, d.dtype) if d.grad is None else np.asarray(d.grad)
        # (torch passes a sparse gradient on through dense ops to a leaf; distnn's reaches it dense there)
        gt = np.zeros(tuple(t.shape)) if t.grad is None else t.grad.to_dense().numpy()
        np.testing.assert_allclose(gd, gt, rtol=TOL[dtype], atol=TOL[dtype])


def _random_sparse(rng, size, sd, nnz):
    idx = np.stack([rng.integers(0, size[k], nnz) for k in range(sd)]) if nnz else np.zeros((sd, 0), np.int64)
    return idx, rng.standard_normal((nnz,) + tuple(size[sd:]))


def _backward(d_out, t_out, rng, dtype):
    """The same random weighting of both outputs (densified), backward."""
    g = rng.standard_normal(tuple(t_out.shape)).astype(dtype)
    d_out = d_out.to_dense() if isinstance(d_out, sparse.SparseTensor) else d_out
    t_out = t_out.to_dense() if t_out.is_sparse else t_out
    (d_out * distnn.tensor(g)).sum().backward()
    (t_out * __import__("torch").tensor(g)).sum().backward()


# ------------------------------------------------------------------------------------- sparse * dense
@DTYPES
@pytest.mark.parametrize("seed", range(4))
def test_sparse_times_dense_both_orders_match_torch(torch, dtype, seed):
    rng = np.random.default_rng(100 + seed)
    sd, dd = int(rng.integers(1, 3)), int(rng.integers(0, 2))
    size = tuple(int(s) for s in rng.integers(1, 4, size=sd + dd))
    idx, vals = _random_sparse(rng, size, sd, [0, 1, 5, 9][seed])  # (repeats likely: uncoalesced)
    x = rng.standard_normal(size).astype(dtype)
    for coalesce in (False, True):
        d, t, vd, vt = _pair(torch, idx, vals, size, dtype, coalesce)
        xd, xt = distnn.tensor(x * 1.0, requires_grad=True), torch.tensor(x * 1.0, requires_grad=True)
        yd, yt = d * (xd * 2.0), t * (xt * 2.0)  # (a non-leaf dense operand: its gradient is dense)
        zd, zt = (xd * 1.0) * d, (xt * 1.0) * t
        _same_sparse(yd, yt, dtype)
        _same_sparse(zd, zt, dtype)
        _same_sparse(distnn.mul(d, xd), torch.mul(t, xt), dtype)
        _backward(yd + zd, yt + zt, rng, dtype)
        _grads_close([(vd, vt), (xd, xt)], dtype)


def test_dense_leaf_times_sparse_gets_a_sparse_gradient_as_torchs(torch):
    idx, vals = np.array([[0, 1, 2], [2, 0, 1]]), np.array([3.0, 4.0, 2.5])
    d, t, _, _ = _pair(torch, idx, vals, (3, 4))
    x = np.random.default_rng(1).standard_normal((3, 4))
    xd, xt = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    sparse.sum(d * xd).backward()
    torch.sparse.sum(t * xt).backward()
    assert isinstance(xd.grad, sparse.SparseTensor) and xt.grad.is_sparse
    _close(xd.grad, xt.grad)
    d, t, _, _ = _pair(torch, idx, vals, (3, 4))
    sparse.sum(xd * d).backward()  # (sparse + sparse: the leaf's gradient stays sparse, as torch's)
    torch.sparse.sum(xt * t).backward()
    assert isinstance(xd.grad, sparse.SparseTensor) and xt.grad.is_sparse
    _close(xd.grad, xt.grad)
    # a sparse leaf: its gradient is sparse on its indices (these have no repeats: torch's holds the same)
    sd = distnn.sparse_coo_tensor(idx, vals, (3, 4), dtype=np.float64, requires_grad=True)
    st = torch.sparse_coo_tensor(torch.from_numpy(idx), torch.tensor(vals), (3, 4), requires_grad=True)
    sparse.sum(sd * distnn.tensor(x)).backward()
    torch.sparse.sum(st * torch.tensor(x)).backward()
    assert isinstance(sd.grad, sparse.SparseTensor) and st.grad.is_sparse
    _close(sd.grad, st.grad)


def test_a_broadcast_dense_operand_matches_torch_and_its_gradient_is_refused(torch):
    d, t, vd, vt = _pair(torch, np.array([[0, 1, 1, 0], [2, 0, 2, 2]]), np.array([3.0, 4.0, 5.0, -1.0]), (3, 4))
    for shape in [(4,), (1, 4), (3, 1), ()]:
        x = np.random.default_rng(2).standard_normal(shape)
        _same_sparse(d * distnn.tensor(x), t * torch.tensor(x))
        _same_sparse(distnn.tensor(x) * d, torch.tensor(x) * t)
    xd, xt = distnn.tensor(np.ones(4), requires_grad=True), torch.tensor(np.ones(4), requires_grad=True)
    with pytest.raises(NotImplementedError, match="view"):
        torch.sparse.sum(t * xt).backward()
    with pytest.raises(RuntimeError, match=r"gradient of a dense operand of shape \[4\] broadcast to the sparse "):
        sparse.sum(d * xd).backward()
    with pytest.raises(RuntimeError, match="must match the size of tensor b"):
        t * torch.ones(5, dtype=torch.float64)
    with pytest.raises(RuntimeError, match=r"the size of the dense operand \[5\] does not broadcast"):
        d * distnn.ones(5)
    _same_sparse(d * distnn.ones(2, 3, 4, dtype=distnn.float64), t * torch.ones(2, 3, 4, dtype=torch.float64))
    _same_sparse(distnn.ones(3, 1, 4, dtype=distnn.float64) * d, torch.ones(3, 1, 4, dtype=torch.float64) * t)


def test_mixed_dtypes_promote_as_torchs(torch):
    for sdt, ddt, shape in [(np.float32, np.float64, ()), (np.float64, np.float32, ()),
                            (np.float32, np.float64, (3, 4)), (np.float32, np.int64, ()), (np.int64, np.float32, ()),
                            (np.int64, np.int32, (4,))]:
        vals = np.array([1, 2]).astype(sdt)
        d = distnn.sparse_coo_tensor([[0, 1], [1, 2]], vals, (3, 4)) * distnn.tensor(np.full(shape, 3, ddt))
        t = torch.sparse_coo_tensor([[0, 1], [1, 2]], torch.from_numpy(vals), (3, 4)) * torch.from_numpy(
            np.full(shape, 3, ddt))
        assert "torch." + np.dtype(d.dtype).name == str(t.dtype), (sdt, ddt, shape)
        _same_sparse(d, t)


# ------------------------------------------------------------------------------------ sparse * sparse
@DTYPES
@pytest.mark.parametrize("seed", range(3))
def test_sparse_times_sparse_keeps_torchs_entries_and_flag(torch, dtype, seed):
    rng = np.random.default_rng(300 + seed)
    size = (3, 4) if seed < 2 else (2, 3, 2)
    sd = 2
    for nx, ny in [(5, 2), (2, 5), (4, 4), (0, 3), (3, 0)]:
        ix, vx = _random_sparse(rng, size, sd, nx)
        iy, vy = _random_sparse(rng, size, sd, ny)
        for cx in (False, True):
            for cy in (False, True):
                a, ta, va, vta = _pair(torch, ix, vx, size, dtype, cx)
                b, tb, vb, vtb = _pair(torch, iy, vy, size, dtype, cy)
                y, ty = a * b, ta * tb
                _same_sparse(y, ty, dtype)
                _backward(y, ty, rng, dtype)
                _grads_close([(va, vta), (vb, vtb)], dtype)


def test_sparse_times_sparse_refuses_other_shapes(torch):
    a = distnn.sparse_coo_tensor([[0], [0]], [1.0], (3, 4))
    for other, torch_other in [(distnn.sparse_coo_tensor([[0]], [1.0], (4,)), torch.sparse_coo_tensor([[0]], [1.0],
                                                                                                       (4,))),
                               (distnn.sparse_coo_tensor([[0], [0]], [1.0], (3, 5)),
                                torch.sparse_coo_tensor([[0], [0]], [1.0], (3, 5)))]:
        with pytest.raises(RuntimeError, match="expects sparse inputs with equal dimensionality"):
            a * other
        with pytest.raises(RuntimeError, match="expects sparse inputs with equal dimensionality"):
            torch.sparse_coo_tensor([[0], [0]], [1.0], (3, 4)) * torch_other


# ----------------------------------------------------------------------------------- sparse + sparse
def test_sparse_plus_sparse_is_coalesced_as_torchs(torch):
    rng = np.random.default_rng(4)
    cases = [(5, 3), (0, 3), (3, 0), (0, 0), (1, 4)]
    for nx, ny in cases:
        ix, vx = _random_sparse(rng, (3, 4), 2, nx)
        iy, vy = _random_sparse(rng, (3, 4), 2, ny)
        for cx in (False, True):
            for cy in (False, True):
                a, ta, va, vta = _pair(torch, ix, vx, (3, 4), coalesce=cx)
                b, tb, vb, vtb = _pair(torch, iy, vy, (3, 4), coalesce=cy)
                y, ty = a + b, ta + tb
                assert y.is_coalesced() == ty.is_coalesced(), (nx, ny, cx, cy)
                if ty.is_coalesced():  # (then the entries are torch's too)
                    _same_sparse(y, ty)
                _close(y, ty)
                _backward(y, ty, rng, np.float64)
                _grads_close([(va, vta), (vb, vtb)])


# ----------------------------------------------------------------------------------------- dense @ sparse
@DTYPES
def test_dense_at_sparse_matches_torch_in_every_spelling(torch, dtype):
    rng = np.random.default_rng(5)
    idx, vals = np.array([[0, 1, 1, 0, 2], [2, 0, 2, 2, 1]]), np.array([3.0, 4.0, 5.0, -1.0, 2.5])
    d, t, vd, vt = _pair(torch, idx, vals, (3, 4), dtype)
    a = rng.standard_normal((5, 3)).astype(dtype)
    ad, at = distnn.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    row, batch = a[0], a.reshape(5, 1, 3)
    yd = (ad @ d + distnn.mm(ad, d) + distnn.matmul(ad, d) + sparse.mm(ad, d)
          + distnn.matmul(distnn.tensor(batch) * ad.reshape(5, 1, 3), d).reshape(5, 4) + distnn.tensor(row) @ d)
    yt = (at @ t + torch.mm(at, t) + torch.matmul(at, t) + torch.sparse.mm(at, t)
          + torch.matmul(torch.tensor(batch) * at.reshape(5, 1, 3), t).reshape(5, 4) + torch.tensor(row) @ t)
    assert isinstance(yd, distnn.Tensor)
    _close(yd, yt, dtype)
    _backward(yd, yt, rng, dtype)
    _close(vd.grad, vt.grad, dtype)
    _close(ad.grad, at.grad, dtype)
    vec = rng.standard_normal(4).astype(dtype)
    _close(d @ distnn.tensor(vec), t @ torch.tensor(vec), dtype)  # (sparse @ vector: a vector)


def test_dense_at_sparse_refusals_match_torch(torch):
    d = distnn.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], (3, 4), dtype=np.float64)
    t = torch.sparse_coo_tensor([[0, 1], [1, 0]], [1.0, 2.0], (3, 4), dtype=torch.float64)
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x4 and 3x4\)"):
        distnn.ones(2, 4, dtype=np.float64) @ d
    with pytest.raises(RuntimeError):
        torch.ones(2, 4, dtype=torch.float64) @ t
    with pytest.raises(RuntimeError, match="expected scalar type Double but found Float"):  # (PyTorch's words)
        distnn.ones(2, 3, dtype=np.float32) @ d
    with pytest.raises(RuntimeError, match="expected scalar type Double but found Float"):
        torch.ones(2, 3, dtype=torch.float32) @ t
    m = distnn.ones(3, 4, dtype=np.float64)
    d_t = distnn.sparse_coo_tensor([[1, 0], [0, 1]], [1.0, 2.0], (4, 3), dtype=np.float64)
    for args, torch_args, got in [((m[:, :3], d, d_t), (torch.ones(3, 3, dtype=torch.float64), t, t.t()),
                                   "got 'mat1' with layout Sparse and 'mat2' with layout Sparse"),
                                  ((distnn.sparse_coo_tensor([[0], [0]], [1.0], (3, 3), dtype=np.float64), d,
                                    m.transpose(0, 1)),
                                   (torch.sparse_coo_tensor([[0], [0]], [1.0], (3, 3), dtype=torch.float64), t,
                                    torch.ones(4, 3, dtype=torch.float64)),
                                   "expected strided result tensor")]:
        with pytest.raises(RuntimeError, match=got):
            sparse.addmm(*args)
        with pytest.raises(RuntimeError, match=got):
            torch.sparse.addmm(*torch_args)


# ---------------------------------------------------------------------------------------- sparse @ sparse
@DTYPES
@pytest.mark.parametrize("seed", range(3))
def test_sparse_at_sparse_matches_torch(torch, dtype, seed):
    rng = np.random.default_rng(400 + seed)
    n, k, m = (int(s) for s in rng.integers(1, 5, size=3))
    ia, va_ = _random_sparse(rng, (n, k), 2, [0, 3, 8][seed])
    ib, vb_ = _random_sparse(rng, (k, m), 2, [4, 0, 7][seed])
    for ca, cb in [(False, False), (True, True), (False, True)]:
        a, ta, va, vta = _pair(torch, ia, va_, (n, k), dtype, ca)
        b, tb, vb, vtb = _pair(torch, ib, vb_, (k, m), dtype, cb)
        for y, ty in [(sparse.mm(a, b), torch.sparse.mm(ta, tb)), (a @ b, ta @ tb),
                      (distnn.mm(a, b), torch.mm(ta, tb))]:
            _same_sparse(y, ty, dtype)
        _backward(sparse.mm(a, b), torch.sparse.mm(ta, tb), rng, dtype)
        _grads_close([(va, vta), (vb, vtb)], dtype)


def test_sparse_at_sparse_keeps_cancelled_entries_and_refuses_bad_shapes(torch):
    a = distnn.sparse_coo_tensor([[0, 0], [0, 1]], [1.0, -1.0], (2, 2), dtype=np.float64)
    b = distnn.sparse_coo_tensor([[0, 1], [0, 0]], [1.0, 1.0], (2, 2), dtype=np.float64)
    ta = torch.sparse_coo_tensor([[0, 0], [0, 1]], [1.0, -1.0], (2, 2), dtype=torch.float64)
    tb = torch.sparse_coo_tensor([[0, 1], [0, 0]], [1.0, 1.0], (2, 2), dtype=torch.float64)
    _same_sparse(sparse.mm(a, b), torch.sparse.mm(ta, tb))  # (one entry holding 0)
    with pytest.raises(RuntimeError, match=r"mat1 and mat2 shapes cannot be multiplied \(2x2 and 3x2\)"):
        sparse.mm(a, distnn.sparse_coo_tensor([[0], [0]], [1.0], (3, 2)))
    with pytest.raises(RuntimeError, match="must be a 2-D sparse matrix"):
        sparse.mm(a, distnn.sparse_coo_tensor([[0]], [[1.0, 2.0]], (2, 2)))
    with pytest.raises(NotImplementedError, match="_sparse_mm_reduce_impl"):
        torch.sparse.mm(ta, torch.ones(2, 2, dtype=torch.float64), "sum")
    with pytest.raises(NotImplementedError, match=r"reduce='sum' is supported for a sparse CSR mat1 only"):
        sparse.mm(a, distnn.ones(2, 2, dtype=np.float64), "sum")


def test_gradcheck_of_the_products():
    rng = np.random.default_rng(7)
    idx = np.array([[0, 1, 1, 0, 2], [2, 0, 2, 2, 1]])
    v = distnn.tensor(rng.standard_normal(5), requires_grad=True)
    w = distnn.tensor(rng.standard_normal(4), requires_grad=True)
    x = distnn.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    a = distnn.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    sp = lambda vals: distnn.sparse_coo_tensor(idx, vals, (3, 4))  # noqa: E731
    sp2 = lambda vals: distnn.sparse_coo_tensor(np.array([[0, 2, 0, 3], [2, 1, 2, 0]]), vals, (4, 3))  # noqa: E731
    checks = [(lambda v, x: (sp(v) * (x * 1.0)).to_dense(), (v, x)),
              (lambda v, w: (sp(v) * sp2(w).coalesce().to_dense().transpose(0, 1).to_sparse()).to_dense(), (v, w)),
              (lambda v, a: a @ sp(v), (v, a)),
              (lambda v, w: sparse.mm(sp(v), sp2(w)).to_dense(), (v, w))]
    for fn, inputs in checks:
        assert distnn.autograd.gradcheck(fn, inputs)
