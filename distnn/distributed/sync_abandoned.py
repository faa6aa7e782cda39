"""A step of :class:`~.data_parallel.DataParallel` that fails on some ranks BEFORE its synchronizing backward
begins: every rank ends it alike, and no rank pairs one step's exchange with another's.

The error is caught by the user's loop (``try: loss_fn(ddp(x), y).backward() except ...: continue``). The
other ranks go into backward and wait in the step's bucket allreduces; the failing rank, going on, would
pair its next step's buckets with their current step (gradients of two steps averaged, and at the end a
rank waiting for a partner that has run out of steps). PyTorch's DDP gives no guarantee here (its
``find_unused_parameters`` check asks that every forward output take part in the loss). So:

* A forward with gradients enabled, outside :meth:`~.data_parallel.DataParallel.no_sync` (PyTorch's test
  for a forward that prepares a synchronizing backward), belongs to the next synchronizing backward. The
  wrapper notes the graph nodes of its output (weakly: an abandoned graph is still freed).
* The wrapped module's forward raises an ``Exception`` there: the rank goes through the step's exchange at
  once (zeros and a note, as a backward that raises, :mod:`.sync_failures`) and every rank raises the same
  error, "DataParallel: forward raised on rank 1: FloatingPointError: ...", its type kept when it is a
  built-in one, the rank's own exception as its ``__cause__``.
* An error DataParallel does not see (the loss raising after the forward), or a ``KeyboardInterrupt``
  caught by the loop (in the forward, the loss, or mid-backward), leaves the step abandoned: at the rank's
  next DataParallel call (the next forward, the next backward, ``no_sync()``, ``join()``,
  ``finish_gradient_synchronization()``) it first goes through the abandoned step's exchange with zeros and
  a note ("the output of a forward on rank 1 never reached a synchronizing backward", "backward was
  interrupted on rank 1"). The ranks that waited raise that error; the abandoned rank, which raised its own
  error in that step, gets it as a warning and goes on with the step it has begun (its step flags are kept;
  the samples counted for the abandoned step, its ``no_sync()`` micro-batches' too, are dropped, and so are
  the outputs of an interrupted step's forwards, still referenced or not), so the ranks stay in step.
  Gradients: the ranks that waited drop the step's (None), so the abandoned rank must not keep what the step
  accumulated under ``no_sync()`` either (averaged into its next step, they would make that update no run's,
  and an optimizer step taken on them alone would make the replicas differ). Settled before any later
  backward (the usual case: the loop let go of the failed output), every gradient it holds is the abandoned
  step's, or zeros the loop reset: dropped (zeros kept), whether or not the loop called ``zero_grad()``.
  Settled later (the output was still referenced after the next backward), it also holds the new step's
  micro-batches: kept when the gradients were reset before the first of them, else the next synchronizing
  step is refused on every rank ("gradients accumulated under no_sync() for a step that was abandoned were
  still held on rank 1 ...": call ``zero_grad()``). A ``set_num_samples()`` count set before the abandoned
  step's last forward was that step's and is dropped (as on the ranks that waited, whose exchange cleared
  it); one set after it (after catching the error) is the next step's and kept. (A count set between that
  forward and the failure is taken for the next step's: set it before the forward.)
  ``finish_gradient_synchronization()`` is the step's own exchange: it raises the error there. Inside
  ``join()``, a rank that abandons its last step and leaves its loop answers that step as a joined rank
  does (no samples, no gradients), so the others' step goes on without its batch, as PyTorch's join would.

A forward counts as abandoned when no node of its output is alive any more: the loop has let go of its
output and of every graph built on it (checked at the next forward, so a model whose forward communicates,
SyncBatchNorm, does not start the next step's collectives first, and at the next backward, after the loop
rebound ``out = ddp(x)``). An output that is still referenced may yet reach a backward (two forwards, two
backwards), so a loop that keeps the failed step's output (or the exception, whose traceback holds it)
until after its next synchronizing backward is not noticed without SyncBatchNorm: that backward is paired with
the others' failed step, as before. (With SyncBatchNorm training, the next forward's round meets the others'
backward round: they raise ``ForwardRanAhead`` there, and this rank ends the kept step in its exchange and runs
its forward again, :func:`_end_ran_ahead`, its random generators put back first: the layers before the round,
dropout, draw what a run where nothing ran ahead draws.) The ranks that
waited drop the step's gradients (None) and training goes on as if the step had never run, save the
global sample count the exchange carries. A forward with gradients enabled whose output never reaches
backward on every rank (evaluation outside ``no_grad()``) is ended the same way, silently (every rank
abandoned it: nobody waited), with one exchange more; its samples no longer count in the next step's weight.

The other ranks may be waiting in a SyncBatchNorm collective rather than in the buckets (the failing rank
raised before the layer, or skipped its backward): the failing rank's exchange begins by answering it
(:mod:`.sync_batchnorm_rounds`), so those ranks raise too and go through the exchange, and every rank raises
the failing rank's error; so are the rounds of a SyncBatchNorm outside the model on the wrapper's communicator (a
head), which send a rank waiting in them through the exchange too (:mod:`.sync_batchnorm_closing`). A forward
that raises inside ``no_sync()`` ends that micro-batch's SyncBatchNorm rounds on every rank, and every rank raises
"DataParallel: forward raised on rank 1 under no_sync(): ..." (without SyncBatchNorm training in the model it is
raised as it is, on its rank alone: no collective follows it). Not covered: a forward that raises inside
``no_grad()`` (raised on its rank alone), a collective of the loop's
own inside the step (a metric's allreduce between forward and backward) that the other ranks wait in
(simulate reports the deadlock at once, naming every rank's collective; under mpiexec the collective timeout
ends the job, naming them), and a rank that never calls DataParallel again: an uncaught exception or
``KeyboardInterrupt`` ends its process, and the job with it (under MPI, the excepthook of :mod:`.watchdog`
aborts every rank). With one rank nothing is watched. A normal step pays a weak reference (made in forward,
read when backward begins) and no collective (SyncBatchNorm's rounds have their own small cost).
"""
from __future__ import annotations

import warnings
import weakref

import numpy as np

from distnn._stacklevel import caller_stacklevel

from distnn.autograd.engine import backward_depth
from distnn.autograd.grad_mode import is_grad_enabled
from distnn.nn.module import Module
from distnn.random import draw_point, rewind

from .sync_batchnorm_closing import abort_micro_batch
from .sync_batchnorm_rounds import ForwardRanAhead
from .sync_failures import agree_on_failure, describe
from .sync_micro_batch import (STALE_ADVICE, forget_micro_forwards, grad_reset, note_micro_forward,
                               settle_micro_batches)
from .sync_refusals import WHERE, note

UNREACHED = (f"the output of a forward {WHERE} never reached a synchronizing backward (an error between the "
             "forward and the backward, caught and skipped?)")
STALE_STEP = (f"gradients accumulated under no_sync() for a step that was abandoned were still held {WHERE} "
              "when its next step began accumulating, so this step's average would not be any run's")
INTERRUPTED = f"backward was interrupted {WHERE} (a KeyboardInterrupt?) before the step's exchange ended"
ADVICE = ("The rank that abandoned the step went through its exchange with zeros at its next DataParallel call, "
          "and every rank dropped the step's gradients. A forward with gradients enabled outside no_sync() belongs "
          "to the next synchronizing backward: make sure all forward outputs participate in calculating the loss "
          "that backward runs from (as PyTorch's DDP asks), and run evaluation under distnn.no_grad()")


def hooked_call(dp, args, kwargs):
    """``dp(...)`` when the wrapper itself has forward hooks: one of its pre-hooks that raises (before
    :func:`watched_forward` begins) ends the step as the model's forward raising does."""
    dp._before_forward = True
    try:
        return Module._call_with_hooks(dp, args, kwargs)
    except BaseException as exc:
        if dp._before_forward:
            dp._before_forward = False
            _forward_raised(dp, exc, _begin_forward(dp))
        raise


def watched_forward(dp, inputs, kwargs):
    """``DataParallel.forward``: run the model, count the samples, note the output (see the module docstring)."""
    dp._before_forward = False
    grad = _begin_forward(dp)
    # (a kept output, with SyncBatchNorm in the model: this forward may meet the others' backward and run again,
    # drawing what it drew before the round once more: ForwardRanAhead below)
    drawn = _draw_point(dp) if (dp._micro_forwards or dp._forwards) and getattr(dp, "_bn_comms", None) else None
    dp._in_forward += 1
    try:
        try:
            out = dp.module(*inputs, **kwargs)
        except ForwardRanAhead as exc:
            if not exc.ahead or backward_depth() > 0:
                raise
            dp._in_forward -= 1
            _end_ran_ahead(dp, exc)
            dp._in_forward += 1
            if drawn is not None:  # (dropout before the round draws its masks as a run where nothing ran ahead)
                rewind(drawn)
            out = dp.module(*inputs, **kwargs)  # (the kept output's step or micro-batch is over: this one pairs now)
    except BaseException as exc:
        dp._in_forward -= 1
        _forward_raised(dp, exc, grad)
        raise
    dp._in_forward -= 1
    if grad:
        n = None
        if dp._explicit_samples is None:
            n = _batch_size(inputs, kwargs, dp.batch_dim)
            if n is not None:
                dp._forward_samples = (dp._forward_samples or 0) + n
        if dp.comm.size > 1:
            nodes = []
            _output_nodes(out, nodes)
            if nodes and not dp._require_sync:
                note_micro_forward(dp, nodes, n)
            elif nodes:  # (with the count so far: what was counted up to here belongs to its step, see settle)
                dp._forwards.append((nodes, n or 0, dp._forward_samples or 0, dp._clock))
    return out


def _begin_forward(dp) -> bool:
    """A forward begins: what an earlier failure left is settled first; returns whether gradients are enabled."""
    if dp._micro_forwards:
        settle_micro_batches(dp)  # (a micro-batch's forward never reached backward: .sync_micro_batch)
    if dp._forwards or dp._abandoned or dp._in_sync:
        settle(dp)  # (the last step's forward never reached backward, or its backward was interrupted)
    grad = is_grad_enabled()
    if grad:
        dp._clock += 1
    return grad


def _end_ran_ahead(dp, exc) -> None:
    """This rank's forward met the others' backward of a forward whose output it kept after a failure
    (:class:`~.sync_batchnorm_rounds.ForwardRanAhead`, raised by the others): that output is over. A micro-batch's
    is forgotten (no exchange follows it); a step's ends in its exchange, where the others wait. Then the forward
    runs again, in step with the others' next one."""
    warnings.warn(f"{exc} (This rank raised its own error in that step or micro-batch; it goes on with the next.)",
                  stacklevel=caller_stacklevel())
    forget_micro_forwards(dp)
    if dp._forwards:
        settle(dp, ran_ahead=True)


def _draw_point(dp) -> list:
    """Where the default generator and the model's own (a dropout layer's ``generator``: a numpy Generator, or
    one with a ``draw_state``, see :func:`distnn.random.draw_point`) stand before a forward."""
    return draw_point([g for m in dp.module.modules() if isinstance(g := getattr(m, "generator", None),
                                                                     np.random.Generator)
                       or hasattr(type(g), "draw_state")])


def _forward_raised(dp, exc, grad: bool) -> None:
    """The forward raised ``exc``: end the step (or micro-batch) alike on every rank (see the module docstring).
    Raises the agreed error, or returns for the caller to raise ``exc``."""
    if grad and dp.comm.size > 1 and backward_depth() == 0 and not dp._in_sync:
        if not dp._require_sync:  # (a micro-batch: its SyncBatchNorm rounds end on every rank, if any)
            if isinstance(exc, Exception) and not getattr(exc, "from_rounds", False):
                abort_micro_batch(dp, exc)  # raises the agreed error when it ends rounds
            return
        if isinstance(exc, Exception):
            agree_on_failure(dp, exc, "forward")  # raises the agreed error, from exc
        # (a KeyboardInterrupt: no collective now; the next DataParallel call, if any, ends the step)
        note(dp._abandoned, RuntimeError, f"forward raised {WHERE}: {describe(exc)}", ADVICE)
        dp._abandoned_at = dp._clock


def settle(dp, in_pass: bool = False, finishing: bool = False, ran_ahead: bool = False) -> None:
    """End a step this rank abandoned, if any (see the module docstring): ``in_pass``, called as a backward
    pass begins; ``finishing``, called by finish_gradient_synchronization, whose own exchange then carries
    the notes (every forward not reached by a synchronizing backward by then was abandoned); ``ran_ahead``,
    the forwards noted are over though still referenced (:func:`_end_ran_ahead`)."""
    if backward_depth() > in_pass:
        return  # (a forward or pass inside a backward: the step is not over)
    notes = list(dp._abandoned)
    interrupted = dp._in_sync and dp._failure_token is not None
    if interrupted:  # (the pass's watch is still set: no Exception ended it, and its exchange never completed)
        note(notes, RuntimeError, INTERRUPTED, ADVICE)
    # Settled at the rank's first DataParallel call since, a step abandoned by an interrupt or a raising forward
    # owns all that was counted. Otherwise a forward no backward reached owns its samples and the no_sync()
    # micro-batches counted before it: its step's, which must not weigh the step this rank has begun.
    whole_step = interrupted or bool(dp._abandoned)
    kept, lost, unreached, samples, mark = [], 0, False, 0, 0
    abandoned_at = dp._abandoned_at if dp._abandoned else dp._sync_clock if interrupted else 0
    for nodes, n, counted, clock in dp._forwards:
        dead = finishing or ran_ahead or not _alive(nodes)
        unreached = unreached or dead
        if dead:
            lost += n
            abandoned_at = max(abandoned_at, clock)
        if not (dead or whole_step):
            samples += counted - mark
            kept.append((nodes, n, samples, clock))
        mark = counted
    if unreached:
        note(notes, RuntimeError, UNREACHED, ADVICE)
    if not notes:
        return
    if dp._ended_step is not None:  # (the step whose last micro-batch failed had ended early: no exchange is left)
        from .sync_step_ended import close, still_ended

        if still_ended(dp):
            close(dp)
            return
    dp._abandoned = []
    if finishing:  # (this exchange is the step's own: it refuses, and finish_gradient_synchronization raises)
        samples = dp._forward_samples
        if samples is not None:
            samples = samples - lost if samples - lost else None
        dp._notes.extend(notes)
        dp._forwards, dp._forward_samples = [], samples
        return
    trailing = (dp._forward_samples or 0) - mark  # (counted since the last forward noted: the begun step's)
    samples = None if whole_step or not (samples + trailing or kept) else samples + trailing
    _end_abandoned_step(dp, notes, abandoned_at, keep_grads=not interrupted)
    dp._forwards, dp._forward_samples = kept, samples
    dp._resets = {}


def _end_abandoned_step(dp, notes, abandoned_at: int, keep_grads: bool) -> None:
    """Go through the abandoned step's exchange (zeros, no samples, the notes); keep what belongs to the step
    this rank has begun since (``keep_grads``: its gradients; an interrupted backward's are the abandoned
    step's); warn with the error the ranks that waited raise. ``abandoned_at``: the clock of the abandoned
    step's last forward (or its interrupted backward): what was set or accumulated before it was that step's."""
    # The ranks that waited drop the step's gradients (None); this rank must not keep what the abandoned step
    # accumulated (its no_sync() micro-batches), or the next step's average would not be any run's. Settled
    # before any later backward, what it holds is the abandoned step's (or reset by the loop): dropped. Settled
    # later (the failed output was still referenced), it holds the new step's micro-batches too: kept when the
    # loop reset the gradients before the first of them, else the next step is refused (.sync_micro_batch).
    later = [clock for clock in dp._resets if clock > abandoned_at]  # (no_sync() backwards since: .sync_micro_batch)
    if keep_grads and not later:
        keep_grads = False
    elif keep_grads and not dp._resets[min(later)]:
        note(dp._held_notes, RuntimeError, STALE_STEP, STALE_ADVICE)
    # (a dense gradient may be its bucket's view, which the exchange overwrites; a sparse one is its own)
    grads = [None if p.grad is None or not (keep_grads or grad_reset(p)) else p.grad
             if getattr(p.grad, "is_sparse", False) else p.grad.copy() for p in dp._params]
    flags, explicit, last = dp.step_flags.copy(), dp._explicit_samples, dp._last_samples
    if dp._explicit_clock < abandoned_at:  # (set before the abandoned step's last forward: that step's count)
        explicit = None
    for p in dp._params:
        p.grad = None
    dp.step_flags[...] = 0
    dp._explicit_samples = 0
    dp._notes.extend(notes)
    dp._failure_token = None
    if not dp._in_sync:
        dp._enter_sync()
    try:
        dp._complete_sync()
    except Exception as agreed:
        if not hasattr(agreed, "report"):  # (not the refusal: an error every rank raises alike)
            raise
        if len(getattr(agreed, "noted_ranks", ())) >= dp.comm.size:
            return  # (every rank abandoned the step: nobody waited, nothing to tell; PyTorch's DDP is silent)
        warnings.warn(f"{agreed} (This rank raised its own error in that step; it goes on with the next.)",
                      stacklevel=caller_stacklevel())
    finally:
        for p, g in zip(dp._params, grads):
            p.grad = g
        dp.step_flags[...] = flags
        dp._explicit_samples, dp._last_samples = explicit, last


def _alive(nodes) -> bool:
    """Whether a forward's output may still reach a backward: whether a node of it is alive (the graph of a
    pass holds its nodes, so the output of one that was never run through is gone once the loop let go)."""
    for ref in nodes:
        if ref() is not None:
            return True
    return False


def _output_nodes(out, nodes: list) -> None:
    """Weak references to the graph nodes of the tensors in a forward's output (nested tuples, lists, dicts)."""
    node = getattr(out, "_node", None)
    if node is not None:
        nodes.append(weakref.ref(node))
    elif isinstance(out, (tuple, list)):
        for o in out:
            _output_nodes(o, nodes)
    elif isinstance(out, dict):
        for o in out.values():
            _output_nodes(o, nodes)


def _batch_size(inputs, kwargs, dim: int):
    """Batch size of a forward call: the size along ``dim`` of its first array argument (positional first)."""
    for x in (*inputs, *kwargs.values()):
        shape = getattr(x, "shape", None)
        if shape is not None and len(shape) > dim:
            return int(shape[dim])
    return None
