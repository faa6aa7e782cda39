"""Clone-before-mutate: the machinery of ``graph.allow_mutation_on_saved_tensors``, as PyTorch's
``_swap_with_cloned`` and ``_CloneArgBeforeMutateMode``.

Inside the context each array a node saves for backward is packed (``saved_hooks``) as a :class:`SavedArray`
handle that refers to the array itself: nothing is copied while nothing changes. Every in-place write of a
tensor's memory by an op (``x.add_``, ``x += y``, ``x[i] = v``, ``relu(x, inplace=True)``, a view's, a
``detach()`` alias's; ``inplace_gate``) calls :func:`before_write` first, and so do the writes distnn makes
outside the ops where PyTorch's are ops (:func:`will_write`: ``optimizer.step()``, ``load_state_dict``,
``nn.init``, ``out=`` results, embedding renorm, SWA averaging, spectral norm's power iteration, max-norm
constraints). It copies the saved arrays that may share memory with the array about to be written (once: the
handle then refers to the copy), so backward reads the values as of the op.

The saved arrays are grouped by the array that owns their memory (the end of the ``.base`` chain), so a write
looks at the saved arrays of its own storage only, and copies those that overlap it (``may_share_memory``):
a write of ``x[2:]`` leaves a saved ``x[:2]`` uncopied. PyTorch keys by the data pointer, so that it misses
a view at another offset (a write of ``x[1:]`` when ``x`` was saved, or of ``x`` when ``x[2:]`` was): its
backward then reads the changed values; distnn's reads the old ones.

Not seen (PyTorch's behaviour given where it differs): a write of the raw array (``x.data[...] = v``, ``x.data
*= 2``: PyTorch clones for ``x.data.mul_(2)``, an op); ``x.data = other`` writes no memory, so backward keeps
the old values (PyTorch's then reads ``other``); memory shared through objects whose ``.base`` chains do not
meet (two arrays made from one buffer by separate DLPack or buffer-protocol imports).

Outside the context the only cost is one module attribute read per in-place write (:data:`watching`).
"""
from __future__ import annotations

import threading
import weakref

from distnn.backend import get_array_module

watching = 0  # open allow_mutation_on_saved_tensors contexts, in all threads (the writers' cheap test)
_open = []  # their registries
_lock = threading.Lock()


def _owner(a):
    """The object that owns ``a``'s memory (``a`` itself, or the end of its chain of ``base``)."""
    while getattr(a, "base", None) is not None:
        a = a.base
    return a


class SavedArray:
    """What a node keeps for one saved array inside the context: ``array``, the array the op saved until its
    memory is first written, then a copy of it made just before that write."""

    __slots__ = ("array", "__weakref__")

    def __init__(self, array):
        self.array = array


class Registry:
    """The saved arrays of one context not yet copied, by the owner of their memory; ``copies`` counts the
    arrays copied (a test can see that nothing is copied while nothing is written)."""

    def __init__(self):
        self.copies = 0
        self._by_owner = {}  # id(owner) -> WeakSet of SavedArray (the arrays keep their owner alive)
        self._by_array = weakref.WeakValueDictionary()  # id(array) -> its SavedArray (one handle an array)
        self._copied = weakref.WeakSet()  # (dropped at exit, as PyTorch's context drops what it holds)
        self._prune_at = 64

    def save(self, array) -> SavedArray:
        """The handle of ``array``: the same for an array saved twice (by two nodes) until it is copied."""
        handle = self._by_array.get(id(array))
        if handle is not None and handle.array is array:
            return handle
        handle = SavedArray(array)
        self._by_array[id(array)] = handle
        owner = id(_owner(array))
        group = self._by_owner.get(owner)
        if group is None:
            if len(self._by_owner) >= self._prune_at:  # drop the groups whose graphs are gone (amortized)
                self._by_owner = {k: g for k, g in self._by_owner.items() if g}
                self._prune_at = max(64, 2 * len(self._by_owner))
            group = self._by_owner[owner] = weakref.WeakSet()
        group.add(handle)
        return handle

    def before_write(self, array) -> None:
        """Copy the saved arrays that may share memory with ``array``, which is about to be written."""
        group = self._by_owner.get(id(_owner(array)))
        if not group:
            return
        xp = get_array_module(array)
        for handle in list(group):
            saved = handle.array
            if xp.may_share_memory(saved, array):
                handle.array = saved.copy()
                group.discard(handle)
                if self._by_array.get(id(saved)) is handle:
                    del self._by_array[id(saved)]
                self._copied.add(handle)
                self.copies += 1

    def release(self) -> None:
        """At the context's exit: the handles let go of their arrays (a backward later is refused anyway)."""
        for group in self._by_owner.values():
            for handle in group:
                handle.array = None
        for handle in self._copied:
            handle.array = None
        self._by_owner.clear()
        self._by_array.clear()


def open_registry() -> Registry:
    """A new registry that :func:`before_write` consults until :func:`close_registry`."""
    global watching
    registry = Registry()
    with _lock:
        _open.append(registry)
        watching = len(_open)
    return registry


def close_registry(registry: Registry) -> None:
    global watching
    with _lock:
        _open.remove(registry)
        watching = len(_open)
    registry.release()


def before_write(tensor) -> None:
    """Called before ``tensor``'s memory is written in place (only while :data:`watching`)."""
    array = getattr(tensor, "data", tensor)  # (nn.init also takes raw arrays)
    for registry in list(_open):
        registry.before_write(array)


def before_writes(tensors) -> None:
    """:func:`before_write` for each of ``tensors`` (an optimizer's parameters)."""
    if watching:
        for t in tensors:
            before_write(t)


def will_write(tensor) -> None:
    """Before code outside the ops writes ``tensor``'s memory in place (a state load, an init function, an
    ``out=`` result, an optimizer's update): the saved arrays that share it are copied first, inside the context."""
    if watching:
        before_write(tensor)
