"""Version counters (PyTorch's in-place check): how a tensor's memory is tracked across views.

Every tensor gets a counter when first needed; in-place changes bump it, views share it,
and recorded graph nodes note the versions they read (see ``Function.apply`` and the engine).
"""
from __future__ import annotations

import threading
import weakref

from distnn.backend import get_array_module

from .tensor import Tensor
from .view_index import REMAP, memory_index

# A version counter is a list, cheap to make on the hot path: [version], or, once other tensors view the
# same memory, [version, weak references to those tensors, how many there may be before the dead ones
# are dropped] (so an in-place change while recording can tell whether another live tensor sees it).
_VERSION, _SHARERS, _PRUNE_AT = 0, 1, 2


def _counter(t: Tensor) -> list:
    vc = t._vc = [0]
    return vc


_SHARE_LOCK = threading.Lock()  # (simulated ranks are threads and may view one tensor at once)


def _share(src: Tensor, dst: Tensor) -> None:
    """``dst``'s array is ``src``'s memory (or a view of it): one version counter for both."""
    with _SHARE_LOCK:
        vc = src._vc or _counter(src)
        if len(vc) == 1:
            vc += [[weakref.ref(src)], 16]
        elif len(vc[_SHARERS]) >= vc[_PRUNE_AT]:  # drop the dead (amortized: the bound doubles with the living)
            vc[_SHARERS] = [r for r in vc[_SHARERS] if r() is not None]
            vc[_PRUNE_AT] = max(16, 2 * len(vc[_SHARERS]))
        vc[_SHARERS].append(weakref.ref(dst))
        dst._vc = vc
        if src._inference:  # (a view or alias of an inference tensor is one, as PyTorch's)
            dst.__dict__["_inference"] = True
        alias = src.__dict__.get("_alias")
        if alias is not None:  # a view of a detach() alias is cut from the graph with it
            dst.__dict__["_alias"] = alias


def _shared_with_another(t: Tensor, allow=()) -> bool:
    """Whether a live tensor other than ``t`` (and those in ``allow``) views ``t``'s memory in the graph.

    Each ``detach()`` or ``Tensor(t)`` alias starts a graph of its own (its ``_alias`` token, which its
    views inherit): only tensors of ``t``'s own graph count. The others (the alias of ``t``, or the tensor
    ``t`` is an alias of, and their views) only see the values, which an in-place change writes into the
    shared memory anyway, as in PyTorch."""
    vc = t._vc
    if vc is None or len(vc) == 1:
        return False
    mine = t.__dict__.get("_alias")
    for r in vc[_SHARERS]:
        other = r()
        if (other is not None and other is not t and other._vc is vc and not any(other is a for a in allow)
                and other.__dict__.get("_alias") is mine):
            return True
    return False


def _note_index_versions(t: Tensor, index) -> None:
    """Tensor indices of ``t``'s indexing node are version-checked too (changing one would move the gradient)."""
    node = t._node
    if node is None or "_packed" in node.__dict__:  # (packed by saved_tensors_hooks: no check, as PyTorch's)
        return
    extra = [(-2, it._vc or _counter(it), (it._vc or _counter(it))[0])
             for it in (index if isinstance(index, tuple) else (index,)) if isinstance(it, Tensor)]
    if extra:
        node.saved_versions = [*node.saved_versions, *extra]


def _link_views(t: Tensor, out, inputs, arrays, no_grad: bool = False) -> None:
    """An op's output ``t`` whose array ``out`` is an input's array or a view of it shares its counter; its
    node (when recorded) notes which input, so that an in-place change of ``t`` can find the node that made
    that memory (``inplace._producers``). ``no_grad``: made under no_grad (PyTorch's CreationMeta::NO_GRAD_MODE,
    see view_staleness: its memory is watched)."""
    base = getattr(out, "base", None)
    for i, a in enumerate(arrays):
        # (the common case, ``out`` a view of an array that owns its memory, is told by out's base alone)
        if a is out or (base is a and base is not None) or _overlap(out, a):
            x = inputs[i]
            if isinstance(x, Tensor):
                _share(x, t)
                # (its base, as PyTorch's view._base: an in-place change of either re-makes the other's node; the
                # index is worked out only then, see view_index. Indexing ops note theirs over this one. It also
                # makes ``t`` a view for detach_(), which refuses one, as PyTorch's is_view.)
                t.__dict__["_view_of"] = x  # (the base alone: (base, REMAP) to _view_chain, no tuple made here)
                if t._node is not None:
                    t._node.viewed_input = i
                    t._node.view_version = t._vc[0]
                elif no_grad:  # (view_staleness.note_no_grad_view, inlined: the hot path of a view under no_grad)
                    t.__dict__["_no_grad_view"] = True
                    vc = t._vc
                    if len(vc) == 3:
                        vc.append(True)
            return


def _overlap(out, a) -> bool:
    """Whether ``out`` views memory of ``a`` (any input of the op: an array, a number, None)."""
    xp = get_array_module(out)
    # (an array of the other device shares nothing with ``out``: cupy's may_share_memory refuses it; an empty
    # view shares no bytes, so there it is a view when it is one of the same array: PyTorch's share the version)
    return hasattr(a, "shape") and get_array_module(a) is xp and (
        xp.may_share_memory(out, a) or (out.size == 0 and _owner(out) is _owner(a)))


def _owner(a):
    """The array that owns ``a``'s memory (``a`` itself, or the end of its chain of ``base``)."""
    while getattr(a, "base", None) is not None:
        a = a.base
    return a


def _view_chain(t: Tensor) -> list:
    """``[(view, its base, index), ...]`` from ``t`` up through live bases whose memory it still views."""
    chain = []
    while True:
        view = t.__dict__.get("_view_of")
        if view is not None and type(view) is not tuple:  # (a view op's: see _link_views)
            view = (view, REMAP)
        base = view[0] if view is not None else None
        if base is None or base._vc is not t._vc:
            return chain
        index = view[1]
        if index is REMAP:  # (made by a view op: worked out once, from the two arrays' memory)
            base, index = _remap(t, base)
            if index is None:  # (no element-for-element view of its bases: its change is refused, see inplace)
                return chain
        chain.append((t, base, index))
        t = base


def _remap(t: Tensor, base: Tensor):
    """``(base, index)`` of ``t``, a view op's view of ``base``, noted on ``t``: its index in ``base``, or, where its
    elements are not elements of ``base`` (``as_strided`` beyond its input) or ``base`` sees an element twice (an
    ``expand``), in the first base up the chain that holds them (PyTorch re-makes views from the root's storage).
    ``(base, None)`` where there is none."""
    up = base
    while True:
        index = memory_index(t.data, up.data)
        if index is not None:
            t.__dict__["_view_of"] = (up, index)
            if up is not base and t._node is not None:
                # (its node reaches ``base`` only, which lacks some of its elements (as_strided's backward drops the
                # gradient of those): re-made from ``up``, as PyTorch's CopySlices routes the view's gradient into
                # its root's whatever node made the view)
                from distnn.functional.indexing import AsStridedBackward0

                from .inplace import _take_node

                node = AsStridedBackward0.apply(up, index=index)._node
                if node is not None:
                    _take_node(t, node)
                    _rebase_views_of(t, up, AsStridedBackward0, _take_node)
            return up, index
        view = up.__dict__.get("_view_of")
        up = view[0] if type(view) is tuple else view
        if up is None or up._vc is not t._vc:
            return base, None


def _rebase_views_of(t: Tensor, up: Tensor, node_class, take_node) -> None:
    """The live views made of ``t`` before :func:`_remap` gave it a node from ``up``: their nodes reach ``t``'s old one,
    which drops the gradient of ``t``'s elements that its input lacks; each is re-made from ``up`` too."""
    vc = t._vc
    through_t = []  # (all found before any is re-based: a view of a view of ``t`` reaches it through the first)
    for r in vc[_SHARERS]:
        u = r()
        if u is None or u is t or u._vc is not vc or u._node is None:
            continue
        view = u
        while True:
            link = view.__dict__.get("_view_of")
            view = link[0] if type(link) is tuple else link
            if view is None or view._vc is not vc:
                break
            if view is t:
                through_t.append(u)
                break
    for u in through_t:
        index = memory_index(u.data, up.data)
        if index is not None:
            node = node_class.apply(up, index=index)._node
            if node is not None:
                u.__dict__["_view_of"] = (up, index)
                take_node(u, node)


def _index_views_of(root: Tensor) -> list:
    """The live tensors that view ``root``'s memory through indexing (at any depth), shallowest first."""
    vc = root._vc
    if vc is None or len(vc) == 1:
        return []
    found = []
    for r in vc[_SHARERS]:
        t = r()
        if t is None or t is root or t._vc is not vc:
            continue
        chain = _view_chain(t)
        if chain and chain[-1][1] is root:
            found.append((len(chain), t))
    found.sort(key=lambda depth_view: depth_view[0])
    return [t for _, t in found]
