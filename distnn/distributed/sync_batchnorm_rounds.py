"""SyncBatchNorm's collectives as rounds that a rank leaving a :class:`~.data_parallel.DataParallel` step can
answer, so no rank waits in one for a rank that has gone on to the step's gradient exchange.

SyncBatchNorm allgathers statistics in its forward and allreduces two sums in its backward, on a communicator
of its own (:func:`.sync_batchnorm._own_comm`). When a rank's step fails before one of them (a layer ahead of
it raises, the loss raises, a ``KeyboardInterrupt`` is caught), DataParallel sends that rank through the step's
bucket exchange (:mod:`.sync_abandoned`) while the other ranks wait in SyncBatchNorm's collective: a wait
until the collective timeout under mpiexec, a pairing of different steps' collectives at worst.

So each SyncBatchNorm collective is a round of two: a header of three numbers per rank (what this rank
does: ``CALL`` a layer's collective, ``CLOSE`` its step, ``CLOSE_FAILED`` its step after a failure; the
collective's kind; its length), allgathered alongside the payload (both started, then waited for together:
a normal call pays one small nonblocking collective more, no extra round trip). Every synchronizing exchange
of DataParallel begins with a closing round on the SyncBatchNorm communicators of its model
(:func:`close_step`, one header allgather; the model's splits are made when the wrapper is built, so a
failure before the first SyncBatchNorm forward finds them made). A rank that closes while others call learns
from the header what they wait in and answers it with zeros; the calling ranks see the close in the header
and raise: :class:`StepEndedElsewhere` when the closing rank failed (DataParallel then adds no note of its
own, and every rank raises the failing rank's error, "DataParallel: forward raised on rank 1: ..."), a
RuntimeError naming the mismatch when it did not (the ranks ran SyncBatchNorm a different number of times).
Either way their SyncBatchNorm part of the step is over (``_closed``): their own exchange makes no closing
round, and the next step's rounds pair with the next step's.
"""
from __future__ import annotations

import weakref

import numpy as np

CALL, CLOSE, CLOSE_FAILED = 0.0, 1.0, 2.0
FORWARD, BACKWARD = 1.0, 2.0
_KINDS = {FORWARD: "forward (its statistics' allgather)", BACKWARD: "backward (its gradient sums' allreduce)"}

# communicators whose current step a close already ended on this rank (in a round this rank called)
_closed = weakref.WeakSet()


class StepEndedElsewhere(RuntimeError):
    """Raised in a SyncBatchNorm collective whose round another rank answered after its DataParallel step
    failed: this rank goes through the step's exchange too, where every rank raises that rank's error."""

    agreed_elsewhere = True  # (DataParallel notes nothing for it: the failing rank's note names the failure)


def forward_exchange(comm, local):
    """Every rank's statistics ``local`` (1-D float64), stacked in rank order: SyncBatchNorm's forward round."""
    return _round(comm, FORWARD, local, comm.iallgather)


def backward_exchange(comm, sums):
    """The sum over ranks of ``sums`` (1-D float64, in place): SyncBatchNorm's backward round."""
    return _round(comm, BACKWARD, sums, comm.iallreduce)


def _round(comm, kind, payload, start):
    _closed.discard(comm)  # (a call: this step's rounds go on, or the next step's have begun)
    header = comm.iallgather(np.array([CALL, kind, float(payload.size)]))  # (first: a closing rank's order)
    started = start(payload)
    comm.wait_all([header, started])
    every, result = header.wait(), started.wait()
    status = every[:, 0]
    if not status.any():
        if (every[:, 1:] != every[0, 1:]).any():  # (every rank sees the same header: every rank raises)
            raise RuntimeError("SyncBatchNorm: the ranks' collectives do not match: " + "; ".join(
                f"rank {r}: {_KINDS.get(k, k)} of {int(n)} numbers" for r, (_, k, n) in enumerate(every))
                + ". Every rank must run the same SyncBatchNorm layers, in the same order, every step")
        return result
    _closed.add(comm)
    closing = [r for r, s in enumerate(status) if s != CALL]
    failed = [r for r, s in enumerate(status) if s == CLOSE_FAILED]
    where = f"rank{'s' if len(closing) > 1 else ''} {', '.join(map(str, closing))}"
    if failed:
        raise StepEndedElsewhere(f"SyncBatchNorm: {where} abandoned the DataParallel step (it failed before this "
                                 f"layer's {_KINDS[kind]}) and went on to the gradient exchange")
    raise RuntimeError(f"SyncBatchNorm: {where} began DataParallel's gradient exchange while this rank was in "
                       f"a SyncBatchNorm {_KINDS[kind]}: the ranks ran SyncBatchNorm layers a different number "
                       "of times in this step (a data-dependent branch?); every rank must run the same "
                       "SyncBatchNorm layers every step")


def close_step(comm, failed: bool) -> None:
    """This rank's DataParallel step goes on to its gradient exchange: end its SyncBatchNorm rounds on
    ``comm`` (``failed``: the step failed on this rank). Answers, with zeros, a round other ranks still call."""
    if comm in _closed:  # (a round this rank called was closed by another rank: the step's rounds are over)
        _closed.discard(comm)
        return
    every = comm.allgather(np.array([CLOSE_FAILED if failed else CLOSE, 0.0, 0.0]))
    calling = every[every[:, 0] == CALL]
    if len(calling):
        kind, size = calling[0, 1], int(calling[0, 2])
        zeros = np.zeros(size)
        comm.allgather(zeros) if kind == FORWARD else comm.allreduce(zeros, "sum")


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
