"""sparse + sparse against torch 2.13's CPU kernel, entry for entry: ``_indices()``, ``_values()``, ``_nnz()``
and ``is_coalesced()`` of ``a + b``, ``torch.add(a, b, alpha=)``, ``a - b``, ``add_``/``sub_`` on uncoalesced
operands (repeats within one operand, interleaved and shared indices, zeros, mixed dtypes, dense dims), a
randomized sweep over many seeds, adversarial orders (the levels' fallback walk included), the gradients of
the values, a sparse gradient accumulated over two backward passes, torch's non-contiguous-values path, and
torch's refusals."""
import numpy as np
import pytest

import distnn
from distnn import sparse

pytestmark = pytest.mark.filterwarnings("ignore:Sparse invariant checks:UserWarning")  # (torch's, not ours)


def _both(torch, idx, vals, size, requires_grad=False):
    idx = np.asarray(idx, dtype=np.int64).reshape(len(size) - (np.ndim(vals) - 1), len(vals))
    vd = distnn.tensor(np.array(vals), requires_grad=requires_grad)
    vt = torch.tensor(np.array(vals), requires_grad=requires_grad)
    return distnn.sparse_coo_tensor(idx, vd, size), torch.sparse_coo_tensor(torch.from_numpy(idx), vt, size), vd, vt


def _same(d, t):
    """The same entries in the same order, the same values (bit for bit) and the same flags."""
    assert isinstance(d, sparse.SparseTensor) and t.is_sparse
    assert (d.shape, d._nnz(), d.is_coalesced(), d.dtype) == \
        (tuple(t.shape), t._nnz(), t.is_coalesced(), np.dtype(str(t.dtype).replace("torch.", "")))
    np.testing.assert_array_equal(d._indices().numpy(), t._indices().numpy())
    np.testing.assert_array_equal(d._values().detach().numpy(), t._values().detach().numpy())


def _random_operand(rng, size, sparse_dim, dtype, style):
    """An uncoalesced operand: keys from a small range (repeats), sorted, reversed, or a copy of ``like``."""
    nnz = int(rng.integers(0, 30))
    rows = int(np.prod(size[:sparse_dim]))
    keys = rng.integers(0, max(1, int(rng.integers(1, rows + 1))), nnz)
    if style == "sorted":
        keys = np.sort(keys)
    elif style == "reversed":
        keys = np.sort(keys)[::-1]
    idx = np.stack(np.unravel_index(keys, size[:sparse_dim])) if sparse_dim else np.zeros((0, nnz), np.int64)
    vals = rng.integers(-4, 5, (nnz,) + tuple(size[sparse_dim:])).astype(dtype)
    return idx, vals


@pytest.mark.parametrize("seed", range(40))
def test_random_uncoalesced_addition_matches_torch_entry_for_entry(torch, seed):
    rng = np.random.default_rng(seed)
    sparse_dim = int(rng.integers(0, 3))
    dense_sizes = rng.integers(1, 3, int(rng.integers(0, 2)))
    size = tuple(int(s) for s in rng.integers(1, 5, sparse_dim)) + tuple(int(s) for s in dense_sizes)
    styles = ["random", "random", "sorted", "reversed"]
    for trial in range(25):
        dt_a, dt_b = [(np.float64, np.float64), (np.float32, np.float64), (np.int64, np.float32),
                      (np.int64, np.int64)][trial % 4]
        ia, va = _random_operand(rng, size, sparse_dim, dt_a, styles[int(rng.integers(0, 4))])
        if trial % 5 == 0:  # (an operand added to a copy of itself, or to a prefix of it)
            cut = int(rng.integers(0, ia.shape[1] + 1))
            ib, vb = ia[:, :cut].copy(), va[:cut].astype(dt_b)
        else:
            ib, vb = _random_operand(rng, size, sparse_dim, dt_b, styles[int(rng.integers(0, 4))])
        a, ta, _, _ = _both(torch, ia, va, size)
        b, tb, _, _ = _both(torch, ib, vb, size)
        if trial % 3 == 0:  # (a coalesced operand)
            a, ta = a.coalesce(), ta.coalesce()
        _same(a + b, ta + tb)
        _same(b + a, tb + ta)
        integral = np.dtype(dt_a).kind == np.dtype(dt_b).kind == "i"
        alpha = [2, -1, 3][trial % 3] if integral else [0.5, 2.0, -1][trial % 3]
        _same(distnn.add(a, b, alpha=alpha), torch.add(ta, tb, alpha=alpha))
        _same(a - b, ta - tb)
        if np.dtype(dt_a) == np.promote_types(dt_a, dt_b):
            _same(a.clone().add_(b, alpha=alpha), ta.clone().add_(tb, alpha=alpha))


@pytest.mark.parametrize("order", ["random", "vocab10", "shared_prefix", "interleaved_decreasing", "sorted"])
@pytest.mark.parametrize("walk", ["levels", "walk_now", "walk_after_one"])
def test_long_and_adversarial_orders_match_torch(torch, monkeypatch, order, walk):
    """Orders that need many levels (decreasing runs that differ between the operands) and the entry-by-entry
    walk the levels hand over to, forced from the start or after one level."""
    if walk != "levels":
        from distnn.sparse import merge_order

        monkeypatch.setattr(merge_order, "FREE_LEVELS", -1 if walk == "walk_now" else 0)
        monkeypatch.setattr(merge_order, "STALL", 0.0)
    rng = np.random.default_rng(7)
    n = 3000
    if order == "random":
        ka, kb = rng.integers(0, 500, n), rng.integers(0, 500, n)
    elif order == "vocab10":
        ka, kb = rng.integers(0, 10, n), rng.integers(0, 10, n)
    elif order == "shared_prefix":
        ka = rng.integers(0, 50, n)
        kb = np.concatenate([ka[:n // 2], rng.integers(0, 50, n // 2)])
    elif order == "interleaved_decreasing":
        ka = np.arange(n, 0, -1)
        kb = np.stack([np.arange(n, 0, -1), np.zeros(n, np.int64)], 1).ravel()[:n]
    else:
        ka, kb = np.sort(rng.integers(0, 2000, n)), np.sort(rng.integers(0, 2000, n))
    size = (int(max(ka.max(), kb.max())) + 1, 2)
    va, vb = rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
    a, ta, _, _ = _both(torch, ka, va, size)
    b, tb, _, _ = _both(torch, kb, vb, size)
    _same(a + b, ta + tb)
    _same(distnn.add(b, a, alpha=0.5), torch.add(tb, ta, alpha=0.5))


def test_named_cases(torch):
    """Repeats inside one operand stay repeated; an index at both heads is summed once; zeros are kept."""
    cases = [([1, 1, 0], [1, 0, 0]), ([2, 0, 1], [0, 2, 1]), ([0, 0, 0], [0, 0]), ([3, 1, 2, 0], [3, 1, 2, 0]),
             ([5, 3], [5, 4]), ([5, 1, 7, 2], [6]), ([1], [])]
    for ka, kb in cases:
        a, ta, _, _ = _both(torch, ka, np.arange(len(ka), dtype=np.float64) * 0.0 + 1.0, (8,))
        b, tb, _, _ = _both(torch, kb, np.zeros(len(kb)), (8,))
        _same(a + b, ta + tb)
        _same(b + a, tb + ta)


def test_value_gradients_match_torch(torch):
    rng = np.random.default_rng(3)
    ia, ib = [[1, 0, 1, 2, 0]], [[0, 1, 1, 3]]
    a, ta, va, vta = _both(torch, ia, rng.standard_normal((5, 3)), (4, 3), requires_grad=True)
    b, tb, vb, vtb = _both(torch, ib, rng.standard_normal((4, 3)), (4, 3), requires_grad=True)
    w = rng.standard_normal((4, 3))
    (distnn.add(a, b, alpha=-2.0).to_dense() * distnn.tensor(w)).sum().backward()
    (torch.add(ta, tb, alpha=-2.0).to_dense() * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(np.asarray(va.grad), vta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(vb.grad), vtb.grad.numpy(), rtol=1e-12)


def test_sparse_gradient_accumulated_over_micro_batches_matches_torch(torch):
    """Two backward passes of a sparse embedding: the leaf's uncoalesced gradients are added as torch's
    ``AccumulateGrad`` adds them (``grad += new``), entry for entry."""
    rng = np.random.default_rng(5)
    weight = rng.standard_normal((20, 3)).astype(np.float32)
    emb_d = distnn.nn.Embedding(20, 3, sparse=True)
    emb_t = torch.nn.Embedding(20, 3, sparse=True)
    emb_d.weight.data[...] = weight
    with torch.no_grad():
        emb_t.weight.copy_(torch.tensor(weight))
    for _ in range(3):
        ids = rng.integers(0, 20, (4, 6))
        g = rng.standard_normal((4, 6, 3)).astype(np.float32)
        (emb_d(distnn.tensor(ids)) * distnn.tensor(g)).sum().backward()
        (emb_t(torch.tensor(ids)) * torch.tensor(g)).sum().backward()
    gd, gt = emb_d.weight.grad, emb_t.weight.grad
    assert isinstance(gd, sparse.SparseTensor) and gd._nnz() < 3 * 24  # (shared rows summed, not concatenated)
    assert (gd._nnz(), gd.is_coalesced()) == (gt._nnz(), gt.is_coalesced())
    np.testing.assert_array_equal(gd._indices().numpy(), gt._indices().numpy())
    np.testing.assert_array_equal(gd._values().numpy(), gt._values().numpy())


def test_non_contiguous_values_take_torchs_concatenating_path(torch):
    rng = np.random.default_rng(2)
    base = rng.standard_normal((2, 4))
    vd, vt = distnn.tensor(base).t(), torch.tensor(base).t()  # (values (4, 2), not contiguous)
    idx = np.array([[2, 0, 2, 1]])
    a = distnn.sparse_coo_tensor(idx, vd, (3, 2))
    ta = torch.sparse_coo_tensor(torch.from_numpy(idx), vt, (3, 2))
    b, tb, _, _ = _both(torch, [[1, 2, 0]], rng.standard_normal((3, 2)), (3, 2))
    _same(a + b, ta + tb)  # (7 entries > 6 elements: coalesced)
    c, tc, _, _ = _both(torch, [[1]], rng.standard_normal((1, 2)), (3, 2))
    _same(a + c, ta + tc)
    _same(distnn.add(c, a, alpha=2.0), torch.add(tc, ta, alpha=2.0))


def test_empty_operands_and_flags(torch):
    a, ta, _, _ = _both(torch, [[1, 0, 1]], np.array([1.0, -2.0, 3.0]), (3,))
    e, te, _, _ = _both(torch, np.zeros((1, 0), np.int64), np.zeros(0), (3,))
    for d, t in [(a + e, ta + te), (e + a, te + ta), (e + a.coalesce(), te + ta.coalesce()), (e + e, te + te),
                 (distnn.add(e, a, alpha=2.0), torch.add(te, ta, alpha=2.0)), (a.coalesce() + a.coalesce(),
                                                                              ta.coalesce() + ta.coalesce())]:
        _same(d, t)


def test_refusals_match_torch(torch):
    a, ta, _, _ = _both(torch, [[1, 0]], np.array([1.0, 2.0]), (3,))
    i, ti, _, _ = _both(torch, [[1, 0]], np.array([1, 2]), (3,))
    bb, tbb, _, _ = _both(torch, [[1, 0]], np.array([True, False]), (3,))
    for build, err in [(lambda m, x, y, z: m.add(y, y, alpha=0.5), RuntimeError),
                       (lambda m, x, y, z: y.clone().add_(x), RuntimeError),
                       (lambda m, x, y, z: z + z, NotImplementedError)]:
        with pytest.raises(err) as caught:
            build(torch, ta, ti, tbb)
        with pytest.raises(err, match=str(caught.value).split("\n")[0][:40].replace("(", r"\(").replace(")", r"\)")
                           .replace(".", r"\.")):
            build(distnn, a, i, bb)
    leaf, tleaf, _, _ = _both(torch, [[1, 0]], np.array([1.0, 2.0]), (3,), requires_grad=True)
    leaf, tleaf = leaf.detach().requires_grad_(), tleaf.detach().requires_grad_()
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        tleaf.add_(ta)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        leaf.add_(a)


def test_huge_sizes_rank_the_keys_first(torch):
    """Indices near int64's range (a size of 2**60 rows): the walk ranks the keys before combining them with the
    run numbers; the result is still torch's."""
    rng = np.random.default_rng(12)
    for trial in range(5):
        pool = rng.integers(0, 2 ** 60, 6)
        ka, kb = rng.choice(pool, 20), rng.choice(pool, 17)
        a, ta, _, _ = _both(torch, ka, rng.standard_normal(20), (2 ** 60,))
        b, tb, _, _ = _both(torch, kb, rng.standard_normal(17), (2 ** 60,))
        _same(a + b, ta + tb)
