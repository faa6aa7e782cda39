"""PyTorch's scans, NaN-aware and paired reductions and order statistics on distnn tensors, against torch 2.13
(values, indices, dtypes, gradients, refusals)."""
import numpy as np
import pytest

import distnn
from distnn.testing import check_grad
from tensor_ops_oracle import assert_refused_as_torch, compare, ints, rand, ties

DTYPES = [np.float64, np.float32]


def with_zeros(*shape, seed=0):
    x = rand(*shape, seed=seed)
    x[np.random.default_rng(seed + 9).random(shape) < 0.3] = 0.0
    return x


def with_nans(*shape, seed=0, share=0.25):
    x = rand(*shape, seed=seed)
    x[np.random.default_rng(seed + 7).random(shape) < share] = np.nan
    return x


def distinct(*shape, seed=0):
    """No ties (a permutation of spaced values): indices are unambiguous."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) * 0.37 - n * 0.1).reshape(shape)


CASES = [
    *[(f"cumprod{s}d{d}", lambda m, x, d=d: m.cumprod(x, d), [rand(*s)]) for s, d in [((5,), 0), ((3, 4), 1),
                                                                                        ((2, 3, 4), -2)]],
    *[(f"cumprod_zeros{seed}", lambda m, x: x.cumprod(1), [with_zeros(4, 6, seed=seed)]) for seed in range(3)],
    ("cumprod_zeros_dim0", lambda m, x: m.cumprod(x, 0), [with_zeros(6, 3, seed=4)]),
    ("cumprod_int", lambda m, x: m.cumprod(x, 0), [ints(4, 2, high=4)]),
    ("cumprod_dtype", lambda m, x: x.cumprod(0, dtype=m.float64), [rand(3, 2)]),
    *[(f"{op}{s}d{d}", lambda m, x, op=op, d=d: getattr(m, op)(x, d), [x])
      for op in ("cummax", "cummin") for s, d, x in [((6,), 0, ties(6)), ((3, 5), 1, ties(3, 5, seed=1)),
                                                     ((5, 3), 0, rand(5, 3)), ((2, 3, 4), -1, ties(2, 3, 4))]],
    ("cummax_nan", lambda m, x: x.cummax(1), [with_nans(3, 6, seed=2)]),
    ("cummin_int", lambda m, x: m.cummin(x, 0), [ints(5, 2)]),
    *[(f"logcumsumexp{s}d{d}", lambda m, x, d=d: m.logcumsumexp(x, d), [rand(*s) * 30])
      for s, d in [((6,), 0), ((3, 5), 1), ((4, 3, 2), 0)]],
    ("logcumsumexp_wide", lambda m, x: x.logcumsumexp(0), [np.array([-1000.0, 0.0, 2.0, -5.0, 700.0])]),
    *[(f"diff_n{n}d{d}", lambda m, x, n=n, d=d: m.diff(x, n, d), [rand(4, 6)]) for n in (0, 1, 2, 7) for d in (0, -1)],
    ("diff_prepend_append", lambda m, x, p, a: m.diff(x, 2, 0, p, a), [rand(3, 2), rand(1, 2), rand(2, 2)]),
    ("diff_bool", lambda m, x: (x > 0).diff(), [rand(3, 5)]),
    ("diff_int", lambda m, x: x.diff(dim=0), [ints(4, 3)]),
    *[(f"count_nonzero{d}", lambda m, x, d=d: m.count_nonzero(x, d), [ints(3, 4, 2, high=2)])
      for d in (None, 0, -1, (0, 2))],
    *[(f"nansum{d}{k}", lambda m, x, d=d, k=k: m.nansum(x, d, k), [with_nans(3, 4)])
      for d, k in [(None, False), (0, False), (1, True), ((0, 1), False)]],
    ("nansum_int", lambda m, x: x.nansum(), [ints(3, 4)]),
    *[(f"nanmean{d}{k}", lambda m, x, d=d, k=k: m.nanmean(x, d, k), [with_nans(4, 5, seed=1)])
      for d, k in [(None, False), (0, True), (-1, False)]],
    *[(f"var_mean{d}{c}{k}", lambda m, x, d=d, c=c, k=k: m.var_mean(x, d, correction=c, keepdim=k), [rand(3, 4, 2)])
      for d, c, k in [(None, 1, False), (1, 0, False), ((0, 2), 2, True)]],
    *[(f"std_mean{d}{c}", lambda m, x, d=d, c=c: m.std_mean(x, d, correction=c), [rand(3, 4)])
      for d, c in [(None, 1), (0, 0), (-1, 1)]],
    *[(f"aminmax{d}{k}", lambda m, x, d=d, k=k: m.aminmax(x, dim=d, keepdim=k), [ties(3, 4)])
      for d, k in [(None, False), (0, False), (-1, True)]],
    ("aminmax_int", lambda m, x: x.aminmax(dim=1), [ints(3, 4)]),
    # order statistics: the full median (ties and NaN share the gradient), then per dim on distinct values
    *[(f"median_all{seed}", lambda m, x: m.median(x), [ties(*s, seed=seed)]) for seed, s in enumerate([(5,), (4, 2), (3, 3, 2)])],
    ("median_all_nan", lambda m, x: x.median(), [with_nans(4, 3, seed=1)]),
    ("nanmedian_all", lambda m, x: m.nanmedian(x), [with_nans(4, 3, seed=1)]),
    *[(f"median_d{d}{k}{s}", lambda m, x, d=d, k=k: m.median(x, d, k), [distinct(*s)])
      for s in [(5, 4), (4, 6), (2, 3, 4)] for d, k in [(0, False), (-1, True), (1, False)]],
    ("median_dim_nan", lambda m, x: x.median(1), [with_nans(4, 5, seed=2)]),
    ("nanmedian_dim", lambda m, x: m.nanmedian(x, 1), [with_nans(4, 5, seed=2)]),
    ("nanmedian_dim_keep", lambda m, x: x.nanmedian(0, keepdim=True), [with_nans(6, 3, seed=3)]),
    *[(f"kthvalue{k}d{d}", lambda m, x, k=k, d=d: m.kthvalue(x, k, d), [distinct(4, 5)])
      for k, d in [(1, 0), (4, 0), (3, -1), (5, 1)]],
    ("kthvalue_keepdim", lambda m, x: x.kthvalue(2, 0, True), [distinct(3, 2, 2)]),
    ("mode_int", lambda m, x: m.mode(x, 1), [ints(4, 9, high=3)]),
    ("mode_ties", lambda m, x: x.mode(0), [ties(7, 3)]),
    ("mode_keepdim", lambda m, x: m.mode(x, -1, True), [ties(2, 3, 6, seed=2)]),
    *[(f"quantile_{i}_{q}_{d}{k}", lambda m, x, i=i, q=q, d=d, k=k: m.quantile(x, q, d, k, interpolation=i),
       [rand(5, 4, seed=3)]) for i in ("linear", "lower", "higher", "midpoint", "nearest")
      for q, d, k in [(0.3, None, False), (0.5, 0, True), (0.75, -1, False), (0.125, 0, False)]],
    ("quantile_tensor_q", lambda m, x: x.quantile(m.tensor(np.array([0.0, 0.25, 0.5, 1.0]), dtype=x.dtype), dim=1),
     [rand(3, 5)]),
    ("quantile_tensor_q_keepdim_all", lambda m, x: m.quantile(x, m.tensor(np.array([0.1, 0.9]), dtype=x.dtype),
                                                              keepdim=True), [rand(3, 5)]),
    ("quantile_nan", lambda m, x: m.quantile(x, 0.4, 1), [with_nans(4, 5, seed=2)]),
    ("nanquantile", lambda m, x: m.nanquantile(x, 0.4, 1), [with_nans(4, 5, seed=2)]),
    ("nanquantile_nearest", lambda m, x: x.nanquantile(0.5, 0, interpolation="nearest"), [with_nans(6, 3, seed=3)]),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_matches_torch(torch, case, dtype):
    _, fn, arrays = case
    compare(torch, fn, arrays, dtype)


@pytest.mark.parametrize("seed", range(8))
def test_order_statistics_fuzz(torch, seed):
    """Random shapes and dims (distinct values, so the indices are PyTorch's without ambiguity)."""
    rng = np.random.default_rng(200 + seed)
    shape = tuple(int(s) for s in rng.integers(1, 6, size=int(rng.integers(1, 4))))
    dim = int(rng.integers(-len(shape), len(shape)))
    x = distinct(*shape, seed=seed)
    k = int(rng.integers(1, shape[dim] + 1))
    q = float(rng.random())
    compare(torch, lambda m, a: m.median(a, dim), [x])
    compare(torch, lambda m, a: m.kthvalue(a, k, dim, True), [x])
    compare(torch, lambda m, a: m.cummax(a, dim), [ties(*shape, seed=seed)])
    compare(torch, lambda m, a: m.cumprod(a, dim), [with_zeros(*shape, seed=seed)])
    for interpolation in ("linear", "midpoint", "nearest"):
        compare(torch, lambda m, a: m.quantile(a, q, dim, interpolation=interpolation), [x])


def test_median_of_ties_is_a_lower_median_at_a_tied_index(torch):
    """Among tied medians PyTorch's index is unspecified: ours points at an element of that value."""
    x = ties(5, 7, seed=4)
    values, indices = distnn.median(distnn.tensor(x), 1)
    expected = torch.tensor(x).median(1).values.numpy()
    np.testing.assert_array_equal(values.numpy(), expected)
    np.testing.assert_array_equal(np.take_along_axis(x, indices.numpy()[:, None], 1)[:, 0], expected)


@pytest.mark.parametrize("fn,arrays", [
    (lambda x: distnn.cumprod(x, 1), [with_zeros(3, 5, seed=1)]),
    (lambda x: distnn.logcumsumexp(x, 0), [rand(5, 2)]),
    (lambda x: distnn.quantile(x, 0.35, 1), [rand(3, 6)]),
    (lambda x: distnn.cummin(x, 1).values, [rand(3, 6)]),
    (lambda x: distnn.nanmean(x, 0), [with_nans(4, 3)]),
])
def test_check_grad(fn, arrays):
    assert check_grad(fn, *arrays)


REFUSALS = [
    ("diff_0d", lambda m, x: m.diff(x), [rand()], "one-dimensional"),
    ("diff_order", lambda m, x: m.diff(x, -1), [rand(3)], "non-negative"),
    ("logcumsumexp_int", lambda m, x: m.logcumsumexp(x, 0), [ints(3)], "not implemented for"),
    ("nanmean_int", lambda m, x: m.nanmean(x), [ints(3)], "floating point"),
    ("kthvalue_k", lambda m, x: m.kthvalue(x, 4), [rand(3)], "out of range"),
    ("quantile_q", lambda m, x: m.quantile(x, 1.5), [rand(3)], "in the range [0, 1]"),
    ("quantile_int", lambda m, x: m.quantile(x, 0.5), [ints(3)], "float or double"),
    ("quantile_mode", lambda m, x: m.quantile(x, 0.5, interpolation="cubic"), [rand(3)], "interpolation must be"),
    ("quantile_q_dtype", lambda m, x: m.quantile(x, m.tensor(np.array([0.5]), dtype=m.float32)), [rand(3)],
     "same dtype"),
    ("quantile_empty", lambda m, x: m.quantile(x, 0.5), [np.zeros(0)], "non-empty"),
    ("cumprod_dim", lambda m, x: m.cumprod(x, 2), [rand(3, 2)], "out of range"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c[0])
def test_refusals_as_torch(torch, case):
    assert_refused_as_torch(torch, case)
