"""Backward hooks of ``Module`` (a mixin): PyTorch's ``register_full_backward_hook`` and
``register_full_backward_pre_hook``, with their signatures and firing rules.

``hook(module, grad_output)`` (pre-hook) runs once the gradients with respect to the module's outputs
are known, before they flow into the module, and may return a tuple replacing ``grad_output``;
``hook(module, grad_input, grad_output)`` runs once the gradients with respect to its positional inputs
are known, and may return a tuple replacing ``grad_input``. As in PyTorch: ``grad_output`` has one entry
per output (a Tensor or a tuple), None for a non-Tensor, one that needs no gradient or one that got
none; ``grad_input`` has one per positional argument, None for a non-Tensor and zeros for a Tensor that
got no gradient (also one that needs none); when no input needs a gradient, the hook fires with the
output's gradients and ``grad_input`` all None (a warning, and it must return None); when no output
needs one, nothing fires. Several calls of a module in one forward each fire. The hooks in place at
the call are the ones that run. Tensors passed into and out of the module are then views (one version
counter with the original) that must not be changed in place.

How (PyTorch's ``BackwardHook`` with one identity node for all inputs, one for all outputs): distnn's
graph nodes have one output, so each wrapped tensor goes through an identity node of its own
(``_Pass``) that also consumes a 0-d "token" made by a gathering node (``_Gather``) whose inputs are all
the tensors. The engine runs a node once all its consumers have delivered, so the gathering node's
backward runs once every wrapped tensor's gradient has arrived: the passes hand it those gradients
(kept in the call's slots) and give the token a zero. There the hooks run, and what they return flows
on to the tensors' producers.

With ``create_graph=True`` (PyTorch supports it) the same nodes run their graph backwards: the gradients
in the slots, given to the hooks and handed on are Tensors with their graph (the hooks see gradients that
require grad, and what they return stays in the graph, as PyTorch's), so the gradient can be
differentiated again. A later pass through the forward graph fires the hooks again, as PyTorch's.

A module never given a backward hook pays nothing for this: ``Module.__call__`` takes the hooked call
only once a (forward or backward) hook was registered (``_forward_hooked``, see module_hooks.py).
``register_backward_hook`` (deprecated in PyTorch, where its ``grad_input`` are the gradients of the last
op inside the module) is refused.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict

from distnn.autograd.function import Function
from distnn.autograd.grad_mode import is_grad_enabled
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module

from .module_hooks import RemovableHandle


class BackwardHooks:
    """The backward-hook registries of :class:`Module` (see the module docstring)."""

    __slots__ = ()

    def register_full_backward_hook(self, hook, prepend: bool = False):
        """Call ``hook(module, grad_input, grad_output)`` when the gradients with respect to this module's
        positional inputs are computed; it may return a tuple replacing ``grad_input``. Returns a handle with
        ``remove()``. (PyTorch accepts a non-callable and fails at backward; distnn refuses it here.)"""
        return self._add_backward_hook("_backward_hooks", hook, prepend, "backward hook")

    def register_full_backward_pre_hook(self, hook, prepend: bool = False):
        """Call ``hook(module, grad_output)`` when the gradients with respect to this module's outputs are
        computed, before they flow into it; it may return a tuple replacing ``grad_output``. Returns a
        handle with ``remove()``."""
        return self._add_backward_hook("_backward_pre_hooks", hook, prepend, "backward pre-hook")

    def register_backward_hook(self, hook):
        """PyTorch's deprecated backward hook: not supported (see :meth:`register_full_backward_hook`)."""
        raise NotImplementedError(
            f"{self.where()}: register_backward_hook (deprecated in PyTorch: its grad_input are the gradients of "
            "the last operation inside the module, not of the module's inputs) is not supported; use "
            "register_full_backward_hook")

    def _add_backward_hook(self, registry, hook, prepend, what):
        if not callable(hook):
            raise TypeError(f"{self.where()}: a {what} must be callable, got {type(hook).__name__}")
        hooks = self.__dict__.get(registry)
        if hooks is None:
            hooks = OrderedDict()
            object.__setattr__(self, registry, hooks)
            object.__setattr__(self, "_forward_hooked", True)  # (the hooked call sets the hooks up)
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def _backward_call(self):
        """A :class:`HookedCall` for one call of this module, or None when it has no backward hook."""
        d = self.__dict__
        hooks = tuple(d.get("_backward_hooks", {}).values())
        pre_hooks = tuple(d.get("_backward_pre_hooks", {}).values())
        return HookedCall(self, hooks, pre_hooks) if hooks or pre_hooks else None


def _wrap(t: Tensor, token: Tensor, slots: dict, slot: int) -> Tensor:
    out = _Pass.apply(t, token, slots=slots, slot=slot)
    out.__dict__["_hook_view"] = True  # (changing it in place is refused: autograd/inplace.py)
    return out


class _Pass(Function):
    """Identity on one wrapped tensor; its gradient goes to the call's slots, the token gets a zero."""

    saves_tensors = False

    def forward(self, a, token, slots=None, slot=None):
        self.slots, self.slot = slots, slot
        return a  # (the same memory: Function.apply links the version counters)

    def backward(self, grad):
        self.slots[self.slot] = grad
        return None, get_array_module(grad).zeros(())

    def backward_graph(self, grad):  # (create_graph: the slot gets the Tensor, graph and all)
        self.slots[self.slot] = grad
        return None, Tensor._make(get_array_module(grad.data).zeros((), dtype=grad.dtype), None)


class _Gather(Function):
    """The node where all wrapped tensors of one side (inputs or outputs) of a call meet (module docstring)."""

    saves_tensors = False

    def forward(self, *arrays, finish=None):
        self.finish = finish
        return get_array_module(arrays[0]).zeros(())

    def backward(self, grad):
        return self.finish()

    def backward_graph(self, grad):
        return self.finish(graph=True)


def _checked_grads(values, metas, what, graph=False):
    """Returned gradients as arrays of the tensors' dtypes (the shape must be kept, as PyTorch's checks), each a
    fresh view: a leaf may adopt it only when the hook keeps no reference (engine). ``graph``: as Tensors, a
    returned Tensor kept with its graph (cast by a recorded op where its dtype differs)."""
    out = []
    for i, (value, meta) in enumerate(zip(values, metas)):
        if value is None or meta is None:
            out.append(None)
            continue
        a = value.data if isinstance(value, Tensor) else value
        shape, dtype = meta
        if not hasattr(a, "shape") or not hasattr(a, "dtype"):
            raise TypeError(f"{what} returned a {type(value).__name__} at index {i}; expected a Tensor or None")
        if tuple(a.shape) != tuple(shape):
            raise RuntimeError(f"{what} has changed the size of value at index {i}: got {list(a.shape)}, expected "
                               f"{list(shape)} (a returned gradient must have the shape of the one it replaces)")
        if not graph:
            out.append(a.astype(dtype, copy=False).view())
        elif isinstance(value, Tensor):
            out.append(value if value.dtype == dtype else value.to(dtype))
        else:
            out.append(Tensor._make(a.astype(dtype), None))
    return tuple(out)


def _replaced(result, current, what, name):
    if result is None:
        return current
    if not isinstance(result, (tuple, list)):
        raise RuntimeError(f"{what} returned an invalid number of {name}: expected a tuple of {len(current)}, "
                           f"got {type(result).__name__}")
    if len(result) != len(current):
        raise RuntimeError(f"{what} returned an invalid number of {name}, got {len(result)}, but expected "
                           f"{len(current)}")
    return tuple(result)


class HookedCall:
    """One call of a module with backward hooks (PyTorch's ``torch.utils.hooks.BackwardHook``)."""

    def __init__(self, module, hooks, pre_hooks):
        self.module, self.hooks, self.pre_hooks = module, hooks, pre_hooks
        self.n_inputs = 0
        self.inputs = None  # per positional argument: (shape, dtype, xp) of a Tensor, else None; None: nothing wrapped
        self.in_wrapped, self.in_slots = (), {}  # positions of the wrapped inputs; their gradients by slot
        self.outputs, self.out_wrapped, self.out_slots = (), (), {}
        self.grad_outputs = None  # set by the output side's backward, read by the input side's

    def wrap_inputs(self, args: tuple) -> tuple:
        """``args`` with each Tensor that needs a gradient replaced by its wrapped view."""
        self.n_inputs = len(args)
        wrapped = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad)
        if not (wrapped and is_grad_enabled()):
            return args
        self.inputs = [(a.shape, a.dtype, get_array_module(a.data)) if isinstance(a, Tensor) else None for a in args]
        self.in_wrapped = wrapped
        token = _Gather.apply(*(args[i] for i in wrapped), finish=self._inputs_backward)
        args = list(args)
        for slot, i in enumerate(wrapped):
            args[i] = _wrap(args[i], token, self.in_slots, slot)
        return tuple(args)

    def wrap_outputs(self, result):
        """``result`` (a Tensor or a tuple) with each Tensor that needs a gradient replaced by its wrapped view."""
        if not isinstance(result, (Tensor, tuple)):
            warnings.warn("For backward hooks to be called, module output should be a Tensor or a tuple of "
                          f"Tensors but received {type(result)}", stacklevel=3)
            return result
        single = isinstance(result, Tensor)
        outs = (result,) if single else result
        wrapped = tuple(i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad)
        if not (wrapped and is_grad_enabled()):
            return result
        self.out_wrapped = wrapped
        token = _Gather.apply(*(outs[i] for i in wrapped), finish=self._outputs_backward)
        outs = list(outs)
        for slot, i in enumerate(wrapped):
            outs[i] = _wrap(outs[i], token, self.out_slots, slot)
        self.outputs = [(o.shape, o.dtype) if isinstance(o, Tensor) else None for o in outs]
        return outs[0] if single else tuple(outs)

    def _outputs_backward(self, graph=False):
        """The output side's gathering node: the pre-hooks, then the gradients flow into the module. ``graph``
        (create_graph): the slots hold Tensors, handed on as they are."""
        slots = self.out_slots
        grads = [None] * len(self.outputs)
        for slot, i in enumerate(self.out_wrapped):
            g = slots.pop(slot, None)
            grads[i] = g if g is None or graph else Tensor._make(g, None)
        grads = tuple(grads)
        for hook in self.pre_hooks:
            grads = _replaced(hook(self.module, grads), grads, "Backward pre hook", "grad_output")
        self.grad_outputs = grads
        if self.inputs is None:  # no input needs a gradient: the hooks fire now (PyTorch's rule)
            if self.hooks:
                warnings.warn("Full backward hook is firing when gradients are computed with respect to module "
                              "outputs since no inputs require gradients.", stacklevel=2)
            nones = (None,) * self.n_inputs
            for hook in self.hooks:
                res = hook(self.module, nones, grads)
                if res is not None and not (isinstance(res, tuple) and all(r is None for r in res)):
                    raise RuntimeError("Backward hook for Modules where no input requires gradient should always "
                                       "return None or None for all gradients.")
            self.grad_outputs = None
        picked = [grads[i] for i in self.out_wrapped]
        return _checked_grads(picked, [self.outputs[i] for i in self.out_wrapped], "Backward pre hook", graph)

    def _inputs_backward(self, graph=False):
        """The input side's gathering node: the hooks, then the gradients flow to the inputs' producers
        (``graph``: as in :meth:`_outputs_backward`)."""
        slots = self.in_slots
        got = {i: slots.pop(slot, None) for slot, i in enumerate(self.in_wrapped)}
        metas = [None if m is None else m[:2] for m in self.inputs]
        if self.grad_outputs is None:  # (reached without passing through the outputs: no hooks, as PyTorch's)
            return _checked_grads([got[i] for i in self.in_wrapped], [metas[i] for i in self.in_wrapped], "", graph)
        grads = []
        for i, meta in enumerate(self.inputs):
            if meta is None:
                grads.append(None)
            else:  # (a Tensor that got no gradient, or needs none: zeros, as PyTorch's identity node gives)
                g = got.get(i)
                if g is None:
                    grads.append(Tensor._make(meta[2].zeros(meta[0], meta[1]), None))
                else:
                    grads.append(g if graph else Tensor._make(g, None))
        grads = tuple(grads)
        for hook in self.hooks:
            grads = _replaced(hook(self.module, grads, self.grad_outputs), grads, "Backward hook", "grad_input")
        self.grad_outputs = None
        return _checked_grads([grads[i] for i in self.in_wrapped], [metas[i] for i in self.in_wrapped],
                              "Backward hook", graph)
