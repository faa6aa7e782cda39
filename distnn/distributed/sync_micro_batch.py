"""A micro-batch of :class:`~.data_parallel.DataParallel` under ``no_sync()`` (gradient accumulation) that fails on
one rank between its forward and its backward (the loss raises), and gradients that a failure leaves behind.

Under ``no_sync()`` no gradient exchange follows a micro-batch, so a rank that skips one (its loss raised, the loop
caught it) only loses that micro-batch's gradient, unless the model trains SyncBatchNorm layers: then the other
ranks wait in the micro-batch's backward rounds while the failing rank's next forward makes a forward round
(which every rank used to report as "collectives do not match", naming nothing that raised). So:

* a forward with gradients enabled under ``no_sync()`` notes its output (weakly, as a synchronizing one does,
  :mod:`.sync_abandoned`) and the samples it counted; a backward of the model begins: those forwards are reached;
* an ``Exception`` leaving the ``with dp.no_sync():`` block while such a forward is not reached yet ends the
  micro-batch there: with SyncBatchNorm training, its rounds are ABORTed on every communicator of the model
  (:func:`~.sync_batchnorm_closing.abort_micro_batch`) and every rank raises "DataParallel: the code between a
  forward and its backward (the loss?) raised on rank 1 under no_sync(): ValueError: ...", the rank's own
  exception as ``__cause__`` there;
* caught inside the block, the failure is seen at the rank's next DataParallel call (its next forward,
  ``no_sync()``, a backward, ``finish_gradient_synchronization()``) once the output is gone: the rounds are
  ABORTed the same way, the other ranks raise "the output of a forward on rank 1 under no_sync() never reached a
  backward ...", and the failing rank, which raised its own error, gets it as a warning and goes on with the
  micro-batch it has begun (as a rank that abandoned a synchronizing step, :mod:`.sync_abandoned`);
* either way the micro-batch's samples leave the step's count on the failing rank (without SyncBatchNorm
  nothing else happens: the micro-batch is skipped on that rank, as a forward raising there is).

An output the loop keeps referenced until after its next forward (with SyncBatchNorm training): that forward's
round meets the others' backward round, whose header says this rank holds an output no backward reached, so the
others raise :class:`~.sync_batchnorm_rounds.ForwardRanAhead` there, naming it, and drop the micro-batch's
samples; this rank gets it as a warning, forgets the kept output, and runs its forward again, in step, drawing
the random numbers of its first run again (:func:`~.sync_abandoned.watched_forward`; a kept synchronizing step's
output ends in that step's exchange). Not
covered: an error before the forward in the loop's own code (no DataParallel call saw the micro-batch) unless the
loop ends the step with :meth:`~.data_parallel.DataParallel.fail_step` (:mod:`.sync_loop_failure`).

Gradients left by a failure (:func:`hold_if_stale`): a rank whose backward of a micro-batch was cut short holds
that micro-batch's partial gradients (some parameters got its gradient, some not): the rank whose backward raised
(a gradient hook, a custom Function's backward; with or without SyncBatchNorm: every backward of the model under
``no_sync()`` is watched, :func:`~.sync_batchnorm_closing.watch_micro_batch`) and, with SyncBatchNorm, a rank
waiting in a backward round that the abort ended. Without SyncBatchNorm only the raising rank knows: its error is
raised there alone, as it is (no collective follows a micro-batch), and the micro-batch's samples leave its count.
The partial gradients cannot be told from the earlier micro-batches' (accumulation is in place), and averaged
into the step they would make its update differ from every run's. Putting them back exactly would need a copy of
every gradient before each micro-batch's backward (a model's worth of memory and copying per micro-batch, paid
by every step for a rare failure), so instead, when the rank's next backward of the model begins (or its
``finish_gradient_synchronization()``), before anything more is accumulated:

* the gradients are reset (``zero_grad()`` after the failure, PyTorch's DDP's advice too; after the next forward
  too, as long as it comes before that forward's backward): the rank's step goes
  on as a run in which it skipped the step's micro-batches up to the failed one: their gradients are gone, and
  the samples counted for them leave the step's count too (a ``set_num_samples()`` count is the loop's own);
* they are not: the next synchronizing step refuses on every rank, "DataParallel: gradients of a micro-batch
  that failed under no_sync() (its backward cut short) are still accumulated on rank 1 ...", the refusal riding
  in that step's own exchange (no collective more, no rank left waiting); every rank drops the step's
  gradients (None) and goes on in step, as after any refused step.

A normal micro-batch pays a closure and one engine list entry (the watch), as a synchronizing pass does.
One rank follows the same rule (its backwards under ``no_sync()`` are watched too): partial gradients not reset
make its next synchronizing step (its backward, or ``finish_gradient_synchronization()``) raise that error, the
step's gradients dropped, where a plain single process would let them into the update.
"""
from __future__ import annotations

import warnings

from distnn._stacklevel import caller_stacklevel

from distnn.autograd.engine import backward_depth

from .sync_refusals import WHERE, note

UNREACHED_MICRO = (f"the output of a forward {WHERE} under no_sync() never reached a backward (an error between "
                   "the forward and the backward, caught and skipped?)")
STALE = (f"gradients of a micro-batch that failed under no_sync() (its backward cut short) are still accumulated "
         f"{WHERE}, so this step's average would not be any run's")
STALE_ADVICE = ("Call optimizer.zero_grad() after a failed micro-batch (PyTorch's DDP leaves the gradients to the "
                "loop too); every rank dropped this step's gradients")


def init_failure_state(dp) -> None:
    """What :class:`~.data_parallel.DataParallel` keeps to settle a failed step or micro-batch (set at its build)."""
    dp._forwards = []   # forwards since the last sync: (output nodes, samples, count so far, clock) (.sync_abandoned)
    dp._abandoned = []  # notes of a forward interrupted since (.sync_abandoned)
    dp._in_forward = 0  # forwards of the model running now (.sync_batchnorm_closing)
    dp._before_forward = False  # the wrapper's own forward pre-hooks run (.sync_abandoned.hooked_call)
    dp._micro_forwards = []  # no_sync() forwards no backward reached yet: (output nodes, samples)
    dp._micro_last = 0       # samples of the micro-batch whose backward runs (drop_micro_batch)
    dp._stale_grads = False  # a micro-batch's backward was cut short here (hold_if_stale)
    dp._stale_samples = 0    # the samples counted before that micro-batch (dropped with the gradients, if reset)
    dp._held_notes = []      # refusals for the next synchronizing exchange (release_held)
    # forward rounds called on the SyncBatchNorm split of its communicator when its last backward began; whether
    # that backward's micro-batch made any, None before its first (which rounds a failing micro-batch ends there:
    # .sync_batchnorm_closing._abort_split)
    dp._split_mark, dp._split_prev = 0, None
    # forwards with gradients enabled so far (a clock: what came before an abandoned step's last forward was that
    # step's); its value at the last synchronizing backward's begin, at the last set_num_samples(), at a forward
    # that raised; clock -> whether the gradients were reset when a no_sync() backward began with a step pending
    dp._clock = dp._sync_clock = dp._explicit_clock = dp._abandoned_at = 0
    dp._resets = {}
    dp._ended_step = None  # this rank's step ended early, mid-way (.sync_step_ended): what its end raises
    dp._micro_passes = 0   # backward passes under no_sync() since the last exchange (.sync_step_ended)


def micro_batch_raised(dp, exc: Exception) -> None:
    """``exc`` leaves ``dp.no_sync()``: a forward of it no backward reached ends alike on every rank (see the module
    docstring; an error agreed already, by SyncBatchNorm's rounds or a synchronization, is left as it is)."""
    if dp._micro_forwards and not getattr(exc, "from_rounds", False) and not hasattr(exc, "report"):
        settle_micro_batches(dp, exc)


def note_micro_forward(dp, nodes, n) -> None:
    """A forward with gradients enabled under ``no_sync()``: its output's nodes and the samples it counted."""
    dp._micro_forwards.append((nodes, n or 0))


def reached(dp) -> None:
    """A backward of the model begins: the micro-batches' forwards noted so far are reached (dead ones settled)."""
    if dp._micro_forwards:
        settle_micro_batches(dp, in_pass=True)
    if not dp._require_sync and (dp._forwards or dp._abandoned):  # (a step may have been abandoned: whether this
        dp._resets.setdefault(dp._clock, grads_reset(dp))       # first accumulation since found the gradients reset)
    dp._micro_last = sum(n for _, n in dp._micro_forwards)  # (this backward's micro-batch: drop_micro_batch)
    dp._micro_forwards = []


def forget_micro_forwards(dp) -> None:
    """This rank's forward met the others' backward in a SyncBatchNorm round: its no_sync() forwards that no
    backward reached, kept referenced by the loop, are over (every rank raised the mismatch, naming them); their
    samples leave the step's count, as those of a micro-batch skipped."""
    if dp._forward_samples is not None:
        dp._forward_samples -= sum(n for _, n in dp._micro_forwards)
    dp._micro_forwards = []


def drop_micro_batch(dp, in_backward: bool) -> None:
    """The micro-batch ended on every rank (its rounds were ABORTed): its samples leave the step's count here,
    those of its forwards no backward reached yet and, in its backward, those of the forwards that backward
    reached (``in_backward``: the rank's part ended in a backward), so the step weighs this rank as a run that
    skipped the micro-batch on every rank."""
    n = sum(n for _, n in dp._micro_forwards) + (dp._micro_last if in_backward else 0)
    dp._micro_forwards, dp._micro_last = [], 0
    if dp._forward_samples is not None:
        dp._forward_samples -= n


def settle_micro_batches(dp, exc=None, in_pass: bool = False) -> None:
    """End a micro-batch this rank abandoned between forward and backward (see the module docstring): ``exc``,
    the exception leaving ``no_sync()`` (every forward not reached is lost; raises the agreed error when
    SyncBatchNorm rounds are ended), else the forwards whose output is gone (warns with the agreed error)."""
    from .sync_abandoned import _alive

    if not dp._micro_forwards or backward_depth() > in_pass:
        return
    lost = [r for r in dp._micro_forwards if exc is not None or not _alive(r[0])]
    if not lost:
        return
    dp._micro_forwards = [r for r in dp._micro_forwards if not any(r is x for x in lost)]
    if dp._forward_samples is not None:
        dp._forward_samples -= sum(n for _, n in lost)
    from .sync_batchnorm_closing import abort_micro_batch
    from .sync_failures import describe

    if exc is not None:
        text = (f"the code between a forward and its backward (the loss?) raised {WHERE} under no_sync(): "
                f"{describe(exc)}")
        abort_micro_batch(dp, exc, "loss", text)  # raises the agreed error when it ends rounds
        return
    try:
        abort_micro_batch(dp, RuntimeError(), "loss", UNREACHED_MICRO)
    except Exception as agreed:
        if not getattr(agreed, "from_rounds", False):
            raise
        if len(getattr(agreed, "noted_ranks", ())) < dp.comm.size:  # (every rank let it go: nobody waited)
            warnings.warn(f"{agreed} (This rank raised its own error in that micro-batch; it goes on with the next.)",
                          stacklevel=caller_stacklevel())


def grad_reset(p) -> bool:
    """Whether ``p.grad`` is None, or zeros left by ``zero_grad(set_to_none=False)`` that no backward accumulated
    into since (the flag is cleared then; the values are looked at too, on these failure paths only, for a
    gradient assigned by hand after the reset)."""
    g = p.grad
    if g is None:
        return True
    return p._grad_zeroed and not getattr(g, "is_sparse", False) and not bool((g != 0).any())


def grads_reset(dp) -> bool:
    """Whether every gradient of the model is reset (:func:`grad_reset`)."""
    return all(grad_reset(p) for p in dp._params)


def mark_stale(dp) -> None:
    """This rank's backward of a micro-batch was cut short (it raised, or its abort ended it): its partial gradients
    are accumulated. Noted with the samples counted before that micro-batch (those of the gradients already held,
    valid before and after :func:`drop_micro_batch`), which a ``zero_grad()`` drops with them."""
    dp._stale_grads = True
    dp._stale_samples = (dp._forward_samples or 0) - dp._micro_last


def hold_if_stale(dp) -> None:
    """Before the rank accumulates more (its next backward of the model, its synchronization): partial gradients
    of a failed micro-batch that the loop did not reset make the next synchronizing step refuse (see the module
    docstring)."""
    if not dp._stale_grads:
        return
    dp._stale_grads = False
    if not grads_reset(dp):
        note(dp._held_notes, RuntimeError, STALE, STALE_ADVICE)
    elif dp._forward_samples is not None:  # (the reset dropped the earlier micro-batches' gradients: their samples go)
        dp._forward_samples -= dp._stale_samples


def release_held(dp) -> None:
    """A synchronizing exchange begins: the refusals held for it join its notes."""
    hold_if_stale(dp)
    if dp._held_notes:
        dp._notes.extend(dp._held_notes)
        dp._held_notes = []
