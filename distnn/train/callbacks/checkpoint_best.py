"""The best checkpoint of :class:`~.checkpoint.ModelCheckpoint`: which one it is, and its ``best`` pointer."""
from __future__ import annotations

import math
import os

from .. import checkpoint as ck


class BestCheckpoint:
    """:class:`~.checkpoint.ModelCheckpoint`'s ``best``: whether a value improves on it, and pointing at it."""

    def _repoint_best(self) -> None:
        """Rank 0, resuming in this root: ``best`` names the best checkpoint the restored state holds. The end
        of an earlier session may have pointed it at its final report's (see on_train_end), which the run going
        on does not count, nor protect from retention."""
        if not self.save_best or self.best_name is None or not os.path.isdir(os.path.join(self.root, self.best_name)):
            return
        if ck.read_pointer(self.root, ck.BEST) != self.best_name:
            try:
                ck.write_pointer(self.root, ck.BEST, self.best_name, fsync=self.fsync)
            except OSError as e:  # (rank 0 alone here: no failure to agree on; the next best re-points it)
                self.log.warning("cannot point %s/best at %s: %s", self.root, self.best_name, e.strerror or e)

    def _mark_best(self, trainer, value: float) -> None:
        """Collective: make the checkpoint of this step, already written, the best one (``best`` pointer only).

        Its write (possibly in the background) is settled first: the pointer names only a checkpoint
        every rank agreed is whole. A failure to write the pointer is handled as a failed save.
        """
        self.settle(trainer)
        name = ck.step_name(trainer.state.global_step)
        if self.last_path is None or os.path.basename(os.path.normpath(self.last_path)) != name:
            return  # that checkpoint failed (on_error = "continue"): it is no best
        result = None
        if trainer.is_main:
            try:
                ck.write_pointer(self.root, ck.BEST, name, fsync=self.fsync)
                result = {"ok": True}
            except OSError as e:
                result = {"ok": False, "error": f"cannot point {self.root!r}/best at {name}: {e.strerror or e}"}
        result = trainer.agree(result)
        if result["ok"]:
            self.best, self.best_name = float(value), name
            return
        self._best_before = (self.best, self.best_name)
        self._accept(trainer, result)  # a failure: counted, then stop or warn (on_error)

    def _improves(self, value) -> bool:
        return value is not None and math.isfinite(value) and (
            self.best is None or (value < self.best if self.mode == "min" else value > self.best))
