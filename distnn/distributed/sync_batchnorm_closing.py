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
layers, and those of the wrapper communicator's split when the other ranks may wait there (:func:`_abort_split`:
a layer outside the model, a head, that ran in this micro-batch or the one before, or in the wrapper's first
micro-batch one that is in no other wrapper's model): a layer merely alive there (an earlier model in a reference
cycle) makes no round, and ending its rounds would wait for an answer no rank sends. The ABORT's header says
whether it ends the split too, so every rank ends the same communicators. A micro-batch that fails before a head's
place right after the loop stopped running that head (the micro-batch before ran it, a model without SyncBatchNorm
of its own): the ABORT meets the others' exchange, which the failing rank joins, and every rank raises its error
there; the rest of that rank's step then makes no exchange (:mod:`.sync_step_ended`).

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
_every_wrapper = weakref.WeakSet()       # every DataParallel alive (whose models' layers are no head of another)
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
    from .sync_batchnorm import _own_comms

    _wrappers[dp.comm] = weakref.ref(dp)
    _every_wrapper.add(dp)
    exchange_comms(dp)
    split = _own_comms.get(dp.comm)
    if split is not None:  # (the newest wrapper's steps make the rounds there: an earlier one's model is stale)
        history(split).owner = weakref.ref(dp)
    dp._split_mark, dp._split_prev = _split_forwards(dp), None  # (none of its micro-batches ran yet: _abort_split)


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
    end_rounds_all(exchange_comms(dp), CLOSE_FAILED if dp._notes else CLOSE)


def _split_forwards(dp) -> int:
    """The forward rounds this rank called so far on the SyncBatchNorm split of ``dp``'s communicator."""
    from .sync_batchnorm import _own_comms

    split = _own_comms.get(dp.comm)
    return history(split).forwards if split is not None else 0


def mark_micro_batch(dp) -> None:
    """A backward of ``dp``'s model begins (a micro-batch's, or the step's): whether its micro-batch ran a
    forward round on the split of ``dp``'s communicator (a head), for the next micro-batch's :func:`_abort_split`.
    Two lookups a backward."""
    forwards = _split_forwards(dp)
    dp._split_prev, dp._split_mark = forwards > dp._split_mark, forwards


def _abort_split(dp, model_comms) -> int:
    """Whether a micro-batch of ``dp`` that fails here ends the rounds of the split of ``dp``'s communicator, where
    layers outside the model (a head) make theirs: 2 when the others may wait there, 1 when ending them is only
    harmless, 0 when not. The others may wait there when this micro-batch ran a forward round there (its backward
    round follows), or when a head runs after the point that failed: predicted by the micro-batch before (every
    rank runs the same SyncBatchNorm layers, as a rule every micro-batch), or, before the wrapper's first
    backward, by a layer on that communicator that trains and is in no other wrapper's model (an earlier model's
    layers, alive in a reference cycle, make no round: ending them would wait for an answer no rank sends). With
    the model's own layers training, an existing split is ended anyway: the others certainly make a round on the
    model's communicators, join the ABORT there and end the split with it, so a head that the prediction missed
    is covered at no wait. Decided on the failing rank alone; the ABORT's header carries it."""
    if _split_forwards(dp) > dp._split_mark:
        return 2
    if dp._split_prev is not None:
        predicted = dp._split_prev
    else:
        inside = {id(m) for w in list(_every_wrapper) if w is not dp for m in w.module.modules()}
        predicted = any(m._use_batch_stats() and id(m) not in inside for m in _layers_on(dp.comm))
    return 2 if predicted else 1 if model_comms else 0


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
    if dp is not None and not dp._require_sync and getattr(exc, "agreed_elsewhere", False) and not dp._in_sync:
        from .sync_loop_failure import join_failed_step

        join_failed_step(dp, exc, stage)  # (a rank's failed step is in its exchange: join it; raises the agreed error)
    if dp is None or _watched(dp) or not dp._require_sync:
        raise exc
    from .sync_failures import agree_on_failure

    agree_on_failure(dp, exc, stage)  # raises the agreed error


def _training_comms(dp, with_split: bool, make: bool = False) -> list:
    """The SyncBatchNorm communicators whose rounds an ABORT of ``dp``'s micro-batch ends: those of the model's
    layers training, then (``with_split``) the split of ``dp``'s communicator if it exists, or (``make``) made now
    when a layer will use it (collective: the others make it at that layer's first forward, as in
    :func:`exchange_comms`)."""
    from .sync_batchnorm import SyncBatchNorm, _own_comm, _own_comms

    comms = []
    for m in dp.module.modules():
        if isinstance(m, SyncBatchNorm) and m._use_batch_stats():
            comm = m._get_comm()
            if comm.size > 1 and comm not in comms:
                comms.append(comm)
    if not with_split or dp.comm.size == 1:
        return comms
    split = _own_comms.get(dp.comm)
    if split is None and make and _layers_on(dp.comm):
        split = _own_comm(dp.comm)  # collective
    return comms if split is None or split in comms else comms + [split]


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
    if dp._ended_step is not None:  # (this step ended on every rank already: no round of it is left to end)
        return
    model_comms = _training_comms(dp, False)
    split = _abort_split(dp, model_comms)
    comms = _training_comms(dp, True, split == 2) if split else model_comms
    if not comms or any(history(c).closed for c in comms):  # (closed: the others' rounds of this step ended)
        return
    from .sync_failures import describe
    from .sync_step_ended import join_exchange

    notes = []
    note(notes, raisable(type(exc)), text or f"{stage} raised {WHERE} under no_sync(): {describe(exc)}",
         NO_SYNC_ADVICE)
    everies = end_rounds_all(comms, ABORT, float(split > 0))
    if any(e is not None and ((e[:, 0] == CLOSE) | (e[:, 0] == CLOSE_FAILED)).any() for e in everies):
        for c in comms:  # (a rank is in its step's exchange: join it; these rounds are ended already)
            history(c).closed = True
        join_exchange(dp, exc, stage)  # (this rank's step then ends there: .sync_step_ended)
    drop_micro_batch(dp, stage == "backward")
    try:
        raise_aborted(comms, notes)
    except Exception as agreed:
        raise agreed from exc


def _wrapper_of(comm):
    """The DataParallel whose step the rounds of SyncBatchNorm communicator ``comm`` belong to, or None: the newest
    one training layers there or built over the communicator it was split from (:func:`register_wrapper`), or the
    last one built over that communicator; of the two, the one in its ``no_sync()`` block (an ABORT comes from a
    micro-batch: models trained in turn, built first, leave the newest wrapper idle)."""
    h = history(comm)
    owner = h.owner() if h.owner is not None else None
    base = h.base() if h.base is not None else None
    ref = _wrappers.get(base) if base is not None else None
    last = ref() if ref is not None else None
    in_micro = [dp for dp in (owner, last) if dp is not None and not dp._require_sync]
    return in_micro[0] if in_micro else owner if owner is not None else last


def split_made(split, base) -> None:
    """The SyncBatchNorm split of ``base`` is made (a layer's first forward): the DataParallel over ``base``, if
    any, makes its rounds (a head's rounds belong to its step)."""
    ref = _wrappers.get(base)
    if ref is not None:
        history(split).owner = ref


def join_abort(comm, in_backward: bool, every) -> None:
    """A round on ``comm`` saw another rank ABORT its micro-batch (``every``: the round's headers, which say
    whether the ABORT ends the split of the wrapper's communicator too): end this rank's rounds on the other
    communicators of the micro-batch too (the aborting rank ends them all), then raise the agreed error."""
    dp = _wrapper_of(comm)
    comms = [comm]
    if dp is not None:
        every = _training_comms(dp, bool(every[every[:, 0] == ABORT, 1].max()))
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
