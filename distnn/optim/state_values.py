"""Conversions of state-dict values (optimizers' and schedulers'): copies, array tests, loaded step counts.

Split out of :mod:`distnn.optim.optimizer`, which still exports every name here.
"""
from __future__ import annotations

from copy import deepcopy
import math

import numpy as np

from distnn.autograd.tensor import Tensor


def _host_if_torch(v):
    """A PyTorch tensor (from a torch optimizer's state dict) as a host numpy array, as
    Module.load_state_dict takes one: cupy.asarray (a GPU parameter's state) reads a CPU tensor only
    through numpy's array protocol, whose copy rules changed in numpy 2, and numpy reads a CUDA
    tensor (a state saved on a GPU, loaded on the CPU) not at all."""
    if not isinstance(v, Tensor) and hasattr(v, "detach") and hasattr(v, "numpy"):
        return v.detach().cpu().numpy()
    return v


_ATOMIC = frozenset((float, int, str, bool, type(None)))


def _copied(v):
    """``deepcopy(v)``, without its generic walk for the plain values (and lists and tuples of them)
    hyperparameters and schedulers' states nearly always are: a checkpoint saves them at every save.
    (deepcopy gives a plain value, or a tuple of them, back as it is.)"""
    t = type(v)
    if t in _ATOMIC:
        return v
    if (t is list or t is tuple) and _ATOMIC.issuperset(map(type, v)):
        return list(v) if t is list else v
    return deepcopy(v)


def _is_array(v) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype") and not isinstance(v, (int, float))


def _is_floating(v) -> bool:
    return np.issubdtype(np.dtype(v.dtype), np.floating) or np.issubdtype(np.dtype(v.dtype), np.complexfloating)


def _as_count(v, key, idx) -> int:
    """A loaded step counter (int, float, 0-d or 1-element array, or tensor: PyTorch's optimizers keep
    ``step`` as a float tensor) as a Python int."""
    x = v
    if not isinstance(v, (int, float)) and callable(getattr(v, "item", None)):
        try:
            x = v.item()  # (numpy, cupy, a PyTorch tensor: one element)
        except (ValueError, RuntimeError, TypeError):
            x = v
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) \
            or not math.isfinite(x) or x != int(x):
        raise ValueError(f"loaded state '{key}' of parameter {idx} is {v!r}, not a whole number of steps")
    return int(x)
