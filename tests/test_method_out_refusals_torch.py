"""The Tensor methods ``std``, ``var``, ``all`` and ``any`` take no ``out=`` (the functions do): refused in
PyTorch's parser's words, the overloads listed with its notes under those whose argument count matches. The calls
they take still give torch's values. Oracle: torch, same calls (``m`` stands for either library). A Python
signature cannot tell ``keepdim`` by position from by name (distnn lists it by name, except after a positional
``unbiased``) nor None given from None left out: the cases here give them as distnn lists them."""
import numpy as np
import pytest

from expression_outcome import same_as_torch

REFUSED = [
    "x.std(out=o)", "x.std(1, out=o)", "x.std(1, True, out=o)", "x.std(1, True, True, out=o)",
    "x.std(0, False, out=o)", "x.std(correction=1, out=o)", "x.std(0, correction=0, out=o)",
    "x.std(1, keepdim=True, out=o)", "x.std((0, 1), correction=2, keepdim=True, out=o)", "x.std(out=None)",
    "x.var(out=o)", "x.var(1, True, out=o)", "x.var(1, keepdim=True, out=o)", "x.var((0, 1), out=o)",
    "x.var(out=3)", "x.var(0, True, False, out=o)",
    "x.all(out=o)", "x.all(1, out=o)", "x.all(out=None)", "x.all(0, keepdim=True, out=o)", "x.all(keepdim=True, out=o)",
    "x.any(out=o)", "x.any(0, out=ob)", "x.any(1, out=3)", "x.any((0, 1), out=o)", "x.any(-1, keepdim=False, out=o)",
]
TAKEN = [
    "x.std()", "x.std(1)", "x.std(1, True, True)", "x.std(0, keepdim=True)", "x.std(correction=0)",
    "x.var(1, False)", "x.var(dim=0, keepdim=True)", "x.all()", "x.all(1)", "x.all(0, True)",
    "x.all(dim=1, keepdim=True)", "x.any()", "x.any(1, keepdim=True)", "x.any(0, False)",
]


def _outcome(m, expression):
    x = m.tensor(np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]), dtype=m.float32)
    o, ob = m.zeros(()), m.zeros(3, dtype=m.bool)
    try:
        result = eval(expression)  # noqa: S307 - the test's own expressions
    except Exception as e:  # noqa: BLE001 - the error's type and message are what is compared
        return type(e).__name__, str(e)
    return "ok", str(result.dtype).split(".")[-1], tuple(result.shape), np.round(result.numpy().astype(np.float64), 5).tolist()


@pytest.mark.parametrize("expression", REFUSED)
def test_refused_as_torch(expression):
    same_as_torch(_outcome, expression, "TypeError")


@pytest.mark.parametrize("expression", TAKEN)
def test_taken_as_torch(expression):
    same_as_torch(_outcome, expression, "ok")
