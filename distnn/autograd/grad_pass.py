"""The backward pass behind :func:`grad_api.grad` and :func:`grad_api.backward` (several roots, chosen targets).

:func:`_walk` sets up one pass (its :func:`engine.backward_context`, the callbacks queued during it, grad mode
for ``create_graph``) and :func:`_pass` runs it: the dependency counts of every node and leaf behind the
roots, PyTorch's pruning to what lies in front of a wanted tensor, the version checks before any gradient
lands, then Kahn's algorithm (LIFO, as ``engine._backward``) with the hooks where PyTorch runs them,
capturing the wanted gradients or adding them into ``.grad``. Kept apart from ``grad_api.py``, which
checks the caller's arguments and shapes the results, so that each reads top to bottom; activation
checkpointing's recomputation (``recompute.py``) runs its own pass through :func:`_walk` too.
"""
from __future__ import annotations

from . import engine as _engine
from .engine import _FREED, _accumulate_leaf, _check_versions, _fire_hooks, _run_grad_hooks, _run_output_hooks
from .engine import _seed_factor, sum_to_shape
from . import graph_pass as _graph
from . import profiler_record as _profiler
from .grad_mode import enable_grad
from .node_api import CAPTURE_PASS
from .sparse_inputs import detached, is_sparse, sum_gradients
from .tensor import Tensor


# backward_context() key: True in a pass that fills chosen tensors only (grad(), backward(inputs=...)); the
# reentrant activation checkpoint refuses those passes, as PyTorch's does
PARTIAL_PASS = "distnn.autograd.partial_pass"


def _walk(roots, seeds, targets, retain_graph, capture, graph=False, context=None):
    """One backward pass from ``roots`` (seeded with ``seeds``).

    ``targets``: the tensors wanted (None: every leaf, as ``backward()``). ``capture``: return their
    gradients (a list, None where nothing flowed) and leave every ``.grad`` alone; otherwise add them into
    the targets' ``.grad``. Runs like :func:`engine.backward`, callbacks of :func:`engine.queue_callback` too.
    ``graph`` (create_graph): ``seeds`` are Tensors, and so are the gradients, computed by recorded ops.
    ``context``: the :func:`engine.backward_context` dict of this pass (default: a new one); a pass run inside
    another's node (activation checkpointing's recomputation) shares that pass's, so DataParallel's notes reach
    the ops it runs.
    """
    stack = getattr(_engine._callbacks, "stack", None)
    if stack is None:
        stack = _engine._callbacks.stack = []
        _engine._callbacks.contexts = []
    queued = []
    stack.append(queued)
    if context is None:
        context = {PARTIAL_PASS: targets is not None, CAPTURE_PASS: bool(capture)}
    _engine._callbacks.contexts.append(context)
    outer = context.get(_engine.PASS_GRAPH)  # (a pass sharing another's context gives it back its graph after)
    failed = None
    try:
        with _engine.quiet_float_errors():
            if graph:
                with enable_grad():  # (PyTorch: grad mode is create_graph during backward)
                    result = _pass(roots, seeds, targets, retain_graph, capture, True)
            else:
                result = _pass(roots, seeds, targets, retain_graph, capture)
    except Exception as exc:
        if not _engine._wants_errors(queued):
            raise
        failed = exc  # (error callbacks, engine.queue_error_callback, run after the pass has left the stack)
    finally:
        stack.pop()
        _engine._callbacks.contexts.pop()
        if outer is not None:
            context[_engine.PASS_GRAPH] = outer
    if queued:
        _engine._end_pass(queued, failed)
    return result


def _pass(roots, seeds, targets, retain_graph, capture, graph=False):
    leaf_slot = node_slot = None  # target -> its positions in ``targets``
    if targets is not None:
        leaf_slot, node_slot = {}, {}
        for i, t in enumerate(targets):
            (leaf_slot.setdefault(t, []) if t._node is None else node_slot.setdefault(t._node, [])).append(i)
    found = [None] * len(targets) if capture else None

    # Pass 1: the seeds, and the consumers of every node and leaf reachable from the roots.
    grads, pending, node_deps, leaf_deps, root_nodes = {}, {}, {}, {}, []
    for r, s in zip(roots, seeds):
        n = r._node
        if n is None:  # a leaf root: the seed is (part of) its gradient
            if leaf_slot is None or r in leaf_slot:
                pending[r] = s if r not in pending else pending[r] + s
            continue
        if n.parents is None:
            raise RuntimeError(_FREED)
        grads[n] = s if n not in grads else grads[n] + s
        if n not in node_deps:
            node_deps[n] = 0
            root_nodes.append(n)
    todo = list(root_nodes)
    while todo:
        for p in todo.pop().parents:
            if p is None:
                continue
            if isinstance(p, Tensor):
                leaf_deps[p] = leaf_deps.get(p, 0) + 1
            elif p in node_deps:
                node_deps[p] += 1
            else:
                if p.parents is None:
                    raise RuntimeError(_FREED)
                node_deps[p] = 1
                todo.append(p)

    # Pruning (PyTorch's): a node runs only if a wanted leaf or node lies behind it; a wanted node is
    # reached but, with nothing wanted behind it, not run. Producers are decided before their consumers.
    runs = reach = None
    if targets is not None:
        deps, ready, topo = dict(node_deps), [n for n in root_nodes if node_deps[n] == 0], []
        while ready:
            n = ready.pop()
            topo.append(n)
            for p in n.parents:
                if p is not None and not isinstance(p, Tensor):
                    deps[p] -= 1
                    if deps[p] == 0:
                        ready.append(p)
        runs, reach = {}, {}
        for n in reversed(topo):
            feeds = False
            for p in n.parents:
                if p is not None and (p in leaf_slot if isinstance(p, Tensor) else reach[p]):
                    feeds = True
                    break
            runs[n] = feeds
            reach[n] = feeds or n in node_slot
    # (what hooks may ask: engine.will_run; a leaf root is a leaf of the pass too)
    _engine.backward_context()[_engine.PASS_GRAPH] = (node_deps, {**leaf_deps, **pending} if pending else leaf_deps,
                                                          reach, leaf_slot)
    for n in node_deps:  # before any gradient lands: a stale saved tensor refuses the whole pass
        if runs is None or runs[n]:
            _check_versions(n)
    if graph:  # every node that will run must have a graph backward: refused now, naming the op
        _graph.check_nodes(n for n in node_deps if runs is None or runs[n])
    grad_hooks, output_hooks = (_graph.run_grad_hooks, _graph.run_output_hooks) if graph else (_run_grad_hooks,
                                                                                               _run_output_hooks)

    if not capture and _engine._begin_hooks:  # the leaves this pass accumulates into (data parallelism's hook)
        leaves = {p: 1 for p in list(leaf_deps) + list(pending) if leaf_slot is None or p in leaf_slot}
        factor = _seed_factor(roots[0], leaves)
        if factor is not None and factor != 1:
            grads = {n: g * factor for n, g in grads.items()}
            pending = {p: g * factor for p, g in pending.items()}

    def land(t, g, slots):
        """The gradient of wanted (or, ``targets`` None, any) leaf ``t`` for this pass is final: ``g``."""
        if capture:
            if g is not None and t._grad_hooks:
                g = grad_hooks(t._grad_hooks, g)
            for i in slots:
                found[i] = g
            return
        if g is not None and t.requires_grad:
            g = grad_hooks(t._grad_hooks, g) if t._grad_hooks else g
            if graph:  # (.grad is an array, or a sparse tensor on arrays: the value, without the graph)
                g = detached(g) if is_sparse(g) else g.data
            _accumulate_leaf(t, g, owned=False)
        if t._hooks:
            _fire_hooks(t)

    # Pass 2: Kahn's algorithm, LIFO, as engine._backward.
    profiling = _profiler.recording
    ready = [n for n in root_nodes if node_deps[n] == 0 and (reach is None or reach[n])]
    while ready:
        n = ready.pop()
        g = grads.pop(n, None)
        slots = node_slot.get(n) if node_slot is not None else None
        run = runs is None or runs[n]
        if slots and capture and run:  # (PyTorch: before the hooks when the node runs; see the docstring)
            for i in slots:
                found[i] = g
        if g is not None and n.grad_hooks is not None:
            g = output_hooks(n.grad_hooks, g)
        if slots and capture and not run:
            for i in slots:
                found[i] = g
        if not run:
            continue
        parents, shapes = n.parents, n.input_shapes
        if g is None:
            in_grads = (None,) * len(parents)
        elif graph:
            in_grads = _graph.call(n, g) if not profiling else _profiler.timed_backward(n, g, _graph.call)
        else:
            in_grads = n.backward(g) if not profiling else _profiler.timed_backward(n, g)
            if type(in_grads) is not tuple:
                in_grads = tuple(in_grads) if isinstance(in_grads, list) else (in_grads,)
            if len(in_grads) != len(parents):
                raise RuntimeError(
                    f"{type(n).__name__}.backward returned {len(in_grads)} gradient(s) for {len(parents)} input(s)")
        g = None
        if not retain_graph:
            n.free()  # (keeping its name, edges and output hooks, as the engine's pass does)
        for p, pg, shape in zip(parents, in_grads, shapes):
            if p is None:
                continue
            if pg is not None and pg.shape != shape and not is_sparse(pg):  # (sparse: made to fit, as in the engine)
                try:
                    pg = _graph.sum_to_shape(pg, shape) if graph else sum_to_shape(pg, shape)
                except RuntimeError as e:
                    raise RuntimeError(f"{type(n).__name__}.backward: {e}") from None
            if graph and pg is not None:
                # a gradient in its input's dtype (PyTorch's): a float64 gradient reaching a float32 matmul
                # through a promoting add would be refused as mixed dtypes in that matmul's graph backward
                want = p.dtype if isinstance(p, Tensor) else getattr(p, "out_dtype", pg.dtype)
                if pg.dtype != want:
                    pg = pg.to(want)
            if isinstance(p, Tensor):
                if leaf_slot is not None and p not in leaf_slot:
                    continue
                if pg is not None:
                    prev = pending.get(p)
                    if prev is None:
                        pending[p] = pg
                    elif is_sparse(prev) or is_sparse(pg):  # (a sparse leaf's, or a dense one's of sparse * dense)
                        pending[p] = sum_gradients(prev, pg, graph)
                    else:
                        pending[p] = prev + pg
                leaf_deps[p] -= 1
                if leaf_deps[p] == 0:
                    land(p, pending.pop(p, None), leaf_slot[p] if leaf_slot is not None else ())
            elif reach is None or reach[p]:
                if pg is not None:
                    prev = grads.get(p)
                    grads[p] = pg if prev is None else prev + pg
                node_deps[p] -= 1
                if node_deps[p] == 0:
                    ready.append(p)
    for p in [p for p in pending if p not in leaf_deps]:  # leaf roots that no node consumes
        land(p, pending.pop(p), leaf_slot[p] if leaf_slot is not None else ())
    return found
