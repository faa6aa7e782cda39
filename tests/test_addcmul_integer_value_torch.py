"""``addcmul`` of integer tensors with a float ``value`` against PyTorch 2.13: its kernel computes in the tensors'
dtype and takes ``value`` to it as ``c10::checked_convert`` does (truncated toward zero; NaN, an imaginary part or
a number outside the dtype's range refused with "value cannot be converted to type int without overflow"), so the
result stays integer. Bool (and uint16/32/64) results are refused: the kernel has no loop for them. distnn promoted
the result to float32 (and its ``addcmul_`` then refused the float result), and computed bool ones."""
from __future__ import annotations

import numpy as np
import pytest

import distnn
from tests.conftest import import_torch

torch = import_torch()

INPUT, FIRST, SECOND = np.array([1, 2, 3, -3, 5, 0]), np.array([1, 3, 5, 1, -3, 7]), np.array([4, -1, 2, 2, 3, 1])
VALUES = [0.5, -0.5, 2.5, -2.5, 2.9999, 0.7, 3e9, -3e9, 2.0**31 - 1, -(2.0**31), 2.0**63, 1e300, float("nan"),
          float("inf"), np.float32(2.5), 1 + 2j, 2 + 0j, True, 3]
DTYPES = [np.int8, np.uint8, np.int16, np.int32, np.int64]
FORMS = {
    "addcmul": lambda L, a, b, c, v: L.addcmul(a, b, c, value=v),
    "Tensor.addcmul": lambda L, a, b, c, v: a.addcmul(b, c, value=v),
    "Tensor.addcmul_": lambda L, a, b, c, v: a.addcmul_(b, c, value=v),
}


def _outcome(lib, form, arrays, value):
    """(dtype name, values) of the call, or (error type, message)."""
    tensors = [torch.from_numpy(a.copy()) if lib is torch else distnn.Tensor(a.copy()) for a in arrays]
    try:
        with np.errstate(over="ignore"):  # (PyTorch's integer arithmetic wraps silently)
            out = FORMS[form](lib, *tensors, value)
    except (RuntimeError, NotImplementedError, TypeError) as e:
        return type(e).__name__, str(e)
    result = out.numpy() if lib is torch else np.asarray(out.data)
    return str(result.dtype), result.tolist()


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_integer_addcmul_takes_a_float_value_as_torch(form, dtype):
    arrays = [a.astype(dtype) for a in (INPUT, FIRST, SECOND)]
    for value in VALUES:
        assert _outcome(distnn, form, arrays, value) == _outcome(torch, form, arrays, value), value


@pytest.mark.parametrize("form", list(FORMS))
def test_addcmul_of_mixed_integer_dtypes_takes_the_value_in_the_result_dtype(form):
    """int32 input, int64 and bool factors: the result (int64 out of place) takes the value, truncated."""
    arrays = [INPUT.astype(np.int32), FIRST.astype(np.int64), SECOND > 1]
    for value in (2.5, -0.5, 3e9, 1e30):
        assert _outcome(distnn, form, arrays, value) == _outcome(torch, form, arrays, value), value


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("dtype", [np.bool_, np.uint16, np.uint32, np.uint64], ids=lambda d: np.dtype(d).name)
def test_addcmul_refuses_dtypes_without_a_kernel_as_torch(form, dtype):
    arrays = [a.astype(dtype) for a in (INPUT > 0, FIRST > 0, SECOND > 0)]
    for value in (1, True, 0.5):
        assert _outcome(distnn, form, arrays, value) == _outcome(torch, form, arrays, value), value
