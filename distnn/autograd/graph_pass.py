"""The steps of a ``create_graph=True`` backward pass that differ from a first-order one.

:func:`grad_pass._pass` walks the graph the same way in both (dependency counts, pruning, version checks,
hooks, freeing); with ``create_graph`` its gradients are Tensors instead of arrays, and each node runs its
*graph backward* (:mod:`.derivatives`) under ``enable_grad``, so the pass records a graph of its own that
can be differentiated again. This module holds those steps: the up-front refusal of an op that has no graph
backward (before any gradient is computed, naming the op), the reduction of a broadcast gradient with
recorded sums, and the hooks run on Tensors.
"""
from __future__ import annotations

from . import anomaly, derivatives, saved_hooks as _saved
from .leaf_gradients import _sparse, check_hook_gradient
from .tensor import Tensor


def check_nodes(nodes) -> None:
    """Refuse, before anything runs, a pass with a node that has no graph backward."""
    derivatives.load()
    for n in nodes:
        reason = derivatives.refusal(n)
        if reason is not None:
            raise NotImplementedError(reason)


def seed(array, given):
    """The seed Tensor of one output: the caller's ``grad_outputs`` Tensor itself when it requires grad (so
    the result depends on it: the double-vjp trick of ``jvp``), else the checked array as a constant."""
    if isinstance(given, Tensor) and given.requires_grad and given.dtype == array.dtype:
        return given
    return Tensor._make(array, None)


def call(node, g):
    """``node``'s graph backward on the Tensor gradient ``g``: one Tensor (or None) per input; the node's own
    hooks (``register_prehook``, ``register_hook``) around it, as in a first-order pass."""
    fn = derivatives.lookup(node)
    d = node.__dict__
    if "_pre_hooks" in d or "_post_hooks" in d:
        return _with_node_hooks(node, fn, g)
    if "_packed" in d:  # (saved_tensors_hooks: the graph backward reads the arrays directly)
        with _saved.unpacked(node):
            return _call(node, fn, g)
    return _call(node, fn, g)


def _with_node_hooks(node, fn, g):
    """:func:`call` with ``node_api``'s hooks, on Tensors: a replacement they return is kept as it is, graph
    included (PyTorch's), after the same shape checks as in a first-order pass."""
    from .node_api import _replacements, node_name, run_post_hooks, wanted_inputs

    what = node_name(node)
    for hook in tuple(node.__dict__.get("_pre_hooks") or ()):
        out = hook((g,))
        if out is not None:
            new = _replacements(out, 1, f"prehook of {what}")[0]
            g = g if new is None else _checked(new, g, f"prehook of {what}")
    with _saved.unpacked(node):
        grads = _call(node, fn, g)
    post = node.__dict__.get("_post_hooks")
    if not post:
        return grads
    # PyTorch's grad_inputs: per input, its gradient in the input's shape, None where none is wanted
    grads = tuple(None if p is None or pg is None else sum_to_shape(pg, s) if tuple(pg.shape) != tuple(s) else pg
                  for p, pg, s in zip(wanted_inputs(node), grads, node.input_shapes))
    return run_post_hooks(node, post, grads, g, lambda t: t, _checked)


def _checked(value, like, what: str):
    """A hook's replacement gradient: a Tensor shaped like ``like`` (a first-order pass refuses the same)."""
    new = value if isinstance(value, Tensor) else Tensor._make(value, None) if hasattr(value, "shape") else None
    if new is None:
        raise TypeError(f"{what}: expected a Tensor (or None), got {type(value).__name__}")
    if tuple(new.shape) != tuple(like.shape):
        raise RuntimeError(f"{what}: the replacement gradient has shape {tuple(new.shape)}, expected "
                           f"{tuple(like.shape)}")
    return new


def _call(node, fn, g):
    if anomaly.is_anomaly_enabled():  # (as a first-order pass's nodes: anomaly.py's checks)
        in_grads = anomaly.run_checked(node, lambda: fn(node, g))
    else:
        in_grads = fn(node, g)
    if type(in_grads) is not tuple:
        in_grads = tuple(in_grads) if isinstance(in_grads, list) else (in_grads,)
    if len(in_grads) != len(node.parents):
        raise RuntimeError(f"the graph backward of {type(node).__name__} returned {len(in_grads)} gradient(s) "
                           f"for {len(node.parents)} input(s)")
    in_grads = tuple(pg if pg is None or isinstance(pg, Tensor) or type(pg) is _sparse.type  # (values: Tensors)
                     else Tensor._make(pg, None) for pg in in_grads)
    if node.real_inputs:  # a complex node's real inputs get the real part (complex_grad), recorded
        in_grads = tuple(pg.real if i in node.real_inputs and pg is not None and pg.is_complex() else pg
                         for i, pg in enumerate(in_grads))
    return in_grads


def sum_to_shape(g, shape):
    """``engine.sum_to_shape`` on a Tensor, with recorded sums (their gradient broadcasts back)."""
    original = tuple(g.shape)
    lead = g.ndim - len(shape)
    if lead > 0:
        g = g.sum(dim=tuple(range(lead)))
    elif lead < 0:
        g = g.reshape((1,) * -lead + tuple(g.shape))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(dim=axes, keepdim=True)
    if tuple(g.shape) != tuple(shape):
        if [s for s in g.shape if s != 1] != [s for s in shape if s != 1]:
            raise RuntimeError(f"gradient of shape {original} cannot be reduced to input shape {tuple(shape)} "
                               "(a graph backward returned a wrong shape?)")
        g = g.reshape(tuple(shape))
    return g


def run_grad_hooks(hooks, g):
    """``register_hook`` hooks on a Tensor gradient, in order; each may return a replacement (kept as it is,
    graph included, as PyTorch's)."""
    for hook in tuple(hooks):
        out = hook(g)
        if out is not None:
            new = out if isinstance(out, Tensor) else Tensor._make(out, None)
            check_hook_gradient(new, g)
            g = new
    return g


def run_output_hooks(hooks, g):
    """A node's hooks on its output's Tensor gradient, then ``retain_grad``'s copy (an array: ``.grad`` is one)."""
    if hooks.hooks:
        g = run_grad_hooks(hooks.hooks, g)
    ref = hooks.retained
    t = ref() if ref is not None else None
    if t is not None:
        t.grad = g.data.copy() if t.grad is None else t.grad + g.data
    return g
