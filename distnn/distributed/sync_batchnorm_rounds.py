"""SyncBatchNorm's collectives as rounds that a rank leaving a :class:`~.data_parallel.DataParallel` step (or a
micro-batch of it) can answer, and whose mismatches every rank reports alike, under MPI too.

SyncBatchNorm allgathers statistics in its forward and allreduces two sums in its backward, on a communicator
of its own (:func:`.sync_batchnorm._own_comm`). When a rank's step fails before one of them (a layer ahead of
it raises, the loss raises, a ``KeyboardInterrupt`` is caught), DataParallel sends that rank through the step's
bucket exchange (:mod:`.sync_abandoned`) while the other ranks wait in SyncBatchNorm's collective: a wait
until the collective timeout under mpiexec, a pairing of different steps' collectives at worst.

So each SyncBatchNorm collective is a round: a header of four numbers per rank (what this rank does:
``CALL`` a layer's collective, ``CLOSE`` its step, ``CLOSE_FAILED`` its step after a failure, ``ABORT`` a
micro-batch whose forward raised under ``no_sync()``; the collective's kind; its length; 1 for a forward while
the rank's DataParallel holds an output no backward reached yet), allgathered before or alongside the payload.
A forward round of such ranks that meets the others' backward raises :class:`ForwardRanAhead` on every rank: the
output was kept referenced past its failure (other mismatches raise "the ranks' collectives do not match").

Every synchronizing exchange of DataParallel begins with a closing round on the SyncBatchNorm communicators it
uses (:mod:`.sync_batchnorm_closing`). A rank that closes while others call learns from the header what they
wait in and answers it with zeros; the calling ranks see the close in the header and raise:
:class:`StepEndedElsewhere` when the closing rank failed (DataParallel then adds no note of its own, and every
rank raises the failing rank's error), a RuntimeError naming the mismatch when it did not.
Either way their SyncBatchNorm part of the step is over (``closed``): their own exchange makes no closing
round, and the next step's rounds pair with the next step's.

Payloads of different kinds or lengths must never meet in one MPI collective (undefined under MPI). A payload
is started alongside its header only when the round is the one every rank predicts: the kind and length that
followed the same place (the kind of the round before and how many rounds of that kind ran in a row) the last
time, in the history every rank shares (each header shows every rank's call). Predicted rounds (every round
of a model's steady state) pay no round trip more; others (a step's first rounds, a changed model) wait for
the header first. A rank whose call was not predicted, when some rank's was, answers the predicted payload
(which every predicting rank started alike) with zeros before every rank raises the mismatch: so differing
kinds or lengths end on every rank with the same error, under MPI as in simulate.
"""
from __future__ import annotations

import weakref

import numpy as np

CALL, CLOSE, CLOSE_FAILED, ABORT = 0.0, 1.0, 2.0, 3.0
FORWARD, BACKWARD = 1.0, 2.0
START = 0.0  # (the history's start: nothing called since the last close)
_KINDS = {FORWARD: "forward (its statistics' allgather)", BACKWARD: "backward (its gradient sums' allreduce)"}


class StepEndedElsewhere(RuntimeError):
    """Raised in a SyncBatchNorm collective whose round another rank answered after its DataParallel step
    failed: this rank goes through the step's exchange too, where every rank raises that rank's error."""

    agreed_elsewhere = True  # (DataParallel notes nothing for it: the failing rank's note names the failure)


class _History:
    """What every rank of one SyncBatchNorm communicator knows alike: the rounds called since the last close,
    what followed each place before (the prediction), whether a close already ended this rank's step, and the
    communicator it was split from (whose DataParallel ends a step, :mod:`.sync_batchnorm_closing`)."""

    __slots__ = ("closed", "place", "followed", "base", "owner", "forwards", "__weakref__")

    def __init__(self):
        # (owner: a weak reference to the DataParallel whose model trains layers on this communicator, if any;
        # forwards: forward rounds this rank called on it, so a DataParallel tells which of its micro-batches ran
        # a layer here: .sync_batchnorm_closing._abort_split)
        self.closed, self.place, self.followed, self.base, self.owner = False, (START, 0), {}, None, None
        self.forwards = 0

    def called(self, kind, size):
        self.followed[self.place] = (kind, size)
        self.place = (kind, self.place[1] + 1 if self.place[0] == kind else 1)


_histories = weakref.WeakKeyDictionary()


def history(comm) -> _History:
    """The round history of SyncBatchNorm's communicator ``comm`` (made at its first use)."""
    h = _histories.get(comm)
    if h is None:
        h = _histories[comm] = _History()
    return h


def forward_exchange(comm, local):
    """Every rank's statistics ``local`` (1-D float64), stacked in rank order: SyncBatchNorm's forward round."""
    return _round(comm, FORWARD, local, comm.iallgather)


def backward_exchange(comm, sums):
    """The sum over ranks of ``sums`` (1-D float64, in place): SyncBatchNorm's backward round."""
    return _round(comm, BACKWARD, sums, comm.iallreduce)


def _round(comm, kind, payload, start):
    h = history(comm)
    h.closed = False  # (a call: this step's rounds go on, or the next step's have begun)
    if kind == FORWARD:
        h.forwards += 1
    size = float(payload.size)
    predicted = h.followed.get(h.place)
    ahead = 1.0 if kind == FORWARD and _holds_unreached(h) else 0.0  # (named if it meets a backward: ForwardRanAhead)
    header = comm.iallgather(np.array([CALL, kind, size, ahead]))  # (first: the order of a rank that waits for it)
    started = None
    if predicted == (kind, size):
        started = start(payload)
        comm.wait_all([header, started])
    every = header.wait()
    if not every[:, 0].any() and (every[:, 1:3] == every[0, 1:3]).all():
        result = (started if started is not None else start(payload)).wait()
        h.called(kind, size)
        return result
    _answer_predicted(comm, h, every, predicted, started is not None)
    h.place = (START, 0)
    try:
        _raise_ended(comm, h, every, kind)
    except Exception as e:
        e.from_rounds = True  # (raised alike on every rank: DataParallel's forward does not abort for it)
        raise


def _raise_ended(comm, h, every, kind):
    status = every[:, 0]
    if (status == ABORT).any() and not ((status == CLOSE) | (status == CLOSE_FAILED)).any():
        from .sync_batchnorm_closing import join_abort

        join_abort(comm, kind == BACKWARD, every)
    from .sync_batchnorm_closing import raise_in_step

    stage = "forward" if kind == FORWARD else "backward"
    if status.any():
        h.closed = True
        raise_in_step(h, _closed_error(every, kind), stage)
    if set(every[:, 1]) == {FORWARD, BACKWARD} and every[every[:, 1] == FORWARD, 3].all():
        raise_in_step(h, _ran_ahead_error(every, kind), stage)
    raise_in_step(h, RuntimeError("SyncBatchNorm: the ranks' collectives do not match: " + "; ".join(
        f"rank {r}: {_KINDS.get(k, k)} of {int(n)} numbers" for r, (_, k, n, _) in enumerate(every))
        + ". Every rank must run the same SyncBatchNorm layers, in the same order, every step"), stage)


def _answer_predicted(comm, h, every, predicted, mine_started) -> None:
    """Complete the predicted payload some ranks started alongside their header (zeros from this rank, which
    did not start it): it is one collective, the same on every rank that started it."""
    if mine_started or predicted is None:
        return
    kind, size = predicted
    if any(s == CALL and (k, n) == predicted for s, k, n, _ in every):
        zeros = np.zeros(int(size))
        comm.allgather(zeros) if kind == FORWARD else comm.allreduce(zeros, "sum")


def _closed_error(every, kind) -> Exception:
    closing = [r for r, s in enumerate(every[:, 0]) if s != CALL]
    failed = [r for r, s in enumerate(every[:, 0]) if s in (CLOSE_FAILED, ABORT)]
    where = f"rank{'s' if len(closing) > 1 else ''} {', '.join(map(str, closing))}"
    if failed:
        return StepEndedElsewhere(f"SyncBatchNorm: {where} abandoned the DataParallel step (it failed before "
                                  f"this layer's {_KINDS[kind]}) and went on to the gradient exchange")
    return RuntimeError(f"SyncBatchNorm: {where} began DataParallel's gradient exchange while this rank was in a "
                        f"SyncBatchNorm {_KINDS[kind]}: the ranks ran SyncBatchNorm layers a different number of "
                        "times in this step (a data-dependent branch?); every rank must run the same SyncBatchNorm "
                        "layers every step")


class ForwardRanAhead(RuntimeError):
    """Some ranks ran a SyncBatchNorm forward while the others ran a backward: the forward ranks' last output never
    reached the backward the others run (its loss raised, caught while the loop still held the output). Raised on
    every rank; the forward ranks' DataParallel forgets that output (its micro-batch is over)."""

    def __init__(self, message, ahead: bool):
        super().__init__(message)
        self.ahead = ahead  # (this rank ran the forward)


def _holds_unreached(h) -> bool:
    """Whether the DataParallel training on this communicator holds a forward's output that no backward reached
    yet (a forward round then meeting the others' backward: that output was kept past its failure)."""
    dp = h.owner() if h.owner is not None else None
    return dp is not None and bool(dp._micro_forwards or dp._forwards)


def _ran_ahead_error(every, kind) -> Exception:
    ahead = [r for r, k in enumerate(every[:, 1]) if k == FORWARD]
    behind = [r for r, k in enumerate(every[:, 1]) if k == BACKWARD]
    where = f"rank{'s' if len(ahead) > 1 else ''} {', '.join(map(str, ahead))}"
    others = f"rank{'s' if len(behind) > 1 else ''} {', '.join(map(str, behind))}"
    return ForwardRanAhead(
        f"SyncBatchNorm: {where} began a forward while {others} ran a backward: the output of a forward on {where} "
        "never reached the backward the others run (an error between the forward and the backward, the loss?, "
        "caught while the output was still referenced: kept in a variable or list, or by the exception's "
        "traceback). Let go of a failed forward's output before the next forward (out = None), so DataParallel "
        "ends that step or micro-batch on every rank alike", kind == FORWARD)


def end_rounds(comm, status: float, detail: float = 0.0):
    """This rank ends its rounds on ``comm`` (``status``: CLOSE, CLOSE_FAILED or ABORT; ``detail``, the header's
    second number: for an ABORT, which communicators it ends, :func:`~.sync_batchnorm_closing.abort_micro_batch`),
    answering with zeros a payload other ranks started. Returns every rank's header, or None when a close already
    ended them here."""
    h = history(comm)
    if h.closed:  # (a round this rank called was closed by another rank: the step's rounds are over)
        h.closed = False
        return None
    predicted = h.followed.get(h.place)
    every = comm.allgather(np.array([status, detail, 0.0, 0.0]))
    _answer_predicted(comm, h, every, predicted, False)
    h.place = (START, 0)
    return every


def end_rounds_all(comms, status: float, detail: float = 0.0) -> list:
    """:func:`end_rounds` on several communicators at once: their headers are started together and each is
    answered as it completes, so a rank waiting in a round of any one of them (in whichever order the others
    reach them) is answered. Returns every rank's header per communicator (None where a close ended it)."""
    if len(comms) <= 1:
        return [end_rounds(c, status, detail) for c in comms]
    import time

    from .shared_memory import _busy, progress_all
    from .watchdog import collective_timeout

    result, pending = [None] * len(comms), []
    for i, comm in enumerate(comms):
        h = history(comm)
        if h.closed:
            h.closed = False
            continue
        pending.append((i, comm, h, h.followed.get(h.place), comm.iallgather(np.array([status, detail, 0.0, 0.0]))))
    limit = collective_timeout()
    deadline = None if limit is None else time.monotonic() + limit
    while pending:
        done = [p for p in pending if len(pending) == 1 or p[4].test()]  # (the last one: its own timed wait)
        for i, comm, h, predicted, header in done:
            every = header.wait()
            _answer_predicted(comm, h, every, predicted, False)
            h.place = (START, 0)
            result[i] = every
        pending = [p for p in pending if result[p[0]] is None]
        if not done:
            if _busy:  # (a peer may wait for this rank's part of a shared-memory round, as MPI waits do)
                progress_all()
            if deadline is not None and time.monotonic() > deadline:
                raise RuntimeError(f"SyncBatchNorm: ending the rounds of {len(pending)} communicators waited more "
                                   f"than {limit} s (DISTNN_COLLECTIVE_TIMEOUT) for the other ranks")
            time.sleep(0.0002)
    return result


def model_comms(module) -> list:
    """The SyncBatchNorm communicators of ``module``'s layers with more than one rank, in module order, each
    once; made now (collective: every rank builds the same model), so that a rank whose first step fails before
    its first SyncBatchNorm forward finds them made as the others do."""
    from .sync_batchnorm import SyncBatchNorm

    comms = []
    for m in module.modules():
        if isinstance(m, SyncBatchNorm):
            comm = m._get_comm()
            if comm.size > 1 and comm not in comms:
                comms.append(comm)
    return comms
