"""PyTorch's joins built on ``cat``: ``concatenate``, ``hstack``, ``vstack`` (``row_stack``), ``dstack``,
``column_stack``, ``block_diag``, ``cartesian_prod`` and ``combinations``.

They are compositions of recorded ops (reshape, cat, indexing), so their gradients are those ops' gradients;
``block_diag`` has a node of its own (each block's gradient is its window of the output's). Errors are
PyTorch's: an empty list, a block of more than 2 dims, and ``cat``'s own refusals of ranks and sizes.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.dtype_rules import torch_operands
from distnn.autograd.function import Function
from distnn.backend import default_dtype, get_array_module

from .join import concat
from .shape_more import as_tensor, atleast_1d, atleast_2d, atleast_3d, meshgrid


def _tensor_list(tensors, op: str) -> list:
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise RuntimeError(f"{op} expects a non-empty TensorList")
    return tensors


def concatenate(tensors, axis=0, *, dim=None):
    """``torch.concatenate``: ``cat`` along ``axis`` (or ``dim``)."""
    from .join import refuse_lone_tensor

    refuse_lone_tensor("concatenate", tensors)
    return concat([as_tensor(t) for t in tensors], axis if dim is None else dim)


def hstack(tensors):
    """``torch.hstack``: joined column-wise (along dim 1; dim 0 when the tensors are vectors); 0-d ones as (1,)."""
    tensors = [atleast_1d(t) for t in _tensor_list(tensors, "hstack")]
    return concat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """``torch.vstack``: joined row-wise (along dim 0), each at least 2-D (a vector (n,) as a row (1, n))."""
    return concat([atleast_2d(t) for t in _tensor_list(tensors, "vstack")], 0)


def row_stack(tensors):
    """``torch.row_stack``: :func:`vstack`."""
    return concat([atleast_2d(t) for t in _tensor_list(tensors, "row_stack")], 0)


def dstack(tensors):
    """``torch.dstack``: joined depth-wise (along dim 2), each at least 3-D."""
    return concat([atleast_3d(t) for t in _tensor_list(tensors, "dstack")], 2)


def column_stack(tensors):
    """``torch.column_stack``: joined along dim 1, a 0-d or 1-d tensor as a column (n, 1)."""
    tensors = _tensor_list(tensors, "column_stack")
    return concat([t.reshape(t.numel(), 1) if t.ndim <= 1 else t for t in tensors], 1)


class BlockDiag(Function):
    """2-D blocks on the diagonal of a zero matrix; each block's gradient is its window of ``g``."""
    saves_tensors = False

    def forward(self, *blocks):
        xp = get_array_module(*blocks)
        rows, cols = np.cumsum([0] + [b.shape[0] for b in blocks]), np.cumsum([0] + [b.shape[1] for b in blocks])
        self.windows = [(slice(r0, r1), slice(c0, c1)) for r0, r1, c0, c1 in zip(rows, rows[1:], cols, cols[1:])]
        out = xp.zeros((int(rows[-1]), int(cols[-1])), dtype=blocks[0].dtype)
        for block, window in zip(blocks, self.windows):
            out[window] = block
        return out

    def backward(self, g):
        return tuple(g[window] for window in self.windows)


def block_diag(*tensors):
    """``torch.block_diag``: the tensors (0-d as (1, 1), 1-d (n,) as (1, n), 2-d as they are) along the
    diagonal of a matrix of zeros, in their promoted dtype. No tensors: a (1, 0) matrix, as PyTorch's."""
    tensors = [as_tensor(t) for t in tensors]
    for i, t in enumerate(tensors):
        if t.ndim > 2:
            raise RuntimeError(f"torch.block_diag: Input tensors must have 2 or fewer dimensions. Input {i} has "
                               f"{t.ndim} dimensions")
    if not tensors:
        from distnn.autograd.tensor import Tensor

        return Tensor(np.zeros((1, 0), dtype=default_dtype()))
    blocks = [t.reshape(1, -1) if t.ndim < 2 else t for t in tensors]
    return BlockDiag.apply(*torch_operands(*blocks))


def _vector(t):
    if t.ndim != 1:
        raise RuntimeError(f"Expect a 1D vector, but got shape {list(t.shape)}")
    return t


def cartesian_prod(*tensors):
    """``torch.cartesian_prod``: the rows of all combinations of the 1-D tensors' elements, (n1 * n2 * ..., k),
    the last tensor's element varying fastest; one tensor: itself. All must have one dtype."""
    tensors = [_vector(as_tensor(t)) for t in tensors]
    if len(tensors) == 1:
        return tensors[0]
    if not tensors:
        raise RuntimeError("meshgrid expects a non-empty TensorList")
    if any(t.dtype != tensors[0].dtype for t in tensors):
        raise RuntimeError("meshgrid expects all tensors to have the same dtype")
    return concat([g.reshape(-1, 1) for g in meshgrid(*tensors, indexing="ij")], 1)


def combinations(input, r=2, with_replacement=False):  # noqa: A002
    """``torch.combinations``: the ``r``-element combinations of a 1-D tensor's elements as rows (count, r), in
    itertools' order (``with_replacement``: as ``itertools.combinations_with_replacement``). ``r = 0``: an empty
    (0,) tensor. Built as PyTorch's: an ``n ** r`` index grid, masked to increasing indices."""
    x = _vector(as_tensor(input))
    r = int(r)
    if r < 0:
        raise RuntimeError(f"Expect a non-negative number, but got {r}")
    if r == 0:
        return x[:0]
    xp = get_array_module(x.data)
    grids = [g.reshape(-1) for g in np.meshgrid(*[np.arange(x.shape[0])] * r, indexing="ij")]
    keep = np.ones(grids[0].shape, dtype=bool)
    for a, b in zip(grids, grids[1:]):
        keep &= (a <= b) if with_replacement else (a < b)
    index = np.stack([g[keep] for g in grids], axis=1)
    return x[xp.asarray(index)]


__all__ = ["concatenate", "hstack", "vstack", "row_stack", "dstack", "column_stack", "block_diag", "cartesian_prod",
           "combinations"]
