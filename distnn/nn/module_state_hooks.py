"""State-dict hooks and extra state of ``Module`` (a mixin), with PyTorch's signatures:

* ``register_state_dict_pre_hook(hook)``: ``hook(module, prefix, keep_vars)`` before the module's entries;
* ``register_state_dict_post_hook(hook)``: ``hook(module, state_dict, prefix, local_metadata) -> None``
  once the module's entries and its submodules' are in; it may change ``state_dict`` in place;
* ``register_load_state_dict_pre_hook(hook)``: ``hook(module, state_dict, prefix, local_metadata, strict,
  missing_keys, unexpected_keys, error_msgs) -> None`` before loading; it may change ``state_dict`` (a copy
  of the caller's), and append to the lists; ``strict`` is always True, as PyTorch passes it;
* ``register_load_state_dict_post_hook(hook)``: ``hook(module, incompatible_keys) -> None`` after loading
  the module and its submodules; it may change ``incompatible_keys.missing_keys`` / ``unexpected_keys`` in
  place, which ``strict`` then checks;
* a module defining ``get_extra_state()`` adds ``<prefix>_extra_state`` to ``state_dict``, and one defining
  ``set_extra_state(state)`` is given it by ``load_state_dict`` (strict: a missing one is a missing key).

Hooks run per module in PyTorch's order: pre-hooks parents first, post-hooks children first. Differences
from PyTorch (distnn loads all arrays at once, see module_state.py): a load pre-hook of a submodule sees
the whole (copied) state dict, not only the entries under its prefix; every load pre-hook runs before any
array is loaded and every post-hook after all of them are; a shape mismatch raises (ValueError) before the
post-hooks run; the values are numpy arrays (distnn's ``state_dict``), or tensors with ``keep_vars=True``.
``local_metadata`` is ``{"version": 1}`` in ``state_dict`` (the class's ``_version`` if it has one) and
``{}`` in ``load_state_dict`` (distnn's state dicts carry no metadata). A model without any of these pays
one check per module.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple

from .module_hooks import RemovableHandle

#: what ``load_state_dict`` returns (PyTorch's ``_IncompatibleKeys``: a pair, also by name)
IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])

_EXTRA = "_extra_state"
_REGISTRIES = ("_state_dict_pre_hooks", "_state_dict_hooks", "_load_state_dict_pre_hooks",
               "_load_state_dict_post_hooks")


class StateDictHooks:
    """The state-dict hooks and extra state of :class:`Module` (see the module docstring)."""

    __slots__ = ()

    def register_state_dict_pre_hook(self, hook):
        """Call ``hook(module, prefix, keep_vars)`` before ``state_dict`` collects this module's entries."""
        return self._add_state_hook("_state_dict_pre_hooks", hook)

    def register_state_dict_post_hook(self, hook):
        """Call ``hook(module, state_dict, prefix, local_metadata)`` after ``state_dict`` collected this
        module's entries and its submodules'; it may change ``state_dict`` in place and must return None."""
        return self._add_state_hook("_state_dict_hooks", hook)

    def register_load_state_dict_pre_hook(self, hook):
        """Call ``hook(module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
        error_msgs)`` before ``load_state_dict`` loads (module docstring)."""
        return self._add_state_hook("_load_state_dict_pre_hooks", hook)

    def register_load_state_dict_post_hook(self, hook):
        """Call ``hook(module, incompatible_keys)`` after ``load_state_dict`` loaded this module and its
        submodules; it may change the key lists in place (``strict`` then checks them) and must return None."""
        return self._add_state_hook("_load_state_dict_post_hooks", hook)

    def get_extra_state(self):
        """Define it (with :meth:`set_extra_state`) to put ``<prefix>_extra_state`` into ``state_dict``."""
        raise RuntimeError(f"{type(self).__name__} does not define get_extra_state()")

    def set_extra_state(self, state) -> None:
        """Define it (with :meth:`get_extra_state`) to be given ``<prefix>_extra_state`` by ``load_state_dict``."""
        raise RuntimeError(f"{type(self).__name__} does not define set_extra_state()")

    def _add_state_hook(self, registry, hook):
        if not callable(hook):
            raise TypeError(f"{self.where()}: a state-dict hook must be callable, got {type(hook).__name__}")
        hooks = self.__dict__.get(registry)
        if hooks is None:
            hooks = OrderedDict()
            object.__setattr__(self, registry, hooks)
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        return handle


def _hooks(m, registry):
    return tuple(m.__dict__.get(registry, {}).values())


def _gets_extra(m) -> bool:
    return type(m).get_extra_state is not StateDictHooks.get_extra_state


def _sets_extra(m) -> bool:
    return type(m).set_extra_state is not StateDictHooks.set_extra_state


def has_state_hooks(model) -> bool:
    """Whether any module of ``model`` has a state-dict hook or extra state (else the plain, flat path)."""
    return any(module_has_state_hooks(m) for _, m in model.named_modules(remove_duplicate=False))


def module_has_state_hooks(m) -> bool:
    """Whether the module ``m`` itself has a state-dict hook or extra state."""
    # (a checkpoint asks at every save: the registries looked up in C, no generator frame a module)
    return _gets_extra(m) or _sets_extra(m) or any(map(m.__dict__.__contains__, _REGISTRIES))


def hooked_state_dict(model, keep_vars: bool, convert):
    """``state_dict`` walking the modules as PyTorch's does, running the hooks; ``convert(tensor)`` gives a
    value (unless ``keep_vars``)."""
    dest = OrderedDict()

    def walk(m, prefix):
        for hook in _hooks(m, "_state_dict_pre_hooks"):
            hook(m, prefix, keep_vars)
        for name, p in m._parameters.items():
            if p is not None:
                dest[prefix + name] = p if keep_vars else convert(p)
        for name, b in m._buffers.items():
            if b is not None and name not in m._non_persistent:
                dest[prefix + name] = b if keep_vars else convert(b)
        if _gets_extra(m):
            dest[prefix + _EXTRA] = m.get_extra_state()
        for name, child in m._modules.items():
            if child is not None:
                walk(child, f"{prefix}{name}.")
        for hook in _hooks(m, "_state_dict_hooks"):
            if hook(m, dest, prefix, {"version": getattr(type(m), "_version", 1)}) is not None:
                raise RuntimeError("state_dict post-hook must return None")

    walk(model, "")
    return dest


def hooked_load(model, state_dict, strict: bool, load_arrays):
    """``load_state_dict`` with the hooks and extra state; ``load_arrays(state_dict)`` loads the parameters
    and buffers non-strictly and returns ``(missing, unexpected)``."""
    sd = OrderedDict(state_dict)
    missing, unexpected, errors = [], [], []
    walked = [(f"{name}." if name else "", m) for name, m in model.named_modules(remove_duplicate=False)]
    for prefix, m in walked:
        for hook in _hooks(m, "_load_state_dict_pre_hooks"):
            hook(m, sd, prefix, {}, True, missing, unexpected, errors)
    extra = []
    for prefix, m in walked:
        if _sets_extra(m):
            if prefix + _EXTRA in sd:
                extra.append((m, sd.pop(prefix + _EXTRA)))
            else:
                missing.append(prefix + _EXTRA)
    more_missing, more_unexpected = load_arrays(sd)
    missing += more_missing
    unexpected += more_unexpected
    for m, state in extra:
        m.set_extra_state(state)
    keys = IncompatibleKeys(missing, unexpected)

    def post(m):  # (children first, as PyTorch's recursion runs them)
        for child in m._modules.values():
            if child is not None:
                post(child)
        for hook in _hooks(m, "_load_state_dict_post_hooks"):
            if hook(m, keys) is not None:
                raise AssertionError("Hooks registered with ``register_load_state_dict_post_hook`` are not expected "
                                     "to return new values, if incompatible_keys need to be modified, it should be "
                                     "done inplace.")

    post(model)
    if strict and (missing or unexpected):
        from .module_state import _some

        problems = [f"{what} keys: {_some(keys_)}" for what, keys_ in (("missing", missing), ("unexpected", unexpected))
                    if keys_]
        errors = ["; ".join(problems)] + errors
    if errors:
        raise (KeyError if strict and (missing or unexpected) else RuntimeError)(
            f"error loading state_dict into {type(model).__name__}: " + "\n\t".join(errors))
    return keys
