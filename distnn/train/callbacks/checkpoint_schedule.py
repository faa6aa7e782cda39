"""When :class:`~.checkpoint.ModelCheckpoint` saves: every N epochs, and every N seconds by rank 0's clock,
which every rank follows through its bit of the step flags (see :mod:`distnn.train.step_guard`)."""
from __future__ import annotations

from .. import step_guard

#: checkpoint callbacks on one trainer: each has a bit of the SAVE_DUE step flag and two of WRITE_DONE ("done",
#: and MAX_CALLBACKS places up "failed"), floats that hold whole numbers exactly below 2**24 also when the
#: flags ride in a float32 gradient bucket
MAX_CALLBACKS = 12


class CheckpointSchedule:
    """:class:`~.checkpoint.ModelCheckpoint`'s schedule: whether a save is due, and its step flags."""

    def _time_due(self, trainer) -> bool:
        """``every_n_seconds``, at a step's end: whether every rank saves now, by rank 0's clock (no collective).

        Rank 0 sends "due" with the next step's gradient exchange (the step flags), and every rank
        reads it there alike: the save comes one step after rank 0's clock said so. Without such an
        exchange on several ranks it is left to the epoch's end (:meth:`_time_due_at_end`).
        """
        if trainer.world == 1:
            return self.clock() - self._last_save_time >= self.every_n_seconds
        carrier = step_guard.step_flags_carrier(trainer)
        if carrier is None:
            return False
        if int(carrier.step_flags_sum[step_guard.SAVE_DUE_FLAG]) & self._flag_bit:  # (rank 0's bits: a sum of one)
            return True
        if trainer.is_main and self.clock() - self._last_save_time >= self.every_n_seconds:
            self._set_flag(carrier, step_guard.SAVE_DUE_FLAG)
        return False

    def _time_due_at_end(self, trainer) -> bool:
        """``every_n_seconds`` on several ranks with no per-step exchange to carry it: agreed at an epoch's end."""
        if not self.every_n_seconds or trainer.world == 1 or step_guard.step_flags_carrier(trainer) is not None:
            return False
        return bool(trainer.agree(self.clock() - self._last_save_time >= self.every_n_seconds))

    def _epoch_due(self, trainer) -> bool:
        n = self.every_n_epochs
        return bool(n) and (trainer.state.epoch + 1) % n == 0

    def _set_flag(self, carrier, slot, failed: bool = False):
        """Rank 0: send this callback's bit of ``slot`` (and for WRITE_DONE_FLAG, ``failed``: its "failed" bit)
        with the next step's exchange."""
        bits = self._flag_bit | (self._flag_bit << MAX_CALLBACKS if failed else 0)
        carrier.step_flags[slot] = int(carrier.step_flags[slot]) | bits

    def _clear_flags(self, trainer, slots=(step_guard.SAVE_DUE_FLAG, step_guard.WRITE_DONE_FLAG)):
        """Rank 0: take back this callback's flags not yet sent (see save and settle)."""
        carrier = step_guard.step_flags_carrier(trainer) if trainer.is_main and trainer.world > 1 else None
        if carrier is not None:
            mine = self._flag_bit | self._flag_bit << MAX_CALLBACKS
            for slot in slots:
                carrier.step_flags[slot] = int(carrier.step_flags[slot]) & ~mine


def _cut_by_max_steps(trainer) -> bool:
    """Whether ``train.max_steps`` ends training inside the current epoch (before its last step)."""
    max_steps, st = getattr(trainer, "max_steps", None), trainer.state
    return max_steps is not None and st.global_step >= max_steps and st.batch_in_epoch < trainer.steps_per_epoch
