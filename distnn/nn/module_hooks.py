"""Forward hooks of ``Module`` (a mixin), with PyTorch's signatures and return semantics.

Pre-hooks ``hook(module, args)`` (``with_kwargs=True``: ``hook(module, args, kwargs)``) run before
``forward`` and may return new args (a non-tuple is taken as the only argument; with kwargs: an
``(args, kwargs)`` pair); hooks ``hook(module, args, output)`` (``hook(module, args, kwargs, output)``)
run after it and may return a new output. None keeps the value. They run in registration order
(``prepend=True``: before the others). A module never given a hook pays one attribute lookup per call
(``_forward_hooked``, set at the first registration of a forward or backward hook; hooks removed later
leave the hooked call, which then finds none). The backward hooks (module_backward_hooks.py) are set up
here too, around ``forward``, as PyTorch's: the forward hooks see the wrapped inputs.
"""
from __future__ import annotations

from collections import OrderedDict


class RemovableHandle:
    """What the hook registrations return: ``remove()`` unregisters the hook (again: nothing happens)."""

    _next_id = 0

    def __init__(self, hooks):
        self.hooks, self.id = hooks, RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        self.hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class ForwardHooks:
    """The forward-hook registries and the hooked call of :class:`Module` (see the module docstring)."""

    __slots__ = ()

    _forward_hooked = False  # (True once this module was given a hook: Module.__call__ takes the hooked call)

    def register_forward_pre_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False):
        """Call ``hook`` before every ``forward``; returns a handle with ``remove()``."""
        return self._add_hook("_forward_pre_hooks", hook, prepend, with_kwargs)

    def register_forward_hook(self, hook, *, prepend: bool = False, with_kwargs: bool = False,
                              always_call: bool = False):
        """Call ``hook`` after every ``forward``; returns a handle with ``remove()``. ``always_call``: also when
        forward raises (with the output None, the exception then propagating)."""
        return self._add_hook("_forward_hooks", hook, prepend, with_kwargs, always_call)

    def _add_hook(self, registry, hook, prepend, with_kwargs, always_call=False):
        if not callable(hook):
            raise TypeError(f"{self.where()}: a forward hook must be callable, got {type(hook).__name__}")
        hooks = self.__dict__.get(registry)
        if hooks is None:
            hooks = OrderedDict()
            object.__setattr__(self, registry, hooks)
            object.__setattr__(self, "_forward_hooked", True)
        handle = RemovableHandle(hooks)
        hooks[handle.id] = (hook, bool(with_kwargs), bool(always_call))
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def _call_with_hooks(self, args, kwargs):
        for hook, with_kwargs, _ in tuple(self.__dict__.get("_forward_pre_hooks", {}).values()):
            if with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"{self.where()}: a forward pre-hook with with_kwargs=True must return "
                                           f"None or an (args, kwargs) pair, got {type(result).__name__}")
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        call = self._backward_call()  # (backward hooks: module_backward_hooks.py; None without any)
        if call is not None:
            args = call.wrap_inputs(args)
        hooks = tuple(self.__dict__.get("_forward_hooks", {}).values())
        try:
            output = self.forward(*args, **kwargs)
        except Exception:
            for hook, with_kwargs, always_call in hooks:
                if always_call:
                    try:
                        hook(self, args, kwargs, None) if with_kwargs else hook(self, args, None)
                    except Exception:
                        pass  # (the forward's own exception is the one to see)
            raise
        for hook, with_kwargs, _ in hooks:
            result = hook(self, args, kwargs, output) if with_kwargs else hook(self, args, output)
            if result is not None:
                output = result
        if call is not None:
            output = call.wrap_outputs(output)
        return output
