"""Sparse gradients in the autograd engine: how a leaf's sparse gradient accumulates, as PyTorch's
``AccumulateGrad``. Registered with the engine when ``distnn.sparse`` is imported."""
from __future__ import annotations

import numpy as np

from distnn.autograd import engine, tensor_operators
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module
from distnn.functional.indexing import scatter_add

from . import hooks as _hooks
from .coo import SparseTensor


def accumulate(old, grad):
    """The leaf's new ``.grad`` from its ``old`` one and a new contribution ``grad`` (one of them sparse):
    sparse + sparse is sparse (both entries kept: coalesced when both are, as torch's); a dense old gradient
    takes the sparse one added in place; a sparse old gradient plus a dense one is a new dense array."""
    carrier = next((g for g in (old, grad) if isinstance(g, SparseTensor) and g._dense_of is not None), None)
    if carrier is not None:  # a sparse leaf's dense-layout gradient: the sum is dense (see .dense_grads)
        from .dense_grads import as_dense_array, dense_layout_grad

        total = as_dense_array(old, carrier) + as_dense_array(grad, carrier)
        return dense_layout_grad(total, carrier._dense_of, carrier.shape)
    layout = next((g for g in (old, grad) if isinstance(g, SparseTensor) and g._layout_of is not None), None)
    if layout is not None:  # a sparse leaf's gradient in PyTorch's sparse layout (see .layout_grads)
        from .layout_grads import accumulate_layout

        return accumulate_layout(old, grad, layout)
    if isinstance(old, SparseTensor) and isinstance(grad, SparseTensor):
        return old + grad
    if isinstance(grad, SparseTensor):  # dense += sparse, in place (the array DataParallel may point at)
        dense = old.reshape((grad._rows(),) + grad.shape[grad.sparse_dim():])
        scatter_add(dense, grad._linear(), grad._vals.data.astype(old.dtype, copy=False))
        return old
    return grad + old.to_dense().data.astype(grad.dtype, copy=False)


def accumulate_graph(old, grad):
    """:func:`accumulate` of a ``create_graph=True`` pass: the gradients are Tensors with a graph, so the sum is
    made with recorded ops (new Tensors; neither operand changes). A sparse leaf's dense gradient (``torch.mm``)
    meeting a sparse one is refused, as PyTorch refuses that sum in such a pass."""
    if isinstance(old, SparseTensor) and isinstance(grad, SparseTensor):
        if (old._dense_of is None) != (grad._dense_of is None):
            raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) instead. (create_graph="
                               "True: a sparse leaf's dense gradient from a torch.mm-like product meets a sparse one, "
                               "as in PyTorch)")
        if old._dense_of is not None:
            from .dense_grads import graph_layout_grad

            return graph_layout_grad(old._vals[0] + grad._vals[0], old._dense_of, old.shape)
        return old + grad
    if isinstance(old, SparseTensor) and old._dense_of is not None or (
            isinstance(grad, SparseTensor) and grad._dense_of is not None):
        raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) instead. (create_graph=True: "
                           "a sparse leaf's dense gradient from a torch.mm-like product meets a sparse one, as in "
                           "PyTorch)")
    return sum(g.to_dense() if isinstance(g, SparseTensor) else g for g in (old, grad))  # (a dense leaf's)


def densify(grad, like):
    """``grad`` as a dense array in ``like``'s dtype (a dense gradient is returned as it is)."""
    if not isinstance(grad, SparseTensor):
        return grad
    out = get_array_module(like).zeros(grad.shape, dtype=like.dtype)
    return accumulate(out, grad)


engine._sparse.type = SparseTensor
engine._sparse.accumulate = accumulate
engine._sparse.accumulate_graph = accumulate_graph
engine._sparse.tensor_grad = _hooks.sparse_grad_of
engine._sparse.values_seed = _hooks.output_values_seed
tensor_operators._sparse_type = SparseTensor  # (dense + sparse and dense - sparse defer to the sparse operand)


def sparse_weight_grad(node, rows, values, num_rows, padding_idx=None):
    """The sparse gradient ``sparse=True`` embeddings give their weight (input 0 of ``node``): entry k is
    ``values[k]`` at row ``rows[k]`` (PyTorch's, uncoalesced; entries of ``padding_idx`` left out), or None
    when the weight is not a leaf or has ``register_hook`` hooks: then the caller gives a dense gradient
    (PyTorch would pass a sparse one on through the ops that made the weight, or to the hooks)."""
    weight = node.parents[0]
    if not isinstance(weight, Tensor) or weight._grad_hooks:
        return None
    xp = get_array_module(values)
    if padding_idx is not None:
        keep = rows != padding_idx
        rows, values = rows[keep], values[keep]
    else:
        values = values.copy()  # (often a view of the incoming gradient: the leaf keeps this one)
    indices = xp.asarray(rows, dtype=np.int64).reshape(1, -1)
    return SparseTensor(indices, Tensor(values), (num_rows,) + tuple(values.shape[1:]))


__all__ = ["accumulate", "accumulate_graph", "densify", "sparse_weight_grad"]
