"""``tensor(data)`` and ``as_tensor(data)`` from nested lists where numpy reads them otherwise than torch 2.13:

* an empty first row: torch's shape is the first elements' ((2, 0) for ``[[], [1]]``) and it stores nothing into
  an empty tensor, so the later rows are never looked at (their dtypes are, when none is given);
* ragged lists with a dtype given: torch's refusal of the nesting or of the first number before it (``[[300, 2],
  [3]]`` into uint8 is refused for 300), not numpy's "inhomogeneous shape".

Oracle: torch, the same calls; the dtype, shape and values, or the error's type and text, are compared.
"""
import warnings

import numpy as np
import pytest
import torch

import distnn


def outcome(make):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (numpy's ComplexWarning: torch's too)
            result = make()
    except Exception as error:  # noqa: BLE001 - the error itself is compared
        return type(error).__name__, str(error)
    return "ok", str(result.dtype).split(".")[-1], tuple(result.shape), repr(result.tolist())  # (NaN equal to NaN)


def same_as_torch(data, dtype=None, function="tensor"):
    torch_kw = {} if dtype is None else {"dtype": getattr(torch, dtype)}
    ours_kw = {} if dtype is None else {"dtype": getattr(distnn, dtype)}
    expected = outcome(lambda: getattr(torch, function)(data, **torch_kw))
    assert outcome(lambda: getattr(distnn, function)(data, **ours_kw)) == expected
    return expected


EMPTY_ROWS = [([[], [1]], None), ([[], [1, 2, 3]], None), ([[], [1.5]], None), ([[], [1j]], None),
              ([[], [np.float64(1)]], None), ([[], [True]], None), ([[], [2 ** 64]], None), ([[], 1], None),
              ([[], [[1]]], None), ([[[]], [1]], None), ([(), [1]], None), ([[], (1,)], None), ([[], range(3)], None),
              ([[], [], [1, 2]], None), ([[[], []], [[1], [2]]], None), ([range(0), [1]], None),
              ([[], ["a"]], None), ([[], None], None), ([[], [None]], None), ([[], "ab"], None),
              ([[], [np.uint64(1), 2]], None), ([[1], []], None), ([[[]]], None),
              ([[], [1]], "int64"), ([[], ["a"]], "float32"), ([[], [1]], "float16"), ([[], [2 ** 70]], "int64"),
              ([[], [1]], "bool"), ([[], [300]], "uint8")]


@pytest.mark.parametrize("function", ["tensor", "as_tensor"])
@pytest.mark.parametrize("data, dtype", EMPTY_ROWS, ids=[f"{d!r}-{t}" for d, t in EMPTY_ROWS])
def test_empty_first_row_as_torch(data, dtype, function):
    same_as_torch(data, dtype, function)


def test_empty_first_row_is_an_empty_float32_tensor():
    assert same_as_torch([[], [1]]) == ("ok", "float32", (2, 0), "[[], []]")


RAGGED_WITH_A_DTYPE = [
    ([[1, 2], [3]], "int64"), ([[1, 2], [3]], "float32"), ([[1, 2], 3], "int64"), ([[1], [2, 3]], "float64"),
    ([1, [2]], "int64"), ([1, [2]], "bool"), ([[1, 2], [3, [4]]], "int64"), ([[1, 2], [3, [4]]], "float32"),
    ([[1.5, 2], [3]], "int64"), ([[1, 2], ["a"]], "int64"), ([[1, 2], [3, "a"]], "complex64"),
    ([2 ** 64, [1]], "float32"), ([2 ** 64, [1]], "int64"), ([[2 ** 64], [1, 2]], "float32"),
    ([[1, 2], [2 ** 64]], "float32"), ([1, [2 ** 64]], "float32"), ([[np.uint64(1), 1], [2]], "int64"),
    ([[1, 2], [3]], "bool"), ([[1, 2], [3]], "complex64"), ([[1, 2], [3]], "uint8"), ([[300, 2], [3]], "uint8"),
    ([[-1, 2], [3]], "uint8"), ([[1, 2], [300]], "uint8"), ([[1, 2], [np.float32(1)]], "float32"),
    ([[np.float32(1), 2], [3]], "int64"), ([[1, 2], [3]], "float16"), ([(1, 2), (3,)], "int64"),
    ([[float("nan"), 1], [2]], "int8"), ([[2 ** 1030, 1], [2]], "float32"),
    ([300], "uint8"), ([-1], "uint8"), ([1.5, 2 ** 64], "uint8"),
]


@pytest.mark.parametrize("function", ["tensor", "as_tensor"])
@pytest.mark.parametrize("data, dtype", RAGGED_WITH_A_DTYPE, ids=[f"{d!r}-{t}" for d, t in RAGGED_WITH_A_DTYPE])
def test_ragged_lists_with_a_dtype_as_torch(data, dtype, function):
    same_as_torch(data, dtype, function)


def test_ragged_int64_message_is_torchs():
    with pytest.raises(ValueError, match=r"^expected sequence of length 2 at dim 1 \(got 1\)$"):
        distnn.tensor([[1, 2], [3]], dtype=distnn.int64)
    with pytest.raises(TypeError, match="^must be real number, not list$"):
        distnn.as_tensor([2 ** 64, [1]], dtype=distnn.float32)
