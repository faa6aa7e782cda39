"""Graph backward of a fused op by recomputing its forward with recorded Tensor ops.

A fused op (a recurrent layer running a whole sequence, embedding_bag's gather and segment sum...) has one
node and a hand-written array backward. Its graph backward here recomputes the op from its inputs as a
composition of ops that have graph backwards of their own, then runs a ``create_graph`` pass through that
composition with the node's output gradient ``g`` as the seed: the result is the first derivative as
recorded Tensors of the inputs and of ``g``, so second and third derivatives follow. This is how PyTorch
differentiates these layers twice (its CPU RNNs run cell by cell through such ops); the price is one more
forward per double-backward pass.

Each input enters the recomputation through its own identity node linked to the node's parent (not the
parent itself), so two inputs made by the same op (``x`` as query and key) get their own gradients.
"""
from __future__ import annotations

from distnn.autograd.function import Function
from distnn.autograd.grad_mode import enable_grad
from distnn.autograd.tensor import Tensor

from . import recorded, register


class _Same(Function):
    """The identity: one input of a recomputed op, made by :func:`recorded`."""

    saves_tensors = False

    def backward(self, g):
        return (g,)


@register(_Same)
def _same(node, g):
    return (g,)


def inputs_of(node, arrays):
    """Per input of ``node`` (its value in ``arrays``; None for an absent one): a Tensor linked to the node's
    parent through its own identity node, a constant Tensor when it needs no gradient, or None."""
    out = []
    for i, a in enumerate(arrays):
        if a is None:
            out.append(None)
            continue
        p = node.parents[i] if i < len(node.parents) else None
        out.append(recorded(_Same, (p,), (a.shape,), a) if p is not None else Tensor._make(a, None))
    return out


def vjp(node, g, ins, out):
    """The gradients of the recomputed ``out`` (a function of the Tensors ``ins``, from :func:`inputs_of`)
    for the seed ``g``, as recorded Tensors: one per input of ``node`` (None where none is needed)."""
    from distnn.autograd import grad_api

    need = tuple(node.needs_input_grad) + (False,) * (len(node.parents) - len(node.needs_input_grad))
    wanted = [i for i, t in enumerate(ins) if t is not None and i < len(need) and need[i] and t.requires_grad]
    grads = [None] * len(node.parents)
    if wanted:
        with enable_grad():
            found = grad_api.grad(out, [ins[i] for i in wanted], g, create_graph=True, allow_unused=True)
        for i, gi in zip(wanted, found):
            grads[i] = gi
    return tuple(grads)


def recompute(node, g, arrays, forward):
    """:func:`vjp` of ``forward(*inputs)``, the op recomputed on its inputs (``arrays``: their values)."""
    ins = inputs_of(node, arrays)
    with enable_grad():
        out = forward(*ins)
    return vjp(node, g, ins, out)
