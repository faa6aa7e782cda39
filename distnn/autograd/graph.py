"""PyTorch's ``torch.autograd.graph`` (torch 2.13) on distnn's engine.

* :class:`Node`: ``isinstance(t.grad_fn, Node)`` holds for distnn's nodes (:class:`Function`) and
  :class:`AccumulateGrad`, as PyTorch's ``__subclasshook__`` makes it; the Node API itself
  (``name()``, ``next_functions``, ``metadata``, ``register_hook``, ``register_prehook``) is in ``node_api``.
* :class:`saved_tensors_hooks` (nested: the innermost pair wins), :class:`disable_saved_tensors_hooks`,
  :class:`save_on_cpu`: see ``saved_hooks`` for how distnn's saved arrays go through them.
* :func:`register_multi_grad_hook`, :func:`get_gradient_edge` / :class:`GradientEdge` (accepted by
  ``autograd.grad(inputs=...)``), :func:`increment_version`, :class:`allow_mutation_on_saved_tensors`.
"""
from __future__ import annotations

import abc
from collections import namedtuple

import numpy as np

from . import mutation_guard as _guard
from . import saved_hooks as _saved
from .engine import PASS_GRAPH, backward_context, queue_callback, will_run
from .function import Function
from .node_api import AccumulateGrad, accumulate_grad
from .tensor import Tensor

__all__ = ["saved_tensors_hooks", "save_on_cpu", "disable_saved_tensors_hooks", "register_multi_grad_hook",
           "allow_mutation_on_saved_tensors", "Node", "GradientEdge", "get_gradient_edge", "increment_version"]


class Node(abc.ABC):
    """The abstract type of autograd graph nodes: ``tensor.grad_fn`` and the ``AccumulateGrad`` nodes of
    leaves. Not instantiated: distnn's nodes are :class:`Function` objects, recognised by ``isinstance``."""

    @abc.abstractmethod
    def name(self) -> str:
        """The node's name, e.g. ``"MulBackward0"``."""

    @property
    @abc.abstractmethod
    def next_functions(self) -> tuple:
        """Per input: ``(node, input_nr)``."""

    @property
    @abc.abstractmethod
    def metadata(self) -> dict:
        """A dict for the user's notes."""

    @abc.abstractmethod
    def register_hook(self, fn):
        """``fn(grad_inputs, grad_outputs)`` after the node runs."""

    @abc.abstractmethod
    def register_prehook(self, fn):
        """``fn(grad_outputs)`` before the node runs."""

    @classmethod
    def __subclasshook__(cls, C):
        if cls is Node and (issubclass(C, (Function, AccumulateGrad))):
            return True
        return NotImplemented


# PyTorch's fields (``ownership_token`` is PyTorch-internal: always None here)
GradientEdge = namedtuple("GradientEdge", ["node", "output_nr", "ownership_token"], defaults=(None,))
GradientEdge.__doc__ = ("A gradient edge: ``node`` (a graph node) and ``output_nr`` (which of its outputs; 0, as "
                        "distnn's ops have one). Accepted by ``autograd.grad(inputs=...)``.")


def get_gradient_edge(tensor: Tensor) -> GradientEdge:
    """The edge that computes ``tensor``'s gradient: its ``grad_fn``, or its ``AccumulateGrad`` for a leaf."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"get_gradient_edge: expected a Tensor, got {type(tensor).__name__}")
    if not tensor.requires_grad:
        raise RuntimeError("It is not possible to get the gradient edge for a Tensor that does not require "
                           "gradients")
    node = tensor._node
    return GradientEdge(accumulate_grad(tensor) if node is None else node, 0)


def edge_target(edge: GradientEdge):
    """``autograd.grad``'s stand-in for an edge among ``inputs``: the leaf itself, or a Tensor on the node
    (the pass captures the gradient that reaches the node; its shape is not known: no ``materialize_grads``)."""
    node = edge.node
    if isinstance(node, AccumulateGrad):
        return node.variable
    if not isinstance(node, Function):
        raise TypeError(f"GradientEdge: expected a graph node, got {type(node).__name__}")
    if node.parents is None:
        raise RuntimeError("GradientEdge: the node's graph was freed by backward (pass retain_graph=True)")
    return Tensor._make(np.empty(0, dtype=node.out_dtype), node)  # (only its node and dtype are read)


def increment_version(tensor) -> None:
    """Bump the version counter of ``tensor`` (or of each tensor of an iterable), as an in-place change would:
    a graph that saved it refuses to backward."""
    tensors = [tensor] if isinstance(tensor, Tensor) else list(tensor)
    for t in tensors:
        if not isinstance(t, Tensor):
            raise TypeError(f"increment_version: expected a Tensor or an iterable of Tensors, got {type(t).__name__}")
        t._bump_version()


class saved_tensors_hooks:  # noqa: N801 - PyTorch's name
    """Within this context, each array an op keeps for backward is passed to ``pack_hook(tensor)`` when the op
    runs (under ``no_grad``; the op's input or output Tensor itself where it saved that one, as PyTorch's), and
    what that returns to ``unpack_hook`` when backward needs it, which must return a Tensor with the same values
    (or others: backward then computes with them). The graph keeps only what ``pack_hook`` returns: a copy moved
    elsewhere lets the tensor's memory go once the caller drops it. As PyTorch's, no version of a packed tensor
    is checked (an in-place change after the forward is not refused). Nested contexts: the innermost pair
    applies. Thread-local, as PyTorch's. A pack hook that changes its tensor in place is refused (RuntimeError)."""

    def __init__(self, pack_hook, unpack_hook):
        if not callable(pack_hook) or not callable(unpack_hook):
            raise TypeError("saved_tensors_hooks: pack_hook and unpack_hook must be callable")
        self.pack_hook, self.unpack_hook = pack_hook, unpack_hook

    def __enter__(self):
        _saved.push(self.pack_hook, self.unpack_hook)
        return self

    def __exit__(self, *exc):
        _saved.pop()


class save_on_cpu(saved_tensors_hooks):  # noqa: N801 - PyTorch's name
    """Saved tensors go to the host in the forward pass and back to their device for backward (on CPU
    tensors: the same arrays, nothing copied). ``pin_memory`` and ``device_type`` are accepted as PyTorch's
    (distnn copies to ordinary host memory)."""

    def __init__(self, pin_memory: bool = False, device_type: str = "cuda"):
        def pack_to_cpu(tensor):
            # (a detached alias: the hook does not keep the op's own tensor alive; see inplace)
            return tensor.device, tensor.detach().cpu()

        def unpack_from_cpu(packed):
            device, tensor = packed
            return tensor.to(device)

        super().__init__(pack_to_cpu, unpack_from_cpu)
        self.pin_memory, self.device_type = pin_memory, device_type


class disable_saved_tensors_hooks:  # noqa: N801 - PyTorch's name
    """Within this context, entering :class:`saved_tensors_hooks` raises ``RuntimeError(error_message)``
    (entering this one while hooks are on raises it too, as PyTorch's)."""

    def __init__(self, error_message: str):
        self.error_message = error_message

    def __enter__(self):
        self._prev = _saved.set_disabled(self.error_message)
        return self

    def __exit__(self, *exc):
        _saved._local.disabled = self._prev


class allow_mutation_on_saved_tensors:  # noqa: N801 - PyTorch's name
    """Within this context a tensor saved for backward may be changed in place: backward uses the values it
    had when the op ran. As PyTorch's, a saved array is kept by reference and copied only just before its
    memory is first written (through the tensor, any view or alias of it, or an optimizer step, a state load,
    an init function; see ``mutation_guard`` for what is not seen); the in-place check of the nodes made here
    is lifted. Entering returns the context's record (``copies``: how many saved arrays were copied). Backward
    through those nodes after the context is left is refused (AssertionError), and nesting (RuntimeError), as
    PyTorch's."""

    def __enter__(self):
        if any(entry[2] is not None for entry in _saved._local.stack):
            raise RuntimeError("allow_mutation_on_saved_tensors contexts cannot be nested")
        self._open = True
        registry = self.registry = _guard.open_registry()

        def pack(tensor):
            return registry.save(tensor.data)

        def unpack(handle):
            if not self._open:  # (PyTorch raises an AssertionError)
                raise AssertionError("Trying to backward outside of the 'allow_mutation_on_saved_tensors' context in "
                                     "which the graph was originally recorded.")
            return Tensor._make(handle.array, None)

        def lift_check(node):
            node.__dict__.pop("saved_versions", None)  # (a write copies what the node saved first)

        try:
            _saved.push(pack, unpack, lift_check)
        except BaseException:
            _guard.close_registry(registry)
            raise
        return registry

    def __exit__(self, *exc):
        _saved.pop()
        self._open = False
        _guard.close_registry(self.registry)


def register_multi_grad_hook(tensors, fn, *, mode: str = "all"):
    """Hooks on several tensors as one, as PyTorch's. ``mode="all"``: ``fn(grads)`` once per backward pass
    that computes the gradient of any of ``tensors``, with one entry per tensor (None for those it did not
    compute), as soon as the last of those the pass computes is (before the hooks of what lies behind).
    ``mode="any"``: ``fn(grad)`` once per pass, with the first of those gradients computed. The hooks only
    read the gradients. Returns a handle with ``remove()``."""
    if mode not in ("all", "any"):
        raise ValueError(f"Expects mode to be one of ('all', 'any') but got {mode}")
    tensors = tuple(tensors)
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"register_multi_grad_hook: element {i} is a {type(t).__name__}, not a Tensor")
    key = object()  # this hook's entry in each pass's backward_context()

    def make_hook(i):
        def hook(grad):
            ctx = backward_context()
            if ctx is None:  # (a hook runs inside a pass)
                return None
            if mode == "any":
                if key not in ctx:
                    ctx[key] = True
                    fn(grad)
                return None
            state = ctx.get(key)
            if state is None:  # the first of them this pass: how many will come (PyTorch's count)
                if PASS_GRAPH not in ctx:  # (a pass that does not say: at its end)
                    state = ctx[key] = [[None] * len(tensors), -1]
                    queue_callback(lambda: fn(state[0]))
                else:
                    state = ctx[key] = [[None] * len(tensors), sum(
                        will_run(ctx, t if t._node is None else t._node) for t in tensors)]
            state[0][i] = grad
            state[1] -= 1
            if state[1] == 0:
                fn(state[0])
            return None
        return hook

    handles = [t.register_hook(make_hook(i)) for i, t in enumerate(tensors)]
    return _Handles(handles)


class _Handles:
    def __init__(self, handles):
        self._handles = handles

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
