"""Means, variances and standard deviations of integer and bool tensors against torch 2.13: refused (numpy
would answer in float64), ``mean(dtype=...)`` casts first, nanmean refuses an integer input even with a float
``dtype=``; median, sum and prod of integers stay integers."""
import numpy as np
import pytest

from tensor_ops_oracle import assert_refused_as_torch, compare, ints

INT_DTYPES = ["int64", "int32", "uint8", "bool"]


def _int(dtype):
    return ints(3, 4).astype(dtype)


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("case", [
    ("mean", lambda m, a: a.mean(), "mean(): could not infer output dtype. Input dtype must be"),
    ("mean dim", lambda m, a: m.mean(a, 1), "mean(): could not infer output dtype"),
    ("std", lambda m, a: a.std(), "std and var only support floating point and complex dtypes"),
    ("var dim", lambda m, a: m.var(a, 0), "std and var only support floating point and complex dtypes"),
    ("var_mean", lambda m, a: m.var_mean(a), "var_mean only support floating point and complex dtypes"),
    ("std_mean", lambda m, a: m.std_mean(a, 1), "std_mean only support floating point and complex dtypes"),
    ("nanmean", lambda m, a: m.nanmean(a), "nanmean(): expected input to have floating point"),
    ("nanmean dtype", lambda m, a: a.nanmean(dtype=m.float32), "nanmean(): expected input to have floating"),
])
def test_integer_mean_var_std_refused_as_torch(torch, case, dtype):
    name, fn, gist = case
    assert_refused_as_torch(torch, (name, fn, [_int(dtype)], gist))


def test_refusal_names_the_dtype_as_torch(torch):
    assert_refused_as_torch(torch, ("mean", lambda m, a: a.mean(), [_int("int64")], "Got: Long"))
    assert_refused_as_torch(torch, ("mean", lambda m, a: a.mean(), [_int("bool")], "Got: Bool"))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mean_with_a_float_dtype_casts_first_as_torch(torch, dtype):
    for fn in (lambda m, a: a.mean(dtype=getattr(m, dtype)), lambda m, a: m.mean(a, 1, dtype=getattr(m, dtype)),
               lambda m, a: a.mean(dim=0, keepdim=True, dtype=getattr(m, dtype))):
        compare(torch, fn, [_int("int64")], grad=False)
        compare(torch, fn, [_int("int32")], grad=False)


def test_mean_dtype_of_a_float_tensor_is_in_the_graph_as_torch(torch):
    x = np.random.default_rng(1).standard_normal((3, 4))
    compare(torch, lambda m, a: a.mean(1, dtype=m.float64), [x], dtype=np.float32)


def test_mean_with_an_integer_dtype_is_refused_as_torch(torch):
    gist = "mean(): could not infer output dtype. Optional dtype must be either a floating point or complex dtype"
    for data in (_int("int64"), np.ones((2, 3))):
        assert_refused_as_torch(torch, ("mean", lambda m, a: a.mean(dtype=m.int64), [data], gist))


@pytest.mark.parametrize("dtype", ["int64", "int32"])
def test_integer_median_sum_prod_stay_integers_as_torch(torch, dtype):
    for fn in (lambda m, a: a.median(), lambda m, a: a.nanmedian(), lambda m, a: a.sum(), lambda m, a: a.prod(),
               lambda m, a: a.sum(dtype=m.float32)):
        compare(torch, fn, [_int(dtype)], grad=False)
