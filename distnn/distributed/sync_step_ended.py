"""A step of :class:`~.data_parallel.DataParallel` that ended on some rank while that rank was still inside it: its
exchange was made early, so the rest of its step makes none.

A ``no_sync()`` micro-batch fails on a rank right after the loop stopped running a SyncBatchNorm head (a layer
outside the model, on the wrapper's communicator), in a model with no SyncBatchNorm of its own. The rank cannot
tell that the head will not run, so it ABORTs the head's rounds (the others might wait there,
:mod:`.sync_batchnorm_closing`); the others, who do not run it, meet the ABORT in their step's exchange. Their
buckets are in flight there, so the failing rank has no way out but to join that exchange (with zeros and its
note), and every rank raises its error there (:func:`join_exchange`).

But the rank's step is not over in its loop: its remaining micro-batches still come, and the next
synchronizing backward (or ``finish_gradient_synchronization()``) is the step's end. It used to make one exchange
more, pairing with the others' next step: a step behind them from then on. Now the step's end on that rank makes no
exchange (:func:`end_pass`): the backward accumulates locally, then the step's gradients are dropped (None, as on
the others), what the step counted is cleared, and the error the others raised at that point is raised there too,
so every rank ends the step at its last micro-batch with the same error. In between, a micro-batch failing again
raises its own error on its rank alone (the step is over everywhere: nothing to agree on), and a forward of the
step's last micro-batch that raises ends the step on its rank with it (:func:`agreed_in_ended_step`).

Whether the loop goes on with the step's remaining micro-batches (as when every rank raises a micro-batch's error in
the micro-batch itself) or skips the rest of the step (an ``except`` around the whole step) is told by counting:
the refused exchange gathers, with the notes, how many ``no_sync()`` backwards each rank's step ran (the others ran
all of theirs), and the failing rank counts its own since. Its next synchronizing backward comes after fewer: the
ended step's end, as above; after as many: the next step's, an ordinary exchange (:func:`still_ended`). (Steps with
different numbers of micro-batches can fool the count.) The healthy step pays one attribute test and one counter
per backward pass.
"""
from __future__ import annotations

from distnn.autograd.engine import queue_callback, queue_error_callback


class _EndedStep:
    """What the rank's early exchange raised: raised again, new, where the rank's step ends."""

    __slots__ = ("error_type", "message", "noted_ranks", "micro_passes")

    def __init__(self, agreed: Exception):
        self.error_type, self.message = type(agreed), str(agreed)
        self.noted_ranks = list(getattr(agreed, "noted_ranks", ()))
        self.micro_passes = getattr(agreed, "micro_passes", 0)  # (the most no_sync() backwards a rank's step ran)

    def error(self, rank: int) -> Exception:
        exc = self.error_type(self.message)
        exc.report = rank == 0
        exc.noted_ranks = self.noted_ranks
        return exc


def join_exchange(dp, exc: Exception, stage: str) -> None:
    """``dp``'s micro-batch failed (``exc``, in ``stage``) and its ABORT met the others' step exchange: join it
    (every rank raises the agreed error, raised here from ``exc``) and note that this rank's step is over."""
    from .sync_failures import agree_on_failure

    try:
        agree_on_failure(dp, exc, stage)
    except Exception as agreed:
        if hasattr(agreed, "report"):  # (the agreed error: an exchange that itself failed ends nothing)
            dp._ended_step = _EndedStep(agreed)
        raise


def still_ended(dp) -> bool:
    """Whether ``dp``'s step that ended early is still the loop's step here: fewer ``no_sync()`` backwards since its
    exchange than the step has micro-batches (a loop that skipped the rest of it has begun its next step, whose
    micro-batches make as many: that step is an ordinary one, and the ended one is forgotten)."""
    ended = dp._ended_step
    if ended is None:
        return False
    if dp._micro_passes < ended.micro_passes:
        return True
    dp._ended_step = None
    return False


def end_pass(dp) -> None:
    """A synchronizing backward of ``dp``'s model begins while its step is already over here: the pass runs as a
    ``no_sync()`` one (``_require_sync`` off for it: the hot path's own test), and when it ends the step ends as on
    the others (:func:`close`), the agreed error raised."""
    from .sync_batchnorm_closing import mark_micro_batch

    dp._require_sync = False
    mark_micro_batch(dp)  # (no head ran: the next micro-batch's ABORT predicts from this one)
    queue_error_callback(lambda exc: close(dp))  # (the pass's own error leaves backward(); the step is over)
    queue_callback(lambda: close(dp, raising=True))


def close(dp, raising: bool = False) -> None:
    """End the step that ended early on this rank: drop what it accumulated and counted since (the others' exchange
    dropped theirs), and (``raising``) raise the agreed error again."""
    ended, dp._ended_step = dp._ended_step, None
    if ended is None:
        return
    dp._require_sync = True
    for p in dp._params:
        p.grad = None
    dp.step_flags[...] = 0  # (set for this step, which the early exchange carried already)
    dp._forwards, dp._resets, dp._micro_forwards, dp._abandoned = [], {}, [], []
    dp._forward_samples = dp._explicit_samples = None
    dp._notes, dp._held_notes, dp._stale_grads = [], [], False
    dp._micro_last = dp._micro_passes = 0  # (the others' exchange counted theirs from 0 again)
    dp._reset_latched = False
    if raising:
        raise ended.error(dp.comm.rank)


def agreed_in_ended_step(dp, exc: Exception):
    """``exc`` would be agreed on in the step's exchange, but this rank's step ended early: no exchange follows.
    Ends the step here and returns the error to raise (from ``exc``): the agreed one, the others' at this step."""
    ended = dp._ended_step
    close(dp)
    error = ended.error(dp.comm.rank)
    error.micro_passes = ended.micro_passes
    return error
