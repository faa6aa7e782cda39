"""Shared by the torch.utils.data oracle tests (tests/test_data_*_torch*.py), which run distnn.data and
torch.utils.data on the same datasets: batches made comparable across the two libraries, and the check that
both refuse the same input with the same exception."""
import re

import numpy as np
import pytest

import distnn


def plain(obj):
    """``obj`` with distnn and torch tensors as numpy arrays and containers as ``(type name, items)``
    (a dict's items keyed as in the dict), so that one library's batch compares with the other's."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numpy()
    if isinstance(obj, distnn.Tensor):
        return np.asarray(obj.data)
    if isinstance(obj, (list, tuple)):  # (a namedtuple too: its own type's name)
        return (type(obj).__name__, [plain(v) for v in obj])
    if isinstance(obj, dict):
        return ("dict", {k: plain(v) for k, v in obj.items()})
    return obj


def same_error(run_distnn, run_torch, gist):
    """Both raise the same exception type, both messages matching the regular expression ``gist``."""
    with pytest.raises(Exception) as theirs:
        run_torch()
    assert re.search(gist, str(theirs.value)), f"torch says {theirs.value!r}"
    with pytest.raises(type(theirs.value), match=gist):
        run_distnn()
