"""Dimension arguments as PyTorch takes them: negative counts from the end, out of range is an IndexError."""
from __future__ import annotations

import numbers


class DimensionError(IndexError, ValueError):
    """A dim out of range: PyTorch's IndexError, and the ValueError distnn's reductions always raised."""


def wrap_dim(dim, ndim: int, op: str, *, named: bool = True) -> int:
    """``dim`` as a non-negative axis of a tensor of ``ndim`` dimensions (a 0-d tensor takes 0 or -1).
    ``named``: the IndexError's message starts with ``op`` (False: PyTorch's own text, as its ops that range-check
    dims in ATen's ``maybe_wrap_dim`` give it)."""
    if type(dim) is int and 0 <= dim < ndim:  # (the common case, before the slower checks of the others)
        return dim
    if not isinstance(dim, numbers.Integral) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {type(dim).__name__} {dim!r}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise DimensionError(f"{op + ': ' if named else ''}Dimension out of range (expected to be in range of "
                             f"[{-n}, {n - 1}], but got {dim})")
    return int(dim) % n


def wrap_dims(dims, ndim: int, op: str) -> tuple:
    """A tuple of distinct non-negative axes from an int or a sequence of them."""
    if isinstance(dims, numbers.Integral):
        dims = (dims,)
    out = tuple(wrap_dim(d, ndim, op) for d in dims)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dims {tuple(dims)} name a dimension more than once")
    return out


def dim_or_axis(dim, axis):
    """One axis from PyTorch's ``dim=`` and numpy's ``axis=`` spellings of it (not both)."""
    if dim is not None and axis is not None:
        raise TypeError("give dim (PyTorch) or axis (numpy), not both")
    return axis if axis is not None else dim
