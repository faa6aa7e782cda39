"""Reverse-mode backward pass: iterative, dependency-counted, graph-freeing.

The graph is a DAG of ``Function`` nodes whose ``parents`` point at producer
nodes or at leaf Tensors. Backward first counts, without recursion, how many
consumers each node and leaf has inside this graph; then it processes nodes whose
consumers have all delivered their gradient (Kahn's algorithm, LIFO so memory is
released depth-first). A leaf's gradient is final when its count reaches zero;
that is when its post-accumulate hooks fire, which lets data parallelism start
bucket allreduces while the rest of backward is still running.
"""
from __future__ import annotations

from .function import Function
from .tensor import Tensor


def sum_to_shape(grad, shape):
    """Sum ``grad`` over broadcast axes so it has ``shape`` (the one place this happens)."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead > 0:
        grad = grad.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:  # 0-d targets, or a backward that returned a wrong shape
        if grad.size != _prod(shape):
            raise RuntimeError(f"gradient of shape {grad.shape} cannot be reduced to input shape {shape}")
        grad = grad.reshape(shape)
    return grad


def _prod(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _accumulate_leaf(leaf, grad, owned):
    """Add ``grad`` into ``leaf.grad``; copy it first unless the engine owns it."""
    if leaf.grad is None:
        if not owned or grad.base is not None or grad.dtype != leaf.data.dtype:
            grad = grad.astype(leaf.data.dtype, copy=True)
        leaf.grad = grad
    else:
        leaf.grad += grad


def _fire_hooks(leaf):
    for hook in leaf._hooks or ():
        hook(leaf)


def backward(root: Tensor, grad=None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
    xp_data = root.data
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward() on a non-scalar tensor of shape {tuple(root.shape)} needs a gradient "
                "argument of the same shape (grad can be created implicitly only for scalar outputs)"
            )
        from distnn.backend import get_array_module

        grad = get_array_module(xp_data).ones_like(xp_data)
    else:
        grad = grad.data if isinstance(grad, Tensor) else grad
        if tuple(grad.shape) != tuple(root.shape):
            raise RuntimeError(f"gradient shape {tuple(grad.shape)} does not match tensor shape {tuple(root.shape)}")
        grad = grad.astype(root.data.dtype, copy=True)
    if not root.requires_grad:
        raise RuntimeError("backward() called on a tensor that does not require grad and has no graph")

    node = root._node
    if node is None:  # backward on a leaf
        _accumulate_leaf(root, grad, owned=True)
        _fire_hooks(root)
        return
    if node.parents is None:
        raise RuntimeError(
            "Trying to backward through the graph a second time (or after its buffers were freed). "
            "Pass retain_graph=True to the first backward() if you need to call it twice."
        )

    # Pass 1: count consumers of every node and leaf reachable from the root.
    node_deps = {node: 0}
    leaf_deps = {}
    stack = [node]
    while stack:
        n = stack.pop()
        for p in n.parents:
            if p is None:
                continue
            if not isinstance(p, Function):
                leaf_deps[id(p)] = leaf_deps.get(id(p), 0) + 1
                continue
            if p.parents is None:
                raise RuntimeError(
                    "Trying to backward through the graph a second time (or after its buffers were freed). "
                    "Pass retain_graph=True to the first backward() if you need to call it twice."
                )
            count = node_deps.get(p)
            if count is None:
                node_deps[p] = 1
                stack.append(p)
            else:
                node_deps[p] = count + 1

    # Pass 2: propagate in dependency order.
    grads = {node: grad}
    ready = [node]
    while ready:
        n = ready.pop()
        g = grads.pop(n, None)
        parents, shapes = n.parents, n.input_shapes
        if g is None:
            in_grads = (None,) * len(parents)
        else:
            in_grads = n.backward(g)
            if type(in_grads) is not tuple:
                in_grads = (in_grads,)
        if not retain_graph:
            n.release()
        for p, pg, shape in zip(parents, in_grads, shapes):
            if p is None:
                continue
            if pg is not None and pg.shape != shape:
                pg = sum_to_shape(pg, shape)
            if isinstance(p, Function):
                if pg is not None:
                    prev = grads.get(p)
                    grads[p] = pg if prev is None else prev + pg
                left = node_deps[p] - 1
                node_deps[p] = left
                if left == 0:
                    ready.append(p)
            else:
                if pg is not None:
                    # The leaf may keep (and later add into) pg only if nothing else holds it.
                    owned = pg is not g and sum(h is pg for h in in_grads) == 1
                    _accumulate_leaf(p, pg, owned)
                left = leaf_deps[id(p)] - 1
                leaf_deps[id(p)] = left
                if left == 0 and p._hooks:
                    _fire_hooks(p)
