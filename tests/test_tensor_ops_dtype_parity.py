"""Result dtypes, refusals and edge values of distnn's tensor arithmetic, reductions and creation against
torch 2.13: integer operators with 0-d tensors and numbers, integer powers, integer sums, mixed-dtype matrix
products, integer arange with float bounds, division by zero (no numpy warning), all-NaN nanmean."""
import numpy as np
import pytest

import distnn
from tensor_ops_oracle import assert_refused_as_torch, compare, ints, rand

INT_DTYPES = ["int32", "uint8", "int8", "int16", "int64"]
INT_OPS = ["//", "%", "&", "|", "^"]


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("op", INT_OPS)
def test_integer_operators_type_as_torch(torch, op, dtype):
    """A 0-d int64 tensor or a Python int does not widen an integer tensor with dimensions (numpy gave int64)."""
    x = np.array([5, 7, 9, 4], dtype=dtype)
    for other in [np.array(3), 3]:
        for reflected in (False, True):
            def fn(m, a, other=other, reflected=reflected):
                b = m.tensor(other) if isinstance(other, np.ndarray) else other
                return eval(f"b {op} a" if reflected else f"a {op} b")
            compare(torch, fn, [x])


def test_float_remainder_by_a_0d_float64_tensor_stays_float32(torch):
    compare(torch, lambda m, a: a % m.tensor(0.75, dtype=m.float64), [rand(5) * 3], dtype=np.float32)
    compare(torch, lambda m, a: a // m.tensor(0.75, dtype=m.float64), [rand(5) * 3], dtype=np.float32, grad=False)


@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "int8"])
def test_integer_to_a_negative_number_is_refused_as_torch(torch, dtype):
    x = np.array([2, 3], dtype=dtype)
    for fn in (lambda m, a: a ** -1, lambda m, a: a.pow(-2), lambda m, a: m.pow(a, -1)):
        assert_refused_as_torch(torch, ("pow", fn, [x], "Integers to negative integer powers are not allowed"))


def test_integer_to_negative_tensor_powers_computes_as_torch(torch):
    """A tensor exponent is not refused: 1 ** -n is 1, (-1) ** -n is +-1, any other base 0 (numpy refused)."""
    base, exp = np.array([2, 1, -1, 0, -2, -1, 3]), np.array([-1, -3, -3, -1, -2, -2, 2])
    compare(torch, lambda m, a, b: a ** b, [base, exp])
    compare(torch, lambda m, a: 2 ** a, [exp])


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "bool"])
def test_integer_sums_and_products_are_int64_as_torch(torch, dtype):
    """numpy's sum of uint8 is uint64; PyTorch's sum, prod and cumsum of any integer or bool are int64."""
    x = ints(3, 4, high=200 if dtype == "uint8" else 2 if dtype == "bool" else 50).astype(dtype)
    cases = [lambda m, a: a.sum(), lambda m, a: m.sum(a, 1), lambda m, a: a.sum(0, keepdim=True),
             lambda m, a: a.sum((0, 1)), lambda m, a: a.prod(), lambda m, a: a.prod(1, keepdim=True),
             lambda m, a: m.cumsum(a, 0), lambda m, a: a.cumsum(dim=1), lambda m, a: a.sum(dtype=m.int32),
             lambda m, a: m.sum(a, 1, dtype=m.int16), lambda m, a: a.sum(1, True, dtype=m.float64)]
    for fn in cases:
        compare(torch, fn, [x])


def test_sum_dtype_casts_a_float_input_in_the_graph(torch):
    compare(torch, lambda m, a: a.sum(1, dtype=m.float64), [rand(3, 4)], dtype=np.float32)
    compare(torch, lambda m, a: m.sum(a, dtype=m.float64), [rand(3, 4)], dtype=np.float32)


I64, F32, F64 = np.ones((2, 2), dtype=np.int64), np.ones((2, 2), dtype=np.float32), np.ones((2, 2))
MIXED_PRODUCTS = [
    ("matmul", lambda m, a, b: a @ b, [I64, F32], "to have the same dtype"),
    ("matmul_f32_f64", lambda m, a, b: m.matmul(a, b), [F32, F64], "to have the same dtype"),
    ("matmul_vec", lambda m, a, b: a[0] @ b, [I64, F32], "to have the same dtype"),
    ("mm", lambda m, a, b: m.mm(a, b), [I64, F32], "to have the same dtype"),
    ("mm_method", lambda m, a, b: a.mm(b), [F64, F32], "to have the same dtype"),
    ("bmm", lambda m, a, b: m.bmm(a[None], b[None]), [I64, F32], "expected scalar type Long but found Float"),
    ("matmul3d", lambda m, a, b: a[None] @ b[None], [I64, F32], "expected scalar type Long but found Float"),
    ("mv", lambda m, a, b: m.mv(a, b[0]), [I64, F32], "same dtype"),
    ("dot", lambda m, a, b: m.dot(a[0], b[0]), [I64, F32], "same dtype"),
    ("addmm", lambda m, a, b: m.addmm(b, a, b), [I64, F32], "same dtype"),
    ("addmm_input", lambda m, a, b: m.addmm(a, b, b), [I64, F32], "self and mat2 must have the same dtype"),
    ("addmm_f64_input", lambda m, a, b: m.addmm(a, b, b), [F64, F32], "self and mat2 must have the same dtype"),
    ("addmv_input", lambda m, a, b: m.addmv(a[0], b, b[0]), [F64, F32], "must have the same dtype"),
    ("baddbmm_input", lambda m, a, b: m.baddbmm(a, b[None], b[None]), [F64, F32], "dtypes must be the same"),
    ("addbmm_input", lambda m, a, b: m.addbmm(a, b[None], b[None]), [F64, F32], "self and mat2 must have the same"),
]


@pytest.mark.parametrize("case", MIXED_PRODUCTS, ids=[c[0] for c in MIXED_PRODUCTS])
def test_mixed_dtype_matrix_products_are_refused_as_torch(torch, case):
    """numpy computes int64 @ float32 (or float32 @ float64) in float64; PyTorch refuses mixed dtypes."""
    assert_refused_as_torch(torch, case)


def test_matrix_products_of_one_dtype_still_work(torch):
    compare(torch, lambda m, a, b: m.addmm(a, a, b, beta=0.5), [rand(3, 3), rand(3, 3, seed=1)], dtype=np.float32)
    compare(torch, lambda m, a, b: a @ b, [ints(2, 3), ints(3, 2, seed=1)])


@pytest.mark.parametrize("dtype", ["int64", "int32", "int16", "uint8"])
def test_arange_of_float_bounds_in_an_integer_dtype_matches_torch(torch, dtype):
    """PyTorch truncates the bounds and step (the count from the truncated ones for int64, from the float ones
    for the narrower integers); numpy's arange of the floats, cast, gave other counts and values."""
    rng = np.random.default_rng(3)
    cases = [(2.5,), (0.5,), (0.5, 2.5), (0.5, 4.4, 1.3), (-0.5, 3), (0, 3, 1.5), (1.7, 5.2, 1.2), (3.7, 0.2, -1.5)]
    cases += [tuple(np.round(rng.uniform(0, 9, 2), 2)) + (float(np.round(rng.uniform(1, 3), 2)),) for _ in range(20)]
    for args in cases:
        if len(args) == 3 and (args[1] - args[0]) * args[2] < 0:
            args = (args[1], args[0], args[2])
        ours, theirs = distnn.arange(*args, dtype=getattr(distnn, dtype)), torch.arange(*args, dtype=getattr(torch, dtype))
        assert ours.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=str(args))


def test_arange_refusals_match_torch(torch):
    for args, dtype, gist in [((0, 3, 0.7), "int64", "step must be nonzero"),
                              ((-1.5,), "int32", "inconsistent with step sign"),
                              ((-0.5, -2.5), "int64", "inconsistent with step sign")]:
        with pytest.raises(Exception, match=gist) as theirs:
            torch.arange(*args, dtype=getattr(torch, dtype))
        with pytest.raises(Exception, match=gist) as ours:
            distnn.arange(*args, dtype=getattr(distnn, dtype))
        assert type(ours.value).__name__ in {"RuntimeError", type(theirs.value).__name__}


def _nan_rows(*shape, seed=0):
    x = rand(*shape, seed=seed)
    x[0] = np.nan  # a slice with no number
    x[np.random.default_rng(seed + 5).random(shape) < 0.3] = np.nan
    return x


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nanmean_of_an_all_nan_slice_is_nan_with_torch_s_nan_gradient(torch, dtype):
    """PyTorch: NaN, and a NaN gradient throughout that slice (0 at the NaNs of the others); distnn gave 0 and a
    numpy divide warning in backward."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn in [lambda m, a: m.nanmean(a, 1), lambda m, a: a.nanmean(dim=1, keepdim=True),
                   lambda m, a: m.nanmean(a, (1, 2)), lambda m, a: m.nanmean(a), lambda m, a: m.nanmean(a, 0)]:
            compare(torch, fn, [_nan_rows(3, 4, 2)], dtype=dtype)


DIAGONALS = [((4, 4), 0, 0, 1), ((3, 5), 1, 0, 1), ((5, 3), -2, 0, 1), ((2, 3, 4), 1, 1, 2), ((2, 3, 4), -1, 0, 2),
             ((3, 4, 2), 0, -1, 0), ((3, 3), 5, 0, 1)]


@pytest.mark.parametrize("shape, offset, d1, d2", DIAGONALS)
def test_diagonal_is_a_view_as_torch_s(torch, shape, offset, d1, d2):
    """Values and gradients; an in-place change of the diagonal writes its base (values, versions), also while
    recording, where the base's gradient is that of the changed graph (distnn's diagonal was a copy)."""
    compare(torch, lambda m, a: a.diagonal(offset, d1, d2), [rand(*shape)])
    compare(torch, lambda m, a: m.diagonal(a, offset=offset, dim1=d1, dim2=d2) * 3, [rand(*shape)], dtype=np.float32)

    def written(m, a, b):
        y = a * 1
        d = y.diagonal(offset, d1, d2)
        d.mul_(b.sum()) if d.numel() else None
        d += 1
        return y, d

    compare(torch, written, [rand(*shape), rand(2, seed=1)])
    x = distnn.tensor(np.zeros(shape))
    d = x.diagonal(offset, d1, d2)
    before = x._version
    d += 5.0
    expected = torch.zeros(shape, dtype=torch.float64)
    expected.diagonal(offset, d1, d2).add_(5.0)
    np.testing.assert_array_equal(x.numpy(), expected.numpy())
    assert x._version == d._version == before + 1


def test_a_saved_diagonal_changed_through_its_base_is_refused_at_backward(torch):
    for m in (distnn, torch):
        w = m.tensor(rand(3, 3), requires_grad=True)
        y = w * 1
        z = y.diagonal().exp()  # (exp saves its result, not the diagonal: changing y is fine)
        y.diagonal().mul_(2)
        z.sum().backward()
        y = w * 1
        z = y.diagonal() ** 2  # (pow saves its input: the diagonal)
        y.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation|changed in place"):
            z.sum().backward()


def test_diag_of_a_matrix_stays_a_copy(torch):
    x = distnn.tensor(rand(3, 3))
    distnn.diag(x).add_(1.0)
    np.testing.assert_array_equal(x.numpy(), rand(3, 3))
