"""Reductions given their defaults explicitly (``dim=None``, ``dim=()``, ``correction=None``, ``keepdim=False``),
by position or by keyword, and ``std``/``var``/``var_mean``/``std_mean``'s overload ``(bool unbiased)``: a bool
where ``dim`` goes is ``unbiased`` over all dims (``x.std(True)``, was ``dim=1``), refused in PyTorch's parser's
words beside any other argument; ``var_mean``/``std_mean`` take ``dim, unbiased, keepdim`` by position; ``max``/``min``
refuse ``dim=None`` and ``keepdim`` without ``dim``, in PyTorch's parser's words (they took them). Oracle:
torch, same calls (``m`` stands for either library). What a Python signature cannot tell apart (``dim=True`` from
``True``; None given from None left out: ``x.max(None)`` is refused as ``x.max(dim=None)``) is left out."""
import numpy as np
import pytest
import torch

import distnn

from expression_outcome import outcome

CASES = [
    # given as their defaults (matched before; kept so that they stay so)
    "x.sum(dim=None)", "x.sum(None, True)", "x.sum(dim=None, keepdim=True)", "x.sum(dim=(), keepdim=False)",
    "x.sum(())", "m.sum(x, dim=())", "x.mean(dim=None)", "x.mean(dim=(), keepdim=False)", "x.mean((), True)",
    "m.mean(x, dim=(), keepdim=False)", "m.mean(x, dim=None, keepdim=False)", "m.mean(x, (), False)",
    "x.std(dim=None, correction=None)", "x.std(None)", "x.std(None, True)", "x.std(None, correction=None)",
    "x.std(correction=None)", "x.std(dim=None, keepdim=True)", "x.std(unbiased=False)", "x.std(0, True, True)",
    "x.std(dim=())", "x.std(correction=1.5)", "x.std(0, correction=True)", "x.std(keepdim=True)",
    "x.var(None, correction=0)", "x.var(dim=None, unbiased=False)", "m.std(x, dim=None, correction=None)",
    "m.std(x, None, True)", "m.var(x, dim=(), keepdim=False)", "x.amax(dim=None)", "x.amax(dim=())",
    "x.argmax(dim=None, keepdim=True)", "m.argmax(x, None, True)", "x.all(dim=None)", "x.all(None, True)",
    "x.any(dim=None, keepdim=True)", "x.all(dim=())", "x.nansum(None, True)", "x.nanmean(dim=None, keepdim=True)",
    "x.norm(p=2, dim=None, keepdim=True)", "x.count_nonzero(dim=None)", "m.std_mean(x, dim=None, correction=None)",
    "m.var_mean(x, unbiased=False)", "m.var_mean(x, dim=0, unbiased=False)", "m.var_mean(x, correction=0)",
    # a bool where dim goes: unbiased
    "x.std(True)", "x.std(False)", "x.var(True)", "x.var(False)", "m.var(x, True)", "m.std(x, False)",
    "m.var_mean(x, True)", "m.var_mean(x, False)", "m.std_mean(x, False)",
    # ... and beside anything else, refused
    "x.std(True, True)", "x.std(True, keepdim=True)", "x.std(False, correction=0)", "x.var(False, True, True)",
    "m.std(x, True, False)", "m.var(x, False, keepdim=True)", "m.var_mean(x, True, keepdim=True)",
    "m.var_mean(x, True, True)", "m.std_mean(x, False, correction=0)", "m.var_mean(x, True, True, True)",
    # var_mean / std_mean: dim, unbiased, keepdim by position
    "m.var_mean(x, None, True)", "m.var_mean(x, 0, True)", "m.var_mean(x, 0, False, True)",
    "m.std_mean(x, 1, False, keepdim=True)", "m.var_mean(x, 0, True, True)", "m.std_mean(x, (0, 1), False)",
    # max / min: dim=None and keepdim without dim are refused (dim is an int); the calls they take unchanged
    "x.max(dim=None)", "x.min(dim=None)", "x.max(keepdim=True)", "x.min(keepdim=False)",
    "x.max(dim=None, keepdim=True)", "x.max(dim=None, keepdim=False)", "m.max(x, dim=None)", "m.min(x, dim=None)",
    "m.max(x, keepdim=True)", "m.min(x, keepdim=True)", "m.max(x, dim=None, keepdim=True)", "m.max(x)",
    "m.max(x, 1)", "m.max(x, 1, True)", "m.min(x, dim=0, keepdim=True)", "x.max()", "x.max(1)",
    "x.max(dim=0, keepdim=True)", "x.min(-1, True)",
]


def _outcome(m, expression):
    return outcome(m, expression, np.arange(1.0, 7.0).reshape(2, 3))


@pytest.mark.parametrize("expression", CASES)
def test_as_torch(expression):
    assert _outcome(distnn, expression) == _outcome(torch, expression)
