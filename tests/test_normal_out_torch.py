"""``normal(..., out=)`` with an ``out`` of another shape or dtype, as torch 2.13: ``out`` resized to the shape
the overload gives (mean and std broadcast, with torch's deprecation warning where ``out`` had elements; a Tensor
mean with a float std broadcast with ``out``'s own shape, torch's size-mismatch error where they do not; the
``(float, float, size)`` overload silently), the draw in ``out``'s dtype, a non-float ``out`` refused as torch's
kernel refuses it. The draws are distnn's own, so shapes, dtypes, identity, strides, warnings and errors are
compared. Oracle: torch, same calls."""
import re
import warnings

import pytest
import torch

import distnn

OUTS = {
    "(2,3)": lambda m: m.zeros(2, 3), "(3,2)": lambda m: m.zeros(3, 2), "(6,)": lambda m: m.zeros(6),
    "(0,)": lambda m: m.zeros(0), "(1,3)": lambda m: m.zeros(1, 3), "(3,)": lambda m: m.zeros(3),
    "(2,1)": lambda m: m.zeros(2, 1), "(5,2,3)": lambda m: m.zeros(5, 2, 3), "(4,4)": lambda m: m.zeros(4, 4),
    "float64": lambda m: m.zeros(2, 3, dtype=m.float64), "float16": lambda m: m.zeros(2, 3, dtype=m.float16),
    "int64": lambda m: m.zeros(2, 3, dtype=m.int64), "bool": lambda m: m.zeros(2, 3, dtype=m.bool),
    "transposed": lambda m: m.zeros(3, 2).t(), "expanded": lambda m: m.zeros(1, 3).expand(2, 3),
    "(5,2,3) transposed": lambda m: m.zeros(5, 2, 3).transpose(0, 2),
}
CALLS = {
    "tensor, tensor": lambda m, o: m.normal(m.zeros(2, 3), m.ones(2, 3), out=o),
    "tensor, float": lambda m, o: m.normal(m.zeros(2, 3), 1.0, out=o),
    "float, tensor": lambda m, o: m.normal(0.0, m.ones(2, 3), out=o),
    "float, float, size": lambda m, o: m.normal(0.0, 1.0, (2, 3), out=o),
}


def _outcome(m, call, out):
    o = OUTS[out](m)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = CALLS[call](m, o)
    except Exception as e:  # noqa: BLE001 - the error's type and message are what is compared
        return type(e).__name__, str(e)
    return ("ok", result is o, tuple(result.shape), str(result.dtype).split(".")[-1], tuple(result.stride()),
            [re.sub(r" \(Triggered internally at .*\)$", "", str(w.message)) for w in caught])  # (torch's C++ place)


@pytest.mark.parametrize("out", list(OUTS))
@pytest.mark.parametrize("call", list(CALLS))
def test_normal_out_as_torch(call, out):
    assert _outcome(distnn, call, out) == _outcome(torch, call, out)


@pytest.mark.parametrize("call", [
    "m.normal(m.zeros(2, dtype=m.int64), 1.0)", "m.normal(m.zeros(2), -1.0)", "m.normal(0.0, -0.5, (2,))",
    "m.normal(m.zeros(2, 3), m.ones(3, 2))",
])
def test_normal_refusals_as_torch(call):
    def outcome(m):
        try:
            eval(call)  # noqa: S307 - the test's own expressions
        except Exception as e:  # noqa: BLE001 - the error's type and message are what is compared
            return type(e).__name__, str(e)
        return "ok"

    assert outcome(distnn) == outcome(torch) != "ok"


def test_the_draw_lands_in_out():
    o = distnn.zeros(3, 2)
    with pytest.warns(UserWarning, match="was resized"):
        distnn.normal(distnn.zeros(2, 3), distnn.ones(2, 3), out=o)
    assert o.shape == (2, 3) and bool((o.data != 0).all())
