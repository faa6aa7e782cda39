"""Sparse COO tensors in ``autograd.grad`` and ``autograd.backward(inputs=...)``, as PyTorch's.

A sparse leaf (``sparse_coo_tensor(..., requires_grad=True)``) is, to distnn's engine, its values tensor: the
pass looks for that, and :func:`grad` hands back what ``backward`` would put in the sparse leaf's ``.grad``
(sparse on the leaf's indices, or dense after ``torch.mm``-like products: ``SparseTensor._grad_of_values``),
as PyTorch's ``autograd.grad`` returns the gradient in the layout of the leaf's ``.grad``.

A sparse tensor made by an op is its values tensor too (a non-leaf): its gradient comes back sparse,
coalesced, on its distinct indices (``engine._sparse.tensor_grad``), as PyTorch's for the ops distnn has. A
sparse *output* is seeded through its values from a sparse ``grad_outputs`` entry on the output's own
indices (``engine._sparse.values_seed``); what distnn's layout cannot hold (a dense entry, entries at other
indices: PyTorch passes them on as they are) is refused by name, as is a sparse tensor made on a values
tensor that requires grad (other ops may use those values too). The engine
knows the sparse type only through its registry (``engine._sparse``), so nothing here imports
:mod:`distnn.sparse`.
"""
from __future__ import annotations

from . import engine as _engine
from .tensor import Tensor


def is_sparse(x) -> bool:
    """Whether ``x`` is a sparse COO tensor (False while :mod:`distnn.sparse` is not imported)."""
    return _engine._sparse.type is not None and type(x) is _engine._sparse.type


def outputs_to_values(outputs, grad_outputs):
    """``outputs`` with each sparse output replaced by its values tensor, and ``grad_outputs`` with its entry
    replaced by the values' gradient (``engine._sparse.values_seed``: a sparse entry on the output's indices);
    both as given when no output is sparse."""
    items = outputs if isinstance(outputs, (list, tuple)) else (outputs,)
    if not any(is_sparse(t) for t in items):
        return outputs, grad_outputs
    if grad_outputs is None:
        given = (None,) * len(items)
    elif isinstance(grad_outputs, (list, tuple)):
        given = tuple(grad_outputs)
    else:
        given = (grad_outputs,)
    if len(given) != len(items):
        raise RuntimeError(f"got {len(items)} tensors and {len(given)} gradients")
    outs, seeds = [], []
    for i, (t, g) in enumerate(zip(items, given)):
        if is_sparse(t):
            if not t.requires_grad:
                raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
            g = _engine._sparse.values_seed(t, g, i)
            t = t._vals
        outs.append(t)
        seeds.append(g)
    return tuple(outs), tuple(seeds)


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
        if x._vals.is_leaf and not getattr(x._vals, "_sparse_leaf", False):
            raise NotImplementedError(
                f"{what}: element {i} is a sparse COO tensor made on a values tensor that requires grad; distnn "
                "differentiates it through those values, which other ops may use too. Ask for the gradient of "
                "the values, or make the sparse tensor with sparse_coo_tensor(..., requires_grad=True)")
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
        if out[i] is not None:  # (a tensor made by an op: sparse, coalesced, as PyTorch's)
            out[i] = s._grad_of_values(out[i], as_flowed=True) if s.is_leaf else _engine._sparse.tensor_grad(s, out[i])
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


__all__ = ["is_sparse", "outputs_to_values", "leaves_to_values", "as_leaf_grads", "sparse_seed", "detached",
           "sum_gradients"]
