"""Agreeing on a checkpoint write's outcome, for :class:`~.checkpoint.ModelCheckpoint`: rank 0's result
(a saved path, or the error) taken by every rank alike, and acted on alike (``on_error``); with
``async_save``, at the first step every rank knows the background write has ended (a success by the step
flags alone; a failure's message from rank 0 by a collective every rank makes at that step).

Apart from :mod:`.checkpoint` (when and what to save) because it is what follows a write, whichever
save started it (a due save, the best, the end, a preemption); the callback mixes it in.
"""
from __future__ import annotations

import os

from .. import checkpoint as ck
from .. import step_guard
from .background_writer import Job
from .checkpoint_schedule import MAX_CALLBACKS
from .resume import agreed


class CheckpointOutcome:
    """:class:`~.checkpoint.ModelCheckpoint`'s agreement on rank 0's writes (mixed into it, whose ``_pending``,
    ``_flag_bit``, counters and ``on_error`` it uses)."""

    def _settle_if_finished(self, trainer):
        """Async: agree on rank 0's finished background write at the first step every rank knows of it."""
        if trainer.world == 1:
            if self._pending.done():
                self.settle(trainer)
            return
        carrier = step_guard.step_flags_carrier(trainer)
        if carrier is None:
            return  # no per-step collective to ride in: agreed at the next save or at the end
        done = int(carrier.step_flags_sum[step_guard.WRITE_DONE_FLAG])  # (rank 0's bits: a sum of one)
        if done & self._flag_bit:
            # rank 0 said so in this step's exchange: every rank is here alike, and knows whether it failed
            if done & (self._flag_bit << MAX_CALLBACKS):
                self.settle(trainer)  # (rank 0's error message: a collective, every rank in it)
            else:
                self._settle_written(trainer)
        elif trainer.is_main and self._pending.done():  # sent with the next step's exchange
            self._set_flag(carrier, step_guard.WRITE_DONE_FLAG, failed=not self._pending.result()["ok"])

    def _settle_written(self, trainer):
        """Rank 0's background write succeeded, as the step flags told every rank alike: agreed without a
        collective (every rank knows the path: this root's checkpoint of the step the write is of)."""
        self._clear_flags(trainer, (step_guard.WRITE_DONE_FLAG,))
        if trainer.is_main:
            result = self._join_pending()
        else:
            result = {"ok": True, "path": os.path.join(self.root, ck.step_name(self._submitted_at))}
        self._pending = None
        return self._accept(trainer, result)

    def settle(self, trainer):
        """Collective: wait for a background write and agree on its outcome (no-op when none is pending)."""
        if self._pending is None:
            return None
        self._clear_flags(trainer, (step_guard.WRITE_DONE_FLAG,))  # (its write is agreed on here)
        result = self._join_pending() if trainer.is_main else None
        self._pending = None
        return self._agree(trainer, result)

    def finish_local(self, trainer):
        """Local: wait for this rank's background write in flight, then act on its outcome here alone.

        For :func:`~.checkpoint_setup.detach`, which is not collective: rank 0 (the one rank with a write in
        flight) waits for it, so its checkpoint is whole and ``latest`` names it before the caller goes on
        (exits, reads the run directory), then acts on it as a fit's end does (``on_error="stop"``: raises
        :class:`~distnn.train.checkpoint.CheckpointError`; ``"continue"``: warns). The other ranks have
        nothing in flight and forget the write's marker. Idempotent: a write is finished once. A write a fit
        that raised waited for already (``on_exception``) is only warned about if it failed: the fit's error is
        the one the caller has (a ``finally: detach(trainer)`` must not replace it).
        """
        if self._pending is None:
            return None
        after_error = self._pending is self._joined_on_exception
        result = self._join_pending()
        self._clear_flags(trainer, (step_guard.WRITE_DONE_FLAG,))
        self._pending = None
        if result is None:
            return None
        result = self._count(trainer, result)
        if result["ok"]:
            if not result.get("logged"):
                self._log_saved(result)
            return result["path"]
        if self.on_error == "stop" and not after_error:  # (this rank's alone: detach is local)
            raise ck.CheckpointError(f"{result['error']} (checkpoint.on_error = \"stop\"; set it to "
                                     f"\"continue\" to train on without checkpoints)")
        self.log.warning("checkpoint failed (%s): %s", "after training ended on an error" if after_error
                         else "checkpoint.on_error = \"continue\"", result["error"])
        return None

    def _join_pending(self):
        """Rank 0: the result of the background write in flight (None when there is none)."""
        if not isinstance(self._pending, Job):
            return None
        return self._pending.result()

    def _agree(self, trainer, result):
        return self._accept(trainer, trainer.agree(result))

    def _accept(self, trainer, result):
        """Act on rank 0's outcome of a write, identically on every rank."""
        return self._act_on(trainer, self._count(trainer, result))

    def _count(self, trainer, result):
        """The bookkeeping of :meth:`_accept` (saves, failures, the best back to before a failed save), without
        a word or an error: rank 0 counts its own write's outcome at an epoch-end save (the best it goes on
        with is in that checkpoint), and acts on it with every rank later (checkpoint_epoch_end)."""
        if not result["ok"] and result.get("background"):
            result = {**result, "error": f"{result['error']} (written in the background from global step "
                                         f"{self._submitted_at}; agreed at step {trainer.state.global_step})"}
        if result["ok"]:
            self.saves += 1
            self.last_path = result["path"]
            return result
        self.failures += 1
        self.last_error = result["error"]
        self.best, self.best_name = self._best_before
        return result

    def _act_on(self, trainer, result):
        """The rest of :meth:`_accept`, once :meth:`_count` has counted ``result``: say so, and stop or go on."""
        if result["ok"]:
            # (said by rank 0, which wrote it: under --log-all-ranks another rank's "checkpoint PATH (MB, ms)"
            # read as a write of its own)
            if trainer.is_main and not result.get("logged"):
                self._log_saved(result)
            return result["path"]
        if self.on_error == "stop":
            _finish_guard(trainer)
            raise agreed(ck.CheckpointError(f"{result['error']} (checkpoint.on_error = \"stop\"; set it to "
                                             f"\"continue\" to train on without checkpoints)"), trainer)
        self.log.warning("checkpoint failed, training continues without it (checkpoint.on_error = \"continue\"): "
                         "%s", result["error"])
        return None


def _finish_guard(trainer):
    guard = getattr(trainer, "step_guard", None)
    if hasattr(guard, "finish"):
        guard.finish()
