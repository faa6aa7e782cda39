"""Reductions given None for a bool argument (``keepdim``, ``std``/``var``'s ``unbiased``), ``std``/``var``'s
``unbiased`` beside ``correction`` or beside ``keepdim`` without ``dim``, and ``median``/``nanmedian``/``mode``'s
``dim=None``: PyTorch's parser refuses them all (distnn took None as False, as the default, or as every dim);
the calls beside them that PyTorch takes stay taken. Oracle: torch, same calls (``m`` stands for either library).

A Python signature cannot tell ``x.sum(0, None)`` from ``x.sum(0, keepdim=None)``: PyTorch names the position in
the first; distnn gives the keyword form's words, so the positional forms are compared without ``(position N)``
(:func:`test_positional_form_as_torch`). Likewise ``x.std(0, unbiased=True, correction=1)`` is listed as
``x.std(0, True, correction=1)`` is (arguments given by position up to the first left out)."""
import re

import pytest
import torch

import distnn

from expression_outcome import outcome

CASES = [
    # None for keepdim, beside a dim: refused (sum, mean, prod, median, nanmedian, mode; methods and functions)
    "x.sum(0, keepdim=None)", "x.sum(None, keepdim=None)", "x.mean(0, keepdim=None)", "x.prod(0, keepdim=None)",
    "x.prod(dim=0, keepdim=None)", "m.sum(x, 0, keepdim=None)", "m.prod(x, dim=0, keepdim=None)",
    "m.mean(x, 0, keepdim=None)", "x.median(dim=0, keepdim=None)", "x.nanmedian(0, keepdim=None)",
    "x.mode(dim=0, keepdim=None)", "m.median(x, 0, keepdim=None)", "m.mode(x, 0, keepdim=None)",
    # ... and without one: as keepdim without dim
    "x.sum(keepdim=None)", "x.mean(keepdim=None)", "m.sum(x, keepdim=None)", "m.prod(x, keepdim=None)",
    # std / var: None for unbiased or keepdim
    "x.std(0, None)", "x.var(0, None)", "x.std(unbiased=None)", "x.var(unbiased=None)", "x.std(0, True, None)",
    "x.std(0, keepdim=None)", "x.var(1, keepdim=None)", "x.std(correction=1, keepdim=None)",
    "x.std(keepdim=None)",
    # unbiased beside keepdim without dim, or beside correction
    "x.var(unbiased=True, keepdim=True)", "x.var(unbiased=False, keepdim=True)", "x.std(unbiased=True, keepdim=False)",
    "x.std(unbiased=True, correction=1)", "x.std(unbiased=False, correction=1)", "x.var(unbiased=True, correction=0)",
    "x.std(0, True, correction=1)",
    # ... as functions (their out too: the overload without dim takes none)
    "m.std(x, 0, None)", "m.var(x, unbiased=None)", "m.std(x, 0, keepdim=None)", "m.std(x, 0, True, None)",
    "m.var(x, unbiased=True, keepdim=True)", "m.std(x, unbiased=True, correction=1)",
    "m.var(x, unbiased=False, correction=0)", "m.var(x, unbiased=False, out=m.zeros(()))",
    "m.std(x, correction=1, keepdim=None)",
    # median / nanmedian / mode: dim an int, required beside keepdim
    "x.median(dim=None)", "x.nanmedian(dim=None)", "x.mode(dim=None)", "m.median(x, dim=None)",
    "m.nanmedian(x, dim=None)", "m.mode(x, dim=None)", "x.median(keepdim=True)", "m.median(x, keepdim=True)",
    "x.nanmedian(keepdim=False)",
    # taken, as before
    "x.sum(None)", "x.sum(dim=None)", "x.sum(0, False, dtype=None)", "x.sum(0, keepdim=True)", "x.prod(0, True)",
    "x.mean(1, keepdim=False)", "m.sum(x, 0, True)", "m.prod(x, 1, keepdim=True)", "m.mean(x, 0, keepdim=True)",
    "x.std(None)", "x.std(dim=None)", "x.std(None, True)", "x.std(None, True, True)", "x.std(0, True, False)",
    "x.var(dim=None, unbiased=True, keepdim=True)", "x.std(0, True, keepdim=True)", "x.std(unbiased=True)",
    "x.var(unbiased=False)", "x.std(None, correction=1, keepdim=True)", "x.std(keepdim=False)",
    "x.var(keepdim=True)", "x.var(0, unbiased=True, keepdim=True)", "x.std(0, correction=None)",
    "x.var(1, correction=0)", "x.std(correction=0, keepdim=True)", "x.std(True)", "x.std()", "x.var(0)",
    "x.median()", "m.median(x)", "x.median(0)", "x.median(0, keepdim=True)", "x.nanmedian()", "x.nanmedian(1, True)",
    "x.mode()", "x.mode(0, True)", "x.mode(keepdim=True)", "m.mode(x, 0)",
    "m.std(x)", "m.std(x, 0)", "m.std(x, 0, True)", "m.std(x, None, True, True)", "m.var(x, unbiased=False)",
    "m.var(x, 0, unbiased=False, keepdim=True)", "m.std(x, True)", "m.var(x, correction=0)", "m.std(x, keepdim=True)",
    "m.var_mean(x, 0)", "m.std_mean(x, unbiased=False)", "m.var_mean(x, None, True, True)",
    "m.std(x, 0, out=m.zeros(3))", "m.var(x, 0, True, out=m.zeros(3))", "m.var(x, correction=0, out=m.zeros(()))",
]

POSITIONAL = [
    "x.sum(0, None)", "x.sum(None, None)", "x.mean(0, None)", "x.prod(0, None)", "m.sum(x, 0, None)",
    "m.prod(x, 0, None)", "x.median(0, None)", "x.nanmedian(0, None)", "x.mode(0, None)", "m.median(x, 0, None)",
    "x.median(None)", "x.nanmedian(None)", "x.mode(None)", "m.median(x, None)", "m.mode(x, None)",
]


def _outcome(m, expression):
    return outcome(m, expression, [[1.0, 2.0, 2.0], [4.0, 3.0, 6.0]])


@pytest.mark.parametrize("expression", CASES)
def test_as_torch(expression):
    assert _outcome(distnn, expression) == _outcome(torch, expression)


@pytest.mark.parametrize("expression", POSITIONAL)
def test_positional_form_as_torch(expression):
    """Refused as PyTorch refuses them, in the keyword form's words (the position is not named)."""
    kind, message = _outcome(torch, expression)
    assert kind == "TypeError"
    assert _outcome(distnn, expression) == (kind, re.sub(r" \(position \d\)", "", message))
