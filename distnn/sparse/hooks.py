"""A sparse tensor's own gradient, as PyTorch hands it to ``register_hook`` hooks, keeps it with
``retain_grad()`` and returns it from ``autograd.grad`` for a sparse tensor made by an op.

distnn differentiates a sparse tensor through its values (shape ``(nnz,) + dense sizes``), so the gradient the
engine carries for it is one row per stored entry. PyTorch's is a sparse tensor of the tensor's size; for the
ops distnn has, it lies on the tensor's own indices, coalesced (``grad.sparse_mask(self)``, as ``to_dense``'s
backward makes it). :func:`sparse_grad_of` makes that sparse tensor from the values' rows (entries that share
an index carry one gradient: it is taken once), and :func:`values_grad_of` maps a sparse gradient back to the
rows (each entry gets the gradient at its index), so a hook may return a replacement.

What this layout cannot hold is refused by name: a hook's replacement with entries at indices the tensor lacks
(PyTorch would pass them on to the op that made the tensor), and a dense replacement (PyTorch refuses it too).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .coo import SparseTensor
from .rows import entries_of, gather_rows


def _unique_entries(s: SparseTensor):
    """The positions of the first entry at each distinct index of ``s`` (in sorted index order), or None when
    ``s`` is coalesced (each entry is its own)."""
    if s.is_coalesced() or s._nnz() <= 1:
        return None
    _, first = get_array_module(s._idx).unique(s._linear(), return_index=True)
    return first


def sparse_grad_of(s: SparseTensor, g) -> SparseTensor:
    """``s``'s gradient as PyTorch's: sparse, coalesced, on ``s``'s distinct indices, from ``g``, the gradient
    of ``s``'s values (an array, or a Tensor in a ``create_graph`` pass: then gathered in the graph)."""
    first = _unique_entries(s)
    if first is None:
        vals = g if isinstance(g, Tensor) else Tensor(g)
        return SparseTensor(s._idx, vals, s.shape, coalesced=True)
    if isinstance(g, Tensor):
        return SparseTensor(s._idx[:, first], entries_of(g, first) if g.requires_grad else Tensor(g.data[first]),
                            s.shape, coalesced=True)
    return SparseTensor(s._idx[:, first], Tensor(g[first]), s.shape, coalesced=True)


def values_grad_of(s: SparseTensor, new, who: str) -> Tensor:
    """The gradient of ``s``'s values from ``new``, a sparse gradient of ``s`` (a hook's replacement): each
    entry takes ``new``'s content at its index. Refused: a dense ``new``, another size, and entries of ``new`` at
    indices ``s`` does not have (distnn's gradient of ``s`` lives on its indices)."""
    if not isinstance(new, SparseTensor):
        raise RuntimeError(f"{who} has changed the type of value (was a sparse COO tensor got "
                           f"{type(new).__name__}): a hook on a sparse tensor must return a sparse one, as PyTorch's")
    if tuple(new.shape) != tuple(s.shape) or new.sparse_dim() != s.sparse_dim():
        raise RuntimeError(f"{who} has changed the size of value (was {tuple(s.shape)} with sparse_dim "
                           f"{s.sparse_dim()}, got {tuple(new.shape)} with sparse_dim {new.sparse_dim()})")
    if new.dtype != s.dtype:
        raise RuntimeError(f"{who} has changed the dtype of value (was {s.dtype}, got {new.dtype})")
    xp = get_array_module(s._idx)
    own = s._linear()
    outside = ~xp.isin(new._linear(), own)
    if bool(outside.any()):
        raise NotImplementedError(
            f"{who} returned a sparse gradient with entries at {int(outside.sum())} indices the tensor does not "
            "have; distnn carries a sparse tensor's gradient on its own indices (PyTorch would pass them on)")
    dense_rows = new.to_dense().reshape((s._rows(),) + tuple(s.shape[s.sparse_dim():]))
    return gather_rows(dense_rows, own)


def output_values_seed(out: SparseTensor, g, i: int) -> Tensor:
    """The gradient of the values of ``out``, a sparse output of ``autograd.grad``/``backward``, from ``g``, its
    ``grad_outputs`` entry. PyTorch passes ``g`` on as it is, so its layout becomes the inputs' gradients'
    layout; distnn's gradients lie on the tensors' own indices, so ``g`` must be sparse with one entry per
    distinct index of ``out``, sorted (what ``out.coalesce()`` has): then the layouts are PyTorch's. Anything
    else is refused by name."""
    if g is None:
        raise RuntimeError("grad can be implicitly created only for scalar outputs")
    if not isinstance(g, SparseTensor):
        raise NotImplementedError(
            f"grad_outputs[{i}] is {type(g).__name__} for a sparse COO output; distnn takes a sparse one on the "
            "output's indices only (PyTorch would give the inputs a gradient in grad_output's layout)")
    if tuple(g.shape) != tuple(out.shape) or g.sparse_dim() != out.sparse_dim():
        raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(g.shape)} and output[{i}] "
                           f"has a shape of {tuple(out.shape)}.")
    xp = get_array_module(out._idx)
    lin = out._linear()
    uniq, inverse = xp.unique(lin, return_inverse=True)
    if not (g._nnz() == uniq.shape[0] and bool((g._linear() == uniq).all())):
        raise NotImplementedError(
            f"grad_outputs[{i}]: a sparse gradient of a sparse output must hold one entry at each index of the "
            "output, sorted (as output.coalesce() has them); distnn carries a sparse tensor's gradient on its own "
            "indices (PyTorch would pass other indices on to the inputs)")
    vals = g._vals if g.dtype == out.dtype else g._vals.to(out.dtype)
    if out.is_coalesced():
        return vals
    return gather_rows(vals, inverse.reshape(-1)) if vals.requires_grad else Tensor(vals.data[inverse.reshape(-1)])


def _sparse_hook(s: SparseTensor, hook):
    """``hook`` as a hook on ``s``'s values: it sees (and may replace) ``s``'s sparse gradient."""
    who = f"hook '{getattr(hook, '__name__', type(hook).__name__)}'"

    def on_values(g: Tensor):
        if isinstance(g.data, SparseTensor):  # (a sparse leaf's dense gradient from a torch.mm-like product)
            raise NotImplementedError(f"{who}: register_hook on a sparse leaf whose gradient is dense (it took part "
                                      "in torch.mm or @ with a dense matrix) is not supported in distnn")
        out = hook(sparse_grad_of(s, g if g.requires_grad else g.data))
        if out is None:
            return None
        return values_grad_of(s, out, who)

    on_values.__name__ = getattr(hook, "__name__", "hook")
    return on_values


def _check_own_gradient(s: SparseTensor, what: str) -> None:
    """Refuse a sparse tensor made on a values tensor that requires grad: its gradient would be the values',
    which other ops may use too."""
    if s.is_leaf and s.requires_grad and not getattr(s._vals, "_sparse_leaf", False):
        raise NotImplementedError(f"{what} on a sparse COO tensor made on a values tensor that requires grad is "
                                  "not supported in distnn (its gradient is the values'); use the values' own, or "
                                  "make the tensor with sparse_coo_tensor(..., requires_grad=True)")


def register_hook(s: SparseTensor, hook):
    """``SparseTensor.register_hook``: ``hook(grad)`` with ``s``'s sparse gradient at each backward (a leaf's:
    every use of the pass summed, before it is added into ``.grad``); it may return a sparse replacement."""
    if not s.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that does not require gradient")
    if not callable(hook):
        raise TypeError(f"register_hook: the hook must be callable, got {type(hook).__name__}")
    _check_own_gradient(s, "register_hook")
    return s._vals.register_hook(_sparse_hook(s, hook))


def retain_grad(s: SparseTensor) -> None:
    """``SparseTensor.retain_grad``: a sparse tensor made by an op keeps its gradient in ``.grad`` (sparse,
    coalesced, accumulated over passes, as PyTorch's); on a leaf it does nothing (a leaf keeps it anyway)."""
    if not s.requires_grad:
        raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
    _check_own_gradient(s, "retain_grad")
    if not s.is_leaf:
        s._vals.retain_grad()


def non_leaf_grad(s: SparseTensor):
    """The ``.grad`` of a sparse tensor made by an op: its retained gradient, sparse (None when not retained)."""
    g = s._vals.grad
    return None if g is None else sparse_grad_of(s, g)


__all__ = ["sparse_grad_of", "values_grad_of", "output_values_seed", "register_hook", "retain_grad", "non_leaf_grad"]
