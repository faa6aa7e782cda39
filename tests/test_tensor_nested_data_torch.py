"""``tensor(data)`` and ``as_tensor(data)`` from nested lists where numpy reads them otherwise than torch 2.13:

* numpy scalars among the numbers: torch infers each one's own dtype and promotes them with the Python numbers'
  (``[np.float64(1.5), 2]`` is float64, ``[np.float16(1), 2]`` float16, ``[np.complex128(1), 1.5]`` complex128),
  refuses a numpy bool converted into an integer dtype and numpy's uint64 (its conversion takes Python ints);
* an empty first row: torch's shape is the first elements' ((2, 0) for ``[[], [1]]``) and it stores nothing into
  an empty tensor, so the later rows are never looked at (their dtypes are, when none is given);
* ragged lists with a dtype given: torch's refusal of the nesting or of the first number before it (``[[300, 2],
  [3]]`` into uint8 is refused for 300), not numpy's "inhomogeneous shape".

Oracle: torch, the same calls; the dtype, shape and values, or the error's type and text, are compared.
"""
import random
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


NUMPY_SCALARS = {
    "float64 first": [np.float64(1.5), 2], "float64 then float": [np.float64(1.5), 2.5],
    "float64 in a tuple": (np.float64(1.5), 2), "float64 row first": [[np.float64(1.5)], [2]],
    "float16, int": [np.float16(1.5), 2], "float16 pair": [np.float16(1.5), np.float16(2)],
    "float16, float": [np.float16(1.5), 2.5], "float32, float64": [np.float32(1.5), np.float64(2)],
    "float16, int64": [np.float16(1), np.int64(2)], "int32, float16": [np.int32(1), np.float16(2.5)],
    "float64 NaN, int": [np.float64(np.nan), 1], "int8, int": [np.int8(1), 2], "int8, int16": [np.int8(1), np.int16(2)],
    "uint8, int8": [np.uint8(1), np.int8(2)], "int8, bool": [np.int8(1), True], "int64, float": [np.int64(1), 2.5],
    "complex128, float": [np.complex128(1), 1.5], "complex64, float64": [np.complex64(1), np.float64(2.5)],
    "float16, complex": [np.float16(1), 1j], "float64, complex": [np.float64(1), 1j],
    "numpy bool, int": [np.bool_(True), 2], "int8, numpy bool": [np.int8(2), np.bool_(True)],
    "numpy bool, float": [np.bool_(True), 1.5], "numpy bools": [np.bool_(True), False],
    "numpy bool, complex": [np.bool_(True), 1j], "uint64 alone": [np.uint64(5)],
    "uint64 rows": [[np.uint64(5)], [np.uint64(1)]], "uint32 alone": [np.uint32(5)],
    "uint64, float": [np.uint64(5), 1.5], "float16, int past uint64": [np.float16(1.5), 2 ** 64],
    "int8, int past int64": [np.int8(1), 2 ** 63], "float64, int past uint64": [np.float64(1.5), 2 ** 64],
}


@pytest.mark.parametrize("name", NUMPY_SCALARS)
def test_numpy_scalars_in_lists_as_torch(name):
    same_as_torch(NUMPY_SCALARS[name])


def test_numpy_float64_first_is_float64():
    assert distnn.tensor([np.float64(1.5), 2]).dtype == np.float64


def _random_data(rng):
    pool = [1.5, 2, True, 1j, np.float16(1.5), np.float32(2.5), np.float64(3.5), np.int8(-3), np.int16(4),
            np.int32(5), np.int64(6), np.uint8(7), np.bool_(True), np.bool_(False), np.complex64(1 + 1j),
            np.complex128(2 - 1j), np.uint16(3), np.uint32(4), np.uint64(5), -7, 0.0, 2 ** 63, 2 ** 64]
    items = [rng.choice(pool) for _ in range(rng.randint(1, 4))]
    return items if len(items) % 2 else [items[:len(items) // 2], items[len(items) // 2:]]


def test_random_mixes_of_numpy_and_python_numbers_as_torch():
    """1,500 random lists of 1 to 4 numbers (flat, or two rows), torch's dtype, values or refusal each; those whose
    first number is a Python float or int (the hot path, see data_refusals.numpy_scalars_dtype) left out."""
    rng, checked = random.Random(0), 0
    for _ in range(1500):
        data = _random_data(rng)
        lead = data[0][0] if isinstance(data[0], list) else data[0]
        if type(lead) in (float, int):
            continue
        same_as_torch(data)
        checked += 1
    assert checked > 1000


WITH_A_DTYPE = [([np.float32(1.5), 2], "int64"), ([np.float64(1.5), 2], "int64"), ([np.bool_(True), 2], "int64"),
                ([np.bool_(True), 2], "uint8"), ([np.float16(1.5), 2], "int32"), ([np.complex64(1), 2], "float32"),
                ([np.complex128(1 + 2j), 2], "float32"), ([np.float32(0.5), 0], "bool"), ([np.bool_(True), 2], "bool"),
                ([np.int64(-3), 2], "uint8"), ([np.int64(300), 2], "uint8"), ([np.float64(1e20), 2], "int64"),
                ([np.float32(3e38), 2], "float16"), ([np.int32(7), 2], "float16"), ([[np.int8(1)], [np.float32(2)]],
                                                                                   "int8")]


@pytest.mark.parametrize("function", ["tensor", "as_tensor"])
@pytest.mark.parametrize("data, dtype", WITH_A_DTYPE, ids=[f"{d!r}-{t}" for d, t in WITH_A_DTYPE])
def test_numpy_scalars_with_a_dtype_as_torch(data, dtype, function):
    same_as_torch(data, dtype, function)


def test_random_numpy_scalars_with_a_dtype_as_torch():
    """1,000 random lists (as above) with a random dtype, each torch's (those led by a Python
    number left out: the hot path)."""
    rng, dtypes, checked = random.Random(1), ["float16", "float32", "float64", "int8", "int32", "int64", "uint8",
                                              "bool", "complex64"], 0
    for _ in range(1000):
        data, dtype = _random_data(rng), rng.choice(dtypes)
        lead = data[0][0] if isinstance(data[0], list) else data[0]
        if type(lead) in (float, int, bool):
            continue
        same_as_torch(data, dtype)
        checked += 1
    assert checked > 500


# Known gaps, kept so for the hot path: where a Python float leads a list numpy made float64 (a Python int one it
# made int64), the rest is not searched for numpy scalars (a search costs as much as numpy's conversion)
GAPS = {"float then float64": [1.5, np.float64(2)], "int then numpy bool": [1, np.bool_(True)],
        "rows, float then float64": [[1.5, 2.5], [np.float64(1), 2]]}


@pytest.mark.xfail(strict=True, reason="the hot path looks at the first number only")
@pytest.mark.parametrize("name", GAPS)
def test_numpy_scalars_after_a_python_lead_gaps(name):
    same_as_torch(GAPS[name])


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
