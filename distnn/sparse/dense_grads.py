"""A sparse leaf's gradient in PyTorch's dense layout: ``torch.mm``, ``@`` and ``torch.matmul`` of a sparse leaf
(``sparse_coo_tensor(..., requires_grad=True)``) and a dense matrix give the leaf a *dense* ``.grad`` (the
whole ``grad @ dense.T``, not only at the leaf's indices), where ``torch.sparse.mm`` gives a sparse one on the
leaf's indices (:func:`distnn.sparse.mm`).

A sparse leaf's autograd leaf is its values tensor, of shape ``(nnz,) + dense sizes``; the dense gradient
reaches it as a :class:`~.coo.SparseTensor` with no sparse dims (one block, the whole gradient) tagged with
the leaf's indices (:func:`dense_layout_grad`), which :func:`.grads.accumulate` sums with the leaf's other
gradients (the sum is dense, as PyTorch's dense + sparse) and ``SparseTensor.grad`` hands out dense.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.grad_mode import is_grad_enabled
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module
from distnn.functional.indexing import scatter_add

from distnn.autograd.derivatives import saved_input

from .coo import SparseTensor
from .rows import gather_rows, scatter_rows


def is_sparse_leaf(s) -> bool:
    """Whether ``s`` is a sparse tensor made with ``requires_grad=True`` (PyTorch's leaf; not one built on a
    values tensor that is itself a leaf: there the values get the gradient, dense, as PyTorch's)."""
    return (isinstance(s, SparseTensor) and s._vals.requires_grad and s._vals.is_leaf
            and getattr(s._vals, "_sparse_leaf", False) and is_grad_enabled())


def dense_layout_grad(full, leaf_idx, size) -> SparseTensor:
    """The dense gradient ``full`` of a sparse leaf with indices ``leaf_idx``, as its values leaf takes it."""
    xp = get_array_module(full)
    g = SparseTensor(xp.zeros((0, 1), dtype=np.int64), Tensor(full[None]), size, coalesced=True)
    g._dense_of = leaf_idx
    return g


def graph_layout_grad(full: Tensor, leaf_idx, size) -> SparseTensor:
    """:func:`dense_layout_grad` of a Tensor with a graph (``create_graph=True``): the carrier holds it as is."""
    g = SparseTensor(get_array_module(full.data).zeros((0, 1), dtype=np.int64), full.reshape((1,) + tuple(size)),
                     size, coalesced=True)
    g._dense_of = leaf_idx
    return g


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def as_dense_array(g, like: SparseTensor):
    """A gradient of the values leaf (a values-shaped array, a sparse tensor, or a dense-layout one) as the
    dense array of the sparse leaf's size; ``like`` is a dense-layout gradient (it knows the leaf's indices)."""
    if isinstance(g, SparseTensor):
        return g._vals.data[0] if g._dense_of is not None else g.to_dense().data
    # A values-shaped gradient: each entry's is the dense gradient at its index (entries sharing an index
    # carry the same one), so it is written once per index, as PyTorch's gradient on the coalesced indices.
    out = get_array_module(g).zeros(like.shape, dtype=g.dtype)
    out[tuple(like._dense_of)] = g
    return out


class DenseGradProduct(Function):
    """``sparse @ dense`` (``sparse_first``) or ``dense @ sparse`` of a sparse leaf's values and a dense
    matrix; backward gives the dense operand its gradient and the leaf its whole dense gradient."""

    saves_tensors = "inputs"

    def forward(self, vals, dense, idx=None, size=(), sparse_first=True):
        self.vals, self.dense, self.idx, self.size, self.sparse_first = vals, dense, idx, size, sparse_first
        xp = get_array_module(dense)
        rows, cols = idx[0], idx[1]
        if sparse_first:  # out[r] += v * dense[c]
            out = xp.zeros((size[0], dense.shape[1]), dtype=np.result_type(vals, dense))
            scatter_add(out, rows, vals[:, None] * dense[cols])
            return out
        out = xp.zeros((size[1], dense.shape[0]), dtype=np.result_type(vals, dense))  # out.T[c] += v * dense.T[r]
        scatter_add(out, cols, vals[:, None] * dense.T[rows])
        return out.T

    def backward(self, grad):
        xp = get_array_module(grad)
        rows, cols = self.idx[0], self.idx[1]
        g_dense = None
        if self.needs_input_grad[1]:
            g_dense = xp.zeros(self.dense.shape, dtype=grad.dtype)
            if self.sparse_first:  # S.T @ G
                scatter_add(g_dense, cols, self.vals[:, None] * grad[rows])
            else:  # G @ S.T
                scatter_add(g_dense.T, rows, self.vals[:, None] * grad.T[cols])
        full = grad @ self.dense.T if self.sparse_first else self.dense.T @ grad
        g_vals = dense_layout_grad(full.astype(self.vals.dtype, copy=False), self.idx, self.size)
        return g_vals, g_dense

    def backward_graph(self, g):  # (create_graph: the same formulas on recorded Tensors)
        vals, dense = saved_input(self, 0, self.vals), saved_input(self, 1, self.dense)
        vals, dense = _as_tensor(vals), _as_tensor(dense)
        rows, cols = self.idx[0], self.idx[1]
        g_dense = None
        if self.needs_input_grad[1]:
            if self.sparse_first:  # S.T @ G
                g_dense = scatter_rows(vals.reshape(-1, 1) * gather_rows(g, rows), cols, dense.shape[0])
            else:  # G @ S.T
                g_dense = scatter_rows(vals.reshape(-1, 1) * gather_rows(g.transpose(0, 1), cols), rows,
                                       dense.shape[1]).transpose(0, 1)
        full = g @ dense.transpose(0, 1) if self.sparse_first else dense.transpose(0, 1) @ g
        return graph_layout_grad(full, self.idx, self.size), g_dense


class DenseGradToDense(Function):
    """A sparse leaf's values made into its dense tensor for ``dense + sparse`` and ``dense - sparse``, whose
    gradient for the sparse operand is PyTorch's: the whole dense gradient (``to_dense()`` gives the leaf a
    sparse one, on its indices)."""

    saves_tensors = False  # (backward reads the indices only)

    def forward(self, vals, idx=None, size=()):
        self.idx, self.size, self.dtype = idx, size, vals.dtype
        out = get_array_module(vals).zeros(size, dtype=vals.dtype)
        scatter_add(out, tuple(idx), vals)  # (repeated indices add up)
        return out

    def backward(self, grad):
        # (a copy: Add's backward hands one array to both operands, and a leaf keeps this one)
        return dense_layout_grad(grad.astype(self.dtype, copy=True), self.idx, self.size)

    def backward_graph(self, g):  # (create_graph: the gradient Tensor itself, graph and all)
        return (graph_layout_grad(g, self.idx, self.size),)


def dense_grad_to_dense(s: SparseTensor) -> Tensor:
    """``s.to_dense()`` for ``dense + s`` and ``dense - s``: a sparse leaf gets a dense gradient, as PyTorch's;
    any other sparse tensor the plain ``to_dense()``."""
    if not is_sparse_leaf(s):
        return s.to_dense()
    return DenseGradToDense.apply(s._vals, idx=s._idx, size=s.shape)


def dense_grad_mm(mat1, mat2) -> Tensor:
    """``torch.mm`` of a sparse leaf and a dense matrix (either order): the product of
    :class:`DenseGradProduct` (the operands checked by the caller)."""
    first = isinstance(mat1, SparseTensor)
    s, d = (mat1, mat2) if first else (mat2, mat1)
    return DenseGradProduct.apply(s._vals, d, idx=s._idx, size=s.shape, sparse_first=first)


__all__ = ["is_sparse_leaf", "dense_layout_grad", "as_dense_array", "DenseGradProduct", "dense_grad_mm",
           "DenseGradToDense", "dense_grad_to_dense"]
