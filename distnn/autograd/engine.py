"""Reverse-mode backward pass: iterative, dependency-counted, graph-freeing.

The graph is a DAG of ``Function`` nodes whose ``parents`` point at producer
nodes or at leaf Tensors. Backward first counts, without recursion, how many
consumers each node and leaf has inside this graph; then it processes nodes whose
consumers have all delivered their gradient (Kahn's algorithm, LIFO so memory is
released depth-first). A leaf's gradient is final when its count reaches zero;
that is when its post-accumulate hooks fire, which lets data parallelism start
bucket allreduces while the rest of backward is still running.

Gradients are never modified in place except a leaf's own ``.grad`` (``+=`` when
it already has one). A leaf adopts the first gradient it receives without a copy
only when nothing else can see that array (checked by identity and refcount);
otherwise it gets a copy laid out like its data. Each node is freed (saved arrays
dropped; its edges stay for ``next_functions``, as PyTorch's) right after its backward unless ``retain_graph=True``.

A leaf may have a gradient destination (:func:`set_grad_destination`; leaf_gradients.py): an
array its gradient should land in. The engine offers it to the op that
produces the leaf's first gradient (``Function.grad_out``); ops that can write
there (the GEMMs and sums of Linear, Conv2d, Embedding, the recurrent and the
normalization layers) do, and the leaf adopts that array
without a copy. Data parallelism points destinations at views of its flat
communication buffers, so the gradient exchange needs no packing copy.

Gradient hooks (``Tensor.register_hook``, PyTorch's): a non-leaf's run on the gradient of its node's
output just before that node's backward (then ``retain_grad`` keeps a copy); a leaf's run on the
sum of the pass's contributions, which wait for it, then the sum is added into ``.grad``, before its
post-accumulate hooks. Either may replace the gradient. Leaves without them are untouched.

Backward-begin hooks (:func:`register_backward_begin_hook`) see each pass's root
and the leaves it will reach before any gradient flows, and may scale the root
gradient (the "seed"): data parallelism pre-weights every gradient of the pass by
this rank's share of the global batch that way, at no cost per gradient. Hooks may also queue callbacks
for the end of the pass, or for its failure (:mod:`.pass_hooks`): a rank whose backward raised still
finishes its gradient exchange.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import get_array_module, to_numpy

from . import float_errors as _float_errors, profiler_record as _profiler
from .half_accumulate import accumulating_sum
from .function import (  # noqa: F401  (the node type the graph is made of; what freeing a node keeps)
    KEPT_WHEN_FREED as _KEPT_WHEN_FREED, Function, restore_kept as _restore_kept,
)
from .leaf_gradients import (  # noqa: F401  (also the names other modules import from here)
    _accumulate_leaf, _count_identical, _finish_hooked_leaf, _fire_hooks, _offer_destinations, _run_grad_hooks,
    _run_output_hooks, _sparse, get_grad_destination, set_grad_destination,
)
from .pass_hooks import (  # noqa: F401  (the engine's hooks API: importable from here as before)
    _begin_hooks, _callbacks, _end_pass, _OnError, _seed_factor, _wants_errors, backward_context, backward_depth,
    queue_callback, queue_error_callback, register_backward_begin_hook,
)
from .tensor import Tensor


def sum_to_shape(grad, shape):
    """Sum ``grad`` over broadcast axes so it has ``shape`` (the one place this happens): one reduction over
    the leading and the size-1 axes, so a float16 gradient is added up in float32 and rounded once, as
    PyTorch's (``half_accumulate``)."""
    if grad.shape == shape:
        return grad
    original = tuple(grad.shape)
    lead = grad.ndim - len(shape)
    if lead < 0:  # fewer dims than the input (e.g. (4,) for (1, 4)): align to the right
        grad = grad.reshape((1,) * -lead + tuple(grad.shape))
        lead = 0
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1)
    if axes:
        grad = accumulating_sum(grad, axis=axes, keepdims=True)
        if lead:
            grad = grad.reshape(grad.shape[lead:])
    if grad.shape != shape:  # 0-d targets, or shapes that differ only in axes of size 1
        # (a reshape across real axes, e.g. (4, 3) for (3, 4), would hide a backward that forgot a transpose)
        if grad.size != _prod(shape) or [s for s in grad.shape if s != 1] != [s for s in shape if s != 1]:
            raise RuntimeError(f"gradient of shape {original} cannot be reduced to input shape {tuple(shape)} "
                               "(a Function.backward returned a wrong shape?)")
        grad = grad.reshape(shape)
    return grad


def _prod(shape):
    n = 1
    for s in shape:
        n *= s
    return n


_FREED = (
    "Trying to backward through the graph a second time (or after its saved arrays were freed). "
    "Pass retain_graph=True to the first backward() if you need to call it twice."
)


def _check_versions(node) -> None:
    """Raise if a tensor ``node`` recorded (an input or its output) was changed in place since."""
    for position, counter, version in node.saved_versions:
        if counter[0] != version:
            what = "the output" if position == -1 else "an index" if position < 0 else f"input {position}"
            raise RuntimeError(
                f"a tensor this backward needs was changed in place after the forward pass: {what} of "
                f"{type(node).__name__} is at version {counter[0]}, the graph recorded {version} "
                "(optimizer.step(), load_state_dict() or an in-place update such as += under no_grad() between "
                "forward and backward?). Call backward before updating, or run the forward pass again.")


# backward_context() key: what the pass now running reaches, ``(nodes, leaves, reach, wanted)``; see will_run
PASS_GRAPH = "distnn.autograd.pass_graph"


def will_run(ctx, target) -> bool:
    """Whether the pass of backward_context ``ctx`` runs node ``target`` (a Function), or gives leaf ``target``
    a gradient (its hooks run), as PyTorch's ``_will_engine_execute_node``: a node of the graph behind the
    roots, and, in a pass that wants some tensors only (``autograd.grad``), one with a wanted tensor behind it."""
    nodes, leaves, reach, wanted = ctx[PASS_GRAPH]
    if isinstance(target, Tensor):
        return target in leaves and (wanted is None or target in wanted)
    return target in nodes and (reach is None or reach[target])


def quiet_float_errors():
    """numpy's floating-point warnings off for one backward pass (once a pass, not once an op; see float_errors).

    PyTorch is silent where gradients meet inf or NaN (``inf + -inf`` as two contributions to a leaf are
    summed, ``0 * inf`` in a product's backward); numpy would print a RuntimeWarning from inside the engine.
    """
    return _float_errors.silent()


def backward(root: Tensor, grad=None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

    Then runs the callbacks hooks queued with :func:`queue_callback` during this pass.
    """
    stack = getattr(_callbacks, "stack", None)
    if stack is None:
        stack = _callbacks.stack = []
        _callbacks.contexts = []
    queued = []
    stack.append(queued)
    ctx = {}
    _callbacks.contexts.append(ctx)
    failed = None
    try:
        with quiet_float_errors():
            _backward(root, grad, retain_graph, ctx)
    except Exception as exc:
        if not _wants_errors(queued):
            raise
        failed = exc  # (the error callbacks run after the pass has left the stack)
    finally:
        stack.pop()
        _callbacks.contexts.pop()
    if queued:  # a callback may queue no more: the pass is over
        _end_pass(queued, failed)


def _backward(root: Tensor, grad, retain_graph: bool, ctx: dict) -> None:
    data = root.data
    if not root.requires_grad:
        raise RuntimeError(
            f"backward() called on a tensor of shape {tuple(data.shape)} that does not require grad and has no "
            "graph (no input of the ops that made it requires grad, or it was made under no_grad())"
        )
    if grad is None:
        if data.size != 1:
            raise RuntimeError(
                f"backward() on a non-scalar tensor of shape {tuple(data.shape)} needs a gradient "
                "argument of the same shape (grad can be created implicitly only for scalar outputs)"
            )
        if data.dtype.kind == "c":  # (PyTorch's refusal: which real loss would a complex root be?)
            raise RuntimeError("grad can be implicitly created only for real scalar outputs (backward() on a "
                               f"complex {data.dtype} tensor needs an explicit gradient argument)")
        grad = get_array_module(data).ones_like(data)
    else:
        grad = grad.data if isinstance(grad, Tensor) else grad
        xp = get_array_module(data)
        if not hasattr(grad, "shape") or get_array_module(grad) is not xp:  # a number, a list, or another device's
            grad = xp.asarray(to_numpy(grad) if xp is np else grad, dtype=data.dtype)
        if tuple(grad.shape) != tuple(data.shape):
            raise RuntimeError(
                f"gradient shape {tuple(grad.shape)} does not match the shape {tuple(data.shape)} of the tensor "
                "backward() was called on"
            )
        grad = grad.astype(data.dtype, copy=True)  # ours now: the engine may hand it to a leaf

    node = root._node
    if node is None:  # backward on a leaf
        ctx[PASS_GRAPH] = ({}, {root: 1}, None, None)
        if _begin_hooks:
            factor = _seed_factor(root, {root: 1})
            if factor is not None and factor != 1:
                grad *= factor  # ours (a fresh array)
        if root._grad_hooks:
            _finish_hooked_leaf(root, grad)
        else:
            _accumulate_leaf(root, grad, owned=True)
        if root._hooks:
            _fire_hooks(root)
        return
    if node.parents is None:
        raise RuntimeError(_FREED)

    # Pass 1: count the consumers of every node and leaf reachable from the root
    # (an explicit stack, no recursion: graphs of any depth), and check that no tensor
    # a node recorded was changed in place since (before any gradient is accumulated).
    _check_versions(node)
    node_deps = {node: 0}
    leaf_deps = {}
    stack = [node]
    pop, push = stack.pop, stack.append
    while stack:
        for p in pop().parents:
            if p is None:
                continue
            if isinstance(p, Tensor):
                leaf_deps[p] = leaf_deps.get(p, 0) + 1
                continue
            count = node_deps.get(p)
            if count is None:
                if p.parents is None:
                    raise RuntimeError(_FREED)
                for _, counter, version in p.saved_versions:
                    if counter[0] != version:
                        _check_versions(p)  # raises, naming the tensor
                node_deps[p] = 1
                push(p)
            else:
                node_deps[p] = count + 1

    ctx[PASS_GRAPH] = (node_deps, leaf_deps, None, None)  # (what hooks may ask: will_run)
    if _begin_hooks:
        factor = _seed_factor(root, leaf_deps)
        if factor is not None and factor != 1:
            grad *= factor  # ours: ones_like or the caller's gradient copied above
    with_dests = False
    hooked = pending = None  # leaves with register_hook hooks: their gradients wait in ``pending`` until final
    for p in leaf_deps:
        if p._grad_dest is not None:
            with_dests = True
        if p._grad_hooks:
            if hooked is None:
                hooked, pending = set(), {}
            hooked.add(p)

    # Pass 2: run each node once all its consumers have delivered (Kahn's
    # algorithm, LIFO so memory is released depth-first). Gradients are dropped
    # as soon as they are consumed, and each node is freed right after its backward.
    grads = {node: grad}
    grad = None  # the dict holds the only reference, so ownership tests below see true counts
    profiling = _profiler.recording  # (read once a pass: each node's backward is timed only while it is set)
    ready = [node]
    pop, push = ready.pop, ready.append
    while ready:
        n = pop()
        g = grads.pop(n, None)
        if g is not None and n.grad_hooks is not None:
            g = _run_output_hooks(n.grad_hooks, g)
        parents = n.parents
        if g is None:  # nothing flowed here (all consumers returned None)
            in_grads = (None,) * len(parents)
        else:
            if with_dests:
                _offer_destinations(n, parents)
            in_grads = n.backward(g) if not profiling else _profiler.timed_backward(n, g)
            if with_dests and retain_graph:
                n.grad_out = None  # an offer is for this pass only
            if type(in_grads) is not tuple:
                in_grads = tuple(in_grads) if isinstance(in_grads, list) else (in_grads,)
            if len(in_grads) != len(parents):
                raise RuntimeError(
                    f"{type(n).__name__}.backward returned {len(in_grads)} gradient(s) for {len(parents)} input(s)"
                )
        # Drop our reference to g now: a leaf may then adopt a view of g's buffer
        # (e.g. Transpose's) when g itself is held nowhere else. Only g's id is kept.
        gid = id(g)
        g = None
        shapes = n.input_shapes
        if not retain_graph:  # (Function.free, inlined: the saved arrays go; edges, hooks and metadata stay)
            hooks = n.grad_hooks
            d = n.__dict__
            kept = d.get(_KEPT_WHEN_FREED)
            if n.torch_name_of_call is None:
                d.clear()  # saved arrays and ``parents`` go; class defaults mark it freed
            else:
                n.release()  # (the same, keeping the node's name, which it reads from what it saved)
            n.freed_edges = parents
            if hooks is not None:
                n.grad_hooks = hooks
            if kept is not None:
                _restore_kept(n, kept)
        for p, pg, shape in zip(parents, in_grads, shapes):
            if p is None:
                continue
            raw = pg
            if pg is not None and pg.shape != shape and type(pg) is not _sparse.type:  # (a sparse one: made to fit)
                try:
                    pg = sum_to_shape(pg, shape)
                except RuntimeError as e:
                    raise RuntimeError(f"{type(n).__name__}.backward: {e}") from None
            if isinstance(p, Tensor):
                if hooked is not None and p in hooked:  # summed first: the hooks see the pass's whole gradient
                    if pg is not None:
                        prev = pending.get(p)
                        pending[p] = pg if prev is None else prev + pg
                elif pg is not None and p.requires_grad:  # (requires_grad_(False) since the graph was built)
                    # The leaf may keep (and later add into) pg only if nothing else holds it.
                    if raw is not pg:  # reduced by sum_to_shape: a new array (or a view _sole_view vets)
                        owned = True
                    else:
                        owned = id(pg) != gid and (len(in_grads) == 1 or _count_identical(in_grads, pg) == 1)
                    _accumulate_leaf(p, pg, owned)
                left = leaf_deps[p] - 1
                leaf_deps[p] = left
                if left == 0:
                    if hooked is not None and p in hooked:
                        _finish_hooked_leaf(p, pending.pop(p, None))
                    if p._hooks:
                        _fire_hooks(p)  # this leaf's gradient is final for this backward
            else:
                if pg is not None:
                    prev = grads.get(p)
                    grads[p] = pg if prev is None else prev + pg
                left = node_deps[p] - 1
                node_deps[p] = left
                if left == 0:
                    push(p)
