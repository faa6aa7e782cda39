"""The machinery of ``graph.saved_tensors_hooks``: packing the arrays a node keeps for backward.

A distnn op keeps what its backward reads as array attributes of its node, set in ``forward`` (see
``function.py``), where PyTorch's ops call ``save_for_backward``. So while hooks are active in this thread,
``Function.apply`` hands the new node to :func:`pack_node`, which passes every array attribute through the
innermost ``pack_hook`` (as a Tensor, as PyTorch hands Tensors), keeps what it returns instead of the array,
and routes the node's backward through ``node_api.extras_backward``, which calls ``unpack_hook`` on each
before the op's backward runs (and again in a later pass, with ``retain_graph=True``).

The hot path pays one module read (:data:`active`, the number of threads with hooks on) per recorded op;
nothing at all in backward for nodes made without hooks. Arrays an op keeps inside a list or tuple are not
packed (the ops keep theirs as attributes, which in-place ops rely on too).
"""
from __future__ import annotations

import threading

from distnn.backend import get_array_module

from .tensor import Tensor

active = 0  # threads whose hook stack is not empty (Function.apply's cheap test)
_count_lock = threading.Lock()


class _Local(threading.local):
    def __init__(self):
        self.stack = []  # (pack_hook, unpack_hook, on_pack) pairs, innermost last
        self.disabled = None  # disable_saved_tensors_hooks' message, or None


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


def _arrays_of(node, out):
    """The names of ``node``'s array attributes (the arrays its backward reads: see function.py)."""
    xp = get_array_module(out)
    return [name for name, v in node.__dict__.items() if isinstance(v, xp.ndarray)]


def pack_node(node, out) -> None:
    """Pack the arrays ``node`` keeps through this thread's innermost hooks (called by ``Function.apply``)."""
    stack = _local.stack
    if not stack:  # (hooks on in another thread only)
        return
    pack_hook, unpack_hook, on_pack = stack[-1]
    d = node.__dict__
    packed = {}
    for name in _arrays_of(node, out):
        packed[name] = pack_hook(Tensor._make(d[name], None))
    for name in packed:
        del d[name]  # (an unpacked read outside backward fails loudly rather than seeing stale memory)
    if packed:
        d["_packed"] = (packed, unpack_hook)
        from .node_api import _install

        _install(node)
    if on_pack is not None:
        on_pack(node)


def unpack_into(node, entry) -> None:
    """Put back the arrays of ``node`` from ``unpack_hook`` (before its backward)."""
    packed, unpack_hook = entry
    d = node.__dict__
    for name, value in packed.items():
        t = unpack_hook(value)
        if not isinstance(t, Tensor):  # (PyTorch's message)
            raise TypeError("Output of saved tensor unpack_hook expected to be a Tensor but got result of type "
                            f"{type(t).__name__}")
        d[name] = t.data


def unpack_for_inplace(node) -> None:
    """The node of an in-place op just recorded: its arrays back for good (inplace.py copies or swaps them)."""
    entry = node.__dict__.pop("_packed")
    unpack_into(node, entry)


def repack(node, entry) -> None:
    """Drop the unpacked arrays again (after backward): a later pass unpacks anew, as PyTorch's."""
    d = node.__dict__
    for name in entry[0]:
        d.pop(name, None)


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
