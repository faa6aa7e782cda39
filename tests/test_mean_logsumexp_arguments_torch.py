"""``mean`` and ``logsumexp`` calls that match none of PyTorch's overloads are refused in its parser's words, as
torch's: ``mean``'s ``keepdim`` without ``dim`` (alone, or with ``dtype=``/``out=``, whose overload without ``dim``
takes one argument more than ``sum``'s), the method's ``out=``; ``logsumexp``'s ``dim`` left out or None. The
calls they take still give torch's values. Oracle: torch, same calls (``m`` stands for either library; several
keywords are given in the signature's order: PyTorch lists them last given first)."""
import numpy as np
import pytest

import distnn

from expression_outcome import same_as_torch

REFUSED = [
    "m.mean(x, keepdim=True)", "m.mean(x, keepdim=False)", "m.mean(x, keepdim=1)",
    "m.mean(x, keepdim=True, dtype=m.float64)", "m.mean(x, keepdim=True, out=o)",
    "m.mean(x, keepdim=True, dtype=m.float64, out=o)",
    "x.mean(keepdim=True)", "x.mean(keepdim=False)", "x.mean(keepdim=True, dtype=m.float64)",
    "x.mean(out=o)", "x.mean(out=None)", "x.mean(out=3)", "x.mean(0, out=o)", "x.mean(None, out=o)",
    "x.mean(0, True, out=o1)", "x.mean(dtype=m.float64, out=o)", "x.mean(keepdim=True, out=o)",
    "m.logsumexp(x)", "m.logsumexp(x, keepdim=True)", "m.logsumexp(x, None)", "m.logsumexp(x, None, True)",
    "x.logsumexp()", "x.logsumexp(keepdim=True)", "x.logsumexp(None)",
]
TAKEN = [
    "m.mean(x)", "m.mean(x, None)", "m.mean(x, None, True)", "m.mean(x, dim=None, keepdim=True)",
    "m.mean(x, 1, True)", "m.mean(x, (0, 1))", "m.mean(x, dtype=m.float64)", "m.mean(x, out=o)",
    "m.mean(x, 0, out=o2)", "m.mean(x, 1, keepdim=True, dtype=m.float64)",
    "x.mean()", "x.mean(None)", "x.mean(None, True)", "x.mean(1, keepdim=True)", "x.mean(dim=0)",
    "x.mean(dtype=m.float64)", "m.logsumexp(x, 1)", "m.logsumexp(x, (0, 1), True)", "x.logsumexp(0)",
    "x.logsumexp(dim=1, keepdim=True)",
]


def _outcome(m, expression):
    x = m.tensor(np.arange(1.0, 7.0).reshape(2, 3), dtype=m.float32)
    o, o1, o2 = m.zeros(()), m.zeros(1), m.zeros(3 if "x, 0" in expression else 2)
    try:
        result = eval(expression)  # noqa: S307 - the test's own expressions
    except Exception as e:  # noqa: BLE001 - the error's type and message are what is compared
        return type(e).__name__, str(e)
    return "ok", str(result.dtype).split(".")[-1], tuple(result.shape), np.round(result.numpy(), 5).tolist()


@pytest.mark.parametrize("expression", REFUSED)
def test_refused_as_torch(expression):
    same_as_torch(_outcome, expression, "TypeError")


@pytest.mark.parametrize("expression", TAKEN)
def test_taken_as_torch(expression):
    same_as_torch(_outcome, expression, "ok")


def test_numpy_spelling_still_taken():
    """distnn's numpy-style ``axis``/``keepdims`` (not PyTorch's API) are untouched."""
    x = distnn.tensor(np.arange(6.0).reshape(2, 3))
    assert x.mean(axis=1, keepdims=True).shape == (2, 1)
    assert x.mean(keepdims=True).shape == (1, 1)
    assert distnn.mean(x, keepdims=True).shape == (1, 1)
