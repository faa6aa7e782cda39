"""Writes through an advanced index with a value of another dtype, against PyTorch 2.13: ``y[idx] = v`` with an
index of tensors, lists or masks (alone, or beside ``:``, ints and ``...``), ``index_put_`` and ``index_put``
(``accumulate`` or not). PyTorch's ``index_put_`` kernel refuses a source of another dtype ("Index put requires the
source and destination dtypes match, ...") after its shape check; it casts where another kernel runs: a Python
number, a basic index (a ``copy_`` into a view) and a lone mask with a one-element value (``masked_fill_``, never
with ``accumulate``). Outcomes compared: the values written (and the gradients, recording) or the error's type
and text."""
import numpy as np
import pytest
import torch

import distnn

VALUES = {
    "f64[2]": lambda L: L.tensor([1.5, -2.5], dtype=L.float64),
    "f64 0-d": lambda L: L.tensor(1.5, dtype=L.float64),
    "f64[1]": lambda L: L.tensor([1.5], dtype=L.float64),
    "f16[2]": lambda L: L.tensor([1.5, 2.5], dtype=L.float16),
    "i64[2]": lambda L: L.tensor([1, 2]),
    "i64 0-d": lambda L: L.tensor(3),
    "bool[2]": lambda L: L.tensor([True, False]),
    "f32[2]": lambda L: L.tensor([1.5, -2.5], dtype=L.float32),
    "f64[3] (no broadcast)": lambda L: L.tensor([1.0, 2.0, 3.0], dtype=L.float64),
    "python float": lambda L: 1.5,
}

# indexes of a (3, 4) tensor that select 2 elements (or 2 along the last dim), so a value of 2 broadcasts
INDEXES = {
    "tensor": lambda L: (L.tensor([0, 2]), L.tensor([1, 3])),
    "list pair": lambda L: ([0, 2], [1, 3]),
    "int, tensor": lambda L: (1, L.tensor([0, 2])),
    "tensor, int": lambda L: (L.tensor([0, 2]), 1),
    "mask 2-d": lambda L: L.tensor([[True, False, False, False], [False] * 4, [False, True, False, False]]),
    "slice, mask": lambda L: (slice(None), L.tensor([True, False, True, False])),
    "int, mask": lambda L: (0, L.tensor([True, False, True, False])),
    "mask list": lambda L: (1, [True, False, True, False]),
    "..., tensor": lambda L: (Ellipsis, L.tensor([0, 2])),
    "slice": lambda L: (1, slice(0, 2)),
    "ints": lambda L: (1, 2),
    "0-d int tensor": lambda L: (L.tensor(1), slice(1, 3)),
}

DTYPES = ["float32", "int32", "float64"]


def _outcome(fn):
    try:
        return "ok", fn()
    except Exception as e:  # noqa: BLE001 (the error's type and text are what is compared)
        return type(e).__name__, str(e)


def _setitem(L, dtype, index, value):
    y = L.zeros(3, 4, dtype=getattr(L, dtype))
    v = VALUES[value](L)
    if index in ("ints", "0-d int tensor") and hasattr(v, "shape") and v.shape == (2,) and index == "ints":
        v = v[0]
    y[INDEXES[index](L)] = v
    return y.tolist()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index", list(INDEXES))
@pytest.mark.parametrize("value", list(VALUES))
def test_setitem_refuses_or_casts_as_torch(dtype, index, value):
    want = _outcome(lambda: _setitem(torch, dtype, index, value))
    got = _outcome(lambda: _setitem(distnn, dtype, index, value))
    if "no broadcast" in value:  # (PyTorch's shape check comes first; distnn's shape messages are its own)
        assert want[0] != "ok" and got[0] != "ok" and "dtypes match" not in want[1] + got[1]
    else:
        assert got == want


PUT_INDICES = {
    "long": lambda L: (L.tensor([0, 2]),),
    "long pair": lambda L: (L.tensor([0, 2]), L.tensor([1, 3])),
    "mask": lambda L: (L.tensor([True, False, True]),),
    "mask 2-d": lambda L: (L.tensor([[True, False, False, False], [False] * 4, [False, True, False, False]]),),
}


def _index_put(L, how, dtype, indices, value, accumulate):
    y = L.zeros(3, 4, dtype=getattr(L, dtype))
    v = VALUES[value](L)
    if not hasattr(v, "shape"):
        v = L.tensor(v)
    if indices in ("long", "mask"):  # (whole rows: a value of 4, or one element)
        v = v.reshape(-1)[:1] if v.numel() == 1 or value.endswith("0-d") else L.stack([v[0]] * 4)
    idx = PUT_INDICES[indices](L)
    if how == "method":
        return y.index_put_(idx, v, accumulate=accumulate).tolist()
    return L.index_put(y, idx, v, accumulate=accumulate).tolist()


@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("how", ["method", "function"])
@pytest.mark.parametrize("indices", list(PUT_INDICES))
@pytest.mark.parametrize("value", ["f64[2]", "f64 0-d", "f64[1]", "i64[2]", "bool[2]", "f32[2]", "python float"])
def test_index_put_refuses_or_casts_as_torch(value, indices, how, accumulate):
    want = _outcome(lambda: _index_put(torch, how, "float32", indices, value, accumulate))
    assert _outcome(lambda: _index_put(distnn, how, "float32", indices, value, accumulate)) == want


def _recorded_mask_fill(L, value_dtype):
    x = L.arange(8.0, dtype=L.float32).requires_grad_()
    v = L.tensor(2.5, dtype=getattr(L, value_dtype), requires_grad=True)
    y = x * 1
    y[x > 3] = v
    (y * L.arange(8.0)).sum().backward()
    return y.tolist(), y.grad_fn.name(), x.grad.tolist(), str(v.grad.dtype).split(".")[-1], v.grad.tolist()


@pytest.mark.parametrize("value_dtype", ["float64", "float32"])
def test_a_mask_with_one_value_of_another_dtype_records_as_torch(value_dtype):
    """The cast PyTorch allows (``masked_fill_``) while recording: values, node, both gradients (the value's
    in its own dtype)."""
    assert _recorded_mask_fill(distnn, value_dtype) == _recorded_mask_fill(torch, value_dtype)


def test_a_recording_write_is_refused_before_anything_is_written():
    x = distnn.zeros(3, requires_grad=True)
    y = x * 1
    with pytest.raises(RuntimeError, match="got Float for the destination and Double for the source"):
        y[distnn.tensor([0, 2])] = distnn.tensor([1.0, 2.0], dtype=distnn.float64)
    assert y.tolist() == [0.0, 0.0, 0.0] and y._version == 0


FILL_VALUES = [("float32", "float64", 1e300), ("float32", "float64", float("inf")), ("float32", "float64", float("nan")),
               ("int32", "float64", 3e10), ("int32", "float64", 2.7), ("int32", "float64", float("nan")),
               ("int64", "float32", -2.5), ("float16", "float64", 1e6), ("float16", "float32", 60000.0),
               ("float32", "complex64", 1 + 0j), ("float32", "complex64", 1 + 1j), ("float64", "complex128", 2j),
               ("int64", "complex64", 1 + 1j), ("bool", "float32", 2.5), ("bool", "complex64", 1 + 1j),
               ("complex64", "float64", 1.5)]


@pytest.mark.parametrize("dst, src, number", FILL_VALUES, ids=str)
def test_a_mask_fill_takes_its_value_as_a_number_of_the_dtype(dst, src, number):
    """The one value a lone mask writes (PyTorch's ``masked_fill_``) is refused where the destination's dtype cannot
    hold it, with PyTorch's message."""
    def run(L):
        y = L.zeros(3, dtype=getattr(L, dst))
        y[L.tensor([True, False, True])] = L.tensor(number, dtype=getattr(L, src))
        return [str(v) for v in y.tolist()]

    assert _outcome(lambda: run(distnn)) == _outcome(lambda: run(torch))
