"""PyTorch's top-level joins, index helpers and creation functions on distnn (concatenate, the stack family,
block_diag, cartesian_prod, combinations, tril/triu_indices, isin, unravel_index, vander, scalar_tensor,
empty_strided, range, rsub, fill) against torch 2.13: values, dtypes, shapes, gradients, refusals."""
import warnings

import numpy as np
import pytest

import distnn
from distnn.testing import check_grad
from tensor_ops_oracle import assert_refused_as_torch, compare, ints, rand

torch = pytest.importorskip("torch")

DTYPES = [np.float64, np.float32]
_ZEROS = np.array([0.0, 1.5, -2.0, 0.0])  # (vander's gradient at x = 0)

CASES = [
    ("concatenate", lambda m, x, y: m.concatenate([x, y], axis=1), [rand(2, 3), rand(2, 4)]),
    ("concatenate_dim", lambda m, x, y: m.concatenate((x, y)), [rand(2, 3), rand(1, 3)]),
    ("hstack_vectors", lambda m, x, y: m.hstack([x, y]), [rand(3), rand(2)]),
    ("hstack_scalars", lambda m, x, y: m.hstack((x, y)), [rand(), rand()]),
    ("hstack_matrices", lambda m, x, y, z: m.hstack([x, y, z]), [rand(2, 3), rand(2, 1), rand(2, 2)]),
    ("hstack_3d", lambda m, x, y: m.hstack([x, y]), [rand(2, 1, 3), rand(2, 2, 3)]),
    ("hstack_int", lambda m, x, y: m.hstack([x, y]), [ints(2, 2), ints(2, 3)]),
    ("hstack_mixed_dtypes", lambda m, x, y: m.hstack([x, y]), [rand(2, 2), ints(2, 3)]),
    ("vstack_vectors", lambda m, x, y: m.vstack([x, y]), [rand(3), rand(3)]),
    ("vstack_mixed", lambda m, x, y, z: m.vstack([x, y, z]), [rand(3), rand(2, 3), rand(1, 3)]),
    ("vstack_scalar", lambda m, x, y: m.vstack([x, y]), [rand(), rand(1)]),
    ("row_stack", lambda m, x, y: m.row_stack((x, y)), [rand(4), rand(2, 4)]),
    ("dstack_vectors", lambda m, x, y: m.dstack([x, y]), [rand(3), rand(3)]),
    ("dstack_matrices", lambda m, x, y: m.dstack([x, y]), [rand(2, 3), rand(2, 3, 2)]),
    ("dstack_scalars", lambda m, x, y: m.dstack([x, y]), [rand(), rand()]),
    ("column_stack", lambda m, x, y, z: m.column_stack([x, y, z]), [rand(3), rand(3, 2), rand(3)]),
    ("column_stack_scalar", lambda m, x, y: m.column_stack([x, y]), [rand(), rand(1)]),
    ("column_stack_4d", lambda m, x, y: m.column_stack([x, y]), [rand(2, 3, 2, 1), rand(2, 1, 2, 1)]),
    ("block_diag", lambda m, x, y, z: m.block_diag(x, y, z), [rand(2, 3), rand(), rand(4)]),
    ("block_diag_one", lambda m, x: m.block_diag(x), [rand(2, 2)]),
    ("block_diag_empty_blocks", lambda m, x, y, z: m.block_diag(x, y, z), [rand(0, 3), rand(2, 0), rand(1, 2)]),
    ("block_diag_promoted", lambda m, x, y: m.block_diag(x, y), [ints(2, 2), rand(1, 3)]),
    ("block_diag_int", lambda m, x, y: m.block_diag(x, y), [ints(2, 2), ints(3)]),
    ("block_diag_none", lambda m: m.block_diag(), []),
    ("cartesian_prod", lambda m, x, y, z: m.cartesian_prod(x, y, z), [rand(2), rand(3), rand(2)]),
    ("cartesian_prod_one", lambda m, x: m.cartesian_prod(x), [rand(4)]),
    ("cartesian_prod_int", lambda m, x, y: m.cartesian_prod(x, y), [ints(3), ints(2)]),
    *[(f"combinations_r{r}{'_rep' if w else ''}", lambda m, x, r=r, w=w: m.combinations(x, r, w), [rand(5)])
      for r in (0, 1, 2, 3, 6) for w in (False, True)],
    ("combinations_default", lambda m, x: m.combinations(x), [ints(4)]),
    ("combinations_empty_input", lambda m, x: m.combinations(x, 2), [rand(0)]),
    ("rsub_tensor", lambda m, x, y: m.rsub(x, y), [rand(2, 3), rand(3)]),
    ("rsub_alpha", lambda m, x, y: m.rsub(x, y, alpha=-2.5), [rand(2, 3), rand(2, 1)]),
    ("rsub_number", lambda m, x: m.rsub(x, 3, alpha=2), [rand(4)]),
    ("rsub_float_number_int_tensor", lambda m, x: m.rsub(x, 3.5), [ints(4)]),
    ("rsub_int", lambda m, x, y: m.rsub(x, y, alpha=3), [ints(3), ints(3, seed=1)]),
    ("rsub_float64_number", lambda m, x: m.rsub(x, 0.1), [rand(3)]),
    ("fill_number", lambda m, x: m.fill(x, 2.5), [rand(2, 3)]),
    ("fill_tensor", lambda m, x, v: m.fill(x * 2, v), [rand(2, 3), rand()]),
    ("fill_int", lambda m, x: m.fill(x, 7), [ints(3)]),
]

INDEX_CASES = [
    *[(f"vander_N{n}_{'inc' if inc else 'dec'}", lambda m, x, n=n, inc=inc: m.vander(x, n, inc), [_ZEROS])
      for n in (None, 0, 1, 2, 5) for inc in (False, True)],
    ("vander_keyword", lambda m, x: m.vander(x, N=3, increasing=True), [rand(3)]),
    ("vander_int", lambda m, x: m.vander(x), [ints(3)]),
    ("vander_int32", lambda m, x: m.vander(x.int(), 4), [ints(3)]),
    ("vander_bool", lambda m, x: m.vander(x > 2), [ints(4)]),
    ("vander_empty", lambda m, x: m.vander(x), [rand(0)]),
    *[(f"{f}{a}", lambda m, f=f, a=a: getattr(m, f)(*a), [])
      for f in ("tril_indices", "triu_indices")
      for a in [(3, 3), (3, 4, 1), (4, 3, -1), (3, 4, -10), (3, 4, 10), (0, 4), (4, 0), (1, 1), (5, 2, 1)]],
    ("tril_indices_int32", lambda m: m.tril_indices(3, 4, 1, dtype=m.int32), []),
    ("triu_indices_int32", lambda m: m.triu_indices(4, 4, dtype=m.int32), []),
    ("isin", lambda m, x, y: m.isin(x, y), [ints(3, 4), np.array([1, 3])]),
    ("isin_invert", lambda m, x, y: m.isin(x, y, invert=True), [ints(3, 4), np.array([[1], [4]])]),
    ("isin_unique", lambda m, x, y: m.isin(x, y, assume_unique=True), [np.array([4, 1, 0]), np.array([0, 2, 4])]),
    ("isin_scalar_element", lambda m, y: m.isin(3, y), [np.array([1, 3])]),
    ("isin_scalar_test", lambda m, x: m.isin(x, 3), [ints(5)]),
    ("isin_float_int", lambda m, x, y: m.isin(x, y), [np.array([1.0, 2.5, 3.0]), np.array([3, 1])]),
    ("isin_nan", lambda m, x, y: m.isin(x, y), [np.array([1.0, np.nan]), np.array([np.nan, 1.0])]),
    ("isin_empty", lambda m, x, y: m.isin(x, y), [ints(3), np.zeros(0, dtype=np.int64)]),
    ("unravel_index", lambda m, i: m.unravel_index(i, (2, 3, 4)), [np.array([0, 5, 23, 17])]),
    ("unravel_index_2d", lambda m, i: m.unravel_index(i, [6, 4]), [np.array([[1, 9], [23, 12]])]),
    ("unravel_index_int_shape", lambda m, i: m.unravel_index(i, 7), [np.array([3, 6])]),
    ("unravel_index_scalar", lambda m, i: m.unravel_index(i, (3, 5)), [np.array(11)]),
    ("unravel_index_wraps", lambda m, i: m.unravel_index(i, (2, 3)), [np.array([6, -1, -7, 13])]),
    ("unravel_index_int32", lambda m, i: m.unravel_index(i.int(), (4, 5)), [np.array([7, 19])]),
    ("unravel_index_empty_shape", lambda m, i: m.unravel_index(i, ()), [np.array(0)]),
    ("scalar_tensor", lambda m: m.scalar_tensor(3), []),
    ("scalar_tensor_bool", lambda m: m.scalar_tensor(True), []),
    ("scalar_tensor_float64", lambda m: m.scalar_tensor(2.5, dtype=m.float64), []),
    ("scalar_tensor_int", lambda m: m.scalar_tensor(3, dtype=m.int64), []),
    ("scalar_tensor_of_0d_tensor", lambda m, x: m.scalar_tensor(x), [np.array(7)]),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(case, dtype):
    _, fn, arrays = case
    compare(torch, fn, arrays, dtype)


@pytest.mark.parametrize("case", INDEX_CASES, ids=[c[0] for c in INDEX_CASES])
def test_index_helpers_match_torch(case):
    _, fn, arrays = case
    compare(torch, fn, arrays, grad=False)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("n,increasing", [(None, False), (2, True), (3, False), (5, True), (6, False)])
def test_vander_gradient_matches_torch_linalg_vander(n, increasing, dtype):
    """torch.vander's own backward fails in torch 2.13 (an in-place cumprod): its gradient is compared with
    torch.linalg.vander's (the same matrix, increasing), columns flipped where decreasing."""
    x = _ZEROS.astype(dtype)
    ours, theirs = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out = distnn.vander(ours, n, increasing)
    ref = torch.linalg.vander(theirs, N=n)
    ref = ref if increasing else ref.flip(1)
    w = rand(*out.shape, seed=2).astype(dtype)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-6)
    (out * distnn.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_gradients_by_finite_differences():
    x, y = rand(2, 3), rand(3)
    check_grad(lambda a, b: distnn.block_diag(a, b, a[0, 0]).sin(), x, y)
    check_grad(lambda a, b: distnn.cartesian_prod(a, b) ** 2, rand(3), rand(2))
    check_grad(lambda a: distnn.combinations(a, 3, True) ** 3, rand(4))
    check_grad(lambda a: distnn.vander(a, 4), _ZEROS)
    check_grad(lambda a, b: distnn.column_stack([a, b.t()]) ** 2, rand(3), rand(2, 3))


def test_range_is_inclusive_and_warns_as_torch():
    args = [((1, 4), {}), ((0, 1, 0.25), {}), ((0, 1, 0.3), {}), ((4, 1, -1), {}), ((1, 4), {"dtype": "int64"}),
            ((0.5, 3), {"dtype": "int64"}), ((1, 4), {"dtype": "int32"}), ((-1.5, 2.5, 0.5), {"dtype": "float64"}),
            ((2, 2), {}), ((0, 10, 3), {})]
    for a, kw in args:
        with pytest.warns(UserWarning, match="torch.range is deprecated") as ours:
            got = distnn.range(*a, **{k: getattr(distnn, v) for k, v in kw.items()})
        assert ours[0].filename == __file__  # (the caller's line, as PyTorch's)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = torch.range(*a, **{k: getattr(torch, v) for k, v in kw.items()})
        assert got.dtype == np.dtype(str(want.dtype).replace("torch.", "")), (a, kw, got.dtype)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-7, err_msg=str((a, kw)))
    with pytest.warns(UserWarning):
        r = distnn.range(0.0, 1.0, 0.5, requires_grad=True)
    assert r.requires_grad and r.is_leaf


def test_empty_strided_has_torch_strides():
    for size, stride, dtype in [((2, 3), (1, 2), None), ((2, 3), (3, 1), "int64"), ((4, 2, 3), (1, 12, 4), "float64"),
                                ((3, 2), (0, 1), None), ((0, 3), (3, 1), None), ((), (), None)]:
        ours = distnn.empty_strided(size, stride, dtype=None if dtype is None else getattr(distnn, dtype))
        theirs = torch.empty_strided(size, stride, dtype=None if dtype is None else getattr(torch, dtype))
        assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype == np.dtype(str(theirs.dtype)[6:])
        if ours.numel():
            assert ours.stride() == theirs.stride(), (size, stride, ours.stride())
    t = distnn.empty_strided((2, 3), (1, 2), requires_grad=True)
    assert t.requires_grad and t.is_leaf


def test_inplace_top_level_forms_call_the_methods():
    x = distnn.tensor(rand(3, 4))
    want = x.numpy().copy()
    for name, args, ref in [("exp_", (), np.exp), ("sqrt_", (), np.sqrt),
                            ("clamp_", (0.5, 2.0), lambda a: np.clip(a, 0.5, 2.0))]:
        assert getattr(distnn, name)(x, *args) is x  # (the tensor itself, changed)
        want = ref(want)
        np.testing.assert_allclose(x.numpy(), want, rtol=1e-6)
    assert distnn.zero_(x) is x and not x.numpy().any()
    assert distnn.fill_(x, 1.5) is x and (x.numpy() == 1.5).all()
    t = distnn.tensor(rand(5))
    assert distnn.relu_(t) is t and (t.numpy() >= 0).all()
    y = distnn.ones(4)
    assert distnn.dropout_(y, 0.0, True) is y and (y.numpy() == 1).all()
    z = distnn.ones(4)
    assert distnn.alpha_dropout_(z, 0.5, False) is z


@pytest.mark.parametrize("name,args", [
    ("abs_", ()), ("neg_", ()), ("reciprocal_", ()), ("square_", ()), ("sigmoid_", ()), ("tanh_", ()),
    ("sin_", ()), ("atan_", ()), ("sinh_", ()), ("arctan_", ()), ("erf_", ()), ("sinc_", ()), ("deg2rad_", ()),
    ("round_", ()), ("floor_", ()), ("ceil_", ()), ("trunc_", ()), ("frac_", ()), ("fix_", ()),
    ("clip_", (-0.5, 0.5)), ("clamp_min_", (0.1,)), ("clamp_max_", (0.2,)), ("nan_to_num_", ()),
    ("xlogy_", (2.0,)), ("ldexp_", (3,)), ("negative_", ()), ("threshold_", (0.1, -1.0)), ("celu_", (0.5,)),
    ("selu_", ()), ("relu_", ()),
])
def test_inplace_forms_match_torch(name, args):
    a = rand(3, 4)
    x, t = distnn.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, u = x * 1.0, t * 1.0  # (non-leaves: the in-place change is recorded, its gradient compared)
    targs = tuple(torch.tensor(v) if name == "ldexp_" else v for v in args)
    assert getattr(distnn, name)(y, *args) is y
    assert getattr(torch, name)(u, *targs) is u
    np.testing.assert_allclose(y.detach().numpy(), u.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = rand(3, 4, seed=1)
    (y * distnn.tensor(w)).sum().backward()
    (u * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_inplace_forms_integer_pairs():
    for name in ("gcd_", "lcm_"):
        a, b = ints(6, low=1, high=30), ints(6, low=1, high=30, seed=3)
        x = distnn.tensor(a)
        t = torch.tensor(a)
        getattr(distnn, name)(x, distnn.tensor(b))
        getattr(torch, name)(t, torch.tensor(b))
        np.testing.assert_array_equal(x.numpy(), t.numpy())


REFUSALS = [
    ("hstack_empty", lambda m: m.hstack([]), [], "hstack expects a non-empty TensorList"),
    ("vstack_empty", lambda m: m.vstack([]), [], "vstack expects a non-empty TensorList"),
    ("dstack_empty", lambda m: m.dstack(()), [], "dstack expects a non-empty TensorList"),
    ("column_stack_empty", lambda m: m.column_stack([]), [], "column_stack expects a non-empty TensorList"),
    ("concatenate_empty", lambda m: m.concatenate([]), [], "expected a non-empty list of Tensors"),
    ("hstack_ranks", lambda m, x, y: m.hstack([x, y]), [rand(2), rand(3, 1)],
     "Tensors must have same number of dimensions: got 1 and 2"),
    ("vstack_sizes", lambda m, x, y: m.vstack([x, y]), [rand(2, 3), rand(2, 4)],
     "Sizes of tensors must match except in dimension 0"),
    ("column_stack_ranks", lambda m, x, y: m.column_stack([x, y]), [rand(3, 2, 2), rand(3)],
     "Tensors must have same number of dimensions"),
    ("concatenate_scalar", lambda m, x: m.concatenate([x]), [rand()], "zero-dimensional tensor (at position 0)"),
    ("block_diag_3d", lambda m, x, y: m.block_diag(x, y), [rand(2), rand(2, 2, 2)],
     "torch.block_diag: Input tensors must have 2 or fewer dimensions. Input 1 has 3 dimensions"),
    ("cartesian_prod_2d", lambda m, x: m.cartesian_prod(x, x), [rand(2, 2)],
     "Expect a 1D vector, but got shape [2, 2]"),
    ("cartesian_prod_none", lambda m: m.cartesian_prod(), [], "meshgrid expects a non-empty TensorList"),
    ("cartesian_prod_dtypes", lambda m, x, y: m.cartesian_prod(x, y), [rand(2), ints(3)],
     "meshgrid expects all tensors to have the same dtype"),
    ("combinations_2d", lambda m, x: m.combinations(x), [rand(2, 2)], "Expect a 1D vector, but got shape [2, 2]"),
    ("combinations_negative", lambda m, x: m.combinations(x, -1), [rand(3)], "Expect a non-negative number"),
    ("tril_indices_negative_row", lambda m: m.tril_indices(-1, 3), [], "row must be non-negative"),
    ("triu_indices_negative_col", lambda m: m.triu_indices(3, -2), [], "col must be non-negative"),
    ("tril_indices_float", lambda m: m.tril_indices(3, 3, dtype=m.float32), [], '"tril_indices" not implemented for'),
    ("triu_indices_int16", lambda m: m.triu_indices(3, 3, dtype=m.int16), [], '"triu_indices" not implemented for'),
    ("isin_two_numbers", lambda m: m.isin(3, 3), [], "isin() received an invalid combination of arguments"),
    ("isin_bool", lambda m, x, y: m.isin(x > 0, y), [rand(3), np.array([1])],
     "Unsupported input type encountered for isin()"),
    ("unravel_index_float", lambda m, x: m.unravel_index(x, (2, 3)), [rand(2)], "expected 'indices' to be integer"),
    ("unravel_index_bool", lambda m, x: m.unravel_index(x > 0, (2, 3)), [rand(2)],
     "expected 'indices' to be integer dtype"),
    ("unravel_index_negative_shape", lambda m, i: m.unravel_index(i, (2, -3)), [np.array([1])],
     "'shape' cannot have negative values, but got (2, -3)"),
    ("unravel_index_float_shape", lambda m, i: m.unravel_index(i, [2, 3.0]), [np.array([1])],
     "expected 'shape' sequence to only contain ints"),
    ("unravel_index_zero_size", lambda m, i: m.unravel_index(i, (0, 3)), [np.array(1)], "ZeroDivisionError"),
    ("vander_2d", lambda m, x: m.vander(x), [rand(2, 2)], "x must be a one-dimensional tensor."),
    ("vander_negative_N", lambda m, x: m.vander(x, -1), [rand(3)], "N must be non-negative."),
    ("scalar_tensor_of_vector", lambda m, x: m.scalar_tensor(x), [rand(2)], "must be Number, not Tensor"),
    ("empty_strided_ranks", lambda m: m.empty_strided((2, 3), (1,)), [],
     "dimensionality of sizes (2) must match dimensionality of strides (1)"),
    ("empty_strided_negative_size", lambda m: m.empty_strided((2, -3), (1, 2)), [],
     "Trying to create tensor with negative dimension -3"),
    ("empty_strided_negative_stride", lambda m: m.empty_strided((2, 3), (1, -2)), [],
     "Storage size calculation overflowed"),
    ("range_zero_step", lambda m: m.range(1, 4, 0), [], "step must be nonzero"),
    ("range_wrong_sign", lambda m: m.range(4, 1), [], "upper bound and lower bound inconsistent with step sign"),
    ("rsub_bool", lambda m, x: m.rsub(x > 0, x > 1), [rand(3)], "Subtraction, the `-` operator, with"),
    ("rsub_int_float_alpha", lambda m, x, y: m.rsub(x, y, alpha=0.5), [ints(2), ints(2)],
     "For integral input tensors, argument alpha must not be a floating point number."),
    ("fill_vector_value", lambda m, x, v: m.fill(x, v), [rand(2), rand(1)],
     "fill_ only supports 0-dimension value tensor but got tensor with 1 dimensions."),
    ("fill__vector_value", lambda m, x, v: m.fill_(x, v), [rand(2), rand(1)], "fill_ only supports 0-dimension"),
    ("inplace_form_of_number", lambda m: m.exp_(2.0), [], "exp_(): argument 'input' (position 1) must be Tensor"),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c[0] for c in REFUSALS])
def test_refusals_match_torch(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch.range's deprecation)
        assert_refused_as_torch(torch, case)
