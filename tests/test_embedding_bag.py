"""embedding_bag / nn.EmbeddingBag against PyTorch (the oracle): bags' sums, means and maxima and the gradients
of the weight (max's routed to the first largest entry) and of per_sample_weights, float64 and float32, with
padding_idx, empty bags, include_last_offset, 2-D bags; the refusals, the deliberate differences, repr and
state_dict. The seeded fuzz is in test_layer_fuzz_ctc_embedding_bag."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn

TOL = {np.float64: 1e-12, np.float32: 2e-6}
IDX = np.array([1, 2, 0, 4, 5, 2, 1, 1, 3])
OFFSETS = np.array([0, 2, 2, 5])  # bags: (1, 2), (), (0, 4, 5), (2, 1, 1, 3)


def _run(torch, w, idx, offsets, psw=None, dtype=np.float64, module=False, **kw):
    """Both libraries' output and gradients (weight, per_sample_weights) for one random upstream gradient."""
    w = w.astype(dtype)
    wd, wt = distnn.tensor(w.copy(), requires_grad=True), torch.tensor(w.copy(), requires_grad=True)
    pd = pt = None
    if psw is not None:
        pd = distnn.tensor(psw.astype(dtype), requires_grad=True)
        pt = torch.tensor(psw.astype(dtype), requires_grad=True)
    ot = None if offsets is None else torch.from_numpy(offsets)
    if module:
        dm, tm = nn.EmbeddingBag(*w.shape, dtype=dtype, **kw), torch.nn.EmbeddingBag(*w.shape, **kw)
        dm.weight, tm.weight = distnn.nn.Parameter(wd.data), torch.nn.Parameter(wt.detach())
        wd, wt = dm.weight, tm.weight
        yd, yt = dm(idx, offsets, pd), tm(torch.from_numpy(idx), ot, pt)
    else:
        yd = F.embedding_bag(idx, wd, offsets, per_sample_weights=pd, **kw)
        yt = torch.nn.functional.embedding_bag(torch.from_numpy(idx), wt, ot, per_sample_weights=pt, **kw)
    g = np.random.default_rng(0).standard_normal(tuple(yt.shape)).astype(dtype)
    (yd * distnn.tensor(g)).sum().backward()
    (yt * torch.from_numpy(g)).sum().backward()
    assert yd.dtype == dtype and wd.grad.dtype == dtype
    got = [yd.numpy(), np.asarray(wd.grad)] + ([np.asarray(pd.grad)] if pd is not None else [])
    want = [yt.detach().numpy(), wt.grad.numpy()] + ([pt.grad.numpy()] if pt is not None else [])
    for name, a, b in zip(["output", "weight gradient", "per_sample_weights gradient"], got, want):
        np.testing.assert_allclose(a, b, rtol=TOL[dtype], atol=TOL[dtype], err_msg=name)
    return got


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 2, -6])
@pytest.mark.parametrize("include_last_offset", [False, True])
def test_embedding_bag_matches_torch(torch, mode, padding_idx, include_last_offset, dtype):
    w = np.random.default_rng(1).standard_normal((7, 3))
    offsets = np.append(OFFSETS, len(IDX)) if include_last_offset else OFFSETS
    kw = dict(mode=mode, padding_idx=padding_idx, include_last_offset=include_last_offset)
    _run(torch, w, IDX, offsets, dtype=dtype, **kw)
    _run(torch, w, IDX, offsets, dtype=dtype, module=True, **kw)
    _run(torch, w, IDX[:8].reshape(2, 4), None, dtype=dtype, mode=mode, padding_idx=padding_idx)  # 2-D bags
    if mode == "sum":
        psw = np.random.default_rng(2).standard_normal(IDX.shape)
        _run(torch, w, IDX, offsets, psw, dtype=dtype, **kw)
        _run(torch, w, IDX[:8].reshape(4, 2), None, psw[:8].reshape(4, 2), dtype=dtype, mode=mode)


def test_max_takes_the_first_largest_and_routes_its_gradient_there(torch):
    """Ties: the first entry's row gets the gradient; a NaN only counts as its bag's first entry (PyTorch's >)."""
    w = np.array([[1.0, 2.0], [1.0, 3.0], [0.0, 3.0], [np.nan, 5.0], [7.0, np.nan]])
    idx, offsets = np.array([0, 1, 2, 3, 0, 4, 2, 2]), np.array([0, 3, 5, 6])
    out, gw = _run(torch, w, idx, offsets, mode="max")
    np.testing.assert_array_equal(out[0], [1.0, 3.0])  # (1 tied by row 0 and 1: row 0's; 3 by row 1 and 2: row 1's)
    assert np.isnan(out[1, 0]) and out[1, 1] == 5.0 and out[2, 0] == 7.0 and np.isnan(out[2, 1])
    assert gw[0, 0] != 0 and gw[1, 0] == 0 and gw[1, 1] != 0 and gw[2, 1] != 0  # (row 2 wins bag 3's column 1 only)
    np.testing.assert_array_equal(out[3], [0.0, 3.0])  # (bag 3 is rows 2, 2: the first's)


def test_empty_bags_are_zero_and_get_no_gradient(torch):
    w = np.random.default_rng(3).standard_normal((4, 2))
    for mode in ("sum", "mean", "max"):
        out, gw = _run(torch, w, np.array([3, 3, 1]), np.array([0, 0, 2, 3, 3]), mode=mode)
        assert (out[[0, 3]] == 0).all() and (gw[[0, 2]] == 0).all()
        out, gw = _run(torch, w, np.array([2, 2]), np.array([0]), mode=mode, padding_idx=2)  # all padding
        assert (out == 0).all() and (gw == 0).all()


def test_scale_grad_by_freq_divides_by_each_index_count():
    """The documented rule (embedding's): each row's gradient over its index's count in the input. (PyTorch 2.13's
    CPU kernel divides here index 2's rows by 3, the count of index 1, the sorted input's third entry.)"""
    w = distnn.tensor(np.zeros((4, 1)), requires_grad=True)
    idx, offsets = np.array([1, 2, 0, 1, 2, 1]), np.array([0, 2, 4])
    F.embedding_bag(idx, w, offsets, mode="sum", scale_grad_by_freq=True).backward(np.array([[1.0], [10.0], [100.0]]))
    np.testing.assert_allclose(w.grad[:, 0], [10.0, (1 + 10 + 100) / 3, (1 + 100) / 2, 0.0], rtol=1e-15)


def test_max_norm_renormalizes_the_rows_looked_up_in_place(torch):
    w = np.random.default_rng(4).standard_normal((5, 3)) * 3
    dm = nn.EmbeddingBag(5, 3, max_norm=1.0, mode="sum", dtype=np.float64, _weight=w)
    tm = torch.nn.EmbeddingBag(5, 3, max_norm=1.0, mode="sum", _weight=torch.tensor(w))
    y = dm(np.array([[0, 2], [2, 3]]))
    np.testing.assert_allclose(y.numpy(), tm(torch.tensor([[0, 2], [2, 3]])).detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(dm.weight.numpy(), tm.weight.detach().numpy(), rtol=1e-12)
    assert (np.linalg.norm(dm.weight.numpy()[[0, 2, 3]], axis=1) <= 1.0 + 1e-6).all()
    np.testing.assert_array_equal(dm.weight.numpy()[[1, 4]], w[[1, 4]])


_W = np.zeros((6, 3))
# (arguments changed from a valid call, the error, its message): PyTorch's refusals, then distnn's own
REFUSALS = [
    (dict(offsets=None), ValueError, "offsets has to be a 1D Tensor but got None"),
    (dict(offsets=np.array([[0, 2]])), ValueError, "offsets has to be a 1D Tensor"),
    (dict(input=IDX[:8].reshape(2, 4)), ValueError, "offsets has to be None"),
    (dict(input=IDX.reshape(1, 1, 9), offsets=None), ValueError, "input has to be 1D or 2D"),
    (dict(input=np.zeros((3, 0), np.int64), offsets=None), ValueError, "at least one index"),
    (dict(offsets=np.array([1, 2])), ValueError, "offsets\\[0\\] has to be 0"),
    (dict(offsets=np.array([0, 2, 10])), ValueError, "offsets\\[-1\\] can not be greater than input's length 9"),
    (dict(mode="min"), ValueError, "mode has to be one of sum, mean or max"),
    (dict(mode="max", scale_grad_by_freq=True), ValueError, "max mode does not support scaling"),
    (dict(mode="max", sparse=True), ValueError, "max mode does not support sparse"),
    (dict(per_sample_weights=np.ones(9)), NotImplementedError, "only supported for mode='sum'"),
    (dict(mode="sum", per_sample_weights=np.ones(8)), ValueError, "must have the same shape as the input"),
    (dict(mode="sum", per_sample_weights=np.ones(9, np.float32)), TypeError, "dtype"),
    (dict(weight=_W.reshape(2, 3, 3)), ValueError, "weight has to be a 2D Tensor"),
    (dict(weight=_W.astype(np.int64)), TypeError, "floating"),
    (dict(input=IDX.astype(np.float64)), TypeError, "integers"),
    (dict(input=np.array([1, 6]), offsets=np.array([0])), IndexError, "out of range"),
    (dict(input=np.array([1, -1]), offsets=np.array([0])), IndexError, "out of range"),
    (dict(padding_idx=6), ValueError, "padding_idx must be within the number of embeddings, -6 through 5"),
    (dict(padding_idx=-7), ValueError, "padding_idx must be within"),
    # distnn's own: PyTorch crashes (no offsets) or takes other bags than decreasing offsets name
    (dict(offsets=np.zeros(0, np.int64)), ValueError, "at least one offset"),
    (dict(offsets=np.array([0, 4, 2])), ValueError, "non-decreasing"),
]


@pytest.mark.parametrize("change,err,match", REFUSALS, ids=[m for _, _, m in REFUSALS])
def test_refusals(change, err, match):
    kw = dict(input=IDX, weight=distnn.tensor(_W), offsets=OFFSETS)
    kw.update(change)
    with pytest.raises(err, match=match):
        F.embedding_bag(**kw)


def test_module_refusals_repr_and_state_dict(torch):
    with pytest.raises(ValueError, match="padding_idx"):
        nn.EmbeddingBag(4, 2, padding_idx=4)
    with pytest.raises(ValueError, match="mode"):
        nn.EmbeddingBag(4, 2, mode="median")
    for kw in [dict(), dict(mode="max", padding_idx=1), dict(max_norm=1.0, norm_type=1.0, scale_grad_by_freq=True,
                                                            include_last_offset=True, mode="sum")]:
        assert repr(nn.EmbeddingBag(6, 3, **kw)) == repr(torch.nn.EmbeddingBag(6, 3, **kw))
    m = nn.EmbeddingBag(6, 3, padding_idx=-2)
    assert m.padding_idx == 4 and (m.weight.numpy()[4] == 0).all()
    m2 = nn.EmbeddingBag(6, 3)
    m2.load_state_dict(m.state_dict())
    np.testing.assert_array_equal(m2.weight.numpy(), m.weight.numpy())
    assert list(m.state_dict()) == list(torch.nn.EmbeddingBag(6, 3).state_dict()) == ["weight"]
    frozen = nn.EmbeddingBag.from_pretrained(np.eye(3), mode="sum")
    assert not frozen.weight.requires_grad and frozen(np.array([[0, 1]])).numpy().tolist() == [[1.0, 1.0, 0.0]]
