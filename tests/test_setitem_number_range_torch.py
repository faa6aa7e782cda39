"""``x[i] = number`` where the number may not fit the tensor's dtype: distnn writes what torch writes (a negative
int into uint8 wraps, ``-1`` is 255; a float is truncated) or raises torch's error (``value cannot be converted to
type uint8_t without overflow``; an int beyond int64 is the parser's ValueError), for every index form. Oracle:
torch, same values."""
import math
import warnings

import numpy as np
import pytest
import torch

import distnn

DTYPES = ["uint8", "int8", "int16", "int32", "int64", "bool", "float16", "float32", "float64"]
VALUES = [-256, -255, -129, -128, -1, 127, 128, 255, 256, 2 ** 15, 2 ** 31, -2 ** 31 - 1, 2 ** 63 - 1, 2 ** 63,
          -2 ** 63, -2 ** 63 - 1, 2 ** 64, 255.0, 255.5, 256.0, -0.5, -1.0, -0.0, 2.7, -2.7, 2.0 ** 63, -2.0 ** 63,
          1e19, math.nan, math.inf, -math.inf, True, False, 1 + 0j, 1 + 2j, 1e10, 1e40, 3.4028235e38, 65504,
          65519.0, 65520.0, -65520, np.int64(-1), np.int16(300)]
INDEXES = {"element": lambda t: 0, "slice": lambda t: slice(1, None), "mask": lambda t: t > 1,
           "list": lambda t: [0, 2]}


def _outcome(m, dtype, value, index):
    t = m.tensor([1, 2, 3]).to(getattr(m, dtype))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # (numpy's overflow warning would be distnn's own: torch has none)
            t[INDEXES[index](t)] = value
    except Exception as e:  # noqa: BLE001 - the error's type and message are what is compared
        return type(e).__name__, str(e)
    values = t.to(m.float64).numpy().tolist() if dtype != "bool" else t.numpy().tolist()
    return "ok", [str(v) for v in values]  # (as text: NaN equals NaN)


@pytest.mark.parametrize("value", VALUES, ids=repr)
@pytest.mark.parametrize("dtype", DTYPES)
def test_number_into_dtype_as_torch(dtype, value):
    assert _outcome(distnn, dtype, value, "element") == _outcome(torch, dtype, value, "element")


@pytest.mark.parametrize("value", [300, -1, -200, math.nan, 2 ** 63, 1e40, 2.5], ids=repr)
@pytest.mark.parametrize("index", list(INDEXES))
@pytest.mark.parametrize("dtype", ["uint8", "int8", "int64", "float32"])
def test_every_index_form_as_torch(dtype, index, value):
    assert _outcome(distnn, dtype, value, index) == _outcome(torch, dtype, value, index)


def test_the_briefs_cases():
    t = distnn.tensor([1, 2, 3])
    with pytest.raises(RuntimeError, match="value cannot be converted to type int64_t without overflow"):
        t[0] = float("nan")
    u = distnn.tensor([1, 2, 3], dtype=distnn.uint8)
    with pytest.raises(RuntimeError, match="value cannot be converted to type uint8_t without overflow"):
        u[0] = 300
    u[0] = -1
    assert u.numpy().tolist() == [255, 2, 3]
    with pytest.raises(ValueError, match="Overflow when unpacking long long"):
        t[0] = 2 ** 63
    assert t.numpy().tolist() == [1, 2, 3]  # (nothing written by a refused assignment)


def test_recorded_write_keeps_its_gradient():
    """A float16 value past its range is inf while recording too, and the gradient is unchanged."""
    x = distnn.ones(3, dtype=distnn.float16, requires_grad=True)
    y = x * 1
    y[0] = 1e10
    y.sum().backward()
    assert math.isinf(float(y[0])) and np.asarray(x.grad).tolist() == [0.0, 1.0, 1.0]
