"""Views PyTorch refuses to use once their memory changed in place: a piece of ``unbind``/``split``/``chunk``/
``split_with_sizes`` made while recording (or a view of one), and a view made under no_grad (or a view of one), as
PyTorch's ``handle_view_on_rebase`` for CreationMeta MULTI_OUTPUT_NODE and NO_GRAD_MODE: such a view's graph node
cannot be re-made from its base, so once its base or another view of that memory is written in place, an op that
records and takes it (or ``grad_fn``) raises PyTorch's RuntimeError. A no_grad view is refused only where its root
then requires grad (PyTorch's view of a base that records nothing keeps no graph to get wrong).

What it costs where nothing of this happens: the memory of such a view gets a fourth slot in its version counter
(``versions._counter``'s list; a no_grad view is noted by ``versions._link_views``, pieces by :func:`note_pieces`),
so that an in-place write (``inplace_gate._before_inplace_write``, the one place every write passes) tells by its
length whether to look; the views of that memory then note the version from which they are stale, and the slot is
dropped once no such view is left to note. :data:`active` turns on the check in ``Function.apply`` (one module read
per recording op) once some view has been noted so; it stays on.

Also here, :func:`grad_fn_of`: the ``grad_fn`` of a view whose memory a write that recorded nothing changed (or a
shape change in place, ``restride``); once such a write reached memory that a live view in a graph sees
(:data:`remake`), an op that records and takes such a view re-makes its node first, as PyTorch's does
(:func:`check_inputs`, under :data:`active`).
"""
from __future__ import annotations

import re

from .grad_mode import _state as _grad_state

#: whether some view was noted stale in this process, or :data:`remake` (``Function.apply`` checks its inputs only
#: then)
active = False
#: whether some write that recorded nothing changed memory that views see, in this process: see :func:`check_inputs`
remake = False

_MARKED = 3  # (the version counter's fourth slot: a piece or a no_grad view sees this memory)

MULTI_OUTPUT_LATER = ("is a view and its base or another view of its base has been modified inplace. This view is the "
                      "output of a function that returns multiple views. Such functions do not allow the output views "
                      "to be modified inplace. You should replace the inplace operation by an out-of-place one.")
NO_GRAD_LATER = ("A view was created in no_grad mode and its base or another view of its base has been modified "
                 "inplace with grad mode enabled. Given that this use case is ambiguous and error-prone, it is "
                 "forbidden. You can clarify your code by moving both the view and the inplace either both inside the "
                 "no_grad block (if you don't want the inplace to be tracked) or both outside (if you want the inplace "
                 "to be tracked).")


def _mark_memory(t) -> None:
    vc = t._vc
    if vc is not None and len(vc) == _MARKED:
        vc.append(True)


def note_pieces(pieces) -> None:
    """``pieces`` (``view_index.mark_pieces``) were made while recording: their memory is watched."""
    if pieces and pieces[0].requires_grad:
        _mark_memory(pieces[0])


def _kind(view):
    """``(output_nr, op)`` for a piece or a view of one made while recording, "no_grad" for a view made under no_grad
    or a view of one, or None: up ``view``'s bases that share its memory."""
    t = view
    while True:
        d = t.__dict__
        piece = d.get("_multi_output")
        if piece is not None and t.requires_grad:
            if t is view:
                return piece
            name = view._node.name() if view._node is not None else piece[1]
            return 0, re.sub(r"Backward\d*$", "", name)  # (PyTorch names the op that made the view of the piece)
        if "_no_grad_view" in d:  # (of a dtype that may require grad: an integer view is no differentiable one)
            return "no_grad" if view.data.dtype.kind in "fc" else None
        base = d.get("_view_of")
        base = base[0] if type(base) is tuple else base
        if base is None or base._vc is not t._vc:
            return None
        t = base


def before_write(vc) -> None:
    """An in-place write of the memory counted by ``vc`` (with the fourth slot) is coming: the pieces and no_grad
    views that see it are stale from the version it makes."""
    global active
    watched = False
    for r in vc[1]:
        view = r()
        if view is None or view._vc is not vc:
            continue
        d = view.__dict__
        if "_stale" in d or "_multi_output" in d or "_no_grad_view" in d:
            watched = True  # (a view made of it later is noted at the next write: this write may be refused)
        if "_stale" in d:
            continue
        kind = _kind(view)
        if kind is not None:
            d["_stale"] = (vc[0], kind)
            active = True
            watched = True
    if not watched:
        del vc[_MARKED:]  # (no live piece or no_grad view left: the next writes do not look)


def _root(t):
    while True:
        base = t.__dict__.get("_view_of")
        base = base[0] if type(base) is tuple else base
        if base is None or base._vc is not t._vc:
            return t
        t = base


def refuse_if_stale(t) -> None:
    """PyTorch's RuntimeError where ``t`` is a stale view (see the module docstring), used by an op that records."""
    stale = t.__dict__.get("_stale")
    if stale is None or t._vc[0] <= stale[0]:
        return
    kind = stale[1]
    if kind == "no_grad":
        if t.requires_grad or _root(t).requires_grad:
            raise RuntimeError(NO_GRAD_LATER)
        return
    raise RuntimeError(f"Output {kind[0]} of {kind[1]} {MULTI_OUTPUT_LATER}")


def check_inputs(inputs) -> bool:
    """:func:`refuse_if_stale` of each Tensor among ``inputs`` (``Function.apply``, while :data:`active`); and, once
    some write that recorded nothing changed memory that views see (:data:`remake`), the node of a view among them
    whose memory it changed is re-made, as at its ``grad_fn`` (:func:`grad_fn_of`) and as PyTorch's op re-makes it
    when it takes the view. Returns whether some node was re-made (the op's parents are then read again)."""
    remade = False
    for x in inputs:
        d = getattr(x, "__dict__", None)
        if d and "_stale" in d:
            refuse_if_stale(x)
        if remake:
            node = getattr(x, "_node", None)
            if node is not None and node.view_version is not None and x._vc is not None and \
                    x._vc[0] != node.view_version and grad_fn_of(x) is not node:
                remade = True
    return remade


def note_unrecorded_write(t) -> None:
    """A write of ``t``'s memory that may record nothing (under no_grad, or of a tensor that records nothing), where a
    live view of that memory has a view op's node: from now on the ops that record check their inputs
    (:func:`check_inputs`). (An optimizer's step of a parameter whose views of the last forward are gone turns
    nothing on.)"""
    global active, remake
    if remake or (t.requires_grad and _grad_state.enabled):
        return
    for r in t._vc[1]:
        u = r()
        if u is not None and u._node is not None and u._node.view_version is not None:
            remake = active = True
            return


def grad_fn_of(t):
    """``t.grad_fn`` of a view: PyTorch's refusal of a stale one (:func:`refuse_if_stale`); else, where its memory was
    changed since its node was made by a write that recorded nothing (under no_grad, or of a tensor that records
    nothing), its node re-made from its base's, as PyTorch's (AsStridedBackward0; a recorded write re-makes it at
    once, see ``inplace._adopt``). The gradient is the same, the name PyTorch's."""
    refuse_if_stale(t)
    node = t._node
    if node is None or node.view_version is None or t._vc is None or t._vc[0] == node.view_version:
        return node
    from distnn.functional.indexing import AsStridedBackward0, CopySlices

    from .grad_mode import _state
    from .inplace import _REMADE_AS, _take_node
    from .versions import _view_chain

    if not _state.enabled or isinstance(node, (CopySlices, AsStridedBackward0)):
        return node
    chain = _view_chain(t)
    if chain:
        from distnn.functional import indexing

        _, base, index = chain[0]
        remade = getattr(indexing, _REMADE_AS.get(t.__dict__.get("_remade_as"), "AsStridedBackward0"))
        fresh = remade.apply(base, index=index)._node
        if fresh is not None:
            _take_node(t, fresh)
            fresh.view_version = t._vc[0]
    return t._node
