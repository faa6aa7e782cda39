"""PyTorch's Tensor metadata methods, legacy constructors/casts, dtype names and utilities, and the torch.*
function forms of Tensor methods, on distnn against torch 2.13."""
import numpy as np
import pytest

import distnn
from tensor_ops_oracle import assert_refused_as_torch, compare, ints, rand

DTYPES = ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8", "bool"]


def _pair(torch, array):
    return distnn.tensor(array), torch.tensor(array)


@pytest.mark.parametrize("dtype", DTYPES)
def test_metadata_matches_torch(torch, dtype):
    a = np.ones((2, 3, 4), dtype=dtype)
    d, t = _pair(torch, a)
    for name in ("element_size", "nelement", "ndimension", "is_signed", "is_contiguous"):
        assert getattr(d, name)() == getattr(t, name)(), name
    assert (d.nbytes, d.itemsize, d.is_cpu, d.is_cuda) == (t.nbytes, t.itemsize, t.is_cpu, t.is_cuda)
    assert d.stride() == t.stride() and d.stride(1) == t.stride(1) and d.stride(-1) == t.stride(-1)
    assert d.type() == t.type().replace("torch.", "distnn.")
    assert distnn.is_signed(d) == torch.is_signed(t)


def test_stride_of_views_matches_torch(torch):
    d, t = _pair(torch, rand(3, 4, 5))
    for fn in (lambda x: x.transpose(0, 2), lambda x: x[:, ::2], lambda x: x[1], lambda x: x.permute(1, 2, 0)):
        assert fn(d).stride() == fn(t).stride()
    assert distnn.tensor(np.float64(2.0)).stride() == torch.tensor(2.0).stride() == ()


def test_is_nonzero_and_is_same_size_match_torch(torch):
    for v in (np.array([0.0]), np.array(2), np.array([[True]]), np.array(-0.0)):
        d, t = _pair(torch, v)
        assert d.is_nonzero() == t.is_nonzero() == distnn.is_nonzero(d)
    d, t = _pair(torch, rand(2, 3))
    assert d.is_same_size(distnn.tensor(rand(2, 3, seed=1))) and not d.is_same_size(distnn.tensor(rand(3, 2)))
    assert distnn.is_same_size(d, d) and t.is_same_size(t)


@pytest.mark.parametrize("case", [
    ("is_nonzero_many", lambda m, x: x.is_nonzero(), [rand(2)], "Boolean value of Tensor with more than one value"),
    ("is_nonzero_empty", lambda m, x: m.is_nonzero(x), [rand(0)], "Boolean value of Tensor with no values"),
    ("stride_dim", lambda m, x: x.stride(2), [rand(2, 3)], "Dimension out of range"),
    ("type_name", lambda m, x: x.type("float"), [rand(2)], "invalid type: 'float'"),
], ids=lambda c: c[0])
def test_refusals_as_torch(torch, case):
    assert_refused_as_torch(torch, case)


@pytest.mark.parametrize("target", ["float64", "float32", "float16", "int64", "int32", "int16", "int8", "uint8",
                                    "bool"])
def test_type_and_narrow_casts_match_torch(torch, target):
    d, t = _pair(torch, rand(3, 4) * 10)
    ours, theirs = d.type(getattr(distnn, target)), t.type(getattr(torch, target))
    assert ours.dtype == np.dtype(target) and str(theirs.dtype) == f"torch.{target}"
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    name = theirs.type()
    np.testing.assert_array_equal(d.type(name).numpy(), t.type(name).numpy())
    assert d.type(name.replace("torch.", "distnn.")).dtype == np.dtype(target)
    for cast in ("byte", "char", "short"):
        np.testing.assert_array_equal(getattr(d, cast)().numpy(), getattr(t, cast)().numpy())


def test_type_keeps_the_graph_for_float_casts(torch):
    compare(torch, lambda m, x: x.type(m.float64) * 2.0, [rand(3)], np.float32)
    x = distnn.tensor(rand(3), requires_grad=True)
    assert x.type(distnn.float64) is x


def test_bfloat16_is_refused_with_the_reason():
    with pytest.raises(TypeError, match="BFloat16.*numpy has no bfloat16"):
        distnn.tensor(rand(2)).bfloat16()


def test_new_matches_torch(torch):
    for array in (rand(2, 3), ints(3)):
        d, t = _pair(torch, array)
        for args in ((2, 3), (4,), ([1, 2, 3],), ((1.5, 2.5),), ()):
            ours, theirs = d.new(*args), t.new(*args)
            assert ours.shape == tuple(theirs.shape) and ours.dtype == np.dtype(str(theirs.dtype)[6:])
            if args and isinstance(args[0], (list, tuple)):
                np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_adjoint_and_mH_are_the_transpose_of_the_last_two_dims(torch):
    compare(torch, lambda m, x: x.adjoint() * 2.0, [rand(2, 3, 4)])
    compare(torch, lambda m, x: x.mH, [rand(3, 4)])
    compare(torch, lambda m, x: m.adjoint(x), [rand(4, 2)])


FUNCTION_FORMS = [
    ("gather", lambda m, x: m.gather(x, 1, m.tensor(np.array([[0, 0], [1, 0]]))), [rand(2, 3)]),
    ("chunk", lambda m, x: m.chunk(x, 2, 1), [rand(2, 5)]),
    ("masked_fill", lambda m, x: m.masked_fill(x, x > 0, 0.5), [rand(3, 4)]),
    ("permute", lambda m, x: m.permute(x, (2, 0, 1)), [rand(2, 3, 4)]),
    ("clone", lambda m, x: m.clone(x) * 3.0, [rand(3)]),
    ("detach", lambda m, x: m.detach(x) * x, [rand(3)]),
    ("broadcast_to", lambda m, x: m.broadcast_to(x, (2, 3, 4)), [rand(3, 1)]),
    ("add_alpha", lambda m, x, y: m.add(x, y, alpha=2.5), [rand(3, 4), rand(4, seed=1)]),
    ("sub_alpha", lambda m, x, y: m.sub(x, y, alpha=-0.5), [rand(3, 4), rand(3, 1, seed=1)]),
    ("mul", lambda m, x, y: m.mul(x, y), [rand(3, 4), rand(4, seed=1)]),
    ("div_floor", lambda m, x, y: m.div(x, y, rounding_mode="floor"), [rand(3, 4) * 5, rand(4, seed=1) + 3.0]),
    ("div", lambda m, x, y: m.div(x, y), [rand(3, 4), rand(4, seed=1) + 3.0]),
    ("pow", lambda m, x: m.pow(x, 3), [rand(3, 4)]),
    ("pow_number_base", lambda m, x: m.pow(2.0, x), [rand(3, 4)]),
    ("all_any", lambda m, x: (m.all(x > -1.0), m.any(x > 2.0, 1), m.all(x > 0, 0, True)), [rand(3, 4)]),
    ("absolute", lambda m, x: m.absolute(x) + x.absolute(), [rand(3, 4)]),
    ("fix", lambda m, x: m.fix(x * 3.0) + (x * 3.0).fix(), [rand(3, 4)]),
    ("msort", lambda m, x: m.msort(x) + x.msort(), [rand(4, 3)]),
    ("select", lambda m, x: m.select(x, 0, 1), [rand(3, 4)]),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", FUNCTION_FORMS, ids=lambda c: c[0])
def test_function_forms_match_torch(torch, case, dtype):
    _, fn, arrays = case
    compare(torch, fn, arrays, dtype)


def test_numel_and_is_tensor_match_torch(torch):
    d, t = _pair(torch, rand(2, 3))
    assert distnn.numel(d) == torch.numel(t) == 6
    assert distnn.is_tensor(d) and not distnn.is_tensor(rand(2)) and not distnn.is_tensor([1])
    with pytest.raises(TypeError, match="must be Tensor"):
        distnn.numel(rand(2))


def test_sub_of_a_bool_tensor_is_refused_as_torch(torch):
    case = ("sub_bool", lambda m, x: m.sub(x > 0, x), [rand(2)], "Subtraction, the `-` operator, with a bool")
    assert_refused_as_torch(torch, case)


@pytest.mark.parametrize("name", ["int64", "long", "int32", "int", "int16", "short", "int8", "uint8", "bool",
                                  "float16", "half", "float32", "float", "float64", "double", "complex64", "cfloat",
                                  "complex128", "cdouble"])
def test_dtype_names_are_torch_s(torch, name):
    made = distnn.zeros(2, dtype=getattr(distnn, name))
    assert str(torch.zeros(2, dtype=getattr(torch, name)).dtype) == f"torch.{made.dtype.name}"


@pytest.mark.parametrize("name", ["float16", "float32", "float64"])
def test_finfo_matches_torch(torch, name):
    ours, theirs = distnn.finfo(getattr(distnn, name)), torch.finfo(getattr(torch, name))
    for field in ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution"):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert ours.dtype == theirs.dtype and repr(ours) == repr(theirs)
    assert distnn.finfo().eps == torch.finfo().eps


@pytest.mark.parametrize("name", ["int64", "int32", "int16", "int8", "uint8"])
def test_iinfo_matches_torch(torch, name):
    ours, theirs = distnn.iinfo(getattr(distnn, name)), torch.iinfo(getattr(torch, name))
    assert (ours.bits, ours.min, ours.max, ours.dtype) == (theirs.bits, theirs.min, theirs.max, theirs.dtype)
    assert repr(ours) == repr(theirs)


def test_finfo_and_iinfo_refuse_the_other_kind_as_torch(torch):
    for ours, theirs, gist in ((lambda: distnn.finfo(distnn.int32), lambda: torch.finfo(torch.int32), "finfo()"),
                               (lambda: distnn.iinfo(distnn.float32), lambda: torch.iinfo(torch.float32), "iinfo()")):
        for f in (ours, theirs):
            with pytest.raises(TypeError, match=gist.replace("(", r"\(").replace(")", r"\)")):
                f()


_NUMERIC = ["bool", "uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "complex64",
            "complex128"]


def test_promote_types_and_can_cast_match_torch(torch):
    for a in _NUMERIC:
        for b in _NUMERIC:
            ours = distnn.promote_types(getattr(distnn, a), getattr(distnn, b))
            theirs = torch.promote_types(getattr(torch, a), getattr(torch, b))
            assert f"torch.{np.dtype(ours).name}" == str(theirs), (a, b)
            assert distnn.can_cast(getattr(distnn, a), getattr(distnn, b)) == \
                torch.can_cast(getattr(torch, a), getattr(torch, b)), (a, b)


def test_result_type_matches_torch(torch):
    operands = [rand(3), rand(3).astype(np.float32), np.float64(1.5), ints(3), ints(3).astype(np.int8),
                np.array(3, dtype=np.int32), np.array([True, False])]
    numbers = [2, 2.5, True, 1j]
    for a in operands:
        for b in operands + numbers:
            ours = distnn.result_type(distnn.tensor(a), distnn.tensor(b) if isinstance(b, np.ndarray) else b)
            theirs = torch.result_type(torch.tensor(a), torch.tensor(b) if isinstance(b, np.ndarray) else b)
            assert f"torch.{np.dtype(ours).name}" == str(theirs), (a.dtype, b)
    for a in numbers:
        for b in numbers:
            assert f"torch.{np.dtype(distnn.result_type(a, b)).name}" == str(torch.result_type(a, b)), (a, b)


def test_default_dtype_is_float32_and_non_floats_are_refused(torch):
    # (setting float64 and what follows it: tests/test_default_dtype.py)
    assert distnn.get_default_dtype() is distnn.float32 and str(torch.get_default_dtype()) == "torch.float32"
    distnn.set_default_dtype(distnn.float32)  # (the default: accepted)
    for ours, theirs in ((distnn.int64, torch.int64), (distnn.bool, torch.bool)):
        with pytest.raises(TypeError, match="only floating-point types are supported as the default type"):
            distnn.set_default_dtype(ours)
        with pytest.raises(TypeError, match="only floating-point types are supported as the default type"):
            torch.set_default_dtype(theirs)
    assert distnn.tensor(1.5).dtype == np.float32


def test_creation_helpers_still_type_python_numbers_as_torch():
    """distnn.bool/int/float are now PyTorch's dtype names: full and arange must still see Python's types."""
    assert distnn.full((2,), True).dtype == np.bool_ and distnn.full((2,), 3).dtype == np.int64
    assert distnn.full((2,), 3.0).dtype == np.float32
    assert distnn.arange(3).dtype == np.int64 and distnn.arange(0, 1, 0.5).dtype == np.float32
