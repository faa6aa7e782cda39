"""Joining and splitting tensors: concat (cat), stack, split."""
from __future__ import annotations

import numbers

from distnn.autograd.dtype_rules import torch_operands
from distnn.autograd.function import Function
from distnn.backend import get_array_module

from ._dims import dim_or_axis
from .indexing import GetItem


class Concat(Function):
    saves_tensors = False

    def forward(self, *arrays, axis=0):
        xp = get_array_module(*arrays)
        self.axis = axis
        self.sizes = [a.shape[axis] for a in arrays]
        try:
            return xp.concatenate(arrays, axis=axis)
        except ValueError:
            raise ValueError(f"concat along axis {axis}: shapes {[tuple(a.shape) for a in arrays]} do not match") from None

    def backward(self, g):
        xp = get_array_module(g)
        bounds = []
        total = 0
        for s in self.sizes[:-1]:
            total += s
            bounds.append(total)
        return tuple(xp.split(g, bounds, axis=self.axis))


class Stack(Function):
    saves_tensors = False

    def forward(self, *arrays, axis=0):
        xp = get_array_module(*arrays)
        self.axis = axis
        try:
            return xp.stack(arrays, axis=axis)
        except ValueError:
            raise ValueError(f"stack: shapes {[tuple(a.shape) for a in arrays]} must all be equal") from None

    def backward(self, g):
        xp = get_array_module(g)
        n = g.shape[self.axis]
        return tuple(xp.take(g, i, axis=self.axis) for i in range(n))


def concat(tensors, dim=None, *, axis=None):
    """Join ``tensors`` along an existing axis (``dim`` as ``torch.cat``, or ``axis`` as numpy; default 0)."""
    axis = dim_or_axis(dim, axis)
    # (PyTorch's result dtype: see torch_operands)
    return Concat.apply(*torch_operands(*tensors), axis=0 if axis is None else axis)


cat = concat


def stack(tensors, dim=None, *, axis=None):
    """Join ``tensors`` along a new axis (``dim`` as ``torch.stack``, or ``axis`` as numpy; default 0)."""
    axis = dim_or_axis(dim, axis)
    return Stack.apply(*torch_operands(*tensors), axis=0 if axis is None else axis)


def split(a, split_size_or_sections, dim=0, *, axis=None):
    """PyTorch's split: pieces of ``split_size_or_sections`` along ``dim`` (an int: that size, the last
    piece smaller; a list: the sizes). With numpy's keyword ``axis=``, numpy's meaning: an int number
    of equal sections, or a list of split points."""
    if axis is not None:
        return _split_at(a, _numpy_bounds(a.shape[axis], split_size_or_sections, axis), axis)
    n = a.shape[dim]
    if isinstance(split_size_or_sections, numbers.Integral):
        split_size_or_sections = int(split_size_or_sections)
        if split_size_or_sections <= 0:
            raise ValueError(f"split: split_size must be a positive int, got {split_size_or_sections}")
        bounds = list(range(0, n, split_size_or_sections)) + [n] if n else [0, 0]  # (an empty dim: one empty piece)
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n:
            raise ValueError(f"split: the sizes {sizes} add up to {sum(sizes)}, not to the size {n} of dim {dim}")
        bounds = [0]
        for s in sizes:
            bounds.append(bounds[-1] + s)
    return _split_at(a, bounds, dim)


def _numpy_bounds(n, indices_or_sections, axis):
    if isinstance(indices_or_sections, int):
        if n % indices_or_sections:
            raise ValueError(f"split: axis {axis} of size {n} does not divide into {indices_or_sections} equal sections")
        step = n // indices_or_sections
        return list(range(0, n + 1, step))
    return [0] + list(indices_or_sections) + [n]


def _split_at(a, bounds, axis):
    pieces = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        index = [slice(None)] * a.ndim
        index[axis] = slice(lo, hi)
        pieces.append(GetItem.apply(a, index=tuple(index)))
    return pieces
