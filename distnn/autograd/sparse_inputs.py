"""Sparse COO tensors in ``autograd.grad`` and ``autograd.backward(inputs=...)``, as PyTorch's.

A sparse leaf (``sparse_coo_tensor(..., requires_grad=True)``) is, to distnn's engine, its values tensor: the
pass looks for that, and :func:`grad` hands back what ``backward`` would put in the sparse leaf's ``.grad``
(sparse on the leaf's indices, or dense after ``torch.mm``-like products: ``SparseTensor._grad_of_values``),
as PyTorch's ``autograd.grad`` returns the gradient in the layout of the leaf's ``.grad``.

What distnn's design cannot give PyTorch's answer for is refused by name: a sparse tensor that is not a leaf
(its gradient in PyTorch depends on the op that consumes it, not on its values), and sparse *outputs*
(PyTorch's gradient of a sparse output may hold entries at indices the output does not have). The engine
knows the sparse type only through its registry (``engine._sparse``), so nothing here imports
:mod:`distnn.sparse`.
"""
from __future__ import annotations

from . import engine as _engine
from .tensor import Tensor


def is_sparse(x) -> bool:
    """Whether ``x`` is a sparse COO tensor (False while :mod:`distnn.sparse` is not imported)."""
    return _engine._sparse.type is not None and type(x) is _engine._sparse.type


def refuse_sparse_outputs(outputs, what: str) -> None:
    """A clear refusal of sparse ``outputs`` (a tensor or a sequence), before the generic type check."""
    items = outputs if isinstance(outputs, (list, tuple)) else (outputs,)
    for i, t in enumerate(items):
        if is_sparse(t):
            raise NotImplementedError(
                f"{what}: element {i} is a sparse COO tensor; distnn differentiates dense outputs only (PyTorch's "
                "gradient of a sparse output may hold entries at indices the output lacks). Reduce it first, "
                "e.g. distnn.sparse.sum(out) or out.to_dense()")


def leaves_to_values(inputs, what: str):
    """``inputs`` with each sparse leaf replaced by its values tensor (the autograd leaf the pass looks for),
    and the sparse leaf at each position (None for a dense input); ``(inputs, None)`` when none is sparse."""
    items = (inputs,) if is_sparse(inputs) else inputs
    if not isinstance(items, (list, tuple)) or not any(is_sparse(x) for x in items):
        return inputs, None
    targets, origins = [], []
    for i, x in enumerate(items):
        if not is_sparse(x):
            targets.append(x)
            origins.append(None)
            continue
        if not x.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
        if not (x._vals.is_leaf and getattr(x._vals, "_sparse_leaf", False)):
            raise NotImplementedError(
                f"{what}: element {i} is a sparse COO tensor that is not a leaf (made by an op, or on a values "
                "tensor that requires grad); distnn differentiates sparse leaves only "
                "(sparse_coo_tensor(..., requires_grad=True)). Ask for the gradient of the leaf it was made from")
        targets.append(x._vals)
        origins.append(x)
    return tuple(targets), origins


def as_leaf_grads(found, origins, materialize: bool) -> list:
    """The pass's gradients of the values tensors, each as its sparse leaf's gradient (PyTorch's layout);
    an unused sparse leaf with ``materialize_grads`` gets an empty sparse tensor (no entries), as PyTorch's."""
    out = list(found)
    for i, s in enumerate(origins):
        if s is None:
            continue
        if out[i] is not None:
            out[i] = s._grad_of_values(out[i])
        elif materialize:
            out[i] = _empty_like(s)
    return out


def _empty_like(s):
    return type(s)(s._idx[:, :0].copy(), Tensor._make(s._vals.data[:0].copy(), None), s.shape, coalesced=True)


def sparse_seed(g):
    """A sparse ``grad_outputs`` entry for a dense output: its dense array (PyTorch's result is the same as
    with the dense one); anything else as it is."""
    return g.detach().to_dense().data if is_sparse(g) else g


def detached(g):
    """A sparse gradient's value without its graph (what ``.grad`` keeps after ``backward(create_graph=True)``),
    still tagged as a sparse leaf's dense-layout gradient where it is one."""
    out = g.detach()
    out._dense_of = g._dense_of
    return out


def sum_gradients(prev, new, graph=False):
    """Two contributions to one leaf's gradient in a pass, either of them sparse, summed without changing
    either (PyTorch's rule, as ``.grad`` accumulates: sparse + sparse is sparse, with a dense one dense).
    ``graph``: a ``create_graph=True`` pass (Tensors with a graph: summed with recorded ops)."""
    if graph:
        return _engine._sparse.accumulate_graph(prev, new)
    if not is_sparse(prev):
        prev = prev.copy()  # (accumulate adds a sparse one into a dense array in place)
    return _engine._sparse.accumulate(prev, new)


__all__ = ["is_sparse", "refuse_sparse_outputs", "leaves_to_values", "as_leaf_grads", "sparse_seed", "detached",
           "sum_gradients"]
