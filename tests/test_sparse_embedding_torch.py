"""sparse=True embeddings against PyTorch: F.embedding, nn.Embedding and nn.EmbeddingBag (sum, mean,
per_sample_weights, padding_idx) give a leaf weight a sparse COO gradient with PyTorch's entries (one per
lookup, uncoalesced) and values, float64 tight and float32 loose; two backward passes concatenate as
PyTorch's accumulation does; zero_grad; repr; the refusals; a seeded fuzz over shapes and arguments."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn.sparse import SparseTensor

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")  # (torch's, not ours)
TOL = {np.float64: 1e-12, np.float32: 2e-6}


def _same_sparse(d, t, dtype=np.float64):
    """Entry by entry (PyTorch's uncoalesced layout), then coalesced."""
    assert isinstance(d, SparseTensor) and t.is_sparse and not d.is_coalesced()
    assert d.shape == tuple(t.shape) and d._nnz() == t._nnz()
    np.testing.assert_array_equal(d._indices().numpy(), t._indices().numpy())
    np.testing.assert_allclose(d._values().numpy(), t._values().numpy(), rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(d.coalesce().to_dense().numpy(), t.to_dense().numpy(), rtol=TOL[dtype],
                               atol=TOL[dtype])


def _embedding_pair(torch, num, dim, dtype, **kw):
    w = np.random.default_rng(0).standard_normal((num, dim)).astype(dtype)
    d = nn.Embedding(num, dim, sparse=True, _weight=w, dtype=dtype, **kw)
    t = torch.nn.Embedding(num, dim, sparse=True, _weight=torch.tensor(w), **kw)
    return d, t


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_embedding_sparse_grad_matches_torch_and_accumulates(torch, dtype, padding_idx):
    d, t = _embedding_pair(torch, 6, 3, dtype, padding_idx=padding_idx)
    rng = np.random.default_rng(1)
    for idx in (np.array([[1, 2, 1], [4, 2, 0]]), np.array([5, 1])):  # two passes: the entries concatenate
        g = rng.standard_normal(idx.shape + (3,)).astype(dtype)
        (d(distnn.tensor(idx)) * distnn.tensor(g)).sum().backward()
        (t(torch.from_numpy(idx)) * torch.tensor(g)).sum().backward()
        _same_sparse(d.weight.grad, t.weight.grad, dtype)
    assert d.weight.grad.dtype == dtype


def test_functional_embedding_and_repr(torch):
    w = np.random.default_rng(2).standard_normal((5, 4))
    wd, wt = distnn.tensor(w, requires_grad=True), torch.tensor(w, requires_grad=True)
    idx = np.array([3, 0, 3])
    F.embedding(distnn.tensor(idx), wd, sparse=True).sum().backward()
    torch.nn.functional.embedding(torch.from_numpy(idx), wt, sparse=True).sum().backward()
    _same_sparse(wd.grad, wt.grad)
    for kw in [dict(), dict(padding_idx=1)]:
        assert repr(nn.Embedding(5, 3, sparse=True, **kw)) == repr(torch.nn.Embedding(5, 3, sparse=True, **kw))
    m = nn.Embedding.from_pretrained(w, freeze=False, sparse=True)
    m(distnn.tensor(idx)).sum().backward()
    _same_sparse(m.weight.grad, wt.grad)
    assert nn.Embedding(5, 3, sparse=True).state_dict().keys() == {"weight"}


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kw", [dict(mode="sum"), dict(mode="mean"), dict(mode="sum", padding_idx=2),
                                dict(mode="mean", include_last_offset=True), "psw"],
                         ids=["sum", "mean", "padding", "last_offset", "per_sample_weights"])
def test_embedding_bag_sparse_grad_matches_torch(torch, dtype, kw):
    psw = None
    if kw == "psw":
        kw, psw = dict(mode="sum"), np.linspace(-1, 2, 9).astype(dtype)
    w = np.random.default_rng(3).standard_normal((6, 3)).astype(dtype)
    d = nn.EmbeddingBag(6, 3, sparse=True, _weight=w, dtype=dtype, **kw)
    t = torch.nn.EmbeddingBag(6, 3, sparse=True, _weight=torch.tensor(w), **kw)
    idx, off = np.array([1, 2, 0, 4, 5, 2, 1, 1, 3]), np.array([0, 2, 2, 5])
    g = np.random.default_rng(4).standard_normal((3 if kw.get("include_last_offset") else 4, 3)).astype(dtype)
    pd = None if psw is None else distnn.tensor(psw)
    pt = None if psw is None else torch.tensor(psw)
    (d(distnn.tensor(idx), distnn.tensor(off), pd) * distnn.tensor(g)).sum().backward()
    (t(torch.from_numpy(idx), torch.from_numpy(off), pt) * torch.tensor(g)).sum().backward()
    _same_sparse(d.weight.grad, t.weight.grad, dtype)


def test_zero_grad_and_sparse_plus_dense_accumulation(torch):
    d, t = _embedding_pair(torch, 6, 3, np.float64)
    d(distnn.tensor(np.array([1, 1, 4]))).sum().backward()
    t(torch.tensor([1, 1, 4])).sum().backward()
    d.zero_grad(set_to_none=False)
    t.zero_grad(set_to_none=False)
    assert isinstance(d.weight.grad, SparseTensor) and d.weight.grad._nnz() == t.weight.grad._nnz() == 0
    d(distnn.tensor(np.array([2]))).sum().backward()
    t(torch.tensor([2])).sum().backward()
    _same_sparse(d.weight.grad, t.weight.grad)
    # a dense gradient beside a sparse one makes it dense, in either order (PyTorch's AccumulateGrad)
    for dense_first in (True, False):
        w = distnn.tensor(np.zeros((4, 2)), requires_grad=True)
        idx = distnn.tensor(np.array([0, 3, 3]))
        passes = [lambda: (w * 2.0).sum().backward(), lambda: F.embedding(idx, w, sparse=True).sum().backward()]
        for p in passes if dense_first else passes[::-1]:
            p()
        assert isinstance(w.grad, np.ndarray)
        np.testing.assert_array_equal(w.grad, [[3, 3], [2, 2], [2, 2], [4, 4]])
    d.zero_grad()
    assert d.weight.grad is None


def test_weight_made_by_other_ops_gets_a_dense_gradient():
    w = distnn.tensor(np.ones((4, 2)), requires_grad=True)  # (PyTorch passes a sparse one on: a documented
    F.embedding(distnn.tensor(np.array([1, 1])), w * 3.0, sparse=True).sum().backward()  # difference)
    np.testing.assert_array_equal(w.grad, [[0, 0], [6, 6], [0, 0], [0, 0]])


def test_refusals_match_torch(torch):
    wd = distnn.tensor(np.ones((4, 2)), requires_grad=True)
    wt = torch.ones(4, 2, requires_grad=True)
    y = F.embedding(distnn.tensor(np.array([1])), wd, scale_grad_by_freq=True, sparse=True)
    yt = torch.nn.functional.embedding(torch.tensor([1]), wt, scale_grad_by_freq=True, sparse=True)
    for out in (y, yt):  # (at backward, as PyTorch's)
        with pytest.raises(RuntimeError, match="scale_grad_by_freq not supported with sparse gradients"):
            out.sum().backward()
    with pytest.raises(ValueError, match="max mode does not support sparse weights"):
        nn.EmbeddingBag(4, 2, mode="max", sparse=True)(distnn.tensor(np.array([[0, 1]])))


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_sparse_embedding_grads_match_torch(torch, seed):
    rng = np.random.default_rng(100 + seed)
    num, dim = int(rng.integers(1, 9)), int(rng.integers(1, 5))
    shape = tuple(int(s) for s in rng.integers(1, 4, size=int(rng.integers(1, 3))))
    padding_idx = None if rng.random() < 0.5 else int(rng.integers(-num, num))
    dtype = np.float64 if seed % 2 == 0 else np.float32
    d, t = _embedding_pair(torch, num, dim, dtype, padding_idx=padding_idx)
    idx = rng.integers(0, num, size=shape)
    g = rng.standard_normal(shape + (dim,)).astype(dtype)
    (d(distnn.tensor(idx)) * distnn.tensor(g)).sum().backward()
    (t(torch.from_numpy(idx)) * torch.tensor(g)).sum().backward()
    if t.weight.grad._nnz() == 0:  # (every lookup was the padding row)
        assert d.weight.grad._nnz() == 0
        return
    _same_sparse(d.weight.grad, t.weight.grad, dtype)


def test_autograd_grad_and_backward_inputs_and_casts_keep_the_gradient_sparse(torch):
    d, t = _embedding_pair(torch, 6, 3, np.float64)
    idx = np.array([4, 0, 4])
    (gd,) = distnn.autograd.grad(d(distnn.tensor(idx)).sum(), [d.weight])
    (gt,) = torch.autograd.grad(t(torch.from_numpy(idx)).sum(), [t.weight])
    _same_sparse(gd, gt)
    assert d.weight.grad is None
    d(distnn.tensor(idx)).sum().backward(inputs=[d.weight])
    t(torch.from_numpy(idx)).sum().backward(inputs=[t.weight])
    _same_sparse(d.weight.grad, t.weight.grad)
    d.float()
    t.float()
    assert isinstance(d.weight.grad, SparseTensor) and d.weight.grad.dtype == np.float32
    _same_sparse(d.weight.grad, t.weight.grad, np.float32)
    assert d.to("cpu") is d and isinstance(d.weight.grad, SparseTensor)
