"""Joining and splitting tensors: concat (cat), stack, split.

``concat`` and ``stack`` refuse shapes as PyTorch's do (:mod:`.shape_checks`): its messages, raised as
:class:`.shape_checks.ShapeError`, both a RuntimeError (PyTorch's) and a ValueError (distnn's before).
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.dtype_rules import torch_operands
from distnn.autograd.function import Function
from distnn.backend import get_array_module

from ._dims import dim_or_axis
from .indexing import GetItem
from .shape_checks import cat_dim, stack_dim


class Concat(Function):
    torch_name = "CatBackward0"
    saves_tensors = False
    supports_complex = True

    def forward(self, *arrays, axis=0, skipped=()):
        xp = get_array_module(*arrays)
        self.axis, self.skipped = axis, skipped
        if skipped:  # (PyTorch's 1-D empty tensors, left out whatever the others' shapes)
            arrays = [a for i, a in enumerate(arrays) if i not in skipped]
        self.sizes = [a.shape[axis] for a in arrays]
        return xp.concatenate(arrays, axis=axis)

    def backward(self, g):
        xp = get_array_module(g)
        bounds = []
        total = 0
        for s in self.sizes[:-1]:
            total += s
            bounds.append(total)
        grads = xp.split(g, bounds, axis=self.axis)
        if self.skipped:
            grads = iter(grads)
            return tuple(xp.zeros((0,), dtype=g.dtype) if i in self.skipped else next(grads)
                         for i in range(len(self.sizes) + len(self.skipped)))
        return tuple(grads)


class Stack(Function):
    torch_name = "StackBackward0"
    saves_tensors = False
    supports_complex = True

    def forward(self, *arrays, axis=0):
        xp = get_array_module(*arrays)
        self.axis = axis
        return xp.stack(arrays, axis=axis)

    def backward(self, g):
        xp = get_array_module(g)
        n = g.shape[self.axis]
        return tuple(xp.take(g, i, axis=self.axis) for i in range(n))


def refuse_lone_tensor(name: str, tensors) -> None:
    """PyTorch's parser refuses one Tensor where a join takes a sequence of them (numpy would join its rows)."""
    if isinstance(tensors, (list, tuple)):  # (the usual call: nothing more to look at)
        return
    from distnn.autograd.tensor import Tensor

    if isinstance(tensors, Tensor):
        raise TypeError(f"{name}(): argument 'tensors' (position 1) must be tuple of Tensors, not Tensor")


def concat(tensors, dim=None, *, axis=None, out=None):
    """Join ``tensors`` along an existing axis (``dim`` as ``torch.cat``, or ``axis`` as numpy; default 0).
    ``out``: the result written into that tensor, PyTorch's rules (:mod:`.out_common`)."""
    refuse_lone_tensor("concat", tensors)
    if out is not None:
        from .out_common import join_into_out

        return join_into_out("concat", lambda ts: concat(ts, dim, axis=axis), out, tensors, grad_name="cat")
    axis = dim_or_axis(dim, axis)
    tensors = list(tensors)
    axis = 0 if axis is None else axis
    # (PyTorch's result dtype: see torch_operands; the skipped tensors take part in it, as in PyTorch)
    operands = torch_operands(*tensors)
    if operands:
        # Fast path: what numpy joins, PyTorch joins the same way (its 1-D empty tensors included); the shape
        # checks below run only for a refusal, to word it as PyTorch's (they doubled a small cat's cost).
        try:
            return Concat.apply(*operands, axis=axis)
        except (ValueError, IndexError):  # (numpy's refusals; an IndexError for a 0-d tensor)
            pass
    axis, skipped = cat_dim([_shape(t) for t in tensors], axis)
    if axis is None:  # (every tensor a 1-D empty one)
        return Concat.apply(*operands, axis=0)
    return Concat.apply(*operands, axis=axis, skipped=skipped)


def cat(tensors, dim=None, *, axis=None, out=None):
    """``torch.cat``: :func:`concat` (``out``'s refusals under cat's name)."""
    refuse_lone_tensor("cat", tensors)
    if out is not None:
        from .out_common import join_into_out

        return join_into_out("cat", lambda ts: concat(ts, dim, axis=axis), out, tensors)
    return concat(tensors, dim, axis=axis)


def stack(tensors, dim=None, *, axis=None, out=None):
    """Join ``tensors`` along a new axis (``dim`` as ``torch.stack``, or ``axis`` as numpy; default 0).
    ``out``: as :func:`concat`'s."""
    refuse_lone_tensor("stack", tensors)
    if out is not None:
        from .out_common import join_into_out

        return join_into_out("stack", lambda ts: stack(ts, dim, axis=axis), out, tensors,
                             stacked_shape=_stacked_shape(dim_or_axis(dim, axis)))
    axis = dim_or_axis(dim, axis)
    tensors = list(tensors)
    axis = 0 if axis is None else axis
    operands = torch_operands(*tensors)
    if operands:  # (fast path, as concat's)
        try:
            return Stack.apply(*operands, axis=axis)
        except (ValueError, IndexError):  # (numpy's refusals; an IndexError for a 0-d tensor)
            pass
    return Stack.apply(*operands, axis=stack_dim([_shape(t) for t in tensors], axis))


def _stacked_shape(axis):
    """For ``stack(..., out=)``: ``tensors`` -> the result's shape (their shapes checked) where PyTorch resizes
    ``out`` before its other checks, which it does along an existing dim; None along a new last dim (PyTorch
    runs ``cat`` of the unsqueezed inputs straight into ``out`` there) or a dim to refuse later."""
    def shape(tensors):
        from distnn.autograd.grad_mode import no_grad

        ndim = len(_shape(tensors[0])) if tensors else -1
        at = 0 if axis is None else axis
        if not tensors or not isinstance(at, int) or not -ndim - 1 <= at <= ndim or at % (ndim + 1) == ndim:
            return None
        with no_grad():
            return tuple(stack(tensors, at).shape)
    return shape


def _shape(t) -> tuple:
    return tuple(t.shape) if hasattr(t, "shape") else np.shape(t)


def split(a, split_size_or_sections, dim=0, *, axis=None):
    """PyTorch's split: pieces of ``split_size_or_sections`` along ``dim`` (an int: that size, the last
    piece smaller; a list: the sizes). With numpy's keyword ``axis=``, numpy's meaning: an int number
    of equal sections, or a list of split points."""
    if axis is not None:
        return _split_at(a, _numpy_bounds(a.shape[axis], split_size_or_sections, axis), axis)
    from .shape_checks import split_bounds  # (PyTorch's refusals)
    from .split_args import split_size

    split_size_or_sections = split_size(split_size_or_sections)  # (a one-element tensor: its value, an int)

    dim, bounds = split_bounds(a.shape, split_size_or_sections, dim)
    sizes = not isinstance(split_size_or_sections, numbers.Integral) and getattr(split_size_or_sections, "ndim", 1)
    return _split_at(a, bounds, dim, "SplitWithSizes" if sizes else "Split")


def _numpy_bounds(n, indices_or_sections, axis):
    if isinstance(indices_or_sections, int):
        if n % indices_or_sections:
            raise ValueError(f"split: axis {axis} of size {n} does not divide into {indices_or_sections} equal sections")
        step = n // indices_or_sections
        return list(range(0, n + 1, step))
    return [0] + list(indices_or_sections) + [n]


def _split_at(a, bounds, axis, op="Split"):
    """The pieces of ``a`` between ``bounds`` along ``axis``: views that one call of ``op`` returns (see
    ``view_index.mark_pieces``)."""
    from distnn.autograd.view_index import mark_pieces

    from .piece_nodes import PIECE_NODES

    node = PIECE_NODES[op]
    pieces = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        index = [slice(None)] * a.ndim
        index[axis] = slice(lo, hi)
        pieces.append(node.apply(a, index=tuple(index)))
    return mark_pieces(pieces, op)
