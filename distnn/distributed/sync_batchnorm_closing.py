"""Which SyncBatchNorm rounds (:mod:`.sync_batchnorm_rounds`) a :class:`~.data_parallel.DataParallel` ends, and
what a rank does when a round of its step ends elsewhere.

A step's exchange closes the rounds of the SyncBatchNorm communicators of the wrapped model AND of its own
communicator: a SyncBatchNorm outside the model on that communicator (a head applied to the wrapper's output,
a second model) shares its split (:func:`.sync_batchnorm._own_comm`), so a failing rank's exchange answers
those layers' rounds too. Every SyncBatchNorm registers itself when built (every rank builds the same layers),
so a rank whose first step fails before such a layer's first forward makes the split in its exchange, where
the others make it in that forward.

A round that a rank's exchange closed raises on the ranks that called it. Inside the wrapper's forward or a
synchronizing backward DataParallel already agrees on that error; elsewhere (a head's forward) the round
itself sends the rank through the step's exchange (:func:`~.sync_failures.agree_on_failure`), so every rank
raises the failing rank's error there and then, as they would inside the model.

Under ``no_sync()`` no exchange follows a failing forward or backward: the failing rank ABORTs the rounds of
the one SyncBatchNorm communicator its model trains on (:func:`abort_micro_batch`; every backward of the model
under ``no_sync()`` is watched, for that and for its partial gradients, :func:`watch_micro_batch`: a closure a
pass); the ranks in its rounds gather every rank's note (one ``allgather_object``, on that path only) and every
rank raises "DataParallel: forward raised on rank 1 under no_sync(): ...", ending the micro-batch (a backward's partial gradients stay
accumulated: the next synchronizing step refuses them unless ``zero_grad()`` drops them first,
:mod:`.sync_micro_batch`). An error between a micro-batch's forward and its backward (the loss) is
:mod:`.sync_micro_batch`'s: the rank ABORTs the same way. The ABORT ends the rounds of the model's training
layers, and those of the wrapper communicator's split only when layers outside the model (a head) made rounds
there in this step or the step before (:func:`_in_step`): a layer merely alive there (an earlier model in a
reference cycle) makes no round, and ending its rounds would wait for an answer no rank sends.

A model whose layers use several SyncBatchNorm communicators (layers built with different ``process_group``'s)
ends the rounds of every one of them: the headers of all are started together and each is answered as it
completes (:func:`~.sync_batchnorm_rounds.end_rounds_all`), as the ranks waiting may be in a round of any one;
a rank that sees the ABORT in a round of one ends the rounds of the others too (:func:`join_abort`) before the
notes are gathered, on each communicator in the model's order. The error is built from the notes gathered on
the first of them (the same on every rank when, as usual, every communicator spans the wrapper's ranks).
"""
from __future__ import annotations

import threading
import weakref

from distnn.autograd.engine import backward_depth

from .sync_batchnorm_rounds import ABORT, CLOSE, CLOSE_FAILED, end_rounds_all, history
from .sync_micro_batch import drop_micro_batch, mark_stale
from .sync_refusals import WHERE, agreed_error, note, raisable

_layers = weakref.WeakKeyDictionary()    # every SyncBatchNorm alive (registered when built) -> the simulated
_lock = threading.Lock()                 # rank's communicator it was built on, or None (simulated ranks build at once)
_wrappers = weakref.WeakKeyDictionary()  # communicator -> the DataParallel over it (the last one built)
NO_SYNC_ADVICE = ("Every rank ended this micro-batch: the gradients accumulated by the earlier ones are kept, and "
                  "SyncBatchNorm's collectives of the next micro-batch pair as usual")


def register_layer(layer) -> None:
    """A SyncBatchNorm is built: remember where it was built (a simulated rank's layer with no communicator
    uses that rank's)."""
    from .inprocess_comm import current_simulated_comm

    with _lock:
        _layers[layer] = current_simulated_comm()


def _layers_on(base) -> list:
    """The live SyncBatchNorm layers whose communicator is or will be ``base``."""
    from . import _world
    from .inprocess_comm import current_simulated_comm

    sim = current_simulated_comm()
    default = sim if sim is not None else _world
    with _lock:
        layers = list(_layers.items())
    return [m for m, built_on in layers if m.comm is base or m.comm is None and base is default and built_on is sim]


def register_wrapper(dp) -> None:
    """DataParallel ``dp`` is built over ``dp.comm``: its exchange ends the rounds there; the split of SyncBatchNorm
    layers already built on it is made now (collective, as the wrapper)."""
    _wrappers[dp.comm] = weakref.ref(dp)
    exchange_comms(dp)
    dp._split_calls, dp._split_used_before = _split_calls(dp), False  # (its steps' rounds there: _in_step)


def exchange_comms(dp) -> list:
    """The SyncBatchNorm communicators ``dp``'s exchange closes: its model's, then its own communicator's split
    when one exists or a layer may use it (made now: a layer's first forward makes it on the other ranks)."""
    from .sync_batchnorm import _own_comm, _own_comms

    comms = dp._bn_comms
    if dp.comm.size == 1:  # (PowerSGD on one rank: no round to end)
        return comms
    split = _own_comms.get(dp.comm)
    if split is None and _layers_on(dp.comm):
        split = _own_comm(dp.comm)  # collective
    return comms if split is None or split in comms else comms + [split]


def close_for_exchange(dp) -> None:
    """The step's exchange begins: end its rounds on every communicator of :func:`exchange_comms`."""
    calls = _split_calls(dp)  # (a step ends: whether it made rounds on the split, for the next one's aborts)
    dp._split_used_before, dp._split_calls = calls > dp._split_calls, calls
    end_rounds_all(exchange_comms(dp), CLOSE_FAILED if dp._notes else CLOSE)


def _split_calls(dp) -> int:
    """The rounds this rank called so far on the SyncBatchNorm split of ``dp``'s communicator (0: none made)."""
    from .sync_batchnorm import _own_comms

    split = _own_comms.get(dp.comm)
    return history(split).calls if split is not None else 0


def _in_step(dp) -> bool:
    """Whether layers outside ``dp``'s model (a head, a second model) make rounds on the split of ``dp``'s
    communicator in its step: this rank called one there since the step began, or in its step before (every rank
    runs the same SyncBatchNorm layers every step: a rank whose micro-batch fails before its first round there
    ends the rounds the others make). A layer left alive there (an earlier model in a reference cycle, a head
    used in no step) makes no round the others would wait in: ending it would wait for an answer no rank sends."""
    return dp._split_used_before or _split_calls(dp) > dp._split_calls


def _watched(dp) -> bool:
    """Whether DataParallel agrees on an error raised now (its forward, a watched backward, its exchange)."""
    return dp._in_forward or dp._failure_token is not None or dp._in_sync or backward_depth() > 0


def raise_in_step(h, exc, stage: str) -> None:
    """A round this rank called ended on every rank (closed by a rank's exchange, or the ranks' calls differ):
    raise ``exc``, through the step's exchange of the DataParallel over the round's communicator when no
    DataParallel would (a layer outside the model, in a synchronizing step)."""
    base = h.base() if h.base is not None else None
    ref = _wrappers.get(base) if base is not None else None
    dp = ref() if ref is not None else None
    if dp is None or _watched(dp) or not dp._require_sync:
        raise exc
    from .sync_failures import agree_on_failure

    agree_on_failure(dp, exc, stage)  # raises the agreed error


def _training_comms(dp) -> list:
    """The SyncBatchNorm communicators on which the others make rounds in this micro-batch: those of the model's
    layers training, and the split of ``dp``'s communicator when layers outside the model make rounds there in
    this step (:func:`_in_step`), never for a layer merely alive there."""
    from .sync_batchnorm import SyncBatchNorm, _own_comms

    comms = []
    for m in dp.module.modules():
        if isinstance(m, SyncBatchNorm) and m._use_batch_stats():
            comm = m._get_comm()
            if comm.size > 1 and comm not in comms:
                comms.append(comm)
    split = _own_comms.get(dp.comm)
    return comms if split is None or split in comms or not _in_step(dp) else comms + [split]


def watch_micro_batch(dp) -> None:
    """A backward of ``dp``'s model under ``no_sync()`` begins: if it raises, its partial gradients are marked
    (:func:`~.sync_micro_batch.mark_stale`) and the micro-batch ends: its rounds on every rank, or (no
    SyncBatchNorm training) its samples on this rank alone. A closure and one engine list entry a pass."""
    from distnn.autograd.engine import queue_error_callback

    ref = weakref.ref(dp)

    def failed(exc):
        owner = ref()
        if owner is None:
            return
        mark_stale(owner)  # (this backward was cut short: its partial gradients are accumulated)
        if not getattr(exc, "from_rounds", False):
            abort_micro_batch(owner, exc, "backward")  # raises the agreed error when it ends rounds
            drop_micro_batch(owner, True)  # (no round to end: the micro-batch is skipped on this rank alone)
        elif getattr(exc, "ahead", None) is False:  # (a rank kept this micro-batch's output: it is over everywhere)
            drop_micro_batch(owner, True)

    queue_error_callback(failed)


def abort_micro_batch(dp, exc: Exception, stage: str = "forward", text=None) -> None:
    """``dp``'s ``stage`` raised ``exc`` under ``no_sync()``: end the micro-batch's rounds on every rank and raise
    the error every rank raises (from ``exc``; ``text``: the note's text, when not "``stage`` raised ..."). Returns
    without a collective when no round is to be answered."""
    comms = _training_comms(dp)
    if not comms or any(history(c).closed for c in comms):  # (closed: the others' rounds of this step ended)
        return
    from .sync_failures import agree_on_failure, describe

    notes = []
    note(notes, raisable(type(exc)), text or f"{stage} raised {WHERE} under no_sync(): {describe(exc)}",
         NO_SYNC_ADVICE)
    everies = end_rounds_all(comms, ABORT)
    if any(e is not None and ((e[:, 0] == CLOSE) | (e[:, 0] == CLOSE_FAILED)).any() for e in everies):
        for c in comms:  # (a rank is in its step's exchange: join it; these rounds are ended already)
            history(c).closed = True
        agree_on_failure(dp, exc, stage)
    drop_micro_batch(dp, stage == "backward")
    try:
        raise_aborted(comms, notes)
    except Exception as agreed:
        raise agreed from exc


def _wrapper_of(comm):
    """The DataParallel whose step the rounds of SyncBatchNorm communicator ``comm`` belong to, or None: the one
    training layers there, or the last one built over the communicator it was split from; of the two, the one in
    its ``no_sync()`` block (an ABORT comes from a micro-batch: the other may be an earlier model still alive)."""
    h = history(comm)
    owner = h.owner() if h.owner is not None else None
    base = h.base() if h.base is not None else None
    ref = _wrappers.get(base) if base is not None else None
    last = ref() if ref is not None else None
    in_micro = [dp for dp in (owner, last) if dp is not None and not dp._require_sync]
    return in_micro[0] if in_micro else owner if owner is not None else last


def join_abort(comm, in_backward: bool) -> None:
    """A round on ``comm`` saw another rank ABORT its micro-batch: end this rank's rounds on the other
    communicators of the micro-batch too (the aborting rank ends them all), then raise the agreed error."""
    dp = _wrapper_of(comm)
    comms = [comm]
    if dp is not None:
        every = _training_comms(dp)
        if comm in every:
            end_rounds_all([c for c in every if c is not comm], ABORT)
            comms = every
        drop_micro_batch(dp, in_backward)
    raise_aborted(comms, [])


def raise_aborted(comms, notes) -> None:
    """Every rank's notes of an aborted micro-batch, gathered on each of ``comms`` (in that order, the same on
    every rank); raise the error every rank raises, from the first one's notes."""
    gathered = [comm.allgather_object(notes) for comm in comms]
    error = agreed_error(gathered[0], [], comms[0].rank)
    error.from_rounds = True
    raise error
