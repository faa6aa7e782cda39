"""In-place changes of a tensor's shape and strides (``t_``, ``transpose_``/``swapdims_``, ``squeeze_``,
``unsqueeze_``, ``as_strided_``), as PyTorch's: the tensor becomes a view of its own memory; its values stay.

While recording, the tensor takes the view op's node under PyTorch's name of the in-place op (``TBackward1``,
``SqueezeBackward3``...). Other tensors may view that memory (its base, its views, their siblings), as in PyTorch,
which allows it: an index that a view noted in the tensor's old layout (``versions``' ``_view_of``) is dropped, to be
worked out again from memory when next needed; the version is bumped, so the views of that memory re-make their
nodes at their next ``grad_fn`` (``view_staleness.grad_fn_of``: AsStridedBackward0, as PyTorch's), and pieces of
``unbind``/``split`` and views made under no_grad that see it are stale from then on (``inplace_gate``).

Refused as PyTorch refuses, while recording: a leaf that requires grad or a view of one ("a view of a leaf
Variable..."), a piece of ``unbind``/``split``/``chunk`` (or a view of one), a view made under no_grad. An ``expand``
may change its shape (nothing is written), unlike a write of its values.
"""
from __future__ import annotations

import re

from . import view_staleness as _stale
from .versions import _SHARERS, _counter

# (PyTorch numbers the in-place overloads after the out-of-place ones: squeeze has three of each)
_OVERLOADS_BEFORE = {"SqueezeBackward": 3}

_LEAF = "a leaf Variable that requires grad is being used in an in-place operation."
_LEAF_VIEW = "a view of a leaf Variable that requires grad is being used in an in-place operation."


def restride(t, view, recording: bool):
    """``t`` becomes ``view(t)`` (the same memory, another shape and strides), in place; returns ``t``."""
    from .inplace_gate import _before_inplace_write

    if recording:
        _refuse(t)
    _before_inplace_write(t)  # (inference tensors, no_grad views, pieces that see this memory: see the docstring)
    result = view(t)
    t.data = result.data
    vc = t._vc or _counter(t)
    vc[0] += 1  # (as PyTorch's: a node that saved the tensor refuses its backward, its views re-make their nodes)
    if recording:
        node = result._node
        t._node = node
        if node is not None:
            node.view_version = vc[0]  # (its own node is current: not re-made at grad_fn)
            _rename_in_place(node)
    _forget_layout(t, vc)
    if len(vc) > 1 and not _stale.remake:  # (the views of this memory: their nodes re-made where an op takes them)
        _stale.remake = _stale.active = True
    return t


def _bases(t):
    """``t``'s bases that share its memory, nearest first (no index worked out)."""
    bases = []
    while True:
        link = t.__dict__.get("_view_of")
        base = link[0] if type(link) is tuple else link
        if base is None or base._vc is not t._vc:
            return bases
        bases.append((t, base))
        t = base


def _refuse(t) -> None:
    from .inplace import NO_GRAD_VIEW, _refuse_multi_output_view

    if t._node is None and t.requires_grad:
        raise RuntimeError(_LEAF)
    bases = _bases(t)
    if any(base._node is None and base.requires_grad for _, base in bases):
        raise RuntimeError(_LEAF_VIEW)
    _refuse_multi_output_view(t, [(view, base, None) for view, base in bases])
    for view, base in bases:
        if (base.requires_grad and not view.requires_grad) or "_no_grad_view" in view.__dict__:
            raise RuntimeError(NO_GRAD_VIEW)


def _rename_in_place(node) -> None:
    match = re.fullmatch(r"(\w+Backward)(\d+)", node.name())
    if match:
        stem, number = match.groups()
        name = f"{stem}{int(number) + _OVERLOADS_BEFORE.get(stem, 1)}"
        node.__dict__["torch_name_of_call"] = lambda: name  # (kept by release() when backward frees the node)


def _forget_layout(t, vc) -> None:
    """The indexes noted in ``t``'s old layout (``t``'s own in its base, its views' in ``t``) no longer fit: each view
    keeps its base alone, its index worked out again from memory when next needed (``versions._view_chain``)."""
    link = t.__dict__.get("_view_of")
    if type(link) is tuple:
        t.__dict__["_view_of"] = link[0]
    if len(vc) == 1:
        return
    for r in vc[_SHARERS]:
        u = r()
        if u is None or u is t:
            continue
        link = u.__dict__.get("_view_of")
        if type(link) is tuple and link[0] is t:
            u.__dict__["_view_of"] = t
