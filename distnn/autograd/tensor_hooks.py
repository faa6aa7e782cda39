"""Tensor's gradient hooks (``register_hook``, ``register_post_accumulate_grad_hook``, ``retain_grad``): a mixin of
:class:`~distnn.autograd.tensor.Tensor`, and the graph node's :class:`OutputHooks` the engine runs.

A leaf keeps its hooks itself (``_grad_hooks``, ``_hooks``); a non-leaf's are kept on the node that made it
(:class:`OutputHooks`), which the engine runs before that node's backward.
"""
from __future__ import annotations

import weakref


class TensorHooks:
    """The hook methods of :class:`~distnn.autograd.tensor.Tensor` (no state of its own)."""

    __slots__ = ()

    def register_post_accumulate_grad_hook(self, hook):
        """Call ``hook(tensor)`` each backward, once this leaf's gradient is final.

        Returns a handle with ``remove()``.
        """
        if self._node is not None:
            raise RuntimeError("post-accumulate-grad hooks can only be registered on leaf tensors")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(hook)
        return _HookHandle(self._hooks, hook)

    def register_hook(self, hook):
        """Call ``hook(grad)`` with this tensor's gradient during each backward, as PyTorch's: it may return
        a replacement (a Tensor or array of the same shape and dtype) that is used instead. Returns a handle
        with ``remove()``.

        On a leaf the hook sees the whole gradient of the pass (every use summed) before it is added into
        ``.grad``, and before the post-accumulate-grad hooks run; on a non-leaf, the gradient with respect to
        this tensor before it flows into the op that made it. Hooks run in registration order; the
        gradient they get must not be changed in place (return a new one).
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require gradient")
        if not callable(hook):
            raise TypeError(f"register_hook: the hook must be callable, got {type(hook).__name__}")
        node = self._node
        if node is None:
            hooks = self.__dict__.get("_grad_hooks")
            if hooks is None:
                hooks = self.__dict__["_grad_hooks"] = []
        else:
            hooks = _output_hooks(node).hooks
        hooks.append(hook)
        return _HookHandle(hooks, hook)

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` at backward (accumulated over passes, as a leaf's);
        on a leaf it does nothing (a leaf keeps it anyway). Runs after the tensor's other hooks."""
        if not self.requires_grad:
            raise RuntimeError("cannot retain_grad() on a tensor that does not require gradient")
        if self._node is not None:
            _output_hooks(self._node).retained = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        """Whether :meth:`retain_grad` was called on this non-leaf tensor."""
        node = self._node
        ref = node.grad_hooks.retained if node is not None and node.grad_hooks is not None else None
        return ref is not None and ref() is self


class OutputHooks:
    """A graph node's hooks on its output tensor's gradient (``Tensor.register_hook`` on a non-leaf, and
    ``retain_grad``), run by the engine before the node's backward. ``retained``: a weak reference to the
    tensor that keeps its gradient, or None."""

    __slots__ = ("hooks", "retained")

    def __init__(self):
        self.hooks, self.retained = [], None


def _output_hooks(node) -> OutputHooks:
    hooks = node.grad_hooks
    if hooks is None:
        hooks = node.grad_hooks = OutputHooks()
    return hooks


class _HookHandle:
    def __init__(self, hooks, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self):
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)
