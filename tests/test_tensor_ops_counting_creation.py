"""PyTorch's counting/bucketing and creation functions on distnn tensors: against torch 2.13 where the result
is determined, and by distribution and generator reproducibility for the random ones (they cannot draw
PyTorch's numbers)."""
import numpy as np
import pytest

import distnn
from tensor_ops_oracle import assert_refused_as_torch, compare, ints, rand

def _int64(m):
    return np.int64 if m is distnn else m.int64


_SORTED = np.sort(np.random.default_rng(3).integers(-4, 5, size=9)).astype(np.float64)
_ROWS = np.sort(np.random.default_rng(4).integers(-4, 5, size=(3, 6)), axis=1).astype(np.float64)
_VALUES = np.random.default_rng(5).integers(-5, 6, size=(3, 4)).astype(np.float64)

CASES = [
    *[(f"unique{i}{c}", lambda m, x, i=i, c=c: m.unique(x, return_inverse=i, return_counts=c), [ints(3, 5, high=4)])
      for i in (False, True) for c in (False, True)],
    ("unique_float", lambda m, x: x.unique(return_inverse=True), [np.round(rand(4, 3), 0)]),
    *[(f"unique_dim{d}", lambda m, x, d=d: m.unique(x, dim=d, return_inverse=True, return_counts=True),
       [np.array([[1, 2, 1, 2], [0, 5, 0, 5], [1, 2, 1, 2]])]) for d in (0, 1, -1)],
    *[(f"unique_consecutive{d}", lambda m, x, d=d: m.unique_consecutive(x, True, True, dim=d), [x])
      for d, x in [(None, np.array([1, 1, 2, 2, 3, 1, 1, 2])), (None, ints(3, 4, high=2)),
                   (0, np.array([[1, 2], [1, 2], [3, 4], [1, 2]])), (1, np.array([[1, 1, 2], [3, 3, 3]]))]],
    ("bincount", lambda m, x: m.bincount(x), [ints(12, high=6)]),
    ("bincount_minlength", lambda m, x: x.bincount(minlength=9), [ints(5, high=4)]),
    ("bincount_weights32", lambda m, x, w: m.bincount(x, w.float()), [ints(7, high=3), rand(7)]),
    ("bincount_weights64", lambda m, x, w: m.bincount(x, w, 5), [ints(7, high=3), rand(7)]),
    *[(f"histc{b}{lo}{hi}", lambda m, x, b=b, lo=lo, hi=hi: m.histc(x, b, lo, hi), [rand(50) * 2])
      for b, lo, hi in [(10, 0, 0), (7, -1.0, 1.5), (3, 2.0, 2.0), (100, -3, 3)]],
    ("histc_edges", lambda m, x: x.histc(4, 0, 4), [np.array([0.0, 1.0, 4.0, 4.5, -0.1, 2.0, 3.999])]),
    *[(f"searchsorted_{r}", lambda m, s, v, r=r: m.searchsorted(s, v, right=r), [_SORTED, _VALUES])
      for r in (False, True)],
    ("searchsorted_side", lambda m, s, v: m.searchsorted(s, v, side="right", out_int32=True), [_SORTED, _VALUES]),
    ("searchsorted_scalar", lambda m, s: m.searchsorted(s, 1.0), [_SORTED]),
    *[(f"searchsorted_rows_{r}", lambda m, s, v, r=r: m.searchsorted(s, v, right=r), [_ROWS, _VALUES[:, :3]])
      for r in (False, True)],
    ("searchsorted_sorter", lambda m, s, v: m.searchsorted(s, v, sorter=m.argsort(s)), [rand(8), rand(5)]),
    *[(f"bucketize_{r}", lambda m, v, b, r=r: m.bucketize(v, b, right=r), [_VALUES, _SORTED]) for r in (False, True)],
    ("eye", lambda m: (m.eye(3), m.eye(2, 4), m.eye(3, dtype=m.float64)), []),
    *[(f"linspace{a}{b}{n}", lambda m, a=a, b=b, n=n: (m.linspace(a, b, n), m.linspace(a, b, n, dtype=m.float64)),
       []) for a, b, n in [(0, 1, 5), (-3.5, 7.25, 11), (2, -2, 1), (0, 10, 0), (1e-3, 1.0, 100)]],
    ("linspace_int", lambda m: m.linspace(-3, 7, 4, dtype=_int64(m)), []),
    *[(f"logspace{a}{b}{n}{base}", lambda m, a=a, b=b, n=n, base=base: m.logspace(a, b, n, base,
                                                                                 dtype=m.float64), [])
      for a, b, n, base in [(0, 3, 4, 10.0), (-1, 1, 5, 2.0)]],
    ("empty_like_full_like", lambda m, x: (m.empty_like(x).zero_(), m.full_like(x, 2.5), m.full_like(x, 3, dtype=_int64(m))),
     [rand(2, 3)]),
    ("empty", lambda m: m.empty(2, 3).zero_(), []),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_matches_torch(torch, case):
    _, fn, arrays = case
    compare(torch, fn, arrays, grad=False)


REFUSALS = [
    ("bincount_negative", lambda m, x: m.bincount(x), [np.array([1, -1])], "non-negative"),
    ("bincount_2d", lambda m, x: m.bincount(x), [np.array([[1]])], "1-d"),
    ("histc_int", lambda m, x: m.histc(x), [np.array([1, 2])], "not implemented for"),
    ("histc_range", lambda m, x: m.histc(x, 4, 2, 1), [rand(3)], "max must be larger than min"),
    ("searchsorted_side", lambda m, s: m.searchsorted(s, s, right=True, side="left"), [_SORTED], "opposites"),
    ("searchsorted_rows", lambda m, s, v: m.searchsorted(s, v), [_ROWS, rand(2, 3)], "must match"),
    ("bucketize_2d", lambda m, v, b: m.bucketize(v, b), [rand(3), _ROWS], "1 dimension"),
    ("multinomial_too_many", lambda m, w: m.multinomial(w, 4), [np.array([0.2, 0.3, 0.5])], "without replacement"),
    ("multinomial_negative", lambda m, w: m.multinomial(w, 1), [np.array([0.2, -0.3])], "element < 0"),
    ("multinomial_zero", lambda m, w: m.multinomial(w, 1), [np.zeros(3)], "sum of probabilities"),
    ("bernoulli_p", lambda m, p: m.bernoulli(p), [np.array([0.5, 1.5])], "p_in >= 0"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c[0])
def test_refusals_as_torch(torch, case):
    assert_refused_as_torch(torch, case)


# ---------------------------------------------------------------- random: distributions and reproducibility
RANDOM = {
    "rand_like": lambda g: distnn.rand_like(distnn.zeros(4, 5), generator=g),
    "randn_like": lambda g: distnn.randn_like(distnn.zeros(4, 5, dtype=np.float64), generator=g),
    "randint": lambda g: distnn.randint(3, 10, (4, 5), generator=g),
    "randint_like": lambda g: distnn.randint_like(distnn.zeros(6), 4, generator=g),
    "randperm": lambda g: distnn.randperm(9, generator=g),
    "bernoulli": lambda g: distnn.bernoulli(distnn.full((20,), 0.3), generator=g),
    "multinomial": lambda g: distnn.multinomial(distnn.tensor([[0.1, 0.5, 0.4], [1.0, 0.0, 3.0]]), 2, generator=g),
    "multinomial_replacement": lambda g: distnn.multinomial(distnn.tensor([0.1, 0.0, 0.9]), 8, True, generator=g),
}


@pytest.mark.parametrize("name", list(RANDOM))
def test_random_draws_follow_the_generator(name):
    """The same generator state gives the same tensor; the default generator follows manual_seed."""
    fn = RANDOM[name]
    a, b = fn(np.random.default_rng(1)), fn(np.random.default_rng(1))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    distnn.manual_seed(5)
    c = fn(None)
    distnn.manual_seed(5)
    np.testing.assert_array_equal(c.numpy(), fn(None).numpy())


def test_random_dtypes_and_shapes_as_torch(torch):
    assert distnn.rand_like(distnn.zeros(2, 3, dtype=np.float64)).dtype == np.float64
    assert distnn.randn_like(distnn.zeros(2, 3)).dtype == np.float32
    assert distnn.randint(5, (2, 3)).dtype == np.int64 and distnn.randint(5, (2, 3)).shape == (2, 3)
    assert distnn.randint_like(distnn.zeros(3, dtype=np.float64), 1, 4).dtype == np.float64
    assert distnn.randperm(4).dtype == np.int64
    assert distnn.bernoulli(distnn.full((3,), 0.5)).dtype == np.float32
    assert distnn.multinomial(distnn.tensor([0.5, 0.5]), 1).shape == (1,)
    assert distnn.multinomial(distnn.tensor([[0.5, 0.5]] * 3), 2).shape == (3, 2)


def test_random_distributions():
    g = np.random.default_rng(0)
    u = distnn.rand_like(distnn.zeros(20000), generator=g).numpy()
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    z = distnn.randn_like(distnn.zeros(20000, dtype=np.float64), generator=g).numpy()
    assert abs(z.mean()) < 0.03 and abs(z.std() - 1) < 0.03
    r = distnn.randint(-2, 3, (20000,), generator=g).numpy()
    assert set(np.unique(r)) == {-2, -1, 0, 1, 2} and abs(r.mean()) < 0.05
    assert sorted(distnn.randperm(50, generator=g).numpy()) == list(range(50))
    p = np.array([0.0, 0.2, 0.9, 1.0])
    b = distnn.bernoulli(distnn.tensor(np.tile(p, (5000, 1))), generator=g).numpy()
    np.testing.assert_allclose(b.mean(0), p, atol=0.02)
    assert set(np.unique(b)) <= {0.0, 1.0}
    weights = np.array([[1.0, 0.0, 3.0, 6.0], [5.0, 5.0, 0.0, 0.0]])
    draws = distnn.multinomial(distnn.tensor(weights), 20000, True, generator=g).numpy()
    for row, w in zip(draws, weights):
        np.testing.assert_allclose(np.bincount(row, minlength=4) / len(row), w / w.sum(), atol=0.015)
    # without replacement: distinct picks, never a zero weight, the first pick's law is the weights'
    picks = np.stack([distnn.multinomial(distnn.tensor(weights[0]), 3, generator=g).numpy() for _ in range(4000)])
    assert all(len(set(p)) == 3 and 1 not in p for p in picks)
    np.testing.assert_allclose(np.bincount(picks[:, 0], minlength=4) / len(picks), weights[0] / 10, atol=0.025)
