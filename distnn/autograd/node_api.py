"""PyTorch's ``Node`` API on distnn's graph nodes: ``name()``, ``next_functions``, ``metadata``,
``register_hook`` and ``register_prehook`` on ``tensor.grad_fn`` (a :class:`Function`), and
:class:`AccumulateGrad`, the node PyTorch puts behind a leaf that requires grad.

distnn's graph links a node straight to the leaf Tensors it read (``Function.parents``), so there is no
AccumulateGrad in the graph itself: ``next_functions`` makes one per leaf on demand, the same object while
someone holds it (the leaf keeps a weak reference, as PyTorch's ``grad_accumulator_``). Its hooks are the
leaf's own gradient hooks, so they live as long as the leaf.

Node hooks cost nothing until one is registered: the node then gets an instance attribute ``backward``
(:func:`extras_backward`) that the engine calls instead of the class's, which runs the pre-hooks, unpacks
the saved arrays (``graph.saved_tensors_hooks``), runs the op's backward and then the post-hooks. A
``create_graph=True`` pass runs each op's graph backward instead, with the same hooks around it on Tensors
(``graph_pass``), as PyTorch runs them in every pass.
"""
from __future__ import annotations

import types
import weakref

from distnn.backend import get_array_module

from .engine import PASS_GRAPH, backward_context, sum_to_shape, will_run
from .function import KEPT_WHEN_FREED
from .tensor import Tensor
from .tensor_hooks import _HookHandle

# backward_context() key: True in a pass that returns gradients (autograd.grad): it runs no AccumulateGrad
CAPTURE_PASS = "distnn.autograd.capture_pass"

def node_name(node) -> str:
    """PyTorch's name of ``node`` (``Function.torch_name``, or ``torch_name_of_call()`` where it depends on the
    call's arguments), else ``f"{ClassName}Backward"``: the name PyTorch gives a custom ``autograd.Function``
    node. (A freed node has no saved values left: release() kept its name as ``torch_name``.)"""
    of_call = node.torch_name_of_call
    if of_call is not None and node.parents is not None:
        return of_call()
    return node.torch_name or f"{type(node).__name__}Backward"


def next_functions(node) -> tuple:
    """Per input: ``(producer node, 0)``, ``(AccumulateGrad, 0)`` for a leaf that requires grad, ``(None, 0)``
    for an input that needs no gradient. A node backward freed keeps its edges (``freed_edges``), as PyTorch's."""
    parents = node.parents
    if parents is None:
        parents = node.freed_edges
        if parents is None:
            return ()
    numbers = node.number_inputs  # (a Scalar argument of PyTorch's op: no edge there)
    return tuple((None if p is None else accumulate_grad(p) if isinstance(p, Tensor) else p, 0)
                 for i, p in enumerate(parents) if i not in numbers)


def _kept_when_freed(node) -> dict:
    """The node's ``KEPT_WHEN_FREED`` (see ``function.py``): the attributes its freeing by backward keeps."""
    d = node.__dict__
    kept = d.get(KEPT_WHEN_FREED)
    if kept is None:
        kept = d[KEPT_WHEN_FREED] = {}
    return kept


def metadata(node) -> dict:
    d = node.__dict__.get("_metadata")
    if d is None:
        d = node.__dict__["_metadata"] = _kept_when_freed(node)["_metadata"] = {}
    return d


def _install(node) -> None:
    """Route the engine's ``node.backward(g)`` through :func:`extras_backward` (once per node)."""
    d = node.__dict__
    if "_inner_backward" not in d:
        d["_inner_backward"] = node.backward  # (the class's, or a complex node's instance one)
        d["backward"] = types.MethodType(extras_backward, node)


def _hook_list(node, key) -> list:
    """The node's hook list ``key``, made on first use. A node backward freed takes hooks too, as PyTorch's (they
    never run: a pass through it is refused)."""
    hooks = node.__dict__.get(key)
    if hooks is None:
        hooks = node.__dict__[key] = _kept_when_freed(node)[key] = []
        _install(node)
    return hooks


def register_hook(node, fn):
    """``fn(grad_inputs, grad_outputs)`` after ``node``'s backward; may return replacement ``grad_inputs``."""
    if not callable(fn):
        raise TypeError(f"register_hook: the hook must be callable, got {type(fn).__name__}")
    hooks = _hook_list(node, "_post_hooks")
    hooks.append(fn)
    return _HookHandle(hooks, fn)


def register_prehook(node, fn):
    """``fn(grad_outputs)`` before ``node``'s backward; may return replacement ``grad_outputs``."""
    if not callable(fn):
        raise TypeError(f"register_prehook: the hook must be callable, got {type(fn).__name__}")
    hooks = _hook_list(node, "_pre_hooks")
    hooks.append(fn)
    return _HookHandle(hooks, fn)


def _as_array(value, like, what: str):
    """A hook's replacement gradient as an array shaped like ``like`` (PyTorch refuses a wrong shape too)."""
    new = value.data if isinstance(value, Tensor) else value
    if not hasattr(new, "shape") or get_array_module(new) is not get_array_module(like):
        raise TypeError(f"{what}: expected a Tensor (or None) on the gradient's device, got {type(value).__name__}")
    if tuple(new.shape) != tuple(like.shape):
        raise RuntimeError(f"{what}: the replacement gradient has shape {tuple(new.shape)}, expected "
                           f"{tuple(like.shape)}")
    return new


def _replacements(out, n: int, what: str) -> tuple:
    if not isinstance(out, (tuple, list)) or len(out) != n:
        raise RuntimeError(f"{what}: a hook must return None or a tuple of {n} gradient(s), got {out!r:.80}")
    return tuple(out)


def extras_backward(node, g):
    """The engine's ``node.backward(g)`` for a node with hooks or packed saved arrays (see the docstring)."""
    d = node.__dict__
    pre = d.get("_pre_hooks")
    if pre:
        for hook in tuple(pre):
            out = hook((Tensor._make(g, None),))
            if out is not None:
                new = _replacements(out, 1, f"prehook of {node_name(node)}")[0]
                g = g if new is None else _as_array(new, g, f"prehook of {node_name(node)}")
    packed = d.get("_packed")
    if packed is not None:
        from .saved_hooks import unpack_into, repack

        unpack_into(node, packed)
        try:
            grads = d["_inner_backward"](g)
        finally:
            repack(node, packed)
    else:
        grads = d["_inner_backward"](g)
    post = d.get("_post_hooks")
    if not post:
        return grads
    grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
    # PyTorch's grad_inputs: per input, its gradient in the input's shape, None where none is wanted
    grads = tuple(None if p is None or pg is None else sum_to_shape(pg, s)
                  for p, pg, s in zip(wanted_inputs(node), grads, node.input_shapes))
    return run_post_hooks(node, post, grads, Tensor._make(g, None), lambda a: Tensor._make(a, None), _as_array)
    return grads


def run_post_hooks(node, post, grads, grad_output, as_tensor, checked) -> tuple:
    """Run ``register_hook``'s hooks ``post`` on ``grads`` (per input of ``node``): ``grad_inputs`` as PyTorch's,
    with no slot for an input PyTorch's op takes as a Scalar (``Function.number_inputs``); a replacement a hook
    returns goes through ``checked(new, like, what)``. ``as_tensor`` makes a hook's argument of a gradient."""
    what = f"hook of {node_name(node)}"
    numbers = node.number_inputs
    slots = [i for i in range(len(grads)) if i not in numbers] if numbers else range(len(grads))
    for hook in tuple(post):
        out = hook(tuple(None if grads[i] is None else as_tensor(grads[i]) for i in slots), (grad_output,))
        if out is not None:
            out = _replacements(out, len(slots), what)
            replaced = list(grads)
            for i, new in zip(slots, out):
                old = grads[i]
                replaced[i] = None if new is None else checked(new, new if old is None else old, what)
            grads = tuple(replaced)
    return grads


def wanted_inputs(node) -> tuple:
    """Per input of ``node``: its parent where the pass now running goes on through it, else None (PyTorch's
    ``grad_inputs`` of a node hook hold None for an input whose gradient the pass does not compute, e.g. a leaf
    ``autograd.grad`` was not asked for)."""
    ctx = backward_context()
    graph = ctx.get(PASS_GRAPH) if ctx is not None else None
    if graph is None or graph[2] is None:  # (a pass that runs everything it reaches)
        return node.parents
    return tuple(None if p is None or not will_run(ctx, p) else p for p in node.parents)


class AccumulateGrad:
    """PyTorch's node behind a leaf that requires grad: ``variable`` is the leaf. Its hooks are the leaf's:
    ``register_prehook(fn(grad_outputs))`` runs on the leaf's gradient of the pass before it is added into
    ``.grad`` and may replace it; ``register_hook(fn(grad_inputs, grad_outputs))`` runs after (``grad_inputs``
    is ``()``, as PyTorch's; the return value is ignored). Neither runs in ``autograd.grad``, as PyTorch's."""

    def __init__(self, variable: Tensor):
        self.variable = variable
        self.metadata = {}

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"

    @property
    def next_functions(self) -> tuple:
        return ()

    def register_prehook(self, fn):
        if not callable(fn):
            raise TypeError(f"register_prehook: the hook must be callable, got {type(fn).__name__}")

        def as_grad_hook(grad):
            if _capturing():
                return None
            out = fn((grad,))
            if out is None:
                return None
            new = _replacements(out, 1, "prehook of AccumulateGrad")[0]
            return None if new is None else new

        return self.variable.register_hook(as_grad_hook)

    def register_hook(self, fn):
        if not callable(fn):
            raise TypeError(f"register_hook: the hook must be callable, got {type(fn).__name__}")
        seen = []

        def capture(grad):  # (last among the gradient hooks registered so far: sees what they made of it)
            if not _capturing():
                seen[:] = [grad]

        def after(leaf):
            if seen:
                fn((), (seen.pop(),))
            seen.clear()

        first = self.variable.register_hook(capture)
        second = self.variable.register_post_accumulate_grad_hook(after)
        return _PairHandle(first, second)

    def __repr__(self):
        return f"<AccumulateGrad object at {id(self):#x}>"


def _capturing() -> bool:
    """Whether the pass now running returns gradients (autograd.grad), where PyTorch runs no AccumulateGrad."""
    ctx = backward_context()
    return bool(ctx and ctx.get(CAPTURE_PASS))


class _PairHandle:
    def __init__(self, *handles):
        self._handles = handles

    def remove(self) -> None:
        for h in self._handles:
            h.remove()


def accumulate_grad(leaf: Tensor) -> AccumulateGrad:
    """The leaf's AccumulateGrad node: the same object while one is alive (a weak reference on the leaf)."""
    ref = leaf.__dict__.get("_grad_accumulator")
    node = ref() if ref is not None else None
    if node is None:
        node = AccumulateGrad(leaf)
        leaf.__dict__["_grad_accumulator"] = weakref.ref(node)
    return node
