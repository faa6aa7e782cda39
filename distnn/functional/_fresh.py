"""When an op may compute in place on its own temporaries (numpy's ``out=``), and the 0-d constants it takes there:
fewer allocations and conversions, the same bits."""
from __future__ import annotations

import math

import numpy as np

_CONSTANTS = {}


def fresh_float(x):
    """Whether ``x`` is a float array of at least one dimension, whose ufunc results are fresh arrays that later
    steps may overwrite (``out=``); numpy gives a 0-d array's results as scalars."""
    return getattr(x, "ndim", 0) > 0 and x.dtype.kind == "f"


def constant(value, like):
    """The Python number ``value`` as a 0-d numpy array of ``like``'s (float) dtype, rounded to it as numpy rounds
    a Python number operand, made once: numpy converts a Python number for each ufunc call (about a microsecond on
    a small array), a 0-d array of the same dtype gives the same result dtype and bits. On other array modules
    (cupy), the number itself."""
    if type(like) is not np.ndarray:
        return value
    if value != value or value == 0 and math.copysign(1.0, value) < 0:  # (-0.0 is 0.0 as a key; NaN is no key)
        return np.full((), value, like.dtype)
    key = (value, like.dtype)
    made = _CONSTANTS.get(key)
    if made is None:
        if len(_CONSTANTS) >= 256:  # (celu's alphas are the caller's: keep the table small)
            _CONSTANTS.clear()
        made = _CONSTANTS[key] = np.full((), value, like.dtype)
        made.flags.writeable = False
    return made


__all__ = ["constant", "fresh_float"]
