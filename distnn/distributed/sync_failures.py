"""A synchronizing backward of :class:`~.data_parallel.DataParallel` that raises on some ranks: every rank
raises the same error.

User code runs inside backward: gradient hooks (``register_hook``), a custom ``Function``'s backward, module
backward hooks. When it raises on one rank only, that rank's backward unwinds while the other ranks wait in
the step's bucket allreduces for it; a caller that catches the error (a trainer's callback, a retry loop)
would leave them waiting until the collective timeout, with the step's buckets half started on the raising
rank.

So the backward-begin hook of every synchronizing pass asks the engine to be told when the pass raises
(:func:`distnn.autograd.engine.queue_error_callback`; the engine knows nothing of DataParallel). Then, with no
more user code run (the pass's other callbacks are dropped), the raising rank notes the exception as a
refusal (:mod:`.sync_refusals`: its type and message), drops its gradients, and goes through the step's
collectives as usual: the buckets it has not sent go out as zeros, the last one with the step meta, which
counts this rank among the refusing ones. Every rank then gathers the notes and raises the same error:
"DataParallel: backward raised on rank 1: FloatingPointError: ...", naming the ranks (ranks with the same
type and message are named together). Its type is the lowest raising rank's exception's type when that is a
built-in one (so ``except FloatingPointError:`` around ``backward()`` skips a bad batch alike on every
rank), else RuntimeError (a user's class may not be importable, or constructible from a message, on every
rank). On a raising rank the error's ``__cause__`` is the exception it raised itself, so its traceback is
kept. Every rank's gradients of the step are None (accumulated ones
too, as for any refused step), the synchronization state is reset, and the next step trains as if the failed
one never ran (save the global sample count it learnt, and PowerSGD's error feedback, which it advances).

The watch covers a pass from its backward-begin hooks to the end of its synchronization: a failure in
another begin hook, in any gradient computation or hook, or in a ``queue_callback`` callback that runs before
the synchronization's. An error before backward begins (the forward, the loss, the engine's own check of
in-place changes), which no rank's backward sees, and a ``KeyboardInterrupt`` are :mod:`.sync_abandoned`'s.
SyncBatchNorm's backward collective, which the other ranks may wait in, is answered by the raising rank's
exchange (:mod:`.sync_batchnorm_rounds`). Under :meth:`~.data_parallel.DataParallel.no_sync` nothing is synchronized, so the error is raised as it is, on its
rank alone (with SyncBatchNorm training in the model, every rank raises it: :mod:`.sync_batchnorm_closing`); the
partial gradients it leaves make the next synchronizing step refuse on every rank unless ``zero_grad()`` drops
them first (:mod:`.sync_micro_batch`). Inside :meth:`~.data_parallel.DataParallel.join`, a rank that has joined raises the agreed
error from its shadow synchronization, which ends its join: the raising ranks should let it leave the join
context too (an error inside a join ends it, :mod:`.join`). A normal step pays a closure and one engine list entry, and no collective.
"""
from __future__ import annotations

import weakref

from distnn.autograd.engine import queue_error_callback

from .sync_micro_batch import release_held
from .sync_refusals import WHERE, note, raisable

_LONGEST_MESSAGE = 2000  # characters of an exception's message that every rank is sent
ADVICE = ("Every rank went through the step's gradient synchronization and dropped the step's gradients; on a "
          "rank named here, the exception it raised is this error's __cause__.")


def watch_backward(dp) -> None:
    """Make the synchronizing pass now running agree on its failure (see the module docstring).

    The token marks the synchronization this watch belongs to: finishing it (``dp._complete_sync``)
    clears it, so a pass that raises only after its synchronization ended (or the agreed error itself,
    raised from the synchronization's own callback) is not agreed on a second time.
    """
    token = dp._failure_token = object()
    ref = weakref.ref(dp)

    def failed(exc):
        owner = ref()
        if owner is not None and owner._failure_token is token:
            agree_on_failure(owner, exc)

    queue_error_callback(failed)


def describe(exc: BaseException) -> str:
    """"Type: message" of an exception (its message cut short), or the type alone when it has no message."""
    message = str(exc)
    if len(message) > _LONGEST_MESSAGE:
        message = message[:_LONGEST_MESSAGE] + "..."
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def agree_on_failure(dp, exc: Exception, stage: str = "backward") -> None:
    """This rank's synchronizing backward (or the forward before it, ``stage``, :mod:`.sync_abandoned`) raised
    ``exc``: finish the step's synchronization with zeros and a note of ``exc``, and raise the error every
    rank raises (from ``exc``)."""
    dp._failure_token = None
    if dp._ended_step is not None:  # (this rank's step ended early: no exchange is left to agree in, .sync_step_ended)
        from .sync_step_ended import agreed_in_ended_step, still_ended

        if still_ended(dp):
            raise agreed_in_ended_step(dp, exc) from exc
    if not getattr(exc, "agreed_elsewhere", False):  # (another rank's failure, which its own note names)
        note(dp._notes, raisable(type(exc)), f"{stage} raised {WHERE}: {describe(exc)}", ADVICE)
    release_held(dp)  # (a failed micro-batch's leftovers are this exchange's, not the next step's: .sync_micro_batch)
    for p in dp._params:  # (what this rank's backward left is no gradient: zeros go out in its place)
        p.grad = None
    if not dp._in_sync:  # (the pass raised before its first gradient was ready)
        dp._enter_sync()
    try:
        dp._complete_sync()
    except Exception as agreed:  # (it raises: this rank's note makes the step meta's refusal count non-zero)
        raise agreed from exc
    raise RuntimeError("DataParallel: internal error: a synchronization with a refusal did not raise") from exc
