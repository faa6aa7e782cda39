"""The graph side of activation checkpointing (:mod:`distnn.utils.checkpoint`): a region of recorded ops
replaced by one node that recomputes it in backward.

distnn's ops keep what their backward reads as attributes of their node, so "not keeping the activations"
means not keeping the nodes. A checkpointed call runs its function with recording on while a *region* is
open on this thread: every node recorded meanwhile is noted (the one function each ``Function.apply`` wraps
its output with is swapped for one that also notes it, the way anomaly mode swaps it; only while some
region is open, in any thread). When the function returns:

* the region's *boundary* is read off the noted nodes: the parents that are not region nodes, i.e. the leaf
  tensors it used (parameters, inputs) and the nodes of outside tensors it read (its arguments' producers,
  tensors it closed over), only those that reach an output;
* one :class:`CheckpointBackward` node (the hub) takes the boundary as its parents, and each output that
  requires grad becomes a new tensor made by a :class:`CheckpointOutput` node whose parent is the hub;
* every region node is freed (its saved arrays dropped), so only the hub's arguments stay alive.

To the engine the hub is an ordinary node: parameters used in the region are its parents, so their
gradients are final, and their post-accumulate hooks fire (DataParallel's bucket allreduces), once, when
the whole pass has delivered them, exactly as without checkpointing. An output node passes its gradient to
the hub out of band (a zero "token" flows along the edge); the engine runs the hub after every output
node the pass reaches. The hub's backward then recomputes the region (this module's :class:`Region` again,
with the forward's random generator state, autocast state and the caller's recompute context), cuts the
recomputed graph at its boundary (each boundary parent replaced by a stand-in leaf) and runs one capturing
pass (``grad_pass._walk``) from the recomputed outputs to the stand-ins: the boundary's gradients, which it
returns. That pass shares the outer pass's ``backward_context``, runs no backward-begin hooks and
accumulates into no ``.grad``: nothing is synchronized or counted twice. The recomputed graph is freed by
that pass.

A create_graph pass runs the hub's ``backward_graph``: the same recomputation, but the capturing pass is a
create_graph one and each stand-in is an identity node linked to the real boundary parent, so the gradients it
returns have a graph that reaches the region's inputs and parameters through the recomputed nodes (kept alive
by that graph), and can be differentiated again.

Early stop (:mod:`.early_stop`): the forward keeps the region's nodes that keep nothing for backward (metadata
only) instead of freeing them; the recomputation stops (``Region(stop_after=...)`` raises) after the last node
that keeps something, and the capturing pass runs over the recomputed nodes joined to copies of the kept ones.

Nested checkpoints need nothing more: an inner checkpoint's hub and output nodes are nodes of the outer
region, recomputed with it, and their backward recomputes the inner region.
"""
from __future__ import annotations


import numpy as np

from . import anomaly as _anomaly, function as _function
from .early_stop import StopRecomputation
from .function import KEPT_WHEN_FREED, Function
from .grad_mode import enable_grad
from .scoped_swap import ScopedSwap
from .tensor import Tensor



def _noting_make(data, node):
    """``Function.apply``'s output wrapper while a region is open: the usual one, then note the node."""
    t = _anomaly.mode_make()(data, node)
    if node is not None:
        regions = getattr(_regions.local, "scopes", None)
        if regions:
            regions[-1].note(node, data)
    return t


def _install_noting() -> None:
    _function._make = _noting_make


def _restore_make() -> None:
    _function._make = _anomaly.mode_make()


# The noting wrapper is installed while a region is open in any thread; each thread notes into its innermost one
_regions = ScopedSwap(_install_noting, _restore_make)


def _device(data) -> str:
    return "cpu" if isinstance(data, (np.ndarray, np.generic)) else "cuda"  # (a 0-d result may be a numpy scalar)


class Region:
    """The nodes recorded on this thread while it is open (``with region:``), in order, with the metadata of
    each output (shape, dtype, device: the determinism check) and the ops' names (``debug``)."""

    def __init__(self, stop_after=None):
        self.nodes = {}  # id(node) -> node, in recording order
        self.metas = []
        self.names = []
        self.stop_after = stop_after  # early stop: raise StopRecomputation once this many nodes are noted

    def note(self, node, data) -> None:
        self.nodes[id(node)] = node
        self.metas.append({"shape": tuple(data.shape), "dtype": data.dtype, "device": _device(data)})
        self.names.append(type(node).__name__)
        if self.stop_after is not None and len(self.metas) >= self.stop_after:
            raise StopRecomputation  # (again at each later node, should the function swallow it)

    def __contains__(self, node) -> bool:
        return node is not None and self.nodes.get(id(node)) is node

    def __enter__(self):
        _regions.push(self)
        return self

    def __exit__(self, *exc):
        _regions.pop()

    def reached(self, tensors) -> list:
        """The region nodes behind ``tensors`` (outputs), each once."""
        seen, todo = {}, [t._node for t in tensors if t._node is not None and t._node in self]
        while todo:
            n = todo.pop()
            if id(n) in seen:
                continue
            seen[id(n)] = n
            todo.extend(p for p in n.parents if p is not None and not isinstance(p, Tensor) and p in self)
        return list(seen.values())

    def release(self, keep=()) -> None:
        """Free every node recorded but those of ``keep`` (their saved arrays go): the forward keeps no
        activation (``keep``: early stop's tail, nodes that keep nothing). Each is freed as backward frees a node
        (``Function.free``): its name, edges (``next_functions``), ``metadata`` and hooks stay, so a tensor the
        function made shows the graph PyTorch's checkpoint shows."""
        kept = {id(n) for n in keep}
        for n in self.nodes.values():
            if id(n) not in kept:
                n.free()
        self.nodes = {}


def note_outside(node, data) -> None:
    """Note a node made without ``Function.apply`` (a hub, an output node) in this thread's innermost open
    region, if any: a checkpoint nested in another's function is part of the outer region."""
    regions = getattr(_regions.local, "scopes", None)
    if regions:
        regions[-1].note(node, data)


def boundary(region: Region, nodes) -> tuple:
    """(parents, shapes): the distinct parents of ``nodes`` that are not region nodes, and their shapes."""
    parents, shapes, seen = [], [], set()
    for n in nodes:
        for p, shape in zip(n.parents, n.input_shapes):
            if p is None or id(p) in seen or (not isinstance(p, Tensor) and p in region):
                continue
            seen.add(id(p))
            parents.append(p)
            shapes.append(tuple(shape))
    return parents, shapes


class CheckpointBackward(Function):
    """The hub of a checkpointed region (see the module docstring). Its parents are the region's boundary;
    ``precheck()`` runs first (the versions of what the region is recomputed from, the reentrant variant's
    refusals), ``recompute()`` reruns the region and returns its outputs (flattened, by position), and
    ``check(region, outputs)`` compares the recomputation with the forward (the determinism check)."""

    saves_tensors = False  # (the checkpoint checks the versions of what it recomputes from itself: ``check``)

    def backward(self, token):
        return self._gradients(False)

    def backward_graph(self, token):
        """The create_graph pass's backward: the same, with Tensor gradients computed by recorded ops (the
        recomputed region stays alive as part of their graph, so they can be differentiated again). A hub made
        ``differentiable=False`` (the reentrant variant) gives its gradients as constants, as PyTorch's does."""
        if self.differentiable:
            return self._gradients(True)
        self.pending = [None if g is None else g.data for g in self.pending]
        return tuple(None if g is None else Tensor._make(g, None) for g in self._gradients(False))

    def _gradients(self, graph):
        grads, self.pending = self.pending, [None] * len(self.pending)
        self.precheck()
        # (by the parents the hub was made with: an outer recomputation's cut replaces a nested hub's parents)
        slots = {id(p): i for i, p in enumerate(self.boundary)}
        tail = self.tail
        if tail is not None and not tail.needed(i for i, g in enumerate(grads) if g is not None):
            region = Region()  # (no node that keeps something is behind the outputs used: nothing to recompute)
            self.check(region, None)
            return self._through_tail(region, tail, grads, slots, graph)
        region = Region(tail.stop if tail is not None and tail.early else None)
        outputs = None
        with region, enable_grad():
            try:
                outputs = self.recompute()
            except StopRecomputation:  # early stop: the nodes after these are the forward's tail's
                pass
        region.stop_after = None
        self.check(region, outputs)
        if outputs is None:
            return self._through_tail(region, tail, grads, slots, graph)
        roots, seeds, direct = [], [], [None] * len(self.parents)
        for i, g in enumerate(grads):
            t = outputs[i] if i < len(outputs) else None
            if g is None or not isinstance(t, Tensor) or not t.requires_grad:
                continue
            if t._node is not None and t._node in region:
                roots.append(t)
                seeds.append(g)
            else:  # an output that is a boundary tensor itself (the function returned an input)
                j = slots.get(id(t if t._node is None else t._node))
                if j is None:
                    raise _error(self, "an output of the recomputation is a tensor the forward did not use")
                direct[j] = g if direct[j] is None else direct[j] + g
        found = _capture(self, region, roots, seeds, slots, graph) if roots else [None] * len(self.parents)
        return tuple(d if f is None else f if d is None else f + d for f, d in zip(found, direct))

    def _through_tail(self, region, tail, grads, slots, graph):
        """The boundary's gradients when the recomputation stopped early: its nodes completed by the tail's."""
        outputs = tail.roots(region)
        roots, seeds = [], []
        for i, g in enumerate(grads):
            if g is not None and i in outputs:
                roots.append(outputs[i])
                seeds.append(g)
        return tuple(_capture(self, region, roots, seeds, slots, graph)) if roots else (None,) * len(self.parents)


def _capture(hub, region: Region, roots, seeds, slots, graph=False) -> list:
    """The gradients of the hub's parents: one capturing pass over the recomputed region, cut at its boundary
    (each boundary parent replaced by a stand-in without hooks, so its hooks run once, in the outer pass).
    First order: the stand-ins are leaves. ``graph`` (create_graph): each is an identity node linked to its
    parent, where the pass stops too, but through which the gradients' own graph reaches the real parent."""
    from . import engine, grad_pass

    if graph:
        from .derivatives import recorded
        from .derivatives.recompute import _Same

        stand_ins = [recorded(_Same, (p,), (shape,), np.empty(0)) for p, shape in zip(hub.parents, hub.input_shapes)]
    else:
        stand_ins = [Tensor._make(np.empty(0), None) for _ in hub.parents]
        for s in stand_ins:
            s.requires_grad = True
    for n in region.reached(roots):
        parents = list(n.parents)
        for k, p in enumerate(parents):
            if p is None or (not isinstance(p, Tensor) and p in region):
                continue
            j = slots.get(id(p))
            if j is None:
                raise _error(hub, f"the recomputation used a tensor (input {k} of {type(n).__name__}) that requires "
                                  "grad and that the forward did not use")
            parents[k] = stand_ins[j]._node if graph else stand_ins[j]
        n.parents = tuple(parents)
    # (create_graph: the recomputed nodes stay, as the gradients' graph reads them)
    return grad_pass._walk(roots, seeds, stand_ins, graph, True, graph=graph, context=engine.backward_context())


def _error(hub, what):
    from distnn.utils.checkpoint import CheckpointError  # (the public class, torch's name)

    return CheckpointError(f"distnn.utils.checkpoint: {what}: the checkpointed function must do the same when "
                           "recomputed in backward as in the forward pass.")


class CheckpointOutput(Function):
    """One output of a checkpointed region: hands its gradient to the hub (its parent) and a zero token along
    the edge, so that the engine runs the hub after every output the pass reaches."""

    saves_tensors = False

    # What the caller sees of the graph is PyTorch's (name, next_functions, metadata), not this node's plumbing:
    # the region's node that made the output (the non-reentrant variant, whose PyTorch output is that node's), or
    # PyTorch's ``CheckpointFunctionBackward`` over the function's tensor arguments (the reentrant variant). Kept
    # in ``_shown`` (a node, or the reentrant edges: a tuple), which the node's freeing keeps.
    def torch_name_of_call(self):
        shown = self.__dict__.get("_shown")
        return shown.name() if isinstance(shown, Function) else "CheckpointFunctionBackward"

    @property
    def next_functions(self) -> tuple:
        shown = self.__dict__.get("_shown")
        if isinstance(shown, Function):
            return shown.next_functions
        from .node_api import accumulate_grad

        return tuple((None if p is None else accumulate_grad(p) if isinstance(p, Tensor) else p, 0)
                     for p in shown or ())

    @property
    def metadata(self) -> dict:
        shown = self.__dict__.get("_shown")
        return shown.metadata if isinstance(shown, Function) else Function.metadata.fget(self)

    def backward(self, g):
        hub, i = self.hub, self.index
        hub.pending[i] = g if hub.pending[i] is None else hub.pending[i] + g
        return (np.zeros(()),)

    def backward_graph(self, g):  # (create_graph: ``g`` is a Tensor; the hub's backward_graph takes it)
        hub, i = self.hub, self.index
        hub.pending[i] = g if hub.pending[i] is None else hub.pending[i] + g
        return (Tensor._make(np.zeros(()), None),)


def make_hub(parents, shapes, n_outputs, precheck, recompute, check, differentiable=True,
             tail=None) -> CheckpointBackward:
    """The hub of a region (the class's docstring); ``tail``: early stop's :class:`~.early_stop.Tail`, or None
    to recompute the whole function. ``check(region, outputs)`` gets ``outputs`` None after an early stop."""
    hub = object.__new__(CheckpointBackward)
    hub.differentiable = differentiable
    hub.tail = tail
    hub.parents = hub.boundary = tuple(parents)
    hub.input_shapes = tuple(shapes)
    hub.needs_input_grad = (True,) * len(hub.parents)
    hub.pending = [None] * n_outputs
    hub.precheck, hub.recompute, hub.check = precheck, recompute, check
    note_outside(hub, np.zeros(()))
    return hub


def make_output(hub, index: int, t: Tensor, shown) -> Tensor:
    """The tensor the caller gets for region output ``t`` (its values and version counter, the graph's node).
    ``shown``: what its node shows of the graph (see :class:`CheckpointOutput`): the region's node that made
    ``t``, or the reentrant variant's edges, per tensor argument its producer, leaf, or None."""
    node = object.__new__(CheckpointOutput)
    node.parents, node.input_shapes, node.needs_input_grad = (hub,), ((),), (True,)
    node.hub, node.index = hub, index
    node._shown = shown
    node.__dict__[KEPT_WHEN_FREED] = {"_shown": shown}  # (kept when backward frees the node)
    out = Tensor._make(t.data, node)
    out._vc = t._vc  # (an in-place change through either is seen by the tensors the region's output views)
    note_outside(node, t.data)
    return out
