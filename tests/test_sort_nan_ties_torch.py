"""Ordering ops against PyTorch on random tensors full of ties, NaN, infinities and signed zeros (float32,
float64, int64): sort/argsort/msort (stable: exactly; NaN last ascending, first descending), topk, kthvalue,
median and mode (values exactly; an index may point at another of equal elements, where PyTorch's order of
ties is unspecified), searchsorted/bucketize (a NaN value goes after every entry), unique (each NaN its own
value), and the gradients of sort and topk values.

Left to PyTorch's unspecified or broken orders, and not compared: which of equal elements an unstable sort,
topk, kthvalue or mode index names; topk(sorted=False)'s order; mode of a row holding NaN (PyTorch's std::sort
with a NaN breaks its runs); unique(dim=...) of slices holding NaN; a number searched in a sequence holding NaN
(PyTorch's binary search result depends on where its halving lands)."""
import numpy as np
import pytest
import torch

import distnn

pytestmark = pytest.mark.filterwarnings("error")

DTYPES = ["float32", "float64", "int64"]
SHAPES = [(7,), (3, 9), (2, 3, 5), (40,), (1,)]


def _np(x):
    return np.asarray(x.detach().numpy() if hasattr(x, "detach") else x)


def _random(rng, dtype, shape, nan=True):
    x = rng.integers(-3, 4, shape).astype(dtype)
    if dtype != "int64":
        if nan:
            x[rng.random(shape) < 0.2] = np.nan
        special = rng.random(shape) < 0.1
        x[special] = rng.choice([np.inf, -np.inf, 0.0, -0.0], special.sum())
    return x


def _cases(nan=True):
    rng = np.random.default_rng(1234)
    for trial in range(12):
        for dtype in DTYPES:
            yield _random(rng, dtype, SHAPES[trial % len(SHAPES)], nan=nan)


def _assert_exact(got, expected, signed=True):
    """Equal dtype, shape and values (NaN equal to NaN); ``signed``: -0.0 apart from 0.0 (not where PyTorch's
    order of equal elements is unspecified: an unstable sort may put either first)."""
    got, expected = _np(got), _np(expected)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    if signed and got.dtype.kind == "f":
        np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))


def _assert_tie_equivalent(x, dim, got_indices, expected_indices):
    """Both index sets name equal elements (NaN equal to NaN), position by position."""
    got_indices, expected_indices = _np(got_indices), _np(expected_indices)
    assert got_indices.dtype == expected_indices.dtype and got_indices.shape == expected_indices.shape
    x = x.reshape(1) if x.ndim == 0 else x
    if got_indices.ndim < x.ndim:
        got_indices, expected_indices = (np.expand_dims(i, dim) for i in (got_indices, expected_indices))
    np.testing.assert_array_equal(np.take_along_axis(x, got_indices, dim),
                                  np.take_along_axis(x, expected_indices, dim))


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dim", [-1, 0])
def test_stable_sort_argsort_msort_exact(dim, descending):
    for x in _cases():
        theirs = torch.sort(torch.tensor(x), dim=dim, descending=descending, stable=True)
        ours = distnn.sort(distnn.tensor(x), dim=dim, descending=descending, stable=True)
        _assert_exact(ours.values, theirs.values)
        _assert_exact(ours.indices, theirs.indices)
        _assert_exact(distnn.argsort(distnn.tensor(x), dim=dim, descending=descending, stable=True),
                      torch.argsort(torch.tensor(x), dim=dim, descending=descending, stable=True))
        _assert_exact(distnn.tensor(x).sort(dim, descending, stable=True).indices,
                      torch.tensor(x).sort(dim=dim, descending=descending, stable=True).indices)
        # (msort is PyTorch's unstable sort along dim 0: -0.0 and 0.0 may come in either order)
        _assert_exact(distnn.msort(distnn.tensor(x)), torch.msort(torch.tensor(x)), signed=False)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("dim", [-1, 0])
def test_unstable_sort_values_exact_ties_anywhere(dim, descending):
    for x in _cases():
        theirs = torch.sort(torch.tensor(x), dim=dim, descending=descending)
        ours = distnn.sort(distnn.tensor(x), dim=dim, descending=descending)
        _assert_exact(ours.values, theirs.values, signed=False)
        _assert_tie_equivalent(x, dim, ours.indices, theirs.indices)
        _assert_tie_equivalent(x, dim, distnn.argsort(distnn.tensor(x), dim=dim, descending=descending),
                               torch.argsort(torch.tensor(x), dim=dim, descending=descending))


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("dim", [-1, 0])
def test_topk_values_exact(dim, largest):
    for x in _cases():
        n = x.shape[dim]
        for k in sorted({0, 1, n // 2, n}):
            theirs = torch.topk(torch.tensor(x), k, dim=dim, largest=largest)
            ours = distnn.topk(distnn.tensor(x), k, dim=dim, largest=largest)
            _assert_exact(ours.values, theirs.values, signed=False)
            _assert_tie_equivalent(x, dim, ours.indices, theirs.indices)


@pytest.mark.parametrize("dim", [-1, 0])
def test_kthvalue_median_values_exact(dim):
    for x in _cases():
        n = x.shape[dim]
        for op, call in (("kthvalue", lambda L, t: L.kthvalue(t, (n + 1) // 2, dim=dim)),
                         ("median", lambda L, t: L.median(t, dim=dim)),
                         ("nanmedian", lambda L, t: L.nanmedian(t, dim=dim))):
            theirs, ours = call(torch, torch.tensor(x)), call(distnn, distnn.tensor(x))
            _assert_exact(ours[0], theirs[0], signed=False)
            _assert_tie_equivalent(x, dim, ours[1], theirs[1])


@pytest.mark.parametrize("dim", [-1, 0])
def test_mode_values_exact_without_nan(dim):
    for x in _cases(nan=False):
        theirs, ours = torch.mode(torch.tensor(x), dim=dim), distnn.mode(distnn.tensor(x), dim=dim)
        _assert_exact(ours.values, theirs.values, signed=False)  # (the smallest of equally frequent values)
        _assert_tie_equivalent(x, dim, ours.indices, theirs.indices)


def test_mode_short_rows_exact():
    """Up to 16 elements PyTorch's std::sort is an insertion sort (stable): the mode's index is then its last
    occurrence, as distnn's always is."""
    rng = np.random.default_rng(21)
    for n in range(1, 17):
        for dtype in DTYPES:
            x = _random(rng, dtype, (6, n), nan=False)
            theirs, ours = torch.mode(torch.tensor(x), -1), distnn.mode(distnn.tensor(x), -1)
            _assert_exact(ours.values, theirs.values, signed=False)
            _assert_exact(ours.indices, theirs.indices)


def _sorted_boundaries(x, nan):
    flat = np.sort(x.reshape(-1))  # (numpy's order: NaN last, as PyTorch's)
    return flat if nan or x.dtype.kind != "f" else flat[~np.isnan(flat)]


@pytest.mark.parametrize("right", [False, True])
def test_searchsorted_and_bucketize_place_nan_last(right):
    rng = np.random.default_rng(7)
    for x in _cases():
        values = _random(rng, x.dtype.name, (13,))
        boundaries = _sorted_boundaries(x, nan=False)
        expected = torch.searchsorted(torch.tensor(boundaries), torch.tensor(values), right=right)
        _assert_exact(distnn.searchsorted(distnn.tensor(boundaries), distnn.tensor(values), right=right), expected)
        _assert_exact(distnn.searchsorted(distnn.tensor(boundaries), distnn.tensor(values),
                                          side="right" if right else "left"), expected)
        _assert_exact(distnn.bucketize(distnn.tensor(values), distnn.tensor(boundaries), right=right),
                      torch.bucketize(torch.tensor(values), torch.tensor(boundaries), right=right))
        if x.dtype.kind == "f":
            with_nan = _sorted_boundaries(x, nan=True)
            nans = np.full(4, np.nan, x.dtype)
            _assert_exact(distnn.searchsorted(distnn.tensor(with_nan), distnn.tensor(nans), right=right),
                          torch.searchsorted(torch.tensor(with_nan), torch.tensor(nans), right=right))
            _assert_exact(distnn.searchsorted(distnn.tensor(boundaries), float("nan"), right=right),
                          torch.searchsorted(torch.tensor(boundaries), float("nan"), right=right))
            rows = np.sort(np.nan_to_num(x.reshape(-1, x.shape[-1]), nan=9.0), axis=-1)
            row_values = _random(rng, x.dtype.name, (rows.shape[0], 5))
            _assert_exact(distnn.searchsorted(distnn.tensor(rows), distnn.tensor(row_values), right=right),
                          torch.searchsorted(torch.tensor(rows), torch.tensor(row_values), right=right))


@pytest.mark.parametrize("returns", [(False, False), (True, False), (True, True)])
def test_unique_keeps_each_nan(returns):
    inverse, counts = returns
    for x in _cases():
        theirs = torch.unique(torch.tensor(x), return_inverse=inverse, return_counts=counts)
        ours = distnn.unique(distnn.tensor(x), return_inverse=inverse, return_counts=counts)
        for mine, reference in zip(*(r if isinstance(r, tuple) else (r,) for r in (ours, theirs))):
            _assert_exact(mine, reference, signed=False)  # (0.0 and -0.0 are one value: either may stand for it)


def test_unique_dim_without_nan_exact():
    for x in _cases(nan=False):
        for dim in range(x.ndim):
            theirs = torch.unique(torch.tensor(x), dim=dim, return_inverse=True, return_counts=True)
            ours = distnn.unique(distnn.tensor(x), dim=dim, return_inverse=True, return_counts=True)
            for mine, reference in zip(ours, theirs):
                _assert_exact(mine, reference, signed=False)


def _grad(lib, x, upstream, op):
    t = lib.tensor(x, requires_grad=True)
    out = op(lib, t)
    out.backward(lib.tensor(upstream))
    return out, t.grad


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sort_and_topk_value_gradients(dtype):
    rng = np.random.default_rng(11)
    for shape in SHAPES:
        x = _random(rng, dtype, shape)  # (ties: the stable sort names the same elements as PyTorch's)
        for descending in (False, True):
            sort = lambda L, t: L.sort(t, dim=-1, descending=descending, stable=True).values  # noqa: E731
            upstream = rng.standard_normal(shape).astype(dtype)
            (out_t, grad_t), (out_d, grad_d) = _grad(torch, x, upstream, sort), _grad(distnn, x, upstream, sort)
            assert out_d.grad_fn.name() == out_t.grad_fn.name() == "SortBackward1"  # (stable= given)
            _assert_exact(grad_d, grad_t)
        # topk: distinct values and one NaN (no ties: which of equal elements topk takes is unspecified)
        distinct = rng.permutation(x.size).astype(dtype).reshape(shape)
        distinct.reshape(-1)[rng.integers(x.size)] = np.nan
        n = shape[-1]
        for k in sorted({1, (n + 1) // 2, n}):
            for largest in (True, False):
                topk = lambda L, t: L.topk(t, k, dim=-1, largest=largest).values  # noqa: E731
                upstream = rng.standard_normal(shape[:-1] + (k,)).astype(dtype)
                (out_t, grad_t), (out_d, grad_d) = _grad(torch, distinct, upstream, topk), \
                    _grad(distnn, distinct, upstream, topk)
                assert out_d.grad_fn.name() == out_t.grad_fn.name() == "TopkBackward0"
                _assert_exact(out_d, out_t)
                _assert_exact(grad_d, grad_t)


def test_sort_node_names_follow_the_stable_keyword():
    calls = [lambda L, t: L.sort(t), lambda L, t: L.sort(t, stable=False), lambda L, t: L.sort(t, stable=True),
             lambda L, t: L.sort(t, 0, True), lambda L, t: t.sort(), lambda L, t: t.sort(stable=False),
             lambda L, t: t.sort(descending=True, stable=True)]
    for call in calls:
        names = [call(L, L.tensor([3.0, 1.0, 2.0], requires_grad=True)).values.grad_fn.name()
                 for L in (torch, distnn)]
        assert names[0] == names[1]
