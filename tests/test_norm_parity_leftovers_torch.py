"""Three norm details against PyTorch: ``linalg.vector_norm``'s and ``norm``'s ``dtype=`` checks (in PyTorch's
order), ``norm``'s 2/'fro' path refusing out-of-range and repeated dims as ``vector_norm`` does, and
``instance_norm``'s running statistics (a per-instance update, then a mean over the batch) with no warning."""
import warnings

import numpy as np
import pytest
import torch

import distnn
from distnn.functional.group_norm import instance_norm
from distnn.linalg import vector_norm

DTYPES = {"float16": torch.float16, "float32": torch.float32, "float64": torch.float64,
          "complex64": torch.complex64, "complex128": torch.complex128, "int64": torch.int64}


def _outcome(fn):
    try:
        return fn(), None
    except Exception as e:  # noqa: BLE001 - compared with PyTorch's below
        return None, e


def assert_same_outcome(ours, theirs, rtol):
    """Both refuse, distnn's error an instance of PyTorch's type carrying its message; or both agree in dtype
    and value."""
    got, our_err = _outcome(ours)
    want, their_err = _outcome(theirs)
    if their_err is not None:
        assert our_err is not None, f"PyTorch refuses ({their_err}), distnn gave {got}"
        assert isinstance(our_err, type(their_err)), (our_err, their_err)
        assert str(their_err) in str(our_err), (str(our_err), str(their_err))
        return
    assert our_err is None, f"distnn refuses ({our_err!r}), PyTorch gives {want}"
    assert str(got.dtype) == str(want.dtype).replace("torch.", "")
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=rtol)


def _draw(seed, shape, dtype):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if dtype.startswith("complex"):
        x = x + 1j * rng.standard_normal(shape)
    return (x * 3).astype(dtype)


def _rtol(*dtypes):
    return 2e-3 if "float16" in dtypes else 1e-6 if any(d in ("float32", "complex64") for d in dtypes) else 1e-12


@pytest.mark.parametrize("src", list(DTYPES))
@pytest.mark.parametrize("dst", list(DTYPES))
def test_vector_norm_dtype_matches_torch(src, dst):
    x = _draw(10, (3, 4), src)
    assert_same_outcome(lambda: vector_norm(distnn.tensor(x), 2, dtype=np.dtype(dst)),
                        lambda: torch.linalg.vector_norm(torch.tensor(x), 2, dtype=DTYPES[dst]), _rtol(src, dst))


def test_vector_norm_float32_to_float16_is_refused_as_narrowing():
    x = distnn.tensor(_draw(11, (5,), "float32"))
    with pytest.raises(RuntimeError, match=r"linalg.vector_norm: the dtype of the input \(Float\) should be "
                                           r"convertible without narrowing to the specified dtype \(Half\)"):
        vector_norm(x, dtype=np.float16)


@pytest.mark.parametrize("case", ["int input, float dtype", "empty inf, narrowing dtype",
                                  "bad dim, narrowing dtype", "repeated dim, narrowing dtype"])
def test_vector_norm_checks_run_in_torchs_order(case):
    x = _draw(12, (3, 4), "float32")
    args = {"int input, float dtype": (np.arange(6).reshape(2, 3), 2, None, "float32"),
            "empty inf, narrowing dtype": (np.zeros((0, 3), np.float32), float("inf"), 0, "float16"),
            "bad dim, narrowing dtype": (x, 2, 5, "float16"),
            "repeated dim, narrowing dtype": (x, 2, (0, 0), "float16")}[case]
    a, ord_, dim, dt = args
    assert_same_outcome(lambda: vector_norm(distnn.tensor(a), ord_, dim, dtype=np.dtype(dt)),
                        lambda: torch.linalg.vector_norm(torch.tensor(a), ord_, dim, dtype=DTYPES[dt]), 1e-6)


@pytest.mark.parametrize("p", [2, "fro", 1, 3, float("inf"), 0, "nuc"])
@pytest.mark.parametrize("src,dst", [("float32", "float16"), ("float32", "float64"), ("float16", "float32"),
                                     ("float64", "float32"), ("float32", "complex64"), ("complex64", "complex128"),
                                     ("complex64", "float32"), ("float64", "int64"), ("float64", "float64")])
@pytest.mark.parametrize("dim", [None, 0, (0, 1)])
def test_norm_dtype_matches_torch(p, src, dst, dim):
    if p == "nuc" and dim == 0:
        dim = (1, 0)
    x = _draw(13, (3, 4), src)
    assert_same_outcome(lambda: distnn.norm(distnn.tensor(x), p, dim, dtype=np.dtype(dst)),
                        lambda: torch.norm(torch.tensor(x), p, dim, dtype=DTYPES[dst]), _rtol(src, dst))
    assert_same_outcome(lambda: distnn.tensor(x).norm(p, dim, dtype=np.dtype(dst)),
                        lambda: torch.tensor(x).norm(p, dim, dtype=DTYPES[dst]), _rtol(src, dst))


@pytest.mark.parametrize("p", [2, "fro", None])
@pytest.mark.parametrize("dim", [5, -3, (0, 0), (0, -2), (1, -1), (0, 5), (5, 0), [0, 0, 1], (0, 1, 0)])
def test_norm_2_and_fro_refuse_bad_dims_as_torch(p, dim):
    x = _draw(14, (3, 4), "float32")
    assert_same_outcome(lambda: distnn.norm(distnn.tensor(x), p, dim),
                        lambda: torch.norm(torch.tensor(x), p, dim), 1e-6)


@pytest.mark.parametrize("dim", [0, -1, 1, (0, 0), (0, -1)])
def test_norm_2_of_a_0d_tensor_checks_dims_as_torch(dim):
    x = _draw(15, (), "float64")
    assert_same_outcome(lambda: distnn.norm(distnn.tensor(x), 2, dim),
                        lambda: torch.norm(torch.tensor(x), 2, dim), 1e-12)


@pytest.mark.parametrize("p", [2, "fro", None])
@pytest.mark.parametrize("dim", [0, -1, (0, 2), (-1, 1), None])
def test_norm_2_and_fro_values_and_gradients_match_torch(p, dim):
    """Guards the unchanged: valid dims still take the 2-norm, with PyTorch's value and gradient."""
    x = _draw(16, (3, 4, 2), "float64")
    ours, theirs = distnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    got, want = distnn.norm(ours, p, dim), torch.norm(theirs, p, dim)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-12)
    got.sum().backward()
    want.sum().backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-12)


def test_fro_over_three_dims_is_refused_as_torch():
    x = _draw(17, (2, 3, 4), "float32")
    assert_same_outcome(lambda: distnn.norm(distnn.tensor(x), "fro", (0, 1, 2)),
                        lambda: torch.norm(torch.tensor(x), "fro", (0, 1, 2)), 1e-6)
    assert_same_outcome(lambda: distnn.norm(distnn.tensor(x), dim=(0, 1, 2)),
                        lambda: torch.norm(torch.tensor(x), dim=(0, 1, 2)), 1e-6)


@pytest.mark.parametrize("ord_", ["fro", "nuc", 1])
@pytest.mark.parametrize("dim", [(0, 5), (5, 0), (5, 5), (0, -3), (2, 0)])
def test_matrix_norm_refuses_out_of_range_dims_as_torch(ord_, dim):
    """Taken modulo ndim, (0, 5) of a matrix was (0, 1): a norm PyTorch refuses with its IndexError."""
    x = _draw(18, (3, 4), "float32")
    assert_same_outcome(lambda: distnn.linalg.matrix_norm(distnn.tensor(x), ord_, dim),
                        lambda: torch.linalg.matrix_norm(torch.tensor(x), ord_, dim), 1e-6)
    assert_same_outcome(lambda: distnn.norm(distnn.tensor(x), ord_ if ord_ == "nuc" else "fro", dim),
                        lambda: torch.norm(torch.tensor(x), ord_ if ord_ == "nuc" else "fro", dim), 1e-6)


@pytest.mark.parametrize("p", ["nuc", "fro", 2])
def test_norm_with_an_empty_dim_list_as_torch(p):
    """'nuc' refuses it (no 2-tuple), 'fro' and numbers reduce every dim."""
    x = _draw(19, (3, 4), "float64")
    assert_same_outcome(lambda: distnn.norm(distnn.tensor(x), p, ()),
                        lambda: torch.norm(torch.tensor(x), p, ()), 1e-12)


def _instance_norm_both(x, rm, rv, weight=None, momentum=0.1):
    """distnn's and PyTorch's running buffers after one training instance_norm, distnn's with warnings as
    errors."""
    ours_m, ours_v = rm.copy(), rv.copy()
    theirs_m, theirs_v = torch.tensor(rm), torch.tensor(rv)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        instance_norm(distnn.tensor(x), ours_m, ours_v, None if weight is None else distnn.tensor(weight),
                      use_input_stats=True, momentum=momentum)
    torch.nn.functional.instance_norm(torch.tensor(x), theirs_m, theirs_v,
                                      None if weight is None else torch.tensor(weight), use_input_stats=True,
                                      momentum=momentum)
    return (ours_m, ours_v), (theirs_m.numpy(), theirs_v.numpy())


@pytest.mark.parametrize("seed", range(8))
def test_instance_norm_float16_running_stats_bitwise_as_torch(seed):
    rng = np.random.default_rng(100 + seed)
    N, C, M = rng.integers(1, 6), rng.integers(1, 5), rng.integers(2, 10)
    x = (rng.standard_normal((N, C, M)) * rng.choice([0.01, 1.0, 50.0, 200.0])).astype(np.float16)
    rm, rv = rng.standard_normal(C).astype(np.float16), (rng.random(C) * 3).astype(np.float16)
    (om, ov), (tm, tv) = _instance_norm_both(x, rm, rv, momentum=float(rng.choice([0.1, 0.3, 0.9])))
    np.testing.assert_array_equal(om, tm)
    np.testing.assert_array_equal(ov, tv)


@pytest.mark.parametrize("seed", range(4))
def test_instance_norm_float16_running_var_overflow_is_silent_inf_as_torch(seed):
    rng = np.random.default_rng(200 + seed)
    N, C, M = rng.integers(2, 5), rng.integers(1, 4), rng.integers(2, 8)
    x = (rng.standard_normal((N, C, M)) * 300).astype(np.float16)  # (unbiased variances near 9e4: past 65504)
    rm, rv = rng.standard_normal(C).astype(np.float16), np.full(C, 60000, np.float16)
    (om, ov), (tm, tv) = _instance_norm_both(x, rm, rv, momentum=0.5)
    assert np.isinf(tv).any()  # (the case under test: PyTorch's buffer overflows)
    np.testing.assert_array_equal(om, tm)
    np.testing.assert_array_equal(ov, tv)


def test_instance_norm_float16_input_float32_stats_bitwise_as_torch():
    """No weight: PyTorch casts the float32 statistics to float16, updates those, and copies them back."""
    rng = np.random.default_rng(300)
    x = (rng.standard_normal((3, 4, 6)) * 2).astype(np.float16)
    rm, rv = rng.standard_normal(4).astype(np.float32), (rng.random(4) * 3).astype(np.float32)
    (om, ov), (tm, tv) = _instance_norm_both(x, rm, rv)
    assert om.dtype == tm.dtype == np.float32
    np.testing.assert_array_equal(om, tm)
    np.testing.assert_array_equal(ov, tv)


@pytest.mark.parametrize("dtype,rtol", [(np.float32, 1e-6), (np.float64, 1e-14)])
@pytest.mark.parametrize("seed", range(3))
def test_instance_norm_running_stats_match_torch(dtype, rtol, seed):
    """float32/float64: PyTorch's per-instance statistics are summed in another order: ulps apart, of the data."""
    rng = np.random.default_rng(400 + seed)
    N, C, M = rng.integers(1, 6), rng.integers(1, 5), rng.integers(2, 10)
    x = (rng.standard_normal((N, C, M)) * 100).astype(dtype)
    rm, rv = rng.standard_normal(C).astype(dtype), (rng.random(C) * 3).astype(dtype)
    (om, ov), (tm, tv) = _instance_norm_both(x, rm, rv, weight=rng.standard_normal(C).astype(dtype))
    scale = 100  # (the data's: a mean near 0 is a difference of such values, its error theirs, not its own)
    np.testing.assert_allclose(om, tm, rtol=rtol, atol=rtol * scale)
    np.testing.assert_allclose(ov, tv, rtol=rtol, atol=rtol * scale ** 2)
