"""The per-step agreement: stop every rank at the same step for a preemption signal, skip or fail on non-finite values.

The trainer calls its :class:`StepGuard` once per optimizer step, after the
gradient average and before the update. Preemption: the flag that
:mod:`distnn.train.preemption`'s handler sets travels to every rank with the
step (in DataParallel's gradient exchange, or a nonblocking allgather of the
guard's own), so all ranks learn together whether ANY rank was signalled and
stop at the same step (the checkpoint callback saves there;
:class:`StopWithoutCheckpoint` when checkpointing is off).

Non-finite loss or gradients (``train.nonfinite``; with ``train.precision = "16-mixed"`` the loss alone:
the gradients are the loss scaler's, :mod:`distnn.train.mixed_precision`): decided on the averaged
gradients, which are identical on every rank, and on a "my loss is not
finite" flag each rank sends with the same gradient exchange (a loss can be
infinite while its gradients are not), so one rank's bad batch makes every
rank take the same decision without a collective of its own: with ``"skip"``
every rank skips the optimizer step together (counted in
``trainer.state.skipped_steps`` and logged with the ranks whose loss was
non-finite), with ``"error"`` every rank raises :class:`NonFiniteError`
naming the step before the update, so no NaN reaches the weights or any
checkpoint.

Fault injection (environment): ``DISTNN_FAULT_KILL_AT``, ``DISTNN_FAULT_NONFINITE_AT``,
``DISTNN_FAULT_NONFINITE_LOSS_AT``, ``DISTNN_FAULT_SIGNAL_AT`` and
``DISTNN_FAULT_EXIT_AT`` at a step, ``DISTNN_FAULT_PAUSE_AT``, ``DISTNN_FAULT_STEP_DELAY`` (see
:mod:`distnn.train.preemption`).
"""
from __future__ import annotations

import math
import os
import signal
import time

import numpy as np

from distnn.distributed.data_parallel import DataParallel

from .callbacks.base import Callback
from .preemption import (DEFAULT_SIGNALS, PreemptedWithoutCheckpointing, add_watcher, ignore_further_signals, job_mark,
                         job_requested, pause_for_test, request_count)
from .preemption_faults import _await_handler, _parse_at, mark_fault
from .preemption_handlers import _signum

NONFINITE_POLICIES = ("error", "skip", "off")


class NonFiniteError(ValueError):
    """A NaN or inf loss or gradient with ``train.nonfinite = "error"`` (raised on every rank at the same step;
    under ``train.precision = "16-mixed"`` a loss: gradient overflows are the loss scaler's skips)."""


# Indices in DataParallel.step_flags (0 and 1: the preemption signal, see StepGuard).
# "This rank's loss was non-finite", sent with this step's own exchange.
LOSS_FLAG = 2
# The next two hold one bit per checkpoint callback of the trainer (only rank 0 sets them; see
# callbacks/checkpoint.py). "Rank 0's background checkpoint write has finished": every rank agrees on
# its outcome at the same step (a second bit per callback, MAX_CALLBACKS places up, says it failed).
WRITE_DONE_FLAG = 3
# "Rank 0's clock says a checkpoint is due" (checkpoint.every_seconds): every rank saves at the step
# that carries it, by rank 0's clock alone.
SAVE_DUE_FLAG = 4
NUM_STEP_FLAGS = DataParallel.num_step_flags  # the guard's own flags (data_parallel=False) have the same slots


def step_flags_carrier(trainer):
    """What sums a per-step flag over ranks at every step: the trainer's DataParallel (its gradient
    exchange) or, without one on several ranks, its StepGuard (its synchronous allgather); else None.

    A flag set in ``carrier.step_flags`` after a step is summed into
    ``carrier.step_flags_sum`` at the next step, on every rank alike.
    """
    ddp = getattr(trainer, "ddp", None)
    if ddp is not None:
        flags = getattr(ddp, "step_flags", None)
        return ddp if flags is not None and len(flags) >= NUM_STEP_FLAGS else None
    guard = getattr(trainer, "step_guard", None)
    return guard if isinstance(guard, StepGuard) and guard.world > 1 else None


class StepGuard(Callback):
    """Called by the trainer once per optimizer step, after the gradient average and before the update.

    ``nonfinite``: ``"error"``, ``"skip"`` or ``"off"``; ``max_nonfinite``
    consecutive skipped steps are an error too. ``preemption``: watch the
    preemption flag. Returns True when the step must be skipped.

    No blocking collective per step. The skip decision looks at the AVERAGED
    gradients, which are the same bits on every rank: a NaN or inf in any
    rank's loss or gradient reaches every rank's average, so every rank
    decides alike by itself. Only on such a step do the ranks run one
    allgather (all of them are there, since all saw it) to name the ranks
    whose loss was non-finite. The preemption flags travel in a nonblocking
    allgather started at each step and read at the next one (complete by
    then), so a signal stops the run one step later than it could, at no
    waiting cost; with a DataParallel they ride in its gradient exchange
    instead (``step_flags``), no collective of their own. (Without a
    DataParallel average, with ``data_parallel=False``, the flags are
    gathered synchronously instead.) Also a callback: its
    ``on_train_end`` completes the last flags collective.
    """

    state_key = "_step_guard"

    def __init__(self, comm, nonfinite: str = "skip", preemption: bool = True, max_nonfinite: int = 10, log=None):
        if nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"train.nonfinite must be one of {', '.join(NONFINITE_POLICIES)}, got {nonfinite!r}")
        if int(max_nonfinite) < 1:
            raise ValueError(f"train.max_nonfinite must be >= 1, got {max_nonfinite!r}")
        self.comm, self.nonfinite, self.preemption = comm, nonfinite, bool(preemption)
        self.max_nonfinite = int(max_nonfinite)
        self.consecutive = 0  # steps skipped in a row (checkpointed: a streak goes on across a resume)
        self.rank, self.world = int(comm.rank), int(comm.size)
        self.preempt_signal: int | None = None
        self.last_bad_ranks: list[int] = []
        self.log = log
        self._pending = None          # the flags collective started at the previous step
        # With data_parallel=False on several ranks this guard's per-step allgather carries the step
        # flags that DataParallel's exchange carries otherwise (slots from LOSS_FLAG on; see step_flags_carrier).
        self.step_flags = np.zeros(NUM_STEP_FLAGS)
        self.step_flags_sum = np.zeros(NUM_STEP_FLAGS)
        self._local_bad = False       # this rank's own loss (or an injected gradient) was non-finite
        self._trainer = None
        # The fault switches name the job's ranks (an ensemble member's guard works on its group of ranks)
        me = int(getattr(comm, "world_rank", self.rank))
        self._kill = [(r, s) for r, s, *_ in _parse_at("DISTNN_FAULT_KILL_AT") if r == me]
        self._exit = [(s, int(rest[0]) if rest and rest[0].strip().lstrip("-").isdigit() else 3)
                      for r, s, *rest in _parse_at("DISTNN_FAULT_EXIT_AT") if r == me]
        self._nan = {s for r, s, *_ in _parse_at("DISTNN_FAULT_NONFINITE_AT") if r == me}
        self._nan_loss = {s for r, s, *_ in _parse_at("DISTNN_FAULT_NONFINITE_LOSS_AT") if r == me}
        # The requests this guard acts on: those after its CLI job's start-up began (start_up; one noted
        # between two ensemble members included), else those after now (an earlier run's request, never
        # cleared, is not ours).
        self._mark = job_mark()  # (in a CLI job: also a request noted before this guard, e.g. between members)
        self._sig = [(s, (rest[0] if rest else "SIGTERM")) for r, s, *rest in _parse_at("DISTNN_FAULT_SIGNAL_AT")
                     if r == me]
        self._delay = float(os.environ.get("DISTNN_FAULT_STEP_DELAY", "0") or 0)
        self._pause = [(me, s) for r, s, *_ in _parse_at("DISTNN_FAULT_PAUSE_AT") if r == me]

    @property
    def active(self) -> bool:
        return self.nonfinite != "off" or self.preemption

    def bind(self, trainer) -> "StepGuard":
        """Attach to ``trainer`` (as its ``step_guard`` and a callback); installs the NaN fault hook if asked."""
        self._trainer = trainer
        trainer.step_guard = self
        trainer.callbacks.append(self)
        if self.preemption:
            add_watcher(+1)
            self._watching = True
        if self._nan:
            # A NaN in this rank's LOCAL gradient, before the average (registered before DataParallel's
            # hooks, which fit() adds later): the realistic fault, one bad batch on one rank.
            p = next(iter(trainer.model.parameters()))
            self._nan_hook_handle = p.register_post_accumulate_grad_hook(self._nan_hook)
        return self

    def _nan_hook(self, tensor):
        if self._trainer is not None and self._trainer.state.global_step + 1 in self._nan and tensor.grad is not None:
            tensor.grad.reshape(-1)[0] = np.nan
            # (under precision "16-mixed" a NaN gradient is the loss scaler's skip, on one rank as on several)
            self._local_bad = not _scaler_checks_gradients(self._trainer)

    # ------------------------------------------------------------------ the step
    def before_exchange(self, trainer, loss_sum: float) -> float:
        """Called by the trainer with this rank's loss before the synchronizing backward; returns the loss.

        A non-finite loss can come with finite gradients (e.g. an infinite
        loss term whose gradient is masked): its flag rides in this step's
        gradient exchange (``DataParallel.step_flags``), so every rank sees it
        in time to skip this very step.
        """
        if trainer.state.global_step + 1 in self._nan_loss:
            loss_sum = float("nan")
        if self.nonfinite != "off" and not math.isfinite(loss_sum):
            flags = getattr(getattr(trainer, "ddp", None), "step_flags", None)
            if flags is not None and len(flags) > LOSS_FLAG:
                flags[LOSS_FLAG] = 1.0
        return loss_sum

    def __call__(self, trainer, loss_sum: float) -> bool:
        step = trainer.state.global_step + 1  # the step being taken
        self._inject(step)
        self._local_bad = self._local_bad or not math.isfinite(loss_sum)
        sig = (job_requested(self._mark) or 0) if self.preemption else 0
        averaged = self.world == 1 or getattr(trainer, "ddp", None) is not None
        if averaged:
            self._collect()                                   # the previous step's flags
            sums = getattr(getattr(trainer, "ddp", None), "step_flags_sum", None)
            loss_flagged = sums is not None and len(sums) > LOSS_FLAG and sums[LOSS_FLAG] > 0
            bad = self.nonfinite != "off" and (not _grads_finite(trainer) or loss_flagged or
                                               (self.world == 1 and self._local_bad))
            if self.world == 1 and sig and self.preempt_signal is None:
                self.preempt_signal = sig
            elif self.world > 1 and self.active:
                ddp = trainer.ddp
                flags = getattr(ddp, "step_flags", None)
                if flags is not None and len(flags) >= 2:
                    # Piggyback on DataParallel's gradient exchange (no collective of our own): what we
                    # set here is summed over ranks in the next step's exchange, read at the next step.
                    self._note_signal_sum(ddp.step_flags_sum)
                    flags[0], flags[1] = float(sig), float(sig > 0)
                else:
                    self._pending = self.comm.iallgather(np.array([float(self._local_bad), float(sig)]))
        else:  # gradients not averaged (data_parallel=False): agree synchronously, the step flags alongside
            mine = self.step_flags.copy()
            mine[0], mine[1] = float(self._local_bad), float(sig)
            rows = np.asarray(self.comm.allgather(mine))
            self.step_flags_sum, self.step_flags[:] = rows.sum(axis=0), 0.0
            bad = self.nonfinite != "off" and bool(rows[:, 0].any())
            self._note_signal(rows)
        local_bad, self._local_bad = self._local_bad, False
        if not bad:
            self.consecutive = 0
            return False
        self.finish()  # every rank is here (the same averaged bits): one allgather names the ranks
        # The ranks are named as the job numbers them (the log lines' prefix): an ensemble member's guard works
        # on its group's communicator, whose rank 0 may be the job's rank 1, so each sends its job-wide rank.
        mine = np.array([float(local_bad), float(getattr(self.comm, "world_rank", self.rank))])
        who = np.asarray(self.comm.allgather(mine)) if self.world > 1 else mine[None]
        self.last_bad_ranks = [int(world_rank) for bad, world_rank in who if bad]
        where = (f"step {step} (epoch {trainer.state.epoch + 1}, batch {trainer.state.batch_in_epoch + 1})"
                 + (f" on rank(s) {self.last_bad_ranks}" if self.last_bad_ranks else ""))
        # under "16-mixed" only the loss reaches the policy (a gradient overflow is the loss scaler's skip)
        what = "loss" if _scaler_checks_gradients(trainer) else "loss or gradients"
        if self.nonfinite == "error":
            raise self._agreed(NonFiniteError(
                f"non-finite {what} at {where}; the step was not applied and nothing was saved "
                f"from it (set train.nonfinite = \"skip\" to skip such steps)"))
        self.consecutive += 1
        if self.consecutive >= self.max_nonfinite:
            raise self._agreed(NonFiniteError(
                f"non-finite {what} at {where}: {self.consecutive} steps in a row "
                f"(train.max_nonfinite = {self.max_nonfinite}); the run is diverging (lower optimizer.lr, "
                f"or set train.grad_clip)"))
        trainer.state.skipped_steps = getattr(trainer.state, "skipped_steps", 0) + 1
        if self.log is not None:
            self.log.warning("skipped %s: non-finite %s (%d step(s) skipped so far)", where, what,
                             trainer.state.skipped_steps)
        return True

    def _collect(self):
        if self._pending is not None:
            flags, self._pending = np.asarray(self._pending.wait()), None
            self._note_signal(flags)

    def _note_signal(self, flags):
        sig = int(flags[:, 1].max())
        if sig and self.preempt_signal is None:
            self.preempt_signal = sig

    def _note_signal_sum(self, sums):
        """From step flags summed over ranks: [sum of signal numbers, ranks signalled]."""
        count = int(round(float(sums[1]))) if len(sums) >= 2 else 0
        if count and self.preempt_signal is None:
            total = int(round(float(sums[0])))
            # the same signal on every signalled rank (the usual case), else SIGTERM's meaning
            self.preempt_signal = total // count if total % count == 0 else int(signal.SIGTERM)

    def state_dict(self) -> dict:
        return {"consecutive": self.consecutive}

    def load_state_dict(self, state: dict) -> None:
        self.consecutive = int(state.get("consecutive", 0))

    def finish(self) -> None:
        """Complete the flags collective in flight (collective: every rank has the same one pending)."""
        self._collect()

    def on_train_end(self, trainer, logs):
        self.finish()
        self._unwatch()

    def on_exception(self, trainer, exception):
        self._unwatch()  # (no finish(): it is a collective, and the other ranks may be anywhere)

    def _unwatch(self):
        handle = self.__dict__.pop("_nan_hook_handle", None)
        if handle is not None:  # (the parameter would otherwise hold this guard and its trainer for good)
            handle.remove()
        if getattr(self, "_watching", False):
            self._watching = False
            add_watcher(-1)

    def release(self) -> None:
        """Stop watching the preemption flag (a run that will not train after all: ``attach`` failed)."""
        self._unwatch()

    def _agreed(self, exc):
        exc.report = self.rank == 0  # raised on every rank at the same step: rank 0 reports it
        return exc

    def _inject(self, step):
        if self._delay:
            time.sleep(self._delay)
        for r, s in self._kill:
            if s == step:
                mark_fault(f"killed-rank{r}-step{s}")  # (a test times the job's end from the kill)
                os.kill(os.getpid(), signal.SIGKILL)
                time.sleep(10)
        for s, code in self._exit:
            if s == step:
                raise SystemExit(code)  # as a rank's own code would end it (not sys.exit: no hook sees it)
        for s, name in self._sig:
            if s == step:
                before = request_count()
                os.kill(os.getpid(), _signum(name))
                _await_handler(before)
        for r, s in self._pause:
            if s == step:  # (before the flag is read below: a signal that ends the pause stops the run here)
                # (counted from this job's start: another rank's signal that came before this rank got here
                # ends the pause at once, or it would wait for a signal already sent: seen in CI)
                pause_for_test(f"paused-rank{r}-step{s}", since=self._mark)


class StopWithoutCheckpoint(Callback):
    """With checkpointing off: stop every rank at the step they agreed on for a preemption signal.

    The agreement is the step guard's, as for a checkpointing run, so every
    rank leaves at the same step boundary, where no file is half-written (a
    signal only sets a flag) and the callbacks clean up (``on_exception``).
    Raises :class:`PreemptedWithoutCheckpointing`: nothing is saved, and the
    status is 128 + the signal's number.

    It ends the step where a checkpoint callback's preemption save would, so it runs last as they do
    (``runs_last``): after every other callback's ``on_batch_end``, and after a checkpoint callback's
    (which saves and stops) given before it.
    """

    runs_last = True

    def __init__(self, signals=DEFAULT_SIGNALS, log=None):
        self.signals = [_signum(s) for s in signals]
        self.log = log

    def on_batch_end(self, trainer, logs):
        guard = getattr(trainer, "step_guard", None)
        signum = getattr(guard, "preempt_signal", None)
        if not signum:
            return
        guard.finish()  # no collective left in flight when every rank leaves
        exc = PreemptedWithoutCheckpointing(trainer.state.global_step, signum)
        ignore_further_signals(self.signals)  # (a duplicate signal must not turn the clean stop into a death)
        if self.log is not None:  # (every rank says it: rank 0's line shows by default)
            self.log.warning("%s; exiting with status %d (not resumable: no checkpoint)", exc, exc.exit_code)
        raise exc


def _scaler_checks_gradients(trainer) -> bool:
    """Whether gradient overflows are the loss scaler's (``"16-mixed"``, scaler enabled), not the policy's."""
    amp = getattr(trainer, "amp", None)
    return amp is not None and amp.scaler_checks_gradients


def _grads_finite(trainer) -> bool:
    """Whether the averaged gradients are finite: one reduction per DataParallel bucket (else per gradient).

    With ``precision = "16-mixed"`` they are the loss scaler's to check (True here): an overflow of the
    scaled float16 gradients is routine, the scaler skips that step and lowers the scale
    (:mod:`distnn.train.mixed_precision`); only a non-finite loss is the policy's then.
    """
    if _scaler_checks_gradients(trainer):
        return True
    ddp = getattr(trainer, "ddp", None)
    if ddp is not None:
        return ddp.grads_finite()
    from distnn.distributed.buckets import all_finite

    return all(all_finite(p.grad) for p in trainer.model.parameters() if p.grad is not None)
