"""The rest of PyTorch's everyday tensor ops on distnn, against torch 2.13 (values, dtypes, gradients,
refusals): unfold's windows, select and the *_scatter family, index_reduce, index_put/put out of place,
sum_to_size, split_with_sizes, the shifts, gcd/lcm, ldexp, frexp, nextafter, heaviside, cov, corrcoef, dist,
renorm, addr, histogram, the method forms of where/maximum/minimum, and the in-place name_ forms."""
import numpy as np
import pytest

import distnn
from distnn.testing import check_grad
from tensor_ops_oracle import assert_refused_as_torch, compare, ints, rand, ties

DTYPES = [np.float64, np.float32]
_COND = np.random.default_rng(3).random((3, 4)) > 0.5

CASES = [
    # sliding windows and slices
    ("unfold_d0", lambda m, x: x.unfold(0, 2, 1), [rand(5, 3)]),
    ("unfold_overlap_step", lambda m, x: x.unfold(1, 3, 2), [rand(2, 7, 3)]),
    ("unfold_gaps", lambda m, x: x.unfold(-1, 2, 3), [rand(3, 8)]),
    ("unfold_whole", lambda m, x: x.unfold(0, 4, 1), [rand(4)]),
    ("unfold_empty_window", lambda m, x: x.unfold(1, 0, 2), [rand(2, 6)]),
    ("unfold_big_step", lambda m, x: x.unfold(1, 1, 5), [rand(2, 6)]),
    ("unfold_0d", lambda m, x: x.unfold(0, 1, 1), [rand()]),
    ("select", lambda m, x: m.select(x, 1, -1), [rand(3, 4, 2)]),
    ("select_method", lambda m, x: x.select(0, 2) * 2, [rand(3, 4)]),
    ("select_scatter", lambda m, x, s: m.select_scatter(x, s, 1, 2), [rand(3, 4, 2), rand(3, 2, seed=1)]),
    ("select_scatter_method", lambda m, x, s: x.select_scatter(s, 0, -1), [rand(3, 4), rand(4, seed=1)]),
    ("slice_scatter", lambda m, x, s: m.slice_scatter(x, s, 1, 1, 5, 2), [rand(2, 6), rand(2, 2, seed=1)]),
    ("slice_scatter_defaults", lambda m, x, s: x.slice_scatter(s), [rand(3, 2), rand(3, 2, seed=1)]),
    ("slice_scatter_open_end", lambda m, x, s: m.slice_scatter(x, s, start=2), [rand(4, 2), rand(2, 2, seed=1)]),
    ("diagonal_scatter", lambda m, x, s: m.diagonal_scatter(x, s), [rand(3, 4), rand(3, seed=1)]),
    ("diagonal_scatter_offset", lambda m, x, s: x.diagonal_scatter(s, 1), [rand(3, 4), rand(3, seed=1)]),
    ("diagonal_scatter_neg", lambda m, x, s: m.diagonal_scatter(x, s, -2), [rand(4, 3), rand(2, seed=1)]),
    ("diagonal_scatter_batch", lambda m, x, s: m.diagonal_scatter(x, s, 0, 2, 0),
     [rand(3, 2, 4), rand(2, 3, seed=1)]),
    ("sum_to_size", lambda m, x: x.sum_to_size(3, 1), [rand(2, 3, 4)]),
    ("sum_to_size_tuple", lambda m, x: x.sum_to_size((1, 4)), [rand(3, 4)]),
    ("sum_to_size_same", lambda m, x: x.sum_to_size(3, 4), [rand(3, 4)]),
    ("split_with_sizes", lambda m, x: x.split_with_sizes([1, 3, 0, 2], 1), [rand(2, 6)]),
    ("split_with_sizes_fn", lambda m, x: m.split_with_sizes(x, [2, 1]), [rand(3, 2)]),
    # index writes out of place
    ("index_put", lambda m, x, v: x.index_put((m.tensor(np.array([0, 2])),), v), [rand(3, 4), rand(2, 4, seed=1)]),
    ("index_put_acc", lambda m, x, v: x.index_put((m.tensor(np.array([1, 1, 0])), m.tensor(np.array([2, 2, 3]))), v,
                                                  accumulate=True), [rand(3, 4), rand(3, seed=1)]),
    ("index_put_fn", lambda m, x, v: m.index_put(x, (m.tensor(np.array([0, -1])),), v), [rand(3), rand(2, seed=1)]),
    ("put", lambda m, x, v: x.put(m.tensor(np.array([0, 5, -1])), v), [rand(2, 3), rand(3, seed=1)]),
    ("put_acc", lambda m, x, v: m.put(x, m.tensor(np.array([[1, 1], [4, 1]])), v, accumulate=True),
     [rand(2, 3), rand(2, 2, seed=1)]),
    *[(f"index_reduce_{r}_{inc}", lambda m, x, s, r=r, inc=inc: x.index_reduce(
        0, m.tensor(np.array([0, 2, 0, 3])), s, r, include_self=inc), [rand(4, 3), rand(4, 3, seed=1)])
      for r in ("prod", "mean", "amax", "amin") for inc in (True, False)],
    *[(f"index_reduce_ties_{r}", lambda m, x, s, r=r: m.index_reduce(x, 1, m.tensor(np.array([1, 1, 0])), s, r),
       [ties(2, 3), ties(2, 3, seed=1)]) for r in ("prod", "mean", "amax", "amin")],
    # pointwise
    # (non-negative integer exponents: PyTorch's gradient for a negative one is 0, see test_ldexp_negative_...)
    ("ldexp", lambda m, x, e: m.ldexp(x, e), [rand(3, 4), ints(3, 4, low=0, high=4)]),
    ("ldexp_negative_float_exp", lambda m, x, e: m.ldexp(x, e), [rand(3, 4), -ints(3, 4, high=4) * 1.0]),
    ("ldexp_float_exp", lambda m, x, e: x.ldexp(e), [rand(3, 4), rand(4, seed=1)]),
    ("ldexp_int_input", lambda m, x, e: m.ldexp(x, e) * 1.0, [ints(3), ints(3, seed=1)]),
    ("frexp", lambda m, x: m.frexp(x), [rand(3, 4) * 50]),
    # (not 1e-300: PyTorch's gradient there is inf, its backward computing 2**exponent in float32)
    ("frexp_edges", lambda m, x: x.frexp(), [np.array([0.0, -0.0, 1.0, -0.5, 3.0, 1e-30, 2.0 ** 60])]),
    ("where_method", lambda m, x, y: x.where(m.tensor(_COND), y), [rand(3, 4), rand(4, seed=1)]),
    ("where_method_scalar", lambda m, x: x.where(m.tensor(_COND), 0.5), [rand(3, 4)]),
    ("maximum_method", lambda m, x, y: x.maximum(y), [ties(3, 4), ties(3, 1, seed=1)]),
    ("minimum_method", lambda m, x, y: x.minimum(y), [ties(3, 4), ties(4, seed=1)]),
    # statistics
    ("cov", lambda m, x: m.cov(x), [rand(3, 5)]),
    ("cov_1d", lambda m, x: x.cov(), [rand(6)]),
    ("cov_correction0", lambda m, x: m.cov(x, correction=0), [rand(2, 4)]),
    ("cov_fweights", lambda m, x, f: m.cov(x, fweights=f), [rand(3, 5), ints(5, low=1, high=4)]),
    ("cov_aweights", lambda m, x, a: m.cov(x, aweights=a.abs()), [rand(3, 5), rand(5, seed=1)]),
    ("cov_both", lambda m, x, f, a: m.cov(x, correction=2, fweights=f, aweights=a.abs()),
     [rand(2, 6), ints(6, low=1, high=3), rand(6, seed=1)]),
    ("corrcoef", lambda m, x: m.corrcoef(x), [rand(3, 6)]),
    ("corrcoef_1d", lambda m, x: x.corrcoef(), [rand(5)]),
    *[(f"dist_p{p}", lambda m, x, y, p=p: m.dist(x, y, p), [rand(3, 4), rand(4, seed=1)])
      for p in (2, 1, 3.5, float("inf"), -float("inf"))],
    ("dist_method", lambda m, x, y: x.dist(y), [rand(2, 3), rand(2, 3, seed=1)]),
    ("renorm", lambda m, x: m.renorm(x, 2, 0, 1.5), [rand(4, 3)]),
    ("renorm_p1_d1", lambda m, x: x.renorm(1, 1, 2.0), [rand(3, 4, 2)]),
    ("renorm_untouched", lambda m, x: x.renorm(2, -1, 100.0), [rand(3, 4)]),
    ("addr", lambda m, x, a, b: m.addr(x, a, b), [rand(3, 4), rand(3, seed=1), rand(4, seed=2)]),
    ("addr_scaled", lambda m, x, a, b: x.addr(a, b, beta=0.5, alpha=-2.0), [rand(1, 4), rand(3, seed=1),
                                                                           rand(4, seed=2)]),
]

VALUE_CASES = [
    ("shift_left", lambda m, x, y: m.bitwise_left_shift(x, y), [ints(3, 4, low=-9, high=9),
                                                                ints(3, 4, high=70, seed=1)]),
    ("shift_left_scalar", lambda m, x: x.bitwise_left_shift(3), [ints(5, low=-9, high=9)]),
    ("shift_right", lambda m, x, y: m.bitwise_right_shift(x, y), [ints(3, 4, low=-99, high=99),
                                                                  ints(4, high=70, seed=1)]),
    ("shift_int8", lambda m, x, y: m.bitwise_right_shift(x.to(m.int8), y.to(m.int8)),
     [np.array([-8, 8, -1, 100]), np.array([1, 9, 3, 8])]),
    ("shift_left_uint8", lambda m, x, y: m.bitwise_left_shift(x.to(m.uint8), y.to(m.uint8)),
     [np.array([1, 200, 3, 7]), np.array([1, 2, 8, 7])]),
    ("shift_promote", lambda m, x, y: m.bitwise_left_shift(x.to(m.int16), y), [ints(4), ints(4, seed=1)]),
    ("gcd", lambda m, x, y: m.gcd(x, y), [ints(3, 4, low=-30, high=30), ints(4, low=-30, high=30, seed=1)]),
    ("lcm", lambda m, x, y: x.lcm(y), [ints(3, 4, low=-30, high=30), ints(3, 4, low=-30, high=30, seed=1)]),
    ("nextafter", lambda m, x, y: m.nextafter(x, y), [rand(3, 4), np.array([np.inf, -np.inf, 0.0, 1.0])]),
    ("nextafter_f32", lambda m, x, y: x.float().nextafter(y.float()), [rand(5), rand(5, seed=1)]),
    ("heaviside", lambda m, x, v: m.heaviside(x, v), [np.array([-1.5, 0.0, 2.0, 0.0, -0.0]), np.array([0.5])]),
    ("heaviside_int", lambda m, x, v: x.heaviside(v), [np.array([-1, 0, 3]), np.array([7, 8, 9])]),
    ("dist_p0", lambda m, x, y: m.dist(x, y, 0), [rand(3, 4), np.where(_COND, rand(3, 4), rand(4, seed=1))]),
    ("histogram", lambda m, x: m.histogram(x, 5), [rand(40)]),
    ("histogram_range_weight", lambda m, x, w: x.histogram(4, range=(-1.0, 1.0), weight=w.abs()),
     [rand(6, 5), rand(6, 5, seed=1)]),
    ("histogram_density", lambda m, x: m.histogram(x, 7, density=True), [rand(30)]),
    ("histogram_edges", lambda m, x, b: m.histogram(x, b), [rand(20), np.array([-2.0, -0.5, 0.0, 0.3, 2.0])]),
    ("histogram_constant", lambda m, x: m.histogram(x, 3), [np.full(4, 2.0)]),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_matches_torch(torch, case, dtype):
    _, fn, arrays = case
    compare(torch, fn, arrays, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", VALUE_CASES, ids=lambda c: c[0])
def test_values_without_gradient_match_torch(torch, case, dtype):
    """Integer ops, nextafter, heaviside and histogram: values and dtypes (no gradient in PyTorch either)."""
    _, fn, arrays = case
    compare(torch, fn, arrays, dtype, grad=False)


def test_heaviside_backward_is_refused_as_torch(torch):
    x = np.array([-1.0, 0.0, 2.0])
    for m, t in ((distnn, distnn.tensor(x, requires_grad=True)), (torch, torch.tensor(x, requires_grad=True))):
        y = m.heaviside(t, m.tensor(np.array([0.5])))
        with pytest.raises(RuntimeError, match="derivative for .*heaviside.* is not implemented"):
            y.sum().backward()


@pytest.mark.parametrize("seed", range(5))
def test_unfold_fuzz(torch, seed):
    rng = np.random.default_rng(200 + seed)
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(s) for s in rng.integers(1, 7, size=ndim))
    dim = int(rng.integers(-ndim, ndim))
    size = int(rng.integers(0, shape[dim] + 1))
    step = int(rng.integers(1, 4))
    compare(torch, lambda m, x: x.unfold(dim, size, step), [rand(*shape, seed=seed)])


@pytest.mark.parametrize("seed", range(4))
def test_index_reduce_fuzz(torch, seed):
    rng = np.random.default_rng(300 + seed)
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(s) for s in rng.integers(1, 5, size=ndim))
    dim = int(rng.integers(0, ndim))
    n = int(rng.integers(1, 6))
    index = rng.integers(0, shape[dim], size=n)
    src_shape = shape[:dim] + (n,) + shape[dim + 1:]
    for reduce in ("prod", "mean", "amax", "amin"):
        for include_self in (True, False):
            compare(torch, lambda m, x, s, i: x.index_reduce(dim, i, s, reduce, include_self=include_self),
                    [ties(*shape, seed=seed), ties(*src_shape, seed=seed + 9), index])


INPLACE = [
    ("ldexp_", lambda m, x, e: x.clone().ldexp_(e), [rand(3, 4), ints(4, low=0, high=3)]),
    ("renorm_", lambda m, x: (x * 1.0).renorm_(2, 0, 1.0), [rand(4, 3)]),
    ("addr_", lambda m, x, a, b: (x * 1.0).addr_(a, b, alpha=0.5), [rand(3, 4), rand(3, seed=1), rand(4, seed=2)]),
    ("index_reduce_", lambda m, x, s: (x * 1.0).index_reduce_(0, m.tensor(np.array([1, 1])), s, "amax"),
     [rand(3, 2), rand(2, 2, seed=1)]),
    ("fix_", lambda m, x: (x * 3.0).fix_(), [rand(3, 4)]),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", INPLACE, ids=lambda c: c[0])
def test_inplace_forms_match_torch(torch, case, dtype):
    _, fn, arrays = case
    compare(torch, fn, arrays, dtype)


@pytest.mark.parametrize("name,args", [
    ("bitwise_left_shift_", (2,)), ("bitwise_right_shift_", (1,)), ("gcd_", (6,)), ("lcm_", (4,)),
])
def test_integer_inplace_forms_match_torch(torch, name, args):
    x = ints(3, 4, low=-20, high=20)
    ours, theirs = distnn.tensor(x), torch.tensor(x)
    out = getattr(ours, name)(*[distnn.tensor(np.array(a)) for a in args])
    getattr(theirs, name)(*[torch.tensor(np.array(a)) for a in args])
    assert out is ours
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_nextafter_and_heaviside_inplace_match_torch(torch):
    x, y = rand(5), rand(5, seed=1)
    a, b = distnn.tensor(x), torch.tensor(x)
    a.nextafter_(distnn.tensor(y))
    b.nextafter_(torch.tensor(y))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    a, b = distnn.tensor(np.array([-1.0, 0.0, 2.0])), torch.tensor(np.array([-1.0, 0.0, 2.0]))
    a.heaviside_(distnn.tensor(np.array([0.25])))
    b.heaviside_(torch.tensor(np.array([0.25])))
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_ldexp_negative_integer_exponent_has_the_true_gradient(torch):
    """``d/dx x * 2**e`` is ``2**e``; PyTorch 2.13's LdexpBackward0 computes ``2**e`` in integers, so its
    gradient is 0 for a negative integer ``e``: distnn keeps the true one (the values agree with PyTorch's)."""
    x, e = rand(4), np.array([-2, -1, 0, 3])
    ours = distnn.tensor(x, requires_grad=True)
    out = distnn.ldexp(ours, distnn.tensor(e))
    np.testing.assert_array_equal(out.numpy(), torch.ldexp(torch.tensor(x), torch.tensor(e)).numpy())
    out.sum().backward()
    np.testing.assert_array_equal(ours.grad, 2.0 ** e)
    assert check_grad(lambda t: distnn.ldexp(t, distnn.tensor(e)), x)


@pytest.mark.parametrize("fn,arrays", [
    (lambda x: x.unfold(1, 3, 2), [rand(2, 7)]),
    (lambda x, s: distnn.diagonal_scatter(x, s, 1), [rand(3, 4), rand(3, seed=1)]),
    (lambda x, s: distnn.slice_scatter(x, s, 0, 1, 3), [rand(4, 2), rand(2, 2, seed=1)]),
    (lambda x, e: distnn.ldexp(x, e), [rand(3), rand(3, seed=1)]),
    (lambda x: distnn.frexp(x * 9.0).mantissa, [rand(3, 2)]),
    (lambda x, f: distnn.cov(x, aweights=f.abs() + 0.1), [rand(2, 5), rand(5, seed=1)]),
    (lambda x: distnn.corrcoef(x), [rand(3, 5)]),
    (lambda x: distnn.renorm(x, 3, 1, 0.8), [rand(3, 4)]),
    (lambda x, s: x.index_reduce(0, distnn.tensor(np.array([0, 0, 2])), s, "mean"), [rand(3, 2), rand(3, 2, seed=1)]),
])
def test_check_grad(fn, arrays):
    assert check_grad(fn, *arrays)


REFUSALS = [
    ("unfold_too_big", lambda m, x: x.unfold(0, 5, 1), [rand(4, 3)], "maximum size for tensor at dimension 0 is 4"),
    ("unfold_step", lambda m, x: x.unfold(0, 2, 0), [rand(4, 3)], "step is 0 but must be > 0"),
    ("unfold_dim", lambda m, x: x.unfold(2, 1, 1), [rand(4, 3)], "Dimension out of range"),
    ("select_index", lambda m, x: x.select(0, 5), [rand(2, 3)], "select(): index 5 out of range"),
    ("select_0d", lambda m, x: m.select(x, 0, 0), [rand()], "select() cannot be applied to a 0-dim tensor"),
    ("select_scatter_shape", lambda m, x: m.select_scatter(x, x, 0, 0), [rand(2, 3)],
     "expected src to have a size equal to the slice of self"),
    ("slice_scatter_shape", lambda m, x, s: m.slice_scatter(x, s, 0, 0, 4, 2), [rand(4, 3), rand(1, 3)],
     "expected src to have a size equal to the slice of self"),
    ("sum_to_size", lambda m, x: x.sum_to_size(3, 4), [rand(2, 3)], "is not expandable to size"),
    ("split_with_sizes", lambda m, x: x.split_with_sizes([1, 1]), [rand(3)], "split_with_sizes expects split_sizes"),
    ("index_reduce_name", lambda m, x, i: x.index_reduce(0, i, x, "sum"), [rand(2, 2), np.array([0, 1])],
     "Expected reduce to be one of prod, mean, amax or amin"),
    ("gcd_float", lambda m, x: m.gcd(x, x), [rand(3)], "not implemented for 'Double'"),
    ("shift_float", lambda m, x: m.bitwise_left_shift(x, x), [rand(3)], "not implemented for 'Double'"),
    ("frexp_int", lambda m, x: m.frexp(x), [ints(3)], "frexp() only supports floating-point dtypes"),
    ("heaviside_dtypes", lambda m, x: m.heaviside(x, x.float()), [rand(3)], "different dtypes"),
    ("cov_3d", lambda m, x: m.cov(x), [rand(2, 2, 2)], "expected input to have two or fewer dimensions"),
    ("cov_fweights_float", lambda m, x: m.cov(x, fweights=x[0]), [rand(2, 2)], "fweights to have integral dtype"),
    ("cov_aweights_numel", lambda m, x: m.cov(x, aweights=x[0][:1]), [rand(2, 2)], "same numel"),
    ("renorm_1d", lambda m, x: m.renorm(x, 2, 0, 1.0), [rand(3)], "needs at least 2 dimensions"),
    ("addr_2d", lambda m, x: m.addr(x, x, x[0]), [rand(2, 2)], "Expected 1-D argument vec1"),
    ("adjoint_1d", lambda m, x: x.adjoint(), [rand(3)], "only supported on matrices or batches of matrices"),
    ("mH_1d", lambda m, x: x.mH, [rand(3)], "only supported on matrices or batches of matrices"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=lambda c: c[0])
def test_refusals_as_torch(torch, case):
    assert_refused_as_torch(torch, case)
