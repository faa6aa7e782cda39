"""The machinery of ``graph.saved_tensors_hooks``: packing the arrays a node keeps for backward.

A distnn op keeps what its backward reads as array attributes of its node, set in ``forward`` (see
``function.py``), where PyTorch's ops call ``save_for_backward``. So while hooks are active in this thread,
``Function.apply`` hands the new node to :func:`pack_node`, which passes every array attribute, and every
array in a list or tuple attribute (an advanced index, per-axis weights), through the innermost ``pack_hook``
and keeps what it returns instead; ``node_api.extras_backward`` calls ``unpack_hook`` on each before the op's
backward runs (and again in a later pass, with ``retain_graph=True``). As PyTorch's, ``pack_hook`` gets the
very Tensor the op was called with (or returned) when the array saved is its data, under ``no_grad``, and must
not change it in place; any other array (a copy, a mask) comes as a new Tensor. The node keeps only what
``pack_hook`` returned (the arrays themselves are dropped from it, so a hook that returns a copy, or moves it off
to the host or a file, lets the tensor's memory go once nothing else holds it; an in-place op's node is packed
after its write, once: ``inplace.write_result``), and, as PyTorch's, checks no version of what it saved: an
in-place change after the forward goes unnoticed (backward reads what ``unpack_hook`` returns). A hook that keeps
the tensor it gets keeps it alive: an in-place change through a view of an op's output then re-makes that
tensor's node too (``inplace``), as any other live view of that memory; ``save_on_cpu`` keeps a detached alias.

The hot path pays one module read (:data:`active`, the number of threads with hooks on) per recorded op;
nothing at all in backward for nodes made without hooks.
"""
from __future__ import annotations

import threading

from distnn.backend import get_array_module

from .grad_mode import _state
from .tensor import Tensor

active = 0  # threads whose hook stack is not empty (Function.apply's cheap test)
_count_lock = threading.Lock()


class _Local(threading.local):
    def __init__(self):
        self.stack = []  # (pack_hook, unpack_hook, on_pack) pairs, innermost last
        self.disabled = None  # disable_saved_tensors_hooks' message, or None
        self.deferred = None  # inside ``deferring``: the nodes to pack once the in-place write is done


_local = _Local()


def _count(delta: int) -> None:
    global active
    with _count_lock:
        active += delta


def push(pack_hook, unpack_hook, on_pack=None) -> None:
    """Make ``(pack_hook, unpack_hook)`` the innermost pair of this thread (refused while disabled).
    ``on_pack(node)``, if given, runs on each node packed with this pair (allow_mutation_on_saved_tensors)."""
    if _local.disabled is not None:
        raise RuntimeError(_local.disabled)
    stack = _local.stack
    stack.append((pack_hook, unpack_hook, on_pack))
    if len(stack) == 1:
        _count(1)


def pop() -> None:
    stack = _local.stack
    stack.pop()
    if not stack:
        _count(-1)


def set_disabled(message):
    """Disable registering hooks in this thread with ``message`` (None: enable); returns the previous one."""
    if message is not None and _local.stack:  # (PyTorch refuses while hooks are on, with the same message)
        raise RuntimeError(message)
    prev, _local.disabled = _local.disabled, message
    return prev


_MODIFIED = ("A saved tensor pack hook is modifying its input in place. Tensors provided as input to pack hook "
             "can not be modified by in-place operations as this can lead to unexpected side-effects. Please open "
             "an issue if you need to perform in-place operations on the input to a pack hook.")


class _Seq:
    """A list or tuple attribute that held arrays (an advanced index, a list of tap weights), packed item by item:
    ``items`` holds ``(True, packed)`` for an array or a nested sequence of them, ``(False, value)`` for the rest."""

    __slots__ = ("kind", "items")

    def __init__(self, kind, items):
        self.kind, self.items = kind, items


def _holds_arrays(value, ndarray) -> bool:
    return any(isinstance(v, ndarray) or (type(v) in (list, tuple) and _holds_arrays(v, ndarray)) for v in value)


def pack_node(node, out, inputs=()) -> None:
    """Pack the arrays ``node`` keeps through this thread's innermost hooks (called by ``Function.apply`` with its
    output Tensor ``out`` and its ``inputs``). Inside :class:`deferring` (an in-place op being computed), the node
    is noted instead: ``inplace.write_result`` packs it once it has copied or swapped what it saved."""
    stack = _local.stack
    if not stack:  # (hooks on in another thread only)
        return
    deferred = _local.deferred
    if deferred is not None:
        deferred.append((node, out, inputs))
        return
    pack_hook, unpack_hook, on_pack = stack[-1]
    # (no version check: PyTorch checks none for a tensor saved with hooks, which may have kept a copy; an in-place
    # change after the forward is backward's values where pack_hook kept the tensor itself, as PyTorch's)
    node.__dict__.pop("saved_versions", None)
    ndarray = get_array_module(out.data).ndarray
    d = node.__dict__
    names = [attr for attr, v in d.items()
             if isinstance(v, ndarray) or (type(v) in (list, tuple) and _holds_arrays(v, ndarray))]
    if names:
        # The tensors the op was called with, and its result, are handed to pack_hook themselves (PyTorch's
        # ``packed is x``); any other array the node keeps (a copy, a mask, an index) as a new Tensor.
        owners = {id(x.data): x for x in inputs if isinstance(x, Tensor)}
        owners[id(out.data)] = out
        of_call = node.torch_name_of_call
        if of_call is not None:  # (the name is read from what forward saved: read it now, while it is here)
            node_name = of_call()
            d["torch_name_of_call"] = lambda: node_name
        prev, _state.enabled = _state.enabled, False  # (PyTorch runs pack hooks under no_grad)
        try:
            packed = {attr: _pack_value(d[attr], pack_hook, owners, ndarray) for attr in names}
        finally:
            _state.enabled = prev
        for attr in names:
            del d[attr]  # (an unpacked read outside backward fails loudly rather than seeing stale memory)
        d["_packed"] = (packed, unpack_hook)
        from .node_api import _install

        _install(node)
    if on_pack is not None:
        on_pack(node)


def _pack_value(value, pack_hook, owners, ndarray):
    """``pack_hook``'s result for one saved array, or a :class:`_Seq` for a sequence holding some."""
    if type(value) in (list, tuple):
        return _Seq(type(value), [
            (True, _pack_value(v, pack_hook, owners, ndarray))
            if isinstance(v, ndarray) or (type(v) in (list, tuple) and _holds_arrays(v, ndarray)) else (False, v)
            for v in value])
    t = owners.get(id(value))
    if t is None or t.data is not value:
        t = Tensor._make(value, None)
    version = t._version
    packed = pack_hook(t)
    if t._version != version:
        raise RuntimeError(_MODIFIED)
    return packed


def _unpack_value(value, unpack_hook):
    if type(value) is _Seq:
        return value.kind(_unpack_value(v, unpack_hook) if packed else v for packed, v in value.items)
    t = unpack_hook(value)
    if not isinstance(t, Tensor):  # (PyTorch's message)
        raise TypeError("Output of saved tensor unpack_hook expected to be a Tensor but got result of type "
                        f"{type(t).__name__}")
    return t.data


def unpack_into(node, entry) -> None:
    """Put back the arrays of ``node`` from ``unpack_hook`` (before its backward)."""
    packed, unpack_hook = entry
    d = node.__dict__
    for name, value in packed.items():
        d[name] = _unpack_value(value, unpack_hook)
    d["_unpacked"] = {name: d[name] for name in packed}


class deferring:  # noqa: N801 - used as a context
    """While an in-place op computes its out-of-place result: the nodes recorded meanwhile are noted in
    ``nodes`` rather than packed (``inplace.write_result`` copies what they saved of the memory it overwrites,
    then packs them), so their pack hooks see what backward will read, once, as PyTorch's."""

    __slots__ = ("nodes", "_prev")

    def __enter__(self):
        self._prev = _local.deferred
        _local.deferred = self.nodes = []
        return self.nodes

    def __exit__(self, *exc):
        _local.deferred = self._prev


def pack_deferred(entry, owners=()) -> None:
    """Pack a node :class:`deferring` noted (``owners``: more tensors handed to pack_hook themselves)."""
    node, out, inputs = entry
    pack_node(node, out, tuple(inputs) + tuple(owners))


def unpack_for_inplace(node) -> None:
    """The node of an in-place op just recorded: its arrays back for good (inplace.py copies or swaps them)."""
    entry = node.__dict__.pop("_packed")
    unpack_into(node, entry)
    del node.__dict__["_unpacked"]


def repack(node, entry) -> None:
    """Drop the unpacked arrays again (after backward): a later pass unpacks anew, as PyTorch's. An attribute
    the backward set anew (``self.grads = None``: handed over once) keeps its new value instead."""
    d = node.__dict__
    placed = d.pop("_unpacked", {})
    packed = entry[0]
    for name in list(packed):
        value = d.pop(name, None)
        if name in placed and value is not placed[name]:
            del packed[name]
            d[name] = value


def unpacked(node):
    """A context for code that reads ``node``'s saved arrays directly (a create_graph pass)."""
    return _Unpacked(node)


class _Unpacked:
    def __init__(self, node):
        self.node, self.entry = node, node.__dict__.get("_packed")

    def __enter__(self):
        if self.entry is not None:
            unpack_into(self.node, self.entry)

    def __exit__(self, *exc):
        if self.entry is not None:
            repack(self.node, self.entry)
