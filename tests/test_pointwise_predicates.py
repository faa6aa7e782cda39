"""PyTorch's pointwise predicates on distnn tensors against PyTorch 2.13 as the oracle: isnan/isinf/...
for every dtype, comparisons and logical ops with broadcasting, bitwise ops on integers and bools (floats
refused), isclose, is_floating_point/is_complex."""
from __future__ import annotations

import math

import numpy as np
import pytest

import distnn

from pointwise_oracle import compare, same


torch = pytest.importorskip("torch")


PRED_X = np.array([0.0, -0.0, 1.5, -2.0, math.inf, -math.inf, math.nan, -math.nan, 1e-310])


UNARY_PREDICATES = ["isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit", "isreal", "logical_not"]
BINARY_PREDICATES = ["eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less", "less_equal",
                     "not_equal", "logical_and", "logical_or", "logical_xor"]


@pytest.mark.parametrize("name", UNARY_PREDICATES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.bool_], ids=lambda d: np.dtype(d).name)
def test_unary_predicates_match_pytorch_for_every_dtype(name, dtype):
    x = PRED_X.astype(dtype) if dtype in (np.float64, np.float32) else np.array([0, 3, -2, 1]).astype(dtype)
    want = getattr(torch, name)(torch.tensor(x)).numpy()
    got = getattr(distnn, name)(distnn.tensor(x))
    same(np.asarray(got.data), want, 0)
    same(np.asarray(getattr(distnn.tensor(x), name)().data), want, 0)
    assert not got.requires_grad


@pytest.mark.parametrize("name", BINARY_PREDICATES)
def test_comparisons_and_logical_ops_match_pytorch_with_broadcasting_and_mixed_dtypes(name):
    a = PRED_X.reshape(-1, 1)
    b = np.array([0.0, 1.5, math.nan, -math.inf])
    pairs = [(a, b), (a.astype(np.float32), b.astype(np.float64)), (np.array([[1, 0, -2]]), np.array([[1], [0]])),
             (np.array([True, False]), np.array([1, 0])), (np.array([0.1], np.float32), np.array(0.1))]
    for i, (x, y) in enumerate(pairs):
        want = getattr(torch, name)(torch.tensor(x), torch.tensor(y)).numpy()
        same(np.asarray(getattr(distnn, name)(distnn.tensor(x), distnn.tensor(y)).data), want, 0)
        if name in ("eq", "ne") and i == len(pairs) - 1:
            continue  # (Tensor.eq/ne, older than these, compare a 0-d float64 tensor in float64: left as they are)
        same(np.asarray(getattr(distnn.tensor(x), name)(distnn.tensor(y)).data), want, 0)
    if name.startswith("logical"):
        return  # (PyTorch's logical ops take tensors only)
    # a float32 tensor against a Python float compares in float32, as PyTorch's
    x32 = np.array([0.1, 0.2], np.float32)
    want = getattr(torch, name)(torch.tensor(x32), 0.1).numpy()
    same(np.asarray(getattr(distnn, name)(distnn.tensor(x32), 0.1).data), want, 0)


@pytest.mark.parametrize("name", ["bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not"])
def test_bitwise_ops_match_pytorch_on_integers_and_bools_and_refuse_floats(name):
    args = {"ints": [np.array([[5, -3, 0, 12]]), np.array([[3], [-1]])], "bools": [np.array([True, False]),
            np.array([True, True])], "int32_int64": [np.array([6, 9], np.int32), np.array([3, 5])]}
    for arrays in args.values():
        arrays = arrays[:1] if name == "bitwise_not" else arrays
        compare(getattr(distnn, name), getattr(torch, name), arrays, 0, grad=False)
    floats = [np.array([1.0, 2.0])] * (1 if name == "bitwise_not" else 2)
    with pytest.raises(NotImplementedError):
        getattr(torch, name)(*[torch.tensor(f) for f in floats])
    with pytest.raises(NotImplementedError, match="integer or bool"):
        getattr(distnn, name)(*[distnn.tensor(f) for f in floats])


@pytest.mark.parametrize("kw", [{}, {"rtol": 0.1}, {"atol": 1.0, "rtol": 0.0}, {"equal_nan": True}])
def test_isclose_matches_pytorch_and_refuses_mixed_dtypes(kw):
    a = np.array([1.0, 1.0 + 1e-6, 2.0, math.inf, math.inf, math.nan, 0.0, 100.0])
    b = np.array([1.0, 1.0, 2.5, math.inf, -math.inf, math.nan, 1e-9, 110.0])
    for dtype in (np.float64, np.float32, np.int64):
        x, y = a.astype(dtype) if dtype != np.int64 else np.array([1, 5, 10]), b.astype(dtype) if dtype != np.int64 \
            else np.array([1, 6, 12])
        want = torch.isclose(torch.tensor(x), torch.tensor(y), **kw).numpy()
        same(np.asarray(distnn.isclose(distnn.tensor(x), distnn.tensor(y), **kw).data), want, 0)
        same(np.asarray(distnn.tensor(x).isclose(distnn.tensor(y), **kw).data), want, 0)
    with pytest.raises(RuntimeError):
        torch.isclose(torch.tensor(a), torch.tensor(a.astype(np.float32)))
    with pytest.raises(RuntimeError, match="did not match"):
        distnn.isclose(distnn.tensor(a), distnn.tensor(a.astype(np.float32)))


def test_is_floating_point_and_is_complex_as_pytorch():
    for x in (np.zeros(2), np.zeros(2, np.float32), np.zeros(2, np.int64), np.zeros(2, bool)):
        assert distnn.tensor(x).is_floating_point() == torch.tensor(x).is_floating_point()
        assert distnn.is_floating_point(distnn.tensor(x)) == torch.is_floating_point(torch.tensor(x))
        assert distnn.is_complex(distnn.tensor(x)) is False and distnn.tensor(x).is_complex() is False
