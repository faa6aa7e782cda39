"""A sparse leaf's gradient in PyTorch's sparse layout where PyTorch's differs from the leaf's own indices.

distnn carries a sparse leaf's gradient as the gradient of its values (one row per stored entry), which is
PyTorch's layout for most ops: ``to_dense()``'s backward gives a gradient on the tensor's indices, and ops such
as ``* number`` keep it. Some of PyTorch's backward formulas make other layouts: ``t()``/``transpose`` give the
transposed gradient (flagged uncoalesced, in the transposed tensor's order), ``sparse + sparse`` passes the
sum's whole gradient on (entries at the other operand's indices too), ``sparse.mm(sparse, sparse)`` gives
``grad @ other.T`` wherever that product has entries, and ``sparse * sparse`` gives ``grad * other`` with the
intersection kernel's entries. Those ops hand a sparse leaf's values a *layout carrier*: the leaf's gradient as
PyTorch's sparse tensor (:func:`carrier_for`), which the leaf keeps as its ``.grad``.

Contributions accumulate as PyTorch's engine sums them (:func:`accumulate_layout`): a values-shaped one becomes
the sparse tensor ``to_dense()``'s backward gives (coalesced, on the leaf's distinct indices), and the two add
with PyTorch's sparse addition. PyTorch's ``AccumulateGrad`` takes a single contribution over without its
coalesced flag (``_sparse_coo_tensor_unsafe``) and clones a sum made in the pass (flag kept); the carrier
remembers which it is (:func:`handed_out`). A leaf with ``register_hook`` hooks, and ``create_graph=True``
passes, keep the values-shaped gradient (the hooks see the leaf's own indices).
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.grad_mode import is_grad_enabled
from distnn.autograd.pass_hooks import backward_context
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .coo import SparseTensor

_PASS_KEY = "sparse_layout_pass"


def _this_pass():
    """A token of the backward pass now running (a fresh one outside any pass)."""
    ctx = backward_context()
    if ctx is None:
        return object()
    token = ctx.get(_PASS_KEY)
    if token is None:
        token = ctx[_PASS_KEY] = object()
    return token


def takes_layout(values) -> bool:
    """Whether ``values`` (a Function's parent) is a sparse leaf's values tensor that takes a layout carrier:
    made with ``sparse_coo_tensor(..., requires_grad=True)``, no ``register_hook`` hooks, a plain pass."""
    return (isinstance(values, Tensor) and values.is_leaf and values.requires_grad
            and getattr(values, "_sparse_leaf", False) and not values._grad_hooks)


def first_of_each(lin, rows: int):
    """The sorted distinct values of ``lin`` (int64 in ``[0, rows)``) and where each first occurs: ``unique(lin,
    return_index=True)``; on the CPU with ``rows`` not far above ``len(lin)``, one ``minimum.at`` pass over a
    table of ``rows`` (tens of times faster than unique's stable sort)."""
    xp = get_array_module(lin)
    n = int(lin.shape[0])
    if xp is not np or rows > 8 * n + 4096:
        return xp.unique(lin, return_index=True)
    first = np.full(rows, n, dtype=np.int64)
    np.minimum.at(first, lin, np.arange(n, dtype=np.int64))
    present = np.flatnonzero(first < n)
    return present, first[present]


def distinct_grad(idx, size, coalesced, g):
    """A sparse tensor's gradient as ``to_dense()``'s backward makes it, from ``g``, its values' gradient
    (an array): coalesced, one entry at each distinct index of ``idx`` (entries sharing one carry the same)."""
    if coalesced or idx.shape[1] <= 1:
        return SparseTensor(idx, Tensor(g), size, coalesced=True)
    xp = get_array_module(idx)
    sd = idx.shape[0]
    lin = xp.ravel_multi_index(tuple(idx), size[:sd]) if sd else xp.zeros(idx.shape[1], dtype=np.int64)
    _, first = first_of_each(lin.astype(np.int64, copy=False), int(np.prod(size[:sd], dtype=np.int64)))
    return SparseTensor(idx[:, first], Tensor(g[first]), size, coalesced=True)


def carrier_for(leaf_values, grad: SparseTensor, leaf_idx, shared=False) -> SparseTensor:
    """``grad`` (PyTorch's gradient of a sparse leaf, a SparseTensor of the leaf's size without a graph) as the
    gradient its values tensor ``leaf_values`` takes; ``leaf_idx``: the leaf's indices. ``shared``: PyTorch hands
    the one gradient tensor to another input too (``AddBackward0`` with ``alpha=1``), so ``AccumulateGrad`` clones
    it and the flag stays."""
    vals = grad._vals.data
    if vals.dtype != leaf_values.dtype:
        vals = vals.astype(leaf_values.dtype)
    out = SparseTensor(grad._idx, Tensor(vals), grad.shape, grad.is_coalesced())
    out._layout_of, out._pass, out._keeps_flag = leaf_idx, _this_pass(), shared
    return out


def is_carrier(g) -> bool:
    return isinstance(g, SparseTensor) and getattr(g, "_layout_of", None) is not None


def handed_out(g: SparseTensor) -> SparseTensor:
    """The carrier as ``.grad`` hands it out (itself, so ``S.grad.zero_()`` reaches it): a single contribution
    loses its coalesced flag, as PyTorch's ``AccumulateGrad`` takes it over; a sum made in a pass (or a gradient
    PyTorch clones) keeps it."""
    g._coalesced = g._coalesced and g._keeps_flag
    g._keeps_flag = True  # (final: the next pass adds to it as it is now)
    return g


def as_flowed(g: SparseTensor) -> SparseTensor:
    """The carrier as ``autograd.grad`` returns it: as it flowed (no ``AccumulateGrad``)."""
    return SparseTensor(g._idx, g._vals, g.shape, g.is_coalesced())


def accumulate_layout(old, grad, carrier: SparseTensor) -> SparseTensor:
    """``old + grad`` for a sparse leaf whose gradient has a layout carrier among them: a values-shaped array
    becomes :func:`distinct_grad`'s tensor; a carrier from an earlier pass counts as it was handed out; the
    sum is PyTorch's sparse addition (entries and order), itself a carrier."""
    from .addition import add

    leaf_idx, size = carrier._layout_of, carrier.shape
    this = _this_pass()

    def sparse_of(g):
        if is_carrier(g):
            return g if g._pass is this else handed_out(g)
        if isinstance(g, SparseTensor):
            return g
        return distinct_grad(leaf_idx, size, False, g)

    total = add(sparse_of(old), sparse_of(grad))
    total = SparseTensor(total._idx, Tensor(total._vals.data), size, total.is_coalesced())
    total._layout_of, total._pass, total._keeps_flag = leaf_idx, this, True
    return total


# ----------------------------------------------------------------------------- taps for ops built of other ops
class OutputTap(Function):
    """The identity on an op's result values; backward notes the result's gradient in ``box`` for the op's
    :class:`InputTap` nodes (which run after it: they sit between the operands and the op's graph)."""

    saves_tensors = False

    def torch_name_of_call(self):  # (the op's own node's name: the tap is invisible)
        op = self.parents[0]
        return op.name() if isinstance(op, Function) else "OutputTapBackward"

    def forward(self, values, box=None):
        self.box = box
        return values.copy()

    def backward(self, grad):
        self.box["grad"] = grad
        return grad

    def backward_graph(self, g):  # (create_graph: the values' gradient as it is, the leaf's own indices)
        return (g,)


class InputTap(Function):
    """The identity on a sparse leaf operand's values; backward hands the leaf ``rule(result's gradient)``,
    PyTorch's gradient for it (a layout carrier), in place of the values' gradient the op's graph computed."""

    saves_tensors = False

    def forward(self, values, box=None, rule=None, leaf_idx=None):
        self.box, self.rule, self.leaf_idx = box, rule, leaf_idx
        return values.copy()

    def backward(self, grad):
        parent = self.parents[0]
        if not takes_layout(parent) or "grad" not in self.box:
            return grad
        return carrier_for(parent, self.rule(self.box["grad"]), self.leaf_idx)

    def backward_graph(self, g):  # (create_graph: the values' gradient as it is, the leaf's own indices)
        return (g,)


def tap_operand(s: SparseTensor, box: dict, rule) -> SparseTensor:
    """``s`` with its values behind an :class:`InputTap` when ``s`` is a sparse leaf that takes a layout
    carrier (else ``s``); ``rule(grad)`` makes its gradient from the result's values' gradient."""
    if not (is_grad_enabled() and takes_layout(s._vals)):
        return s
    box["tapped"] = True
    return SparseTensor(s._idx, InputTap.apply(s._vals, box=box, rule=rule, leaf_idx=s._idx), s.shape,
                        s.is_coalesced())


def tap_result(out: SparseTensor, box: dict) -> SparseTensor:
    """``out`` with its values behind an :class:`OutputTap` when an operand was tapped (else ``out``)."""
    if not box.get("tapped"):
        return out
    return SparseTensor(out._idx, OutputTap.apply(out._vals, box=box), out.shape, out.is_coalesced())


__all__ = ["takes_layout", "distinct_grad", "carrier_for", "is_carrier", "handed_out", "as_flowed",
           "accumulate_layout", "OutputTap", "InputTap", "tap_operand", "tap_result"]
