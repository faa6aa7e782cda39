"""What every in-place write of a tensor's memory by an op checks before anything is written (the Tensor's
in-place operators and methods, ``x[i] = v``, ``relu(x, inplace=True)``, ``resize_``/``set_``): the single place
where ``allow_mutation_on_saved_tensors`` sees a write coming (see ``mutation_guard``)."""
from __future__ import annotations

from . import mutation_guard as _guard, view_staleness as _stale
from .grad_mode import _inference as _inference_state, _state as _grad_state

_INFERENCE_INPLACE = ("Inplace update to inference tensor outside InferenceMode is not allowed.You can make a clone to "
                      "get a normal tensor before doing inplace update.See https://github.com/pytorch/rfcs/pull/17 "
                      "for more details.")


def _before_inplace_write(t) -> None:
    """Every in-place write of ``t``'s memory by an op passes here first: PyTorch's refusal of an inference tensor
    outside ``inference_mode()`` (it keeps no version counter, so a graph could not tell that the values it read
    changed); inside ``allow_mutation_on_saved_tensors``, the saved arrays sharing the memory are copied."""
    if t._inference and not _inference_state.enabled:
        raise RuntimeError(_INFERENCE_INPLACE)
    if _guard.watching:
        _guard.before_write(t)
    vc = t._vc
    if vc is not None and len(vc) > 1:  # (memory others view)
        if not _stale.remake:
            _stale.note_unrecorded_write(t)
        if len(vc) > 3:  # (a piece or a no_grad view sees it: stale from this write on, see view_staleness)
            _stale.before_write(vc)
        if not t.requires_grad and _grad_state.enabled:
            _refuse_no_grad_view(t)


def _refuse_no_grad_view(t) -> None:
    """PyTorch's refusal of an in-place change, with grad mode on, of a view made under no_grad of a base that
    records (or of a view of such a view): the change would reach the base's values but not its graph. (A write
    that records is refused the same way by ``inplace.check_writable``.)"""
    from .inplace import NO_GRAD_VIEW

    view = t
    while True:  # (up the bases that share the memory; no index is worked out, unlike versions._view_chain)
        base = view.__dict__.get("_view_of")
        base = base[0] if type(base) is tuple else base
        if base is None or base._vc is not view._vc:
            return
        if base.requires_grad and not view.requires_grad:
            raise RuntimeError(NO_GRAD_VIEW)
        view = base


def _refuse_recorded_leaf(t) -> None:
    if t._node is None and t.requires_grad:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place operation. (distnn: a "
                           "leaf tensor that requires grad is used in an in-place operation only under "
                           "distnn.no_grad(), e.g. a manual update of parameters; else write x = x - y)")
