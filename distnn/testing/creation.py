"""PyTorch's ``torch.testing.make_tensor``: a tensor of random values for a test, drawn from distnn's default
generator (so ``distnn.manual_seed`` makes it repeatable).

Values are uniform on ``[low, high)``: by default ``[0, 2)`` for bool, ``[0, 10)`` for unsigned integers,
``[-9, 10)`` for signed ones and ``[-9, 9)`` for floating and complex dtypes (both parts), as PyTorch's; a
bound outside the dtype's finite range is clamped to it, and integer bounds are rounded up.
"""
from __future__ import annotations

import collections.abc
import math
import warnings

import numpy as np

from distnn import random
from distnn.autograd.tensor import Tensor
from distnn.backend import to_device

__all__ = ["make_tensor"]


def make_tensor(*shape, dtype, device, low=None, high=None, requires_grad=False, noncontiguous=False,
                exclude_zero=False, memory_format=None) -> Tensor:
    """``torch.testing.make_tensor``: a ``shape`` tensor (ints, or one sequence) of ``dtype`` on ``device``.

    ``noncontiguous=True``: every other element of a tensor twice as long in its last dim (so not contiguous
    and not at offset 0), for more than one element; ``memory_format``: laid out that way (exclusive with
    ``noncontiguous``); ``exclude_zero``: zeros replaced by 1 (bool, integers) or the dtype's smallest
    normal number; ``requires_grad`` only for floating and complex dtypes. Refused as PyTorch refuses: NaN
    bounds, ``low >= high``, an interval outside the dtype's (ValueError), a dtype it has no values for
    (TypeError)."""
    if len(shape) == 1 and isinstance(shape[0], collections.abc.Sequence):
        shape = shape[0]
    shape = tuple(shape)
    dt = _dtype(dtype)
    if noncontiguous and memory_format is not None:
        raise ValueError(f"The parameters `noncontiguous` and `memory_format` are mutually exclusive, but got "
                         f"noncontiguous={noncontiguous} and memory_format={memory_format}")
    if requires_grad and dt.kind in "biu":
        raise ValueError(f"`requires_grad=True` is not supported for boolean and integral dtypes, but got "
                         f"dtype={dt}")
    noncontiguous = noncontiguous and math.prod(shape) > 1
    drawn_shape = (*shape[:-1], 2 * shape[-1]) if noncontiguous else shape
    gen = random.default_generator()
    if dt.kind == "b":
        low, high = _bounds(low, high, dt, 0, 2, 0, 2)
        values = gen.integers(low, high, size=drawn_shape).astype(dt)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        low, high = _bounds(low, high, dt, int(info.min), int(info.max) + (dt != np.int64), -9, 10)
        values = gen.integers(low, high, size=drawn_shape, dtype=dt, endpoint=False)
    else:
        info = np.finfo(dt)
        low, high = _bounds(low, high, dt, float(info.min), float(info.max), -9, 9)
        parts = 2 if dt.kind == "c" else 1
        draws = _uniform(gen, low, high, (*drawn_shape, parts), info)
        values = (draws[..., 0] + 1j * draws[..., 1] if parts == 2 else draws[..., 0]).astype(dt)
    if noncontiguous:
        values = values[..., 1::2]  # (offset by one: a wrong storage offset shows too, as PyTorch's)
    if exclude_zero:
        values[values == 0] = 1 if dt.kind in "biu" else np.finfo(dt).tiny
    result = Tensor(to_device(values, str(device)))
    if memory_format is not None:
        result = result.contiguous(memory_format=memory_format)
    if dt.kind in "fc" and requires_grad:
        result.requires_grad_(True)
    return result


def _dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.kind not in "biufc":
        raise TypeError(f"The requested dtype '{dtype}' is not supported by distnn.testing.make_tensor().")
    return dt


def _bounds(low, high, dt, lowest, highest, default_low, default_high):
    """PyTorch's ``modify_low_high``: the defaults, the checks, the clamping to ``[lowest, highest)``."""
    low = default_low if low is None else low
    high = default_high if high is None else high
    if any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
        raise ValueError(f"`low` and `high` cannot be NaN, but got low={low} and high={high}")
    if low == high and dt.kind in "fc":
        warnings.warn("Passing `low==high` to `distnn.testing.make_tensor` for floating or complex types is "
                      "deprecated, as in PyTorch since 2.1. Use `distnn.full(...)` instead.", FutureWarning,
                      stacklevel=3)
    elif low >= high:
        raise ValueError(f"`low` must be less than `high`, but got {low} >= {high}")
    elif high < lowest or low >= highest:
        raise ValueError(f"The value interval specified by `low` and `high` is [{low}, {high}), but {dt} only "
                         f"supports [{lowest}, {highest})")
    low, high = min(max(low, lowest), highest), min(max(high, lowest), highest)
    return (math.ceil(low), math.ceil(high)) if dt.kind in "biu" else (low, high)


def _uniform(gen, low, high, shape, info):
    """Uniform on ``[low, high)`` in float64; halved and doubled when the width would overflow (PyTorch's
    ``_uniform_random_``)."""
    if high - low >= float(info.max):
        return gen.uniform(low / 2, high / 2, size=shape) * 2
    return gen.uniform(low, high, size=shape)
