"""``sum``/``prod`` calls that match none of PyTorch's overloads are refused in its parser's words, as torch's:
``keepdim`` without ``dim``, ``prod``'s ``dim`` of None, the methods' ``out=``; the calls it takes still give
its values. Oracle: torch, same calls (the expressions are evaluated with ``m`` standing for either library)."""
import numpy as np
import pytest

import distnn

from expression_outcome import same_as_torch

REFUSED = [
    "m.sum(x, keepdim=True)", "m.sum(x, keepdim=False)", "m.sum(x, keepdim=True, dtype=m.float64)",
    "m.prod(x, None)", "m.prod(x, None, True)", "m.prod(x, None, dtype=m.float64)", "m.prod(x, keepdim=True)",
    "m.prod(x, keepdim=False, dtype=m.float64)",
    "x.sum(keepdim=True)", "x.sum(keepdim=False)", "x.sum(keepdim=True, dtype=m.float64)", "x.prod(keepdim=True)",
    "x.prod(keepdim=True, dtype=m.float64)", "x.prod(None)", "x.prod(None, True)", "x.prod(None, dtype=m.float64)",
    "x.sum(out=o)", "x.sum(out=None)", "x.prod(out=o)", "x.prod(out=None)", "x.sum(0, out=o)", "x.sum(None, out=o)",
    "x.sum(0, True, out=o1)", "x.prod(0, out=o)", "x.sum(dtype=m.float64, out=o)",
    "m.sum(x, out=o)", "m.prod(x, out=o)",
]
TAKEN = [
    "m.sum(x)", "m.sum(x, None)", "m.sum(x, None, True)", "m.sum(x, dim=None, keepdim=True)", "m.sum(x, 1, True)",
    "m.sum(x, (0, 1))", "m.sum(x, dtype=m.float64)", "m.prod(x)", "m.prod(x, 1)", "m.prod(x, 0, True)",
    "m.prod(x, dtype=m.float64)", "x.sum()", "x.sum(None)", "x.sum(None, True)", "x.sum(1, keepdim=True)",
    "x.sum(dim=0)", "x.prod()", "x.prod(1)", "x.prod(0, True)", "x.prod(dim=1, keepdim=True)",
    "x.prod(dtype=m.float64)", "m.sum(x, 0, out=o2)", "m.prod(x, 1, out=o2)",
]


def _outcome(m, expression):
    x = m.tensor(np.arange(1.0, 7.0).reshape(2, 3))
    o, o1, o2 = m.zeros(()), m.zeros(1), m.zeros(3 if "x, 0" in expression else 2)
    try:
        result = eval(expression)  # noqa: S307 - the test's own expressions
    except Exception as e:  # noqa: BLE001 - the error's type and message are what is compared
        return type(e).__name__, str(e)
    return "ok", str(result.dtype).split(".")[-1], tuple(result.shape), result.numpy().tolist()


@pytest.mark.parametrize("expression", REFUSED)
def test_refused_as_torch(expression):
    same_as_torch(_outcome, expression, "TypeError")


@pytest.mark.parametrize("expression", TAKEN)
def test_taken_as_torch(expression):
    same_as_torch(_outcome, expression, "ok")


def test_numpy_spelling_still_taken():
    """distnn's numpy-style ``axis``/``keepdims`` (not PyTorch's API) are untouched."""
    x = distnn.tensor(np.arange(6.0).reshape(2, 3))
    assert x.sum(axis=1, keepdims=True).shape == (2, 1)
    assert x.sum(keepdims=True).shape == (1, 1)
