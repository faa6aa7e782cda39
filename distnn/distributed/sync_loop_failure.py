"""A step of :class:`~.data_parallel.DataParallel` that fails on some rank in the training loop's own code, before
its forward (loading or transforming the batch): :meth:`~.data_parallel.DataParallel.fail_step` ends it on every
rank, naming the cause.

No DataParallel call sees such a step on the failing rank, so nothing in the wrapper can notice it: the other ranks
run their forward and backward and wait in the step's gradient exchange (or in a SyncBatchNorm round of it). A rank
whose process then ends takes the job with it (MPI's abort, the exit watch), but the other ranks never say why; a
loop that catches the error and goes on to its next step pairs that step's exchange with the others' current one
(gradients of different steps averaged), and at the end a rank waits for a partner that has finished, until the
collective timeout.

The loop says so instead: ``dp.fail_step(exc)`` in its ``except`` makes the step's exchange at once, with zeros and
a note of ``exc`` (as a backward that raises does, :mod:`.sync_failures`), and every rank raises the same error,
"DataParallel: the training loop (before the step's forward) raised on rank 1: ValueError: ...": the others
from their backward (or ``finish_gradient_synchronization()``), this rank from ``fail_step``, its own exception as
the error's ``__cause__``. Every rank drops the step's gradients. A SyncBatchNorm round the others wait in is
answered by the exchange's closing round (:mod:`.sync_batchnorm_closing`), so they go through the exchange too.
The step is over on this rank: its loop goes on with the next step (or ends, as the others' error ends theirs).

Why an explicit call, and not the step's identity sent in every exchange (a number the loop sets each step): an
identity only tells, one exchange late, that the ranks are at different steps; it cannot name what went wrong on
the rank that fell out, and it costs every step's loop a call. ``fail_step`` costs the healthy step nothing and
names the cause at once. The Trainer calls it for an error of its data loading (its loader, the dataset, the
transform) and of its ``train_step`` before the exchange (:func:`step_failed`), so a trainer job ends on every rank
with that error, not at the collective timeout.

Call it only before the step's synchronizing backward (after it, the step's exchange is made and the others have
gone on). With one rank nothing waits: ``exc`` is raised as it is.

A step of several micro-batches whose model trains SyncBatchNorm layers: the others wait in a round of a
``no_sync()`` micro-batch, which makes no exchange of its own. The exchange's closing round answers that round with
``CLOSE_FAILED``, and a rank that meets it there inside ``no_sync()`` joins this rank's exchange at once
(:func:`join_failed_step`: zeros, no note of its own), so every rank raises the same error from that micro-batch.
Their step is over too: the loop goes on with its next step, as on this rank (an ``except`` around the whole step,
as the Trainer's error leaves ``fit``). A loop that instead runs the step's remaining micro-batches on those ranks
would pair their SyncBatchNorm rounds with this rank's next step (they cannot tell how many of the step's
micro-batches are left): not supported.

:func:`step_failed` is the Trainer's use of it for an error anywhere in its ``train_step`` before the step's exchange
(a forward or loss raising on one rank only, the trainer's own code between micro-batches): the step ends on every
rank with "DataParallel: the training step (before its gradient exchange) raised on rank 1: ...". An error that
DataParallel already agrees on (a synchronizing forward or backward raising, a SyncBatchNorm round ended), one from a
collective, or one after the step's exchange (the optimizer's step: nobody waits for this rank there) keeps its
path. The healthy step pays a read of ``num_syncs`` and a ``try``.
"""
from __future__ import annotations

from .sync_failures import agree_on_failure

STAGE = "the training loop (before the step's forward)"
TRAIN_STEP_STAGE = "the training step (before its gradient exchange)"


def fail_step(dp, exc: BaseException, stage: str | None = None) -> None:
    """End ``dp``'s current step on every rank because this rank's loop raised ``exc`` before its forward, or
    (``stage``, the error's words for where) elsewhere before the step's exchange (see the module docstring). Raises
    the error every rank raises (from ``exc``)."""
    if not isinstance(exc, BaseException):
        raise TypeError(f"DataParallel.fail_step() takes the exception the step failed with, got "
                        f"{type(exc).__name__}")
    if dp.comm.size == 1 or not isinstance(exc, Exception):
        raise exc  # (nothing waits for this rank; a KeyboardInterrupt ends the process, and the job with it)
    dp._micro_forwards, dp._micro_last = [], 0  # (this step's micro-batches: the exchange drops what they did)
    dp._stale_grads = False  # (a micro-batch's partial gradients: dropped with the step's, no refusal of their own)
    agree_on_failure(dp, exc, stage or STAGE)


def step_failed(dp, exc: Exception, syncs: int) -> None:
    """A training step of ``dp`` raised ``exc`` on this rank (``syncs``: ``dp.num_syncs`` when the step began). When
    the step's exchange is still to come, the others wait for this rank there (or in a SyncBatchNorm round of the
    step): end the step on every rank with :func:`fail_step` (raises the agreed error). Returns, for the caller to
    raise ``exc``, when no rank waits for this one: the exchange was made (an error after it), the error is agreed
    on every rank already (DataParallel's own), or it came from a collective (which ends the job its own way)."""
    from .comm_base import CollectiveError

    if dp.comm.size == 1 or dp.num_syncs != syncs or dp._in_sync or hasattr(exc, "report") \
            or getattr(exc, "from_rounds", False) or isinstance(exc, CollectiveError):
        return
    fail_step(dp, exc, TRAIN_STEP_STAGE)


def join_failed_step(dp, exc: Exception, stage: str) -> None:
    """A SyncBatchNorm round of ``dp``'s ``no_sync()`` micro-batch (``stage``: its forward or backward) was closed by
    a rank whose step failed and went to its exchange (``exc``, :class:`~.sync_batchnorm_rounds.StepEndedElsewhere`:
    its ``fail_step``): this rank's step is over too, so it joins that exchange now, with zeros and no note of its
    own, and raises the error every rank raises (the failing rank's). Its loop goes on with the next step."""
    dp._micro_forwards, dp._micro_last = [], 0  # (the exchange drops this step's micro-batches, as fail_step's does)
    agree_on_failure(dp, exc, stage)
