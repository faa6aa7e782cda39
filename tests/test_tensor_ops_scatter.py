"""PyTorch's scatter family and index/mask selection on distnn tensors, against torch 2.13 (values, dtypes,
gradients, refusals)."""
import numpy as np
import pytest

import distnn
from distnn.testing import check_grad
from tensor_ops_oracle import assert_refused_as_torch, compare, ints, rand, ties

DTYPES = [np.float64, np.float32]
_MASK = np.random.default_rng(5).random((4, 3)) > 0.5


def _perm_index(shape, size, dim, seed):
    """An index of ``shape`` whose entries along ``dim`` are distinct (no place written twice)."""
    rng = np.random.default_rng(seed)
    keys = rng.random(shape[:dim] + (size,) + shape[dim + 1:])
    order = np.argsort(keys, axis=dim)
    return np.take(order, np.arange(shape[dim]), axis=dim)


def _dup_index(shape, size, seed):
    return np.random.default_rng(seed).integers(0, size, size=shape)


SCATTER_CASES = [
    *[(f"scatter_d{d}", lambda m, x, s, i, d=d: m.scatter(x, d, i, s),
       [rand(4, 5), rand(3, 4, seed=1), _perm_index((3, 4), 4 if d == 0 else 5, d, d)]) for d in (0, 1)],
    ("scatter_value", lambda m, x, i: m.scatter(x, 0, i, value=1.5), [rand(4, 3), _perm_index((2, 3), 4, 0, 3)]),
    ("scatter_int", lambda m, x, s, i: m.scatter(x, 1, i, s), [ints(3, 4), ints(3, 2), _perm_index((3, 2), 4, 1, 4)]),
    *[(f"scatter_add_d{d}", lambda m, x, s, i, d=d: m.scatter_add(x, d, i, s), [rand(3, 4, 2), rand(*i.shape), i])
      for d, i in [(0, _dup_index((5, 4, 2), 3, 1)), (1, _dup_index((3, 6, 2), 4, 2)), (-1, _dup_index((3, 4, 5), 2, 3))]],
    *[(f"scatter_reduce_{r}_{inc}_d{d}", lambda m, x, s, i, r=r, inc=inc, d=d: m.scatter_reduce(
        x, d, i, s, r, include_self=inc), [ties(4, 3), ties(*i.shape, seed=1), i])
      for r in ("sum", "prod", "mean", "amax", "amin") for inc in (True, False)
      for d, i in [(0, _dup_index((6, 3), 4, 7)), (1, _dup_index((4, 5), 3, 8))]],
    *[(f"scatter_reduce_{r}_{inc}_rand", lambda m, x, s, i, r=r, inc=inc: x.scatter_reduce(
        1, i, s, r, include_self=inc), [rand(3, 5), rand(2, 4, seed=1), _dup_index((2, 4), 5, 9)])
      for r in ("sum", "prod", "mean", "amax", "amin") for inc in (True, False)],
    ("scatter_reduce_prod_zeros", lambda m, x, s, i: m.scatter_reduce(x, 0, i, s, "prod"),
     [np.array([[0.0, 2.0, 1.5], [3.0, 0.0, -1.0]]), np.array([[2.0, 0.0, 0.0], [0.0, 1.5, 0.0], [4.0, 0.5, 2.0]]),
      np.array([[0, 0, 1], [1, 0, 1], [1, 1, 0]])]),
    ("scatter_reduce_mean_int", lambda m, x, s, i: m.scatter_reduce(x, 0, i, s, "mean", include_self=False),
     [ints(3, 2), ints(4, 2, high=9, seed=2), _dup_index((4, 2), 3, 3)]),
    *[(f"index_add_d{d}", lambda m, x, s, i, d=d, a=a: m.index_add(x, d, i, s, alpha=a),
       [rand(4, 3), rand(5, 3) if d == 0 else rand(4, 5), np.array([0, 2, 0, 3, 1]) if d == 0 else np.array([2, 2, 0, 1, 2])])
      for d, a in ((0, 1), (1, -0.5))],
    ("index_add_method", lambda m, x, s, i: x.index_add(-1, i, s), [rand(2, 3, 4), rand(2, 3, 2), np.array([3, 0])]),
    *[(f"index_copy_d{d}", lambda m, x, s, i, d=d: m.index_copy(x, d, i, s),
       [rand(4, 5, 2), rand(4, 5, 2, seed=1)[:, :3] if d == 1 else rand(2, 5, 2), np.array([4, 0, 2]) if d == 1
        else np.array([3, 1])]) for d in (0, 1)],
    ("index_fill", lambda m, x, i: m.index_fill(x, 1, i, -2.0), [rand(3, 4), np.array([0, 2, 2])]),
    ("index_fill_tensor_value", lambda m, x, v, i: x.index_fill(0, i, v), [rand(3, 4), rand(), np.array([1])]),
    ("masked_select", lambda m, x: m.masked_select(x, x > 0.2), [rand(3, 4)]),
    ("masked_select_bcast", lambda m, x: x.masked_select(m.tensor(np.array([True, False, True]))), [rand(2, 3)]),
    ("masked_select_bcast_input", lambda m, x: m.masked_select(x, m.tensor(_MASK)), [rand(3)]),
    ("masked_scatter", lambda m, x, s: m.masked_scatter(x, x > 0, s), [rand(3, 4), rand(14)]),
    ("masked_scatter_bcast", lambda m, x, s: x.masked_scatter(m.tensor(np.array([False, True, True])), s),
     [rand(2, 3), rand(2, 4)]),
    ("take", lambda m, x, i: m.take(x, i), [rand(3, 4), np.array([[0, 11], [-1, 5], [5, 3]])]),
    ("take_method_int", lambda m, x, i: x.take(i), [ints(3, 4), np.array([2, 7])]),
    *[(f"take_along_dim{d}", lambda m, x, i, d=d: m.take_along_dim(x, i, d), [rand(3, 4, 5), i])
      for d, i in [(0, ints(2, 4, 5, high=3)), (1, ints(3, 6, 1, high=4)), (-1, ints(1, 4, 2, high=5))]],
    ("take_along_dim_none", lambda m, x, i: x.take_along_dim(i), [rand(3, 4), np.array([0, 11, 3, 3])]),
    ("take_along_dim_argsort", lambda m, x: m.take_along_dim(x, m.argsort(x, 1), 1), [rand(4, 5)]),
    ("nonzero", lambda m, x: m.nonzero(x), [ints(3, 4, high=2)]),
    ("nonzero_tuple", lambda m, x: x.nonzero(as_tuple=True), [ints(2, 3, 2, high=2)]),
    ("nonzero_0d", lambda m, x: m.nonzero(x), [np.array(3.0)]),
    ("nonzero_0d_tuple", lambda m, x: m.nonzero(x, as_tuple=True), [np.array(3.0)]),
    ("argwhere", lambda m, x: m.argwhere(x > 0), [rand(3, 4)]),
    ("argwhere_method", lambda m, x: x.argwhere(), [ints(5, high=2)]),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", SCATTER_CASES, ids=lambda c: c[0])
def test_matches_torch(torch, case, dtype):
    _, fn, arrays = case
    compare(torch, fn, arrays, dtype)


@pytest.mark.parametrize("case", [
    ("scatter_src_larger", lambda m, x, s, i: x.scatter(-1, i, s), [rand(3, 5), rand(4, 6), _perm_index((2, 3), 5, 1, 2)]),
    ("scatter_reduce_add", lambda m, x, s, i: x.scatter(0, i, s, reduce="add"),
     [rand(3, 4), rand(5, 4), _dup_index((5, 4), 3, 5)]),
    ("scatter_reduce_multiply", lambda m, x, s, i: m.scatter(x, 1, i, s, reduce="multiply"),
     [rand(3, 4), rand(3, 5), _dup_index((3, 5), 4, 6)]),
    ("scatter_reduce_max_alias", lambda m, x, s, i: m.scatter_reduce(x, 0, i, s, "max"),
     [rand(3, 4), rand(5, 4), _dup_index((5, 4), 3, 5)]),
    ("scatter_add_src_larger", lambda m, x, s, i: m.scatter_add(x, 0, i, s), [rand(3, 4), rand(5, 5), _dup_index((4, 3), 3, 4)]),
], ids=lambda c: c[0])
def test_values_where_torch_has_no_gradient(torch, case):
    """A src larger than the index, and scatter's reduce=: PyTorch computes them but has no gradient for them."""
    _, fn, arrays = case
    compare(torch, fn, arrays, grad=False)


@pytest.mark.parametrize("seed", range(6))
def test_scatter_reduce_fuzz(torch, seed):
    """Random shapes, dims, reductions and index repeats; ties in the values (amax/amin share the gradient)."""
    rng = np.random.default_rng(100 + seed)
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(s) for s in rng.integers(1, 5, size=ndim))
    dim = int(rng.integers(-ndim, ndim))
    index_shape = tuple(int(rng.integers(1, s + 1)) if k != dim % ndim else int(rng.integers(1, 7))
                        for k, s in enumerate(shape))
    src_shape = index_shape  # (PyTorch's gradient needs src shaped as the index)
    index = rng.integers(0, shape[dim], size=index_shape)
    for reduce in ("sum", "prod", "mean", "amax", "amin"):
        for include_self in (True, False):
            compare(torch, lambda m, x, s, i: m.scatter_reduce(x, dim, i, s, reduce, include_self=include_self),
                    [ties(*shape, seed=seed), ties(*src_shape, seed=seed + 50), index])


@pytest.mark.parametrize("fn,arrays", [
    (lambda x, s: distnn.scatter_reduce(x, 0, distnn.tensor(np.array([[0, 1], [0, 0]])), s, "prod"),
     [rand(2, 2), rand(2, 2, seed=1)]),
    (lambda x, s: distnn.scatter_reduce(x, 1, distnn.tensor(np.array([[0, 0, 1]])), s, "mean", include_self=False),
     [rand(1, 3), rand(1, 3, seed=1)]),
    (lambda x, s: distnn.masked_scatter(x, distnn.tensor(np.array([True, False, True])), s), [rand(2, 3), rand(5)]),
    (lambda x, s: distnn.index_add(x, 0, distnn.tensor(np.array([1, 1])), s, alpha=2.0), [rand(3, 2), rand(2, 2)]),
])
def test_check_grad(fn, arrays):
    assert check_grad(fn, *arrays)


REFUSALS = [
    ("scatter_float_index", lambda m, x, i: m.scatter(x, 0, i, x), [rand(2, 2), rand(2, 2)], "int64"),
    ("scatter_ndim", lambda m, x, i: m.scatter_add(x, 0, i, x), [rand(2, 2), np.array([0, 1])],
     "same number of dimensions"),
    ("scatter_bounds", lambda m, x, i: m.scatter_add(x, 0, i, x), [rand(2, 2), np.array([[0, 2]])], "out of bounds"),
    ("scatter_reduce_name", lambda m, x, i: m.scatter_reduce(x, 0, i, x, "foo"), [rand(2, 2), np.array([[0, 1]])],
     "reduce argument must be"),
    ("scatter_dtype", lambda m, x, i: m.scatter_add(x, 0, i, x.float()), [rand(2, 2), np.array([[0, 1]])],
     "dtype"),
    ("index_add_2d_index", lambda m, x, i: m.index_add(x, 0, i, x), [rand(2, 2), np.array([[0, 1]])],
     "vector"),
    ("masked_select_float_mask", lambda m, x: m.masked_select(x, x), [rand(2, 2)], "Bool"),
    ("take_bounds", lambda m, x, i: m.take(x, i), [rand(2, 2), np.array([4])], "out of range"),
    ("take_along_dim_ndim", lambda m, x, i: m.take_along_dim(x, i, 0), [rand(2, 2), np.array([0])],
     "same number of dimensions"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c[0])
def test_refusals_as_torch(torch, case):
    assert_refused_as_torch(torch, case)
