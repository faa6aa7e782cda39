"""Early stop of a checkpointed region's recomputation (PyTorch's ``early_stop``, on by default).

PyTorch's non-reentrant checkpoint keeps the forward's graph and recomputes only the tensors its nodes saved; it
stops the recomputation (``_StopRecomputationError``) as soon as the recomputation has saved as many tensors as the
forward did, so the ops after the last one that saves something, the region's *tail*, are not run again.

distnn's region is one hub node whose backward recomputes the region's graph (:mod:`.recompute`), so the tail's
nodes must come from somewhere. A node of the tail keeps nothing for backward but metadata (shapes, axes,
scalars: ``x + 1``, ``x * 2``, ``x.sum()``, ``reshape``, the ops PyTorch saves no tensor for), so it costs no
memory to keep: the forward keeps the tail's nodes (:class:`Tail`) and frees the others, as before. The
recomputation stops (:class:`StopRecomputation`, raised when its region notes the node just before the tail:
the last node that keeps something); the backward graph is the recomputed nodes followed by copies of the tail's,
each copy's parents re-pointed from the forward's freed nodes to the recomputed ones at the same position in
recording order. A region whose nodes keep nothing at all is not recomputed (PyTorch unpacks nothing there).

What "keeps something" means: any attribute but the graph fields that is not a plain value (None, a number, a
string, a slice, a dtype, a tuple of those): an array (PyTorch's saved tensor), a list, another node, a hook.
It errs on the side of recomputing: a nested checkpoint's hub and output nodes, and a node with a hook, keep
something. As in PyTorch, what the tail does besides recording ops (a counter, a print, a hook it registers on
a tensor of the tail) is not done again in backward; the gradients are the same.
"""
from __future__ import annotations

import numpy as np

from .tensor import Tensor

_PLAIN = (type(None), bool, int, float, complex, str, slice, type(Ellipsis), np.dtype, np.generic)
_GRAPH_FIELDS = frozenset(("parents", "input_shapes", "needs_input_grad"))
_EMPTY = np.empty(0)  # (a root's data: the capturing pass reads only its node)


class StopRecomputation(Exception):
    """Raised by a recomputation's region when it has noted every node the backward needs recomputed
    (PyTorch's ``_StopRecomputationError``)."""


def _plain(value) -> bool:
    if type(value) is tuple:
        return all(_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def keeps_something(node) -> bool:
    """Whether ``node`` keeps anything for backward beyond plain metadata (module docstring)."""
    return any(k not in _GRAPH_FIELDS and not _plain(v) for k, v in node.__dict__.items())


class Tail:
    """The nodes of a region recorded after the last one that keeps something, kept from the forward.

    ``stop``: how many nodes the recomputation records before it stops (the position of the tail's first node).
    """

    def __init__(self, nodes: list, outputs: dict):
        """``nodes``: the region's nodes in recording order; ``outputs``: {output index: the node that made it}."""
        last = -1
        for k, n in enumerate(nodes):
            if keeps_something(n):
                last = k
        self.stop = last + 1
        self.nodes = nodes[self.stop:]
        position = {id(n): k for k, n in enumerate(nodes)}

        def where(p):
            k = position.get(id(p)) if p is not None and not isinstance(p, Tensor) else None
            return (True, k) if k is not None and nodes[k] is p else (False, p)

        # each tail node's parents: (True, position) for a node of the region, (False, parent) for the others
        self.parents = [tuple(where(p) for p in n.parents) for n in self.nodes]
        self.outputs = {i: position[id(n)] for i, n in outputs.items()}

    def __bool__(self) -> bool:
        return bool(self.nodes)

    def roots(self, region) -> dict:
        """{output index: a root Tensor}: the outputs' nodes in ``region`` (the recomputation, stopped at
        ``stop`` nodes) completed by copies of the tail's nodes, which are noted in ``region`` too."""
        new = list(region.nodes.values())[:self.stop]
        for node, parents in zip(self.nodes, self.parents):
            copy = object.__new__(type(node))  # (the capturing pass frees what it runs: the forward's stay)
            copy.__dict__.update(node.__dict__)
            copy.parents = tuple(new[v] if in_region else v for in_region, v in parents)
            new.append(copy)
            region.nodes[id(copy)] = copy
        return {i: Tensor._make(_EMPTY, new[k]) for i, k in self.outputs.items()}
