"""Coordinated checkpointing from the training loop, and exact resume.

:class:`ModelCheckpoint` saves every ``every_n_steps`` optimizer steps and/or
every ``every_n_epochs`` epochs and/or once ``every_n_seconds`` have passed
since the last save (and whenever the monitored metric improves,
with ``save_best``), and at the end of training (``save_last``: the final
state, unless its step was saved already), keeps the newest ``keep_last``
plus the best one, and stops at a preemption signal after writing a checkpoint. A save is
collective: every rank sends its random generator state and its share of
the epoch's running sums (``allgather_object``); rank 0 alone writes (the
replicas are identical, so its model and optimizer stand for all); then rank
0 broadcasts success or failure and every rank acts on the same answer
(``on_error="stop"``: all raise :class:`~distnn.train.checkpoint.CheckpointError`;
``"continue"``: all go on, rank 0 warns) before training continues: the
default.

``async_save`` trades that for less time held up: the arrays are copied into
npz images and the rest of the state walked into a JSON-able skeleton at the
save point (benchmarks/profile_checkpoint_save.py times it); trainer.json's
text, the npz CRC-32s, hashing, writing and fsync run in the background on rank 0
while training continues: in a writer process of its own on Linux (see
:mod:`~distnn.train.checkpoint.writer_process`: a write from a thread of this
process shares the training thread's interpreter lock) where a core is to
spare for it, which one long-lived background thread feeds and waits for;
else in that thread. The outcome is agreed at the
first step boundary every rank can know of it: when rank 0 sees its write
finished, it says so, and whether it failed, in the next step's gradient
exchange (DataParallel step flags, no collective of their own), and at the
end of that step every rank takes rank 0's outcome together (a success by
the flags alone; a failure's message by a broadcast every rank makes there). (Without a DataParallel
exchange across ranks the outcome waits for the next save.) A save, a
preemption (which always waits for its own write) and the end of training
also settle it. ``latest`` only ever names a complete checkpoint either
way; a failure is acted on a step or two after the write ends instead of at
the save point. On a machine with a core to spare for the writer, the
training thread then only pays for the copy (see
benchmarks/bench_checkpoint.py).

:func:`~.resume.resume` (see :mod:`.resume`) loads a checkpoint into a trainer. The callback's parts:
when a save is due (:mod:`.checkpoint_schedule`), the best checkpoint (:mod:`.checkpoint_best`),
rank 0's writes (:mod:`.checkpoint_write`) and the agreement on their outcome (:mod:`.checkpoint_outcome`).
"""
from __future__ import annotations

import math
import numbers
import os
import time

from distnn import random as dn_random

from .. import checkpoint as ck
from ..checkpoint import writer_process
from .. import preemption
from ..logging_utils import get_logger
from .background_writer import writer
from .base import Callback, final_report, metric_counts, monitor_mode, same_monitor
from .checkpoint_best import BestCheckpoint
from .checkpoint_epoch_end import EpochEndSave
from .checkpoint_outcome import CheckpointOutcome, _finish_guard
from .checkpoint_schedule import MAX_CALLBACKS, CheckpointSchedule, _cut_by_max_steps
from .checkpoint_write import CheckpointWriting
from .resume import agreed

ON_ERROR = ("stop", "continue")
__all__ = ["MAX_CALLBACKS", "ON_ERROR", "ModelCheckpoint"]


class ModelCheckpoint(CheckpointSchedule, BestCheckpoint, CheckpointWriting, EpochEndSave, CheckpointOutcome,
                      Callback):
    """Write checkpoints to ``directory`` (a checkpoint root, e.g. ``<run>/checkpoints``).

    ``every_n_steps`` (0: never), ``every_n_epochs`` (0: never),
    ``every_n_seconds`` (0: never; at the first step boundary after that much
    time since the last save or the start, by rank 0's clock, which every
    rank follows: the flag rides in the next step's gradient exchange; due at
    an epoch's last step, it is saved at that epoch's end), ``keep_last``
    (newest K kept, 0: keep all), ``save_best`` (also save when ``monitor``
    improves, and never delete the best), ``on_error`` ("stop" or
    "continue"), ``save_last`` (also save the state training ends in, when
    that step has no checkpoint yet: the end of the epoch loop, whether the
    last epoch, ``max_steps`` or an agreed early stop ended it, so that
    ``--resume auto`` with more epochs continues from the end; not after an
    error or a preemption, which saves its own), ``async_save`` (write in a
    background thread and writer process on rank 0),
    ``fsync`` (make each checkpoint durable before it becomes ``latest``),
    ``extra_files`` (``{name: str|bytes}`` stored in every checkpoint, e.g.
    ``model.json`` and ``config.toml``).

    It runs after every other callback in every hook, wherever it is in the trainer's list (as Lightning's
    checkpoint callbacks; ``runs_last``, see :class:`~.base.CallbackList`): a checkpoint at an epoch's end
    holds that end's whole outcome, early stopping's count and the stop it asks for included (the manifest's
    ``stop_agreed``: a run resumed from it trains no further), and one at a step the step's callbacks' state
    (a per-step LR schedule's). Several checkpoint callbacks keep the order they were given in.
    """

    state_key = "checkpoint"
    runs_last = True

    def __init__(self, directory, every_n_steps: int = 0, every_n_epochs: int = 1, keep_last: int = 3,
                 save_best: bool = True, monitor: str = "val_loss", mode: str = "auto", on_error: str = "stop",
                 async_save: bool = False, fsync: bool = True, extra_files: dict | None = None, log=None,
                 save_last: bool = True, every_n_seconds: float = 0):
        if on_error not in ON_ERROR:
            raise ValueError(f"checkpoint.on_error must be 'stop' or 'continue', got {on_error!r}")
        if isinstance(every_n_seconds, bool) or not isinstance(every_n_seconds, numbers.Real) \
                or not math.isfinite(every_n_seconds) or every_n_seconds < 0:
            raise ValueError(f"checkpoint.every_seconds must be a number of seconds >= 0, got {every_n_seconds!r}")
        for name, v in (("every_n_steps", every_n_steps), ("every_n_epochs", every_n_epochs),
                        ("keep_last", keep_last)):
            if int(v) != v or v < 0:
                raise ValueError(f"checkpoint.{name} must be an integer >= 0, got {v!r}")
        self.root = str(directory)
        self.every_n_steps, self.every_n_epochs = int(every_n_steps), int(every_n_epochs)
        self.every_n_seconds = float(every_n_seconds)
        self.clock = time.monotonic      # what every_n_seconds is measured with (rank 0's; a test may drive it)
        self._last_save_time = self.clock()  # rank 0: when the time since the last save began (every_n_seconds)
        self._time_due_at_epoch_end = False
        self._flag_bit = 1  # this callback's bit in the step flags (see on_train_begin)
        self.keep_last = int(keep_last)
        self.save_best, self.monitor, self.mode = bool(save_best), monitor, monitor_mode(monitor, mode)
        self.on_error, self.async_save, self.fsync = on_error, bool(async_save), bool(fsync)
        self.save_last = bool(save_last)
        self._saved_step: int | None = None  # the global step of the newest save (or of the resumed checkpoint)
        self.last_error = None  # the message of the newest failed write
        self.extra_files = dict(extra_files or {})
        self.log = log or get_logger("checkpoint")
        self.best: float | None = None
        self.best_name: str | None = None
        self.last_path: str | None = None
        self.saves = 0
        self.failures = 0
        self.resumed_from: tuple[str, int] | None = None
        self.timings: list[float] = []   # seconds each save held training up (rank 0's view)
        self._pending = None             # async: the write in flight (_Job) on rank 0, True elsewhere
        self._joined_on_exception = None  # the _pending that a fit's on_exception waited for
        self._writes = 0                 # background writes started (the same count on every rank)
        self._submitted_at = 0           # the global step of the write in flight
        self._best_before = (None, None)  # (best, best_name) before the save in flight
        self._warned_monitor = False
        self._warned_process = False
        self._write_elsewhere = False    # rank 0, async: write from the writer process (see on_train_begin)
        self._serializer = self._serializer_extra = None  # ck.Serializer: npz buffers reused between saves
        self._spares: list = []          # rank 0: a retired checkpoint directory the next write recycles

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, trainer):
        self._last_save_time, self._time_due_at_epoch_end = self.clock(), False
        # each checkpoint callback of the trainer its own bit of the step flags (the same order on every rank): a
        # second one's "due" or "write done" must not be read as this one's
        checkpoints = [cb for cb in getattr(trainer.callbacks, "callbacks", ()) if isinstance(cb, ModelCheckpoint)]
        index = next((i for i, cb in enumerate(checkpoints) if cb is self), 0)
        if index >= MAX_CALLBACKS:
            raise ValueError(f"at most {MAX_CALLBACKS} ModelCheckpoint callbacks on one trainer, got "
                             f"{len(checkpoints)}")
        self._flag_bit = 1 << index
        self._write_elsewhere = writer_process.worth_it(getattr(trainer.comm, "local_size", 1))
        ours = True
        if self.resumed_from is not None:
            path, step = self.resumed_from
            # (realpath: a checkpoint named through a symlink is one of this root's all the same)
            ours = trainer.agree(os.path.realpath(os.path.dirname(os.path.normpath(path)))
                                 == os.path.realpath(self.root))
        problem = None
        if trainer.is_main:
            ck.cleanup_temporaries(self.root)
            if self.resumed_from is not None and ours:
                try:
                    moved = ck.discard_newer(self.root, step, best=self.best_name)
                except OSError as e:  # (a failed rename or directory fsync: the future may come back)
                    problem = f"cannot move aside the checkpoints newer than {os.path.basename(path)} in " \
                              f"{self.root!r}: {e.strerror or e}"
                    moved = []
                if moved:
                    self.log.warning("resumed from %s: newer checkpoints %s were moved aside as "
                                     "discarded-*", os.path.basename(path), ", ".join(moved))
                if problem is None:
                    self._repoint_best()
        if self.resumed_from is None:
            return
        problem = trainer.agree(problem)  # (every rank raises together, not rank 0 alone)
        if problem:
            raise agreed(ck.CheckpointError(problem), trainer)
        if ours:
            self._saved_step = step  # (resumed at its last step: the end has its checkpoint, here)
            self.last_path = path
        elif self.save_last and _cut_by_max_steps(trainer):
            # Resumed from another directory's checkpoint (--resume OLD_RUN --out NEW_RUN) of an epoch that
            # max_steps cut: this root gets that mid-epoch state now, before the end this session gives the
            # epoch again (on_loop_end would save the end-of-epoch state: see on_batch_end).
            self.save(trainer, "last", wait=True)

    def on_batch_end(self, trainer, logs):
        guard = getattr(trainer, "step_guard", None)
        signum = getattr(guard, "preempt_signal", None)
        if signum:
            self._preempt(trainer, signum)
        if self._pending is not None:
            self._settle_if_finished(trainer)
        n = self.every_n_steps
        st = trainer.state
        # (at an epoch's last step a due epoch-end checkpoint, after validation, follows at the same step)
        if n and st.global_step % n == 0 and not (st.batch_in_epoch >= trainer.steps_per_epoch
                                                  and self._epoch_due(trainer)):
            self.save(trainer, "step")
        if self.every_n_seconds and self._time_due(trainer) and self._saved_step != st.global_step:
            if st.batch_in_epoch >= trainer.steps_per_epoch:
                self._time_due_at_epoch_end = True  # after the epoch's validation, as its end's save
            else:
                self.save(trainer, "time")
        if self.save_last and self._saved_step != st.global_step and _cut_by_max_steps(trainer):
            # max_steps cuts this epoch: the end that follows (validation, the epoch's callbacks) is the
            # run's, not the epoch's. Saved before it, as a mid-epoch checkpoint: a resume with a larger
            # max_steps goes on with this epoch as the uninterrupted run does (with the same max_steps it
            # ends the epoch again, alike).
            self.save(trainer, "last")

    def on_epoch_end(self, trainer, logs):
        value, counts = None, metric_counts(trainer, self.monitor)
        if self.save_best and self.monitor in logs and counts:
            value = float(logs[self.monitor])
        elif self.save_best and not self._warned_monitor and counts:
            self._warned_monitor = True
            self.log.warning("checkpoint: monitored metric %r is not among the epoch metrics %s; keeping the "
                             "newest checkpoints only", self.monitor, sorted(logs))
        st = trainer.state
        if self._saved_step == st.global_step and st.batch_in_epoch < trainer.steps_per_epoch:
            # max_steps cut this epoch, and its step has a checkpoint from before this end (save_last's, or
            # a step save): the state a resume with a larger max_steps goes on from. It is not rewritten
            # with this end's state; if the cut epoch's validation is the best, it becomes the best one.
            if value is not None and self._improves(trainer.agree(value)):
                self._mark_best(trainer, value)
            return
        time_due = self._time_due_at_end(trainer) or self._time_due_at_epoch_end  # (the first: every rank's collective)
        self._time_due_at_epoch_end = False
        if self._epoch_due(trainer) or time_due:
            self.save(trainer, "epoch", logs, metric=value)  # rank 0's value travels with the save's gather
        elif value is not None and self._improves(trainer.agree(value)):
            self.save(trainer, "epoch", logs, metric=value)

    def on_loop_end(self, trainer):
        """``save_last``: the state training ends in, unless its step has a checkpoint here already.

        At the loop's end rather than in ``on_train_end``: the callbacks' ``on_train_end`` may change the
        model (early stopping's ``restore_best``), and a checkpoint must hold the state training goes on
        from. Also a run resumed at its end from another directory's checkpoint, which trains nothing,
        gets its end saved in this root (``--resume auto`` with more epochs continues from it).
        """
        if self.save_last and self._saved_step != trainer.state.global_step:
            self.save(trainer, "last", trainer.history[-1] if trainer.history else None)

    def on_train_end(self, trainer, logs):
        self.settle(trainer)
        # The final report (see final_report) better than the best: the checkpoint of the state training ends
        # in (save_last's, or the last epoch's) becomes the best one, as the run's best and early stopping's
        # weights say. Its pointer only: the checkpoint's own state keeps the judged best a resume goes on from.
        final = final_report(trainer, self.monitor, logs) if self.save_best else None
        if self._improves(final) and self._saved_step == trainer.state.global_step:
            self._mark_best(trainer, final)
        ck.remove_spares(self._spares)

    def on_exception(self, trainer, exception):
        """Training ends on an error: finish rank 0's write in flight (it may use the spare), drop the spare."""
        if trainer.is_main:
            self._join_pending()  # local: the write's outcome is not agreed, but its checkpoint is whole
        # (a detach after this fit warns of its failure, and raises nothing in place of the error training ended on)
        self._joined_on_exception = self._pending
        ck.remove_spares(self._spares)

    # ------------------------------------------------------------------ saving
    def _submit(self, job):
        """Rank 0: hand ``job`` to the background writer (this module's ``writer``: the one seam tests replace)."""
        return writer().submit(self._write_into, job)

    def save(self, trainer, reason: str = "manual", logs=None, wait: bool = False, metric=None):
        """Collective: checkpoint the trainer now. Returns the agreed path (None when async or failed).

        One ``allgather_object`` carries every rank's random state and running
        sums, rank 0's outcome of the previous background write and rank 0's
        ``metric`` (which makes this checkpoint the best one if it improves);
        at an epoch's end with ``async_save``, the trainer's stop agreement
        carries them (:mod:`.checkpoint_epoch_end`).
        """
        t0 = time.perf_counter()
        self._last_save_time = self.clock()
        # our flags not yet sent: this save is the one a "due" asked for, and it agrees on the write a
        # "write done" announced (a stale one would be read as the next write's)
        self._clear_flags(trainer)
        self._saved_step = trainer.state.global_step
        previous = self._join_pending() if trainer.is_main else None
        had_pending, self._pending = self._pending is not None, None
        mine = {"rng": dn_random.get_state(), "module_rng": dn_random.module_generator_states(trainer.model),
                "epoch_sums": dict(trainer.state.epoch_sums),
                "stop_requested": bool(trainer.state.stop_requested), "previous": previous, "metric": metric}
        own_sync = trainer.ddp.rank_sync_state_dict() if getattr(trainer, "ddp", None) is not None else {}
        if own_sync:  # (PowerSGD's error feedback: each rank's own)
            mine["data_parallel"] = own_sync
        if not trainer.is_main and getattr(trainer, "own_replicas", False):
            # (data_parallel=False: this rank's weights and optimizer state are its own, not rank 0's copy)
            mine["replica"] = trainer.replica_state()
        if self._rides_epoch_end(trainer, reason, wait) and self._save_at_epoch_end(trainer, t0, mine, had_pending,
                                                                                   previous, logs):
            return None  # (the trainer's stop agreement gathers it: see checkpoint_epoch_end)
        ranks = trainer.comm.allgather_object(mine) if trainer.world > 1 else [mine]
        if had_pending:
            self._accept(trainer, ranks[0]["previous"])  # may raise on every rank (on_error="stop")
        # the best until this save: what it stays if this save fails (a checkpoint never written is no best)
        self._best_before = (self.best, self.best_name)
        if self.save_best and self._improves(ranks[0]["metric"]):
            self.best, self.best_name = float(ranks[0]["metric"]), ck.step_name(trainer.state.global_step)
        for r in ranks:
            r.pop("previous", None)
            r.pop("metric", None)
        job = None
        if trainer.is_main:
            try:
                job = self._snapshot(trainer, reason, ranks, logs, mine)
            except (TypeError, ValueError) as e:  # a state that cannot be stored: a bug, report it as a failure
                job = e
        if self.async_save and not wait:
            if trainer.is_main:
                self._pending = self._submit(job)
            else:
                self._pending = True
            self._writes += 1
            self._submitted_at = trainer.state.global_step
            self.timings.append(time.perf_counter() - t0)
            return None
        result = self._write(job) if trainer.is_main else None
        self.timings.append(time.perf_counter() - t0)
        return self._agree(trainer, result)

    def _preempt(self, trainer, signum):
        _finish_guard(trainer)  # no collective left in flight when every rank leaves
        error = self.last_error = None
        try:
            path = self.save(trainer, "preempt", wait=True)
        except ck.CheckpointError as e:
            path, error = None, str(e)
        if path is None and error is None:
            error = self.last_error or "the checkpoint could not be written (see the warning above)"
        ck.remove_spares(self._spares)  # the job ends here: leave no hidden spare behind
        exc = preemption.Preempted(trainer.state.global_step, signum, path, error)
        handler = getattr(trainer, "_preemption_handler", None)
        if handler is not None:
            preemption.ignore_further_signals(handler.signals)
        if trainer.is_main and path is not None:
            self.log.warning("%s; exiting with status %d (%s)", exc, exc.exit_code, preemption.resume_hint(exc.signum))
        elif trainer.is_main:
            self.log.error("%s; exiting with status %d: the steps since the newest valid checkpoint are lost "
                           "(fix the checkpoint directory, then resume with --resume auto)", exc, exc.exit_code)
        raise exc

    # ------------------------------------------------------------------ state
    def state_dict(self):
        return {"best": self.best, "best_name": self.best_name, "monitor": self.monitor, "mode": self.mode}

    def load_state_dict(self, state):
        if not same_monitor(self, state, self.log, "checkpoint"):
            self.best = self.best_name = None
            return
        self.best = state.get("best")
        self.best_name = state.get("best_name")
