"""Early stop of a checkpointed region's recomputation (PyTorch's ``early_stop``, on by default).

PyTorch's non-reentrant checkpoint keeps the forward's graph and recomputes only the tensors its nodes saved, when
the backward first unpacks one; it stops the recomputation (``_StopRecomputationError``) as soon as it has saved as
many tensors as the forward did, so the ops after the last one that saves something, the region's *tail*, are
not run again (in order: all of the region's saved tensors are recomputed, also those this backward never reads).

distnn's region is one hub node whose backward recomputes the region's graph (:mod:`.recompute`), so the tail's
nodes must come from somewhere. A node that keeps nothing for backward but metadata (shapes, axes, scalars:
``x + 1``, ``x * 2``, ``x.sum()``, ``reshape``, the ops PyTorch saves no tensor for) costs no memory to keep: the
forward keeps those nodes (:class:`Tail`) and frees the others, as before. The recomputation stops
(:class:`StopRecomputation`, raised when its region notes the last node that keeps something); the backward graph
is the recomputed nodes followed by copies of the kept ones after them, each copy's parents re-pointed from the
forward's freed nodes to the recomputed ones at the same position in recording order (so the recomputation must
run the same ops in the same order as the forward: checked, whatever ``determinism_check``). A backward whose
outputs have no node that keeps something behind them (a region of ``reshape`` and ``+``, or only its outputs
that are) recomputes nothing, with early stop or without, as PyTorch, which unpacks nothing there.

What "keeps something" means: any attribute but the graph fields that is not a plain value (None, a number, a
string, a slice, a dtype, a tuple or list of those): an array (PyTorch's saved tensor, a 0-d one too: a numpy scalar
result is kept as the output's 0-d array, see ``Function.apply``), another node, a hook. A class whose attributes
that test misjudges says so in ``Function.torch_saved`` (indexing: a list index is PyTorch's saved index tensor).
With early stop the forward's analysis is kept even where no op follows the last one that keeps something: the
code after that op is not run again either, as PyTorch's.
It errs on the side of recomputing: a nested checkpoint's hub and output nodes, and a node with a hook, keep
something. So where a nested checkpoint is the last thing in a region that keeps something, the recomputation
runs the inner function once more than PyTorch's, which stops once the inner checkpoint has saved its arguments
(distnn's inner hub is made after its function runs). As in PyTorch, what the tail does besides recording ops
(a counter, a print) is not done again in backward; the gradients are the same.
"""
from __future__ import annotations

import numpy as np

from .tensor import Tensor

_PLAIN = (type(None), bool, int, float, complex, str, slice, type(Ellipsis), np.dtype, np.generic)
_PLAIN_TYPES = frozenset((type(None), bool, int, float, complex, str, slice, type(Ellipsis)))
_GRAPH_FIELDS = frozenset(("parents", "input_shapes", "needs_input_grad"))
_EMPTY = np.empty(0)  # (a root's data: the capturing pass reads only its node)


class StopRecomputation(Exception):
    """Raised by a recomputation's region when it has noted every node the backward needs recomputed
    (PyTorch's ``_StopRecomputationError``)."""


def _plain(value) -> bool:
    if type(value) is tuple or type(value) is list:  # (cat's sizes)
        return all(_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def keeps_something(node) -> bool:
    """Whether ``node`` keeps anything for backward beyond plain metadata (module docstring). A class whose
    attributes the generic test misjudges names them in ``torch_saved``: {attribute: whether PyTorch's node saves a
    tensor for this value}, e.g. indexing's ``index``: a list (PyTorch's index tensor) keeps something, a
    ``DiagonalView`` (offset and dims) does not."""
    judged = node.torch_saved
    for k, v in node.__dict__.items():
        if judged and k in judged:
            if judged[k](v):
                return True
            continue
        if type(v) in _PLAIN_TYPES or k in _GRAPH_FIELDS or _plain(v):  # (the first test: most attributes)
            continue
        return True
    return False


class Tail:
    """What the forward keeps of a region for its backward: its nodes that keep nothing (module docstring).

    ``saved``: the positions of the nodes that keep something (PyTorch's saved tensors, one per node here: what the
    determinism check compares); ``stop``: how many nodes the recomputation records before it stops (the position
    of the first node after the last one that keeps something: for the same ops, where PyTorch's has saved as many
    tensors as its forward did); ``early``: whether it stops there (early stop), or recomputes the whole function.
    Either way a backward whose outputs have no node that keeps something behind them recomputes nothing
    (:meth:`needed`), as PyTorch, which recomputes when the backward first unpacks a saved tensor.
    """

    def __init__(self, nodes: list, outputs: dict, early: bool):
        """``nodes``: the region's nodes in recording order; ``outputs``: {output index: the node that made it}."""
        self.early = early
        position = {id(n): k for k, n in enumerate(nodes)}
        inner = []  # per node: the positions of its parents that are region nodes
        for n in nodes:
            ks = []
            for p in n.parents:
                k = position.get(id(p))
                if k is not None and nodes[k] is p:
                    ks.append(k)
            inner.append(ks)
        self.outputs = {i: position[id(n)] for i, n in outputs.items()}
        keeps = [keeps_something(n) for n in nodes]
        self.saved = [k for k in range(len(nodes)) if keeps[k]]  # (the positions of the nodes that keep something)
        self.stop = self.saved[-1] + 1 if self.saved else 0
        reached = set(self.outputs.values())  # (a node no output reaches is not kept: it may hold outside nodes)
        for k in range(len(nodes) - 1, -1, -1):
            if k in reached:
                reached.update(inner[k])
        # position -> (node, its parents: (True, position) for a node of the region, (False, parent) for the others)
        self.kept = {k: (nodes[k], tuple((True, position[id(p)]) if position.get(id(p)) in inner[k] else (False, p)
                                         for p in nodes[k].parents))
                     for k in sorted(reached) if not keeps[k]}
        behind = []  # behind[k]: some node that keeps something is node k or lies behind it
        for k, ks in enumerate(inner):
            behind.append(keeps[k] or any(behind[v] for v in ks))
        self._needs = {i: behind[k] for i, k in self.outputs.items()}
        self.nodes = [n for n, _ in self.kept.values()]
        self._count = len(nodes)

    def useful(self) -> bool:
        """Whether keeping these nodes can save any recomputation: with early stop, always (a tail of ops, or only
        the code after the last op that keeps something, is not run again), else an output with nothing to
        recompute behind it."""
        return self.early or not all(self._needs.values())

    def needed(self, indices) -> bool:
        """Whether the backward from the outputs ``indices`` needs any recomputed node."""
        return any(self._needs.get(i, False) for i in indices)

    def roots(self, region) -> dict:
        """{output index: a root Tensor}: the first nodes in ``region`` (a recomputation stopped at ``stop``
        nodes, or none at all when not :meth:`needed`), then copies of the kept nodes, noted in ``region`` too."""
        new = list(region.nodes.values())
        start = len(new)
        new.extend([None] * (self._count - start))
        for k, (node, parents) in self.kept.items():
            if k < start:
                continue
            copy = object.__new__(type(node))  # (the capturing pass frees what it runs: the forward's nodes stay)
            copy.__dict__.update(node.__dict__)
            # (a parent that keeps something is None only for a node the backward does not reach: see needed)
            copy.parents = tuple(new[v] if in_region else v for in_region, v in parents)
            new[k] = copy
            region.nodes[id(copy)] = copy
        return {i: Tensor._make(_EMPTY, new[k]) for i, k in self.outputs.items() if new[k] is not None}
