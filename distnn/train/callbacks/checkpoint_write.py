"""Rank 0's side of a :class:`~.checkpoint.ModelCheckpoint` save: the state packed into bytes at the save
point, then written, pointed at and retained, in this thread, a background thread or the writer process
(:mod:`~distnn.train.checkpoint.writer_process`)."""
from __future__ import annotations

import time

from .. import checkpoint as ck
from ..checkpoint import writer_process


class CheckpointWriting:
    """:class:`~.checkpoint.ModelCheckpoint`'s writes on rank 0 (never collective)."""

    def _snapshot(self, trainer, reason, ranks, logs, mine=None):
        """Rank 0: everything to write, as bytes, so training may go on while it is written.

        ``ranks`` None: every rank's part (``ranks``, and the manifest's ``stop_agreed``) is added later
        (:meth:`~.checkpoint_epoch_end.EpochEndSave._add_ranks`), once gathered. ``mine``: this rank's
        part of the save's gather, whose random states, read at this save point, are the state's too."""
        st = trainer.state
        # uncopied arrays: the serializer below copies each once, into its reused npz buffers (a
        # state_dict's fresh copies page-faulted in: 2.2 of a save's 3 ms on a 4 MB state here);
        # the random states as the gather read them (reading them again walked the model a second time)
        rng = None if mine is None else {"distnn": mine["rng"], "modules": mine["module_rng"]}
        state = trainer.state_dict(copy=False, rng=rng)
        if ranks is not None:
            state["ranks"] = ranks
        epoch_end = reason == "epoch" or (len(trainer.history) == st.epoch + 1)
        metrics = {k: v for k, v in (logs or {}).items() if isinstance(v, (int, float))}
        manifest = {
            "reason": reason, "global_step": st.global_step, "epoch": st.epoch, "batch_in_epoch": st.batch_in_epoch,
            "steps_per_epoch": trainer.steps_per_epoch, "epoch_end": bool(epoch_end),
            "global_sample_position": min(st.batch_in_epoch * trainer.batch_size, len(trainer.train_data)),
            "world_size": trainer.world, "global_batch_size": trainer.batch_size,
            "stop_agreed": None if ranks is None else any(r["stop_requested"] for r in ranks), "metrics": metrics,
            "best": {"monitor": self.monitor, "value": self.best, "name": self.best_name},
        }
        # The arrays are copied here, straight into npz images reused from the previous save (safe: that
        # save's write has been joined), and the state walked into a JSON-able skeleton of its own; what is
        # left (trainer.json's text, the CRC-32s, hashing, writing, fsync) is the writer's (_write).
        if self._serializer is None or self._serializer_extra is not self.extra_files:
            self._serializer, self._serializer_extra = ck.Serializer(self.extra_files), self.extra_files
        return st.global_step, self._serializer(state, crc=False, text=False), manifest, self._serializer

    def _write_into(self, job):
        result = {**self._write(job, elsewhere=self._write_elsewhere), "background": True}
        if result["ok"]:  # say so when it happens (the agreement comes one save later)
            self._log_saved(result)
            result["logged"] = True
        return result

    def _log_saved(self, result):
        self.log.info("checkpoint %s (%.2f MB, %.0f ms)%s", result["path"], result["bytes"] / 1e6,
                      result["seconds"] * 1e3, f"; removed {', '.join(result['removed'])}" if result["removed"] else "")

    def _write(self, job, elsewhere: bool = False) -> dict:
        """Rank 0: write, point ``best``/``latest``, apply retention. Never raises.

        ``elsewhere``: in this process's writer process (:mod:`~distnn.train.checkpoint.writer_process`),
        whose writes do not hold this process's interpreter lock; in this thread if it cannot be started.
        """
        if isinstance(job, Exception):
            return {"ok": False, "error": f"cannot serialize the training state: {job}"}
        step, files, manifest, serializer = job
        t0 = time.perf_counter()
        try:
            ck.fill_text(files)  # (trainer.json's text: off the training thread when written in the background)
        except (TypeError, ValueError) as e:
            return {"ok": False, "error": f"cannot serialize the training state: {e}"}
        options = {"fsync": self.fsync, "update_best": self.best_name == ck.step_name(step), "reuse": serializer.reuse,
                   "keep_last": self.keep_last, "protect": [self.best_name] if self.save_best else []}
        process = self._writer_process() if elsewhere else None
        if process is not None:
            serializer.fill_crc(files)  # (the npz images' CRC-32s: into this process's buffers, before they go)
            result = process.write(self.root, step, files, manifest, spares=list(self._spares), **options)
            # (spares unknown if it died: a missing spare is not recycled)
            self._spares[:] = result.pop("spares", self._spares)
            if result["ok"]:
                serializer.note_written(result["path"])
        else:
            # the npz CRC-32s here, not at the save point, beside the SHA-256s (both release the GIL)
            result = ck.write_and_retain(self.root, step, files, manifest, prepare=serializer.crc_fillers(files),
                                         spares=self._spares, on_written=serializer.note_written, **options)
        if not result["ok"]:
            return result
        return {**result, "bytes": sum(len(b) for b in files.values()), "seconds": time.perf_counter() - t0,
                "step": step}

    def _writer_process(self):
        """This process's writer process, or None (with a warning, once) when it cannot be started."""
        try:
            return writer_process.writer_process()
        except OSError as e:
            if not self._warned_process:
                self._warned_process = True
                self.log.warning("cannot start a checkpoint writer process (%s): writing from a thread of this one",
                                 e.strerror or e)
            return None
