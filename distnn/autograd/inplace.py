"""In-place changes while recording (``t *= w``, ``t[i] = v``, ``relu(t, inplace=True)``), as in PyTorch.

The new value is written into the tensor's own memory, so everything that shares it sees the change:
the numpy array ``from_numpy`` wrapped, views (``t[0:2]``, ``t.t()``, ``t.reshape(...)``), ``detach()``. The
tensor stays the same Python object and takes the op's graph node. What keeps gradients right:

* The op's node may have saved arrays that alias the memory about to be overwritten (``t *= w``
  saves the old ``t`` for ``w``'s gradient): those, and only those, are copied first (PyTorch's
  ``original_self``). An array the node saved that is the result itself is swapped for the tensor's
  memory (no second copy: ``relu_`` keeps one buffer), so a later in-place change of it is refused.
* The version counter of the memory is bumped: a node recorded earlier that saved the old value
  refuses to backward ("changed in place after the forward pass"), PyTorch's check. A node whose op
  declares what its backward reads (``Function.reads``) noted its output only if PyTorch's saves it. One
  that does not declare it notes its output conservatively; when it keeps none of the memory written,
  that note is dropped first, so distnn refuses where PyTorch does. The node that made the memory is
  found through views too (``_producers``): ``max_pool2d(x, (1, 2)).squeeze(2)``, the output dropped.
* Through a view (made by indexing or by any view op: reshape, transpose, permute, squeeze, narrow, diagonal,
  unfold, as_strided..., and chains of them), each base up to the root takes a ``CopySlices`` node (its gradient
  passes through except where the view was written, which gets the view's gradient), and every live
  view of the root is re-derived from its base, as PyTorch regenerates them (``as_strided``: their
  nodes are named AsStridedBackward0). A view op's view is re-made through the elements of its base it shares
  (``view_index``), worked out only here.

Laxer than PyTorch, with the right gradients: ``t *= t`` (PyTorch refuses its backward: ``mul_``
saved ``t`` as the other operand, which the op itself changed; distnn copied it first). The in-place activations
record the nodes of PyTorch's in-place ops (``functional/in_place_activation.py``), so they refuse alike.

Under ``graph.saved_tensors_hooks``, the node of an in-place op is packed after the steps above (the in-place
methods and the activations' ``inplace=True`` compute inside ``saved_hooks.deferring``), so its pack hooks see the
copy of the old value or the tensor itself, once, as PyTorch's; a node packed before is unpacked and packed
again after the write (the graph never holds its arrays themselves). A node whose arrays were packed checks no
version, as PyTorch's saved tensors with hooks do not (``saved_hooks.pack_node``).

Refused as PyTorch refuses, before anything is written: a view of a leaf that requires grad; a piece of
``unbind``/``split``/``chunk``/``split_with_sizes`` (or a view of one) while recording; a tensor whose elements
overlap (an ``expand``); a view made under no_grad (of a base that records or not), changed with grad mode on
(``inplace_gate`` for a change that records nothing). Such a piece or no_grad view, once its memory was changed in
place, is refused where an op that records takes it, or at ``grad_fn`` (``view_staleness``), as PyTorch's.

Views that are not element for element of their base are re-made too, as PyTorch's: ``real``/``imag`` (and
``view_as_real``) of a complex tensor among its parts, an ``expand`` of a 0-d tensor by broadcasting, ``as_strided``
beyond its input's elements and a view of an expanded tensor from the base's base that holds their elements
(``view_index``, ``versions._remap``). ``view(dtype)`` is cut from the graph (PyTorch's is not differentiable), as
``detach()`` and ``Tensor(t)`` aliases are: they see the new values, as in PyTorch.

Refused while recording, before anything is written (no case of PyTorch's is known to reach it): a tensor whose
memory another live tensor of its graph sees through a view that no base up to the root holds element for element:
its graph node cannot be re-derived.
"""
from __future__ import annotations

import re

from distnn.backend import get_array_module

from . import saved_hooks as _saved
from .function import OUTPUT, Function
from .half_rounding import into_half
from .tensor import Tensor, _refuse_recorded_leaf
from .tensor_hooks import _output_hooks
from .versions import _counter, _index_views_of, _note_index_versions, _shared_with_another, _view_chain
from .view_index import overlaps_itself


def check_writable(t: Tensor) -> None:
    """Raise, before anything changes, if ``t``'s memory cannot be written while recording."""
    _refuse_recorded_leaf(t)
    chain = _view_chain(t)
    for _, base, _ in chain:
        if base._node is None and base.requires_grad:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in an in-place operation.")
    if overlaps_itself(t.data):  # (PyTorch refuses it whether recording or not; numpy's own refusal is a ValueError)
        raise RuntimeError("unsupported operation: more than one element of the written-to tensor refers to a single "
                           "memory location. Please clone() the tensor before performing the operation.")
    _refuse_multi_output_view(t, chain)
    for view, base, _ in chain:
        # (a view that records nothing of a base that does: made under no_grad, PyTorch's CreationMeta::NO_GRAD_MODE)
        if (base.requires_grad and not view.requires_grad) or "_no_grad_view" in view.__dict__:
            raise RuntimeError(NO_GRAD_VIEW)
    for x in (t, *(base for _, base, _ in chain)):
        if "_hook_view" in x.__dict__:  # (nn/module_backward_hooks.py: the hooks would miss the change)
            raise RuntimeError(
                f"a tensor of shape {tuple(x.shape)} passed into or returned by a module with backward hooks is a "
                "view that is being modified inplace (as in PyTorch, this is not allowed: the module's backward hooks "
                "would not see the change). You should replace the inplace operation by an out-of-place one, "
                "or clone() the tensor first.")
    root = chain[-1][1] if chain else t
    if _shared_with_another(root, _index_views_of(root)):
        raise RuntimeError(
            f"in-place operation on a tensor of shape {tuple(t.shape)} that shares its memory with another live "
            "tensor through a view that is not element for element of its base (nor of any base up to the root) "
            "while recording gradients: "
            "distnn cannot carry the change over to that view's graph. Write y = y + x instead, or drop the view "
            "first.")


NO_GRAD_VIEW = ("A view was created in no_grad mode and is being modified inplace with grad mode enabled. Given that "
                 "this use case is ambiguous and error-prone, it is forbidden. You can clarify your code by moving both "
                 "the view and the inplace either both inside the no_grad block (if you don't want the inplace to be "
                 "tracked) or both outside (if you want the inplace to be tracked).")
_MULTI_OUTPUT = ("is a view and is being modified inplace. This view is the output of a function that returns multiple "
                 "views. Such functions do not allow the output views to be modified inplace. You should replace the "
                 "inplace operation by an out-of-place one.")


def _refuse_multi_output_view(t: Tensor, chain) -> None:
    """PyTorch's refusal of an in-place change, while recording, of a piece of ``unbind``/``split``/``chunk``/
    ``split_with_sizes`` (``view_index.mark_pieces``), or of a view of one: their one node makes all the pieces, so it
    cannot be re-made for one of them."""
    piece = t.__dict__.get("_multi_output")
    if piece is not None:
        raise RuntimeError(f"Output {piece[0]} of {piece[1]} {_MULTI_OUTPUT}")
    for _, base, _ in chain:
        piece = base.__dict__.get("_multi_output")
        if piece is not None:  # (PyTorch names the op that made ``t`` from the piece, its only output)
            name = t._node.name() if t._node is not None else piece[1]
            op = re.sub(r"Backward\d*$", "", name)
            raise RuntimeError(f"Output 0 of {op} {_MULTI_OUTPUT}")


def deferring():
    """The context an in-place method computes its out-of-place result in: ``saved_hooks.deferring`` while some
    thread has saved_tensors_hooks on (the nodes made are then packed by :func:`write_result`), else nothing."""
    return _saved.deferring() if _saved.active else _NOT_DEFERRING


class _NotDeferring:
    __slots__ = ()

    def __enter__(self):
        return ()

    def __exit__(self, *exc):
        return None


_NOT_DEFERRING = _NotDeferring()


def write_result(t: Tensor, result: Tensor, op_node, deferred=()) -> Tensor:
    """Write ``result`` (same shape and dtype) into ``t``'s memory; ``t`` takes its graph node.

    ``op_node`` is the node of the op that computed the value (``result``'s own, or its parent when
    ``result`` is a cast back to ``t``'s dtype): the one that may have saved ``t``'s old memory.
    ``deferred``: the nodes ``saved_hooks.deferring`` noted while ``result`` was computed, packed here.
    Call :func:`check_writable` first.
    """
    data = t.data
    nodes = (op_node,) if result._node is op_node else (op_node, result._node)
    mine = []  # the deferred entries of ``nodes``: packed once their arrays are copied or swapped
    for entry in deferred:
        if entry[0] is op_node or entry[0] is result._node:
            mine.append(entry)
        else:  # (an op before the last: it saved what it read, as when it ran)
            _saved.pack_deferred(entry)
    for node in nodes:
        if "_packed" in node.__dict__:  # (packed before the write: what follows reads the arrays)
            _saved.unpack_for_inplace(node)
            # (and packs them again after it: the graph keeps only what pack_hook returns, never the arrays
            # themselves; allow_mutation_on_saved_tensors then keeps the memory backward reads, t's)
            mine.append((node, result, ()))
        _copy_saved_aliases(node, data)
    vc = t._vc or _counter(t)
    _excuse_producers(t, data, vc)
    data[...] = result.data
    vc[0] += 1
    root = _root(t)
    for node in nodes:
        _restamp(node, vc, root.data)
    _share_saved_result(result._node, result.data, data, vc)
    for entry in mine:  # (a result swapped for ``t``'s memory goes to pack_hook as ``t`` itself, as PyTorch's)
        _saved.pack_deferred(entry, (t,))
    _adopt(t, result._node)
    return t


def write_index(t: Tensor, index, value, original_index) -> None:
    """``t[index] = value`` while recording: written in place; ``t`` takes a ``CopySlices`` node.

    ``original_index`` is the index as given (Tensor indices are version-checked).
    Call :func:`check_writable` first.
    """
    from distnn.functional.indexing import IndexPut, index_put_form
    from distnn.functional.shape import CopySlices

    raw = value.data if isinstance(value, Tensor) else value
    vc = t._vc or _counter(t)
    _excuse_producers(t, t.data, vc)  # (all of t's memory: conservative, and no indexing here)
    try:
        t.data[index] = into_half(raw, t.data.dtype)  # (float64 into float16 through float32, as PyTorch's)
    except (IndexError, ValueError) as e:
        raise type(e)(f"cannot assign a value of shape {tuple(getattr(raw, 'shape', ()))} to index {index!r} of "
                      f"a tensor of shape {tuple(t.shape)}: {e}") from None
    vc[0] += 1
    node = IndexPut if not _view_chain(t) and index_put_form(original_index) else CopySlices
    written = node.apply(t, value, index=index)  # (graph only: the memory holds the value already)
    _note_index_versions(written, original_index)
    _adopt(t, written._node)


def _root(t: Tensor) -> Tensor:
    chain = _view_chain(t)
    return chain[-1][1] if chain else t


def _adopt(t: Tensor, node) -> None:
    """``t``, whose memory was just written, takes ``node``; its bases and the indexing views of its root follow."""
    from distnn.functional import indexing
    from distnn.functional.shape import CopySlices

    _take_node(t, node)
    written = t
    for _, base, index in _view_chain(t):
        _take_node(base, CopySlices.apply(base, written, index=index)._node)
        written = base
    for view in _index_views_of(written):  # (shallowest first: each base has its new node before its views)
        if "_stale" in view.__dict__:  # (a piece or a no_grad view, refused from now on: see view_staleness)
            continue
        base, index = view.__dict__["_view_of"]
        remade = _REMADE_AS.get(view.__dict__.get("_remade_as"), "AsStridedBackward0")
        _take_node(view, getattr(indexing, remade).apply(base, index=index)._node)


# (the view ops PyTorch re-makes with their own view function, keeping their node's name: no strides name them)
_REMADE_AS = {"view_as_real": "ViewAsRealBackward0", "view_as_complex": "ViewAsComplexBackward0"}


def _take_node(t: Tensor, node) -> None:
    """``t`` (written, or a base or view of the memory written) takes ``node``; its ``retain_grad()`` follows it
    to its new value, as PyTorch moves it (left on the old node it would keep the gradient of the old value,
    and a second ``retain_grad()`` would count the gradient twice)."""
    old = t._node
    t._node, t.requires_grad = node, True
    retained = old.grad_hooks.retained if old is not None and old.grad_hooks is not None else None
    if retained is not None and retained() is t:
        old.grad_hooks.retained = None
        _output_hooks(node).retained = retained


def _arrays(node, xp):
    """The names and arrays ``node`` saved for backward (kept as attributes, see ``Function``)."""
    return [(name, v) for name, v in node.__dict__.items() if isinstance(v, xp.ndarray)]


def _copy_saved_aliases(node, data) -> None:
    """Copy the arrays ``node`` saved that may share memory with ``data``, which is about to be overwritten."""
    xp = get_array_module(data)
    copies = {}
    for name, a in _arrays(node, xp):
        if xp.may_share_memory(a, data):
            if id(a) not in copies:
                copies[id(a)] = a.copy()
            node.__dict__[name] = copies[id(a)]


def _excuse_producers(t: Tensor, written, vc: list) -> None:
    """Before ``written`` (``t``'s memory, or part of it) changes: the nodes that made ``t`` and its bases note
    their output's version when they may read it (``saves_tensors = True``, no ``reads``), but many keep none
    of it (max_pool2d, conv2d): those stop checking it, as PyTorch's (which check only what they saved) do not refuse
    ``y = x ** 2; y += 1``. A node that keeps an array of the memory written (relu, exp) still refuses, unless
    PyTorch's would not (``saved_output_is_internal``, e.g. max_pool2d, which PyTorch runs from indices): it
    keeps a copy."""
    xp = get_array_module(written)
    for node in _producers([t] + [base for _, base, _ in _view_chain(t)]):
        versions = node.saved_versions
        if node.reads is not None:  # (declared as PyTorch's: it notes its output only where PyTorch's does)
            continue
        if not any(i == -1 and c is vc for i, c, _ in versions):
            continue
        if node.saved_output_is_internal:
            _copy_saved_aliases(node, written)
        if not any(xp.may_share_memory(a, written) for _, a in _arrays(node, xp)):
            node.saved_versions = [e for e in versions if not (e[0] == -1 and e[1] is vc)]


def _producers(tensors) -> list:
    """The nodes that made ``tensors``' memory: each one's own node and, up through view ops (reshape,
    transpose, squeeze... whose output views an input's memory, ``Function.viewed_input``), the node that
    made the memory viewed. A view whose base is gone may still be written (``check_writable``), and the
    base's maker noted its output's version there: ``F.max_pool2d(x, (1, 2)).squeeze(2)`` changed in place."""
    found = {}
    for x in tensors:
        node = x._node
        while node is not None and id(node) not in found:
            found[id(node)] = node
            i, parents = node.viewed_input, node.parents
            parent = parents[i] if i is not None and parents else None
            node = parent if isinstance(parent, Function) else None
    return list(found.values())


def _restamp(node, vc: list, memory) -> None:
    """After a write bumped ``vc``: the versions ``node`` noted on ``vc`` (before the write, of its inputs)
    would refuse every backward. Dropped when ``node`` no longer holds any of that memory (its aliases were
    copied); else moved to the new version, so that a later change of the memory it still reads is refused."""
    versions = node.saved_versions
    if not any(counter is vc for _, counter, _ in versions):
        return
    xp = get_array_module(memory)
    reads = any(xp.may_share_memory(a, memory) for _, a in _arrays(node, xp))
    node.saved_versions = [(i, c, vc[0] if c is vc else v) for i, c, v in versions if reads or c is not vc]


def _share_saved_result(node, fresh, data, vc: list) -> None:
    """``node`` saved its result ``fresh``, now copied into ``data``: read ``data`` instead (one buffer, not two),
    and check its version, so that a later in-place change of the tensor is refused at backward. A node that
    declares what it reads (``reads``), its output not among it, keeps its own buffer and checks nothing: PyTorch's
    does not save the result (``y.sin_(); y.add_(1)`` is allowed, as ``sin``'s backward reads the input only)."""
    if node.reads is not None and not any(OUTPUT in r for r in node.reads):
        return
    swapped = False
    for name, a in _arrays(node, get_array_module(data)):
        if a is fresh:
            node.__dict__[name] = data
            swapped = True
    # (a node declaring what it reads, as PyTorch's, that reads its result: that result is now the tensor's
    # memory, also when its saved copy was no array to swap, e.g. a 0-d result kept as a numpy scalar)
    if swapped or (node.reads is not None and any(e[0] == -1 for e in node.saved_versions)):
        node.saved_versions = [e for e in node.saved_versions if e[0] != -1] + [(-1, vc, vc[0])]
