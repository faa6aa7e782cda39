"""Transposing a sparse COO tensor, as PyTorch 2.13's: ``t()``, ``t_()``, ``transpose(d0, d1)``, ``transpose_``,
``swapaxes``/``swapdims``, ``mT``, ``adjoint()`` and ``T``.

Two sparse dims swap their rows of the indices; the values are copied, in the same order (PyTorch's result is a
clone). The result is flagged uncoalesced, as PyTorch's (its entries are no longer in sorted order), except
when nothing moves (``d0 == d1``, a tensor of fewer than 2 dims): then the flag is kept. Dense dims do not
transpose (PyTorch refuses them too). The backward of the values is the identity; a sparse leaf gets PyTorch's
gradient, the transposed tensor's gradient transposed back (in the transposed tensor's order, uncoalesced:
:mod:`.layout_grads`).
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.autograd.grad_mode import is_grad_enabled

from distnn.backend import get_array_module

from .coo import SparseTensor
from .layout_grads import carrier_for, distinct_grad, takes_layout
from .rows import gather_rows


class TransposeBackward0(Function):
    """The values of a transposed sparse tensor (a copy); backward: the identity, or PyTorch's transposed
    sparse gradient for a sparse leaf (see the module docstring)."""

    torch_name = "TransposeBackward0"
    saves_tensors = False  # (backward reads the indices only)

    def forward(self, values, out_idx=None, leaf_idx=None, size=(), dims=(0, 0), coalesced=False):
        self.out_idx, self.leaf_idx, self.size, self.dims, self.coalesced = out_idx, leaf_idx, size, dims, coalesced
        return values.copy()

    def backward(self, grad):
        if not takes_layout(self.parents[0]):
            return grad
        g = distinct_grad(self.out_idx, self.size, self.coalesced, grad)  # (the transposed tensor's, sorted)
        d0, d1 = self.dims
        if d0 == d1:
            return carrier_for(self.parents[0], g, self.leaf_idx)
        idx = g._idx.copy()
        idx[[d0, d1]] = idx[[d1, d0]]
        size = list(self.size)
        size[d0], size[d1] = size[d1], size[d0]
        return carrier_for(self.parents[0], SparseTensor(idx, g._vals, tuple(size)), self.leaf_idx)

    def backward_graph(self, g):  # (create_graph: the identity, recorded under this node's name, as PyTorch's)
        xp = get_array_module(g.data)
        return (gather_rows(g, xp.arange(g.shape[0]), label=self.name()),)


class TBackward0(TransposeBackward0):
    torch_name = "TBackward0"


class TBackward1(TransposeBackward0):  # (t_)
    torch_name = "TBackward1"


class TransposeBackward1(TransposeBackward0):  # (transpose_)
    torch_name = "TransposeBackward1"


class PermuteBackward0(TransposeBackward0):  # (.T)
    torch_name = "PermuteBackward0"


def _wrap(d, n: int) -> int:
    if isinstance(d, bool) or not isinstance(d, int):
        raise TypeError(f"transpose(): argument 'dim0' must be int, not {type(d).__name__}")
    low, high = -max(n, 1), max(n, 1) - 1
    if not low <= d <= high:
        raise IndexError(f"Dimension out of range (expected to be in range of [{low}, {high}], but got {d})")
    return d % max(n, 1)


def _check_t(s: SparseTensor, who: str) -> None:
    if s.sparse_dim() > 2 or s.dense_dim() != 0:
        raise RuntimeError(f"{who} expects a tensor with <= 2 sparse and 0 dense dimensions, but got "
                           f"{s.sparse_dim()} sparse and {s.dense_dim()} dense dimensions")


def transposed(s: SparseTensor, d0, d1, node=TransposeBackward0):
    """``(indices, values, size, coalesced)`` of ``s`` with dims ``d0`` and ``d1`` swapped (a new values tensor
    made by ``node``)."""
    d0, d1 = _wrap(d0, s.dim()), _wrap(d1, s.dim())
    sd = s.sparse_dim()
    if d0 != d1 and not (d0 < sd and d1 < sd):
        raise RuntimeError(f"sparse transpose: transposed dimensions must be sparse Got sparse_dim: {sd}, d0: {d0}, "
                           f"d1: {d1}")
    idx, size = s._idx, list(s.shape)
    if d0 != d1:
        idx = idx.copy()
        idx[[d0, d1]] = idx[[d1, d0]]
        size[d0], size[d1] = size[d1], size[d0]
    kept = d0 == d1 or s.dim() < 2  # (nothing moves: the flag stays, as PyTorch's)
    vals = node.apply(s._vals, out_idx=idx, leaf_idx=s._idx, size=tuple(size), dims=(d0, d1),
                      coalesced=kept and s.is_coalesced())
    return idx, vals, tuple(size), kept and s.is_coalesced()


def transpose(s: SparseTensor, dim0, dim1, node=TransposeBackward0) -> SparseTensor:
    """``s.transpose(dim0, dim1)``: see the module docstring."""
    idx, vals, size, coalesced = transposed(s, dim0, dim1, node)
    return SparseTensor(idx, vals, size, coalesced)


def t(s: SparseTensor) -> SparseTensor:
    """``s.t()``: a 2-D tensor's transpose (0-D and 1-D: a copy), sparse dims only, as PyTorch's."""
    _check_t(s, "t()")
    return transpose(s, 0, min(1, max(s.dim() - 1, 0)), TBackward0)


def permute_t(s: SparseTensor) -> SparseTensor:
    """``s.T``: ``t()`` for up to 2 dims (PyTorch's node is a permute); more dims are refused by name."""
    if s.dim() > 2:
        raise NotImplementedError(f"Tensor.T of a {s.dim()}-D sparse COO tensor is not supported in distnn (PyTorch "
                                  "reverses all dims, and deprecates .T for more than 2 dims); use permute-free "
                                  "transpose(d0, d1) instead")
    if s.dense_dim() != 0:
        raise RuntimeError("sparse transpose: transposed dimensions must be sparse Got sparse_dim: "
                           f"{s.sparse_dim()}, d0: 0, d1: 1")
    return transpose(s, 0, min(1, max(s.dim() - 1, 0)), PermuteBackward0)


def _check_in_place(s: SparseTensor) -> None:
    if s.requires_grad and s.is_leaf and is_grad_enabled():
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation.")


def transpose_(s: SparseTensor, dim0, dim1, node=TransposeBackward1) -> SparseTensor:
    """In-place ``transpose``: ``s`` itself changes (refused on a leaf that requires grad, as PyTorch's)."""
    _check_in_place(s)
    s._idx, s._vals, s._size, s._coalesced = transposed(s, dim0, dim1, node)
    return s


def t_(s: SparseTensor) -> SparseTensor:
    """In-place ``t()``."""
    _check_in_place(s)
    _check_t(s, "t_()")
    return transpose_(s, 0, min(1, max(s.dim() - 1, 0)), TBackward1)


__all__ = ["transpose", "transpose_", "t", "t_", "permute_t"]


def _method(fn, doc):
    fn.__doc__ = doc
    return fn


# SparseTensor's transpose methods (PyTorch's names), defined here with the rest of the concept
SparseTensor.t = _method(lambda self: t(self), "``t()``: the transpose of a sparse matrix (:mod:`.transpose`).")
SparseTensor.t_ = _method(lambda self: t_(self), "In-place ``t()`` (:mod:`.transpose`).")
SparseTensor.transpose = _method(lambda self, dim0, dim1: transpose(self, dim0, dim1),
                                 "``transpose(dim0, dim1)`` of two sparse dims (:mod:`.transpose`).")
SparseTensor.transpose_ = _method(lambda self, dim0, dim1: transpose_(self, dim0, dim1),
                                  "In-place ``transpose(dim0, dim1)`` (:mod:`.transpose`).")
SparseTensor.swapaxes = SparseTensor.swapdims = SparseTensor.transpose
SparseTensor.adjoint = _method(lambda self: transpose(self, -2, -1),
                               "``adjoint()``: ``transpose(-2, -1)`` (real dtypes; :mod:`.transpose`).")
SparseTensor.T = property(permute_t, doc="``T``: ``t()`` with PyTorch's permute node (:mod:`.transpose`).")
SparseTensor.mT = property(lambda self: transpose(self, -2, -1),
                           doc="``mT``: ``transpose(-2, -1)`` (:mod:`.transpose`).")
