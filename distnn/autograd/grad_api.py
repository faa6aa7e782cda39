"""PyTorch's ``torch.autograd.grad`` and ``torch.autograd.backward`` (several roots, ``inputs=``).

``Tensor.backward()`` on one tensor keeps going through :func:`engine.backward`, untouched. The passes
here need what that hot path does not: several roots at once, gradients *returned* rather than added into
``.grad`` (:func:`grad`), or added only into chosen tensors (``backward(inputs=...)``). They walk the same
graph with the same rules (dependency counts, LIFO, version checks, a node freed after its backward unless
``retain_graph``), and prune it as PyTorch does: a node runs only when a requested tensor lies behind it.

Hooks as PyTorch runs them: a non-leaf's ``register_hook`` hooks and ``retain_grad`` run whenever the pass
reaches its node; a leaf's ``register_hook`` hooks run on the gradient that :func:`grad` returns for it,
but its post-accumulate-grad hooks only when the gradient is accumulated (``backward``). A non-leaf that
:func:`grad` is asked for gets its gradient before its hooks when the pass goes on through its node (to a
requested tensor behind it), after them otherwise: PyTorch's engine captures it that way
(``evaluate_function``: tensor pre-hooks run before the capture only for a node it will not execute).

Gradient destinations (``engine.set_grad_destination``) are not offered here, and :func:`grad` runs no
backward-begin hooks: no leaf gets a gradient, so data parallelism has nothing to synchronize.

Double backward (``create_graph=True``): ``Function.backward`` computes on raw arrays and records nothing, so
such a pass runs each node's *graph backward* instead (:mod:`.derivatives`, :mod:`.graph_pass`): Tensors in,
Tensors out, recorded. The gradients :func:`grad` returns then have a graph and can be differentiated again
(third order too). A node without one (an op outside the covered set) refuses the pass before anything runs,
naming the op. ``retain_graph`` defaults to ``create_graph``, as PyTorch's. :func:`backward` adds the values
into ``.grad``, an array in distnn, so it cannot carry the graph: use :func:`grad` to differentiate gradients.

The pass itself (:func:`~.grad_pass._walk`, :func:`~.grad_pass._pass`, ``PARTIAL_PASS``) is ``grad_pass.py``;
this module checks the arguments, seeds the pass and shapes what it returns.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import get_array_module, to_numpy

from . import engine as _engine
from . import graph as _graph_api, graph_pass as _graph
from . import sparse_inputs as _sparse_in
from .grad_pass import PARTIAL_PASS, _pass, _walk  # noqa: F401  (recompute.py and utils/checkpoint.py use them here)
from .tensor import Tensor


def _tensors(x, what: str) -> tuple:
    """``x`` (a Tensor or a sequence of them) as a tuple, refusing anything else."""
    items = (x,) if isinstance(x, Tensor) else x
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"{what}: expected a Tensor or a sequence of Tensors, got {type(x).__name__}")
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what}: element {i} is a {type(t).__name__}, not a Tensor")
    return tuple(items)


def _seeds(outputs: tuple, grad_outputs, batched: bool = False) -> list:
    """One gradient array per output (owned: copied, in the output's dtype), checked as PyTorch does."""
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, Tensor) or not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = (grad_outputs,)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"got {len(outputs)} tensors and {len(grad_outputs)} gradients")
    seeds = []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have a grad_fn")
        data = out.data
        xp = get_array_module(data)
        if g is None:
            if batched:
                raise RuntimeError("is_grads_batched=True needs grad_outputs for every output")
            if data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            if data.dtype.kind == "c":
                raise RuntimeError("grad can be implicitly created only for real scalar outputs")
            seeds.append(xp.ones_like(data))
            continue
        g = g.data if isinstance(g, Tensor) else _sparse_in.sparse_seed(g)
        if not hasattr(g, "shape") or get_array_module(g) is not xp:  # a number, a list, another device's array
            g = xp.asarray(to_numpy(g) if xp is np else g, dtype=data.dtype)
        want = tuple(data.shape) if not batched else tuple(g.shape[:1]) + tuple(data.shape)
        if tuple(g.shape) != want or (batched and g.ndim == 0):
            raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(g.shape)} and "
                               f"output[{i}] has a shape of {tuple(data.shape)}"
                               + (" (is_grads_batched=True: grad_output needs a leading batch dimension)"
                                  if batched else "") + ".")
        seeds.append(g.astype(data.dtype, copy=True))  # ours: the pass may hand it on
    return seeds


def _fresh(arrays):
    """The gradients :func:`grad` returns: each its own writable array (an op's backward may return a
    broadcast view, or one array for two inputs)."""
    seen, out = set(), []
    for a in arrays:
        if type(a) is _engine._sparse.type:  # (a sparse embedding gradient: made fresh by its op)
            out.append(a)
            continue
        if a is not None and (id(a) in seen or a.base is not None or not getattr(a.flags, "writeable", True)):
            a = a.copy()
        if a is not None:
            seen.add(id(a))
        out.append(a)
    return out


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=None, is_grads_batched=False, materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs``, returned (a tuple of Tensors, one per
    input), as ``torch.autograd.grad``; no ``.grad`` is changed.

    ``inputs`` may be leaves or intermediate tensors, and sparse COO leaves: their gradient comes back in the
    layout ``backward`` gives their ``.grad`` (:mod:`.sparse_inputs`). ``grad_outputs``: the vector of the
    vector-Jacobian product per output (may be None for a one-element output; a sparse one acts as its
    dense one). An input the outputs do not
    depend on is an error unless ``allow_unused=True`` (its gradient is then None) or
    ``materialize_grads=True`` (zeros). ``retain_graph`` (default False): keep the graph for another pass.
    ``is_grads_batched=True``: ``grad_outputs`` have a leading batch dimension and each result gets one (a
    pass per row: the same values as PyTorch's vmap). ``create_graph=True``: the returned gradients carry a
    graph (recorded ops), to differentiate again; a ``grad_outputs`` Tensor that requires grad is used as it is
    (the result depends on it). ``retain_graph`` then defaults to True.
    """
    if create_graph and is_grads_batched:
        raise NotImplementedError("autograd.grad: create_graph=True with is_grads_batched=True is not supported "
                                  "(distnn has no vmap); call grad once per row of grad_outputs")
    if materialize_grads and allow_unused is False:
        raise ValueError("Expected allow_unused to be True or not passed when materialize_grads=True, but got: "
                         "allow_unused=False.")
    if allow_unused is None:
        allow_unused = materialize_grads
    outputs, grad_outputs = _sparse_in.outputs_to_values(outputs, grad_outputs)
    outputs = _tensors(outputs, "autograd.grad outputs")
    inputs, sparse_leaves = _sparse_in.leaves_to_values(_edges_to_targets(inputs, materialize_grads),
                                                        "autograd.grad inputs")
    inputs = _tensors(inputs, "autograd.grad inputs")
    if sparse_leaves is not None and is_grads_batched:
        raise NotImplementedError("autograd.grad: is_grads_batched=True with a sparse COO input is not supported, "
                                  "as in PyTorch (its vmap has no sparse kernels); call grad once per row")
    if not inputs:
        raise RuntimeError("`inputs` argument to `grad()` cannot be empty.")
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    seeds = _seeds(outputs, grad_outputs, batched=is_grads_batched)
    retain = bool(create_graph) if retain_graph is None else bool(retain_graph)
    if create_graph:
        seeds = [_graph.seed(s, given) for s, given in zip(seeds, _given(grad_outputs, len(outputs)))]
        found = _walk(outputs, seeds, inputs, retain, True, graph=True)
    elif is_grads_batched:
        sizes = {s.shape[0] for s in seeds}
        if len(sizes) != 1:
            raise RuntimeError(f"is_grads_batched=True: the grad_outputs have different batch sizes {sorted(sizes)}")
        rows = [_walk(outputs, [s[b].copy() for s in seeds], inputs, retain or b + 1 < len(seeds[0]), True)
                for b in range(len(seeds[0]))]
        found = [None if rows[0][i] is None else get_array_module(rows[0][i]).stack([r[i] for r in rows])
                 for i in range(len(inputs))]
    else:
        found = _fresh(_walk(outputs, seeds, inputs, retain, True))
    if sparse_leaves is not None:  # each sparse leaf's gradient as its .grad would be (sparse or dense)
        found = _sparse_in.as_leaf_grads(found, sparse_leaves, materialize_grads)
    result = []
    for i, (t, g) in enumerate(zip(inputs, found)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"The differentiated Tensor at index {i} appears to not have been used in the "
                                   "graph. Set allow_unused=True if this is the desired behavior.")
            if materialize_grads:
                xp = get_array_module(t.data)
                g = xp.zeros(((len(seeds[0]),) if is_grads_batched else ()) + tuple(t.shape), dtype=t.dtype)
        if g is not None and g.dtype != t.dtype:  # (PyTorch's: a promoting op's backward passed a wider one)
            g = g.to(t.dtype) if isinstance(g, Tensor) else g.astype(t.dtype)
        result.append(None if g is None else g if isinstance(g, (Tensor, _engine._sparse.type))  # (sparse: as is)
                      else Tensor._make(g, None))
    return tuple(result)


def _edges_to_targets(inputs, materialize_grads):
    """``graph.GradientEdge`` entries of ``inputs`` as the tensors the pass looks for (see graph.edge_target)."""
    if isinstance(inputs, _graph_api.GradientEdge):
        inputs = (inputs,)
    if isinstance(inputs, (list, tuple)) and any(isinstance(x, _graph_api.GradientEdge) for x in inputs):
        if materialize_grads:
            raise RuntimeError("autograd.grad: materialize_grads=True cannot be used with GradientEdge inputs in "
                               "distnn (the shape of an edge's gradient is not recorded)")
        inputs = tuple(_graph_api.edge_target(x) if isinstance(x, _graph_api.GradientEdge) else x for x in inputs)
    return inputs


def _given(grad_outputs, n):
    """The caller's ``grad_outputs`` as one entry per output (as :func:`_seeds` reads them)."""
    if grad_outputs is None:
        return (None,) * n
    if isinstance(grad_outputs, Tensor) or not isinstance(grad_outputs, (list, tuple)):
        return (grad_outputs,)
    return tuple(grad_outputs)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, grad_variables=None,
             inputs=None) -> None:
    """Accumulate the gradients of ``tensors`` into the leaves' ``.grad``, as ``torch.autograd.backward``.

    ``grad_tensors``: one gradient per tensor (None for a one-element tensor). ``inputs``: accumulate only
    into these tensors (leaves, sparse COO leaves too, or non-leaves: as PyTorch, those get ``retain_grad()``,
    so they keep their gradients in ``.grad`` in later passes too); the rest of the graph is left alone.
    ``create_graph=True``: the pass runs the graph backwards (hooks see Tensors with a graph, ops without one
    are refused) and keeps the graph by default; ``.grad`` gets the values (it is an array in distnn, so it
    carries no graph: differentiate gradients with :func:`grad`).
    """
    if grad_variables is not None:
        if grad_tensors is not None:
            raise RuntimeError("'grad_tensors' and 'grad_variables' (deprecated) arguments both passed to "
                               "backward(). Please only use 'grad_tensors'.")
        grad_tensors = grad_variables
    tensors, grad_tensors = _sparse_in.outputs_to_values(tensors, grad_tensors)
    tensors = _tensors(tensors, "autograd.backward tensors")
    if inputs is not None:
        inputs = _tensors(_sparse_in.leaves_to_values(inputs, "backward inputs")[0], "backward inputs")
        if not inputs:
            raise RuntimeError("`inputs` argument to `backward()` cannot be empty.")
        for i, t in enumerate(inputs):
            if not t.requires_grad:
                raise RuntimeError(f"backward: inputs[{i}] does not require grad; every tensor in inputs= must")
    if not tensors:
        raise RuntimeError("backward: no tensors to differentiate")
    if inputs is None and len(tensors) == 1 and not create_graph:  # the engine's own pass (destinations, ...)
        g = grad_tensors[0] if isinstance(grad_tensors, (list, tuple)) and len(grad_tensors) == 1 else grad_tensors
        if isinstance(grad_tensors, (list, tuple)) and len(grad_tensors) != 1:
            raise RuntimeError(f"got 1 tensors and {len(grad_tensors)} gradients")
        _engine.backward(tensors[0], g, bool(retain_graph))
        return
    seeds = _seeds(tensors, grad_tensors)
    if create_graph:
        seeds = [_graph.seed(s, given) for s, given in zip(seeds, _given(grad_tensors, len(tensors)))]
    for t in inputs or ():
        if t._node is not None:
            t.retain_grad()  # as PyTorch: a non-leaf in inputs= keeps its gradients from now on
    retain = bool(create_graph) if retain_graph is None else bool(retain_graph)
    _walk(tensors, seeds, inputs, retain, False, graph=bool(create_graph))
