"""An ``async_save`` checkpoint at an epoch's end without a collective of its own.

A save gathers every rank's random state, running sums and stop request, and rank 0's outcome of the
previous write and metric (:meth:`~.checkpoint.ModelCheckpoint.save`). At an epoch's end the trainer
makes one allgather anyway, right after every callback's ``on_epoch_end``: the agreement on a stop
(:meth:`~distnn.train.trainer_agreement.RankAgreementMixin.exchange_at_epoch_end`). The save's gather
rides in it, one round trip an epoch fewer. What each rank sends is taken at the save point, as before;
rank 0 packs the checkpoint there too (the arrays copied, the state walked: later callbacks may change
the model, the optimizer or their own state), from what it knows by itself (its previous write's outcome
and its metric, so the best it records is the same); the ranks' part is added to it, and the write handed
to the background writer, once gathered. The checkpoint's files are the same bytes as a save with its own
gather writes. The save point follows every other callback's ``on_epoch_end`` (checkpoint callbacks run
last), so their stop requests are in it; one asked for by a callback that runs after it (another that runs
last, listed later) is not, as with a gather of its own: its request came after the save point. Where a
rank's part holds arrays (a replica of its own, PowerSGD's error feedback), or outside ``fit``'s epoch
ends, the save gathers by itself.

If a callback that runs after it raises in ``on_epoch_end``, no checkpoint of that epoch is written
(training ends on that error; its previous checkpoint is whole).
"""
from __future__ import annotations

import json
import time

from .. import checkpoint as ck


class _EpochEndSave:
    """What a save at the save point leaves to the exchange (see :meth:`EpochEndSave._save_at_epoch_end`)."""

    __slots__ = ("step", "had_pending", "previous", "job", "held")

    def __init__(self, step, had_pending, previous):
        self.step, self.had_pending, self.previous, self.job, self.held = step, had_pending, previous, None, 0.0


class EpochEndSave:
    """:class:`~.checkpoint.ModelCheckpoint`'s async epoch-end save through the trainer's stop agreement."""

    def _rides_epoch_end(self, trainer, reason, wait) -> bool:
        """Whether this save may send its gather with the epoch end's stop agreement (every rank alike:
        the trainer's configuration decides, not a rank's own state)."""
        return (self.async_save and not wait and reason == "epoch" and hasattr(trainer, "exchange_at_epoch_end")
                and not getattr(trainer, "own_replicas", False)
                and getattr(getattr(trainer, "ddp", None), "powersgd", None) is None)

    def _save_at_epoch_end(self, trainer, t0, mine, had_pending, previous, logs) -> bool:
        """Collective (by the trainer's exchange): :meth:`~.checkpoint.ModelCheckpoint.save` at an epoch end,
        ``mine`` this rank's part of the gather. False when the trainer takes no payload now (the caller
        gathers by itself)."""
        save = _EpochEndSave(trainer.state.global_step, had_pending, previous)
        key = f"ModelCheckpoint#{self._flag_bit}"  # (the same on every rank: the callbacks' order)
        if not trainer.exchange_at_epoch_end(key, mine, lambda ranks: self._epoch_end_received(trainer, ranks, save)):
            return False
        if trainer.is_main:
            # what every rank does with rank 0's outcome and metric once gathered, done here by rank 0 alone
            # first: the checkpoint holds the best that follows from them (its own "best", if it improves)
            if had_pending:
                save.previous = self._count(trainer, previous)
            if save.previous is None or save.previous["ok"] or self.on_error != "stop":  # (else all raise first)
                self._best_before = (self.best, self.best_name)
                metric = mine["metric"]
                if self.save_best and self._improves(metric):
                    self.best, self.best_name = float(metric), ck.step_name(save.step)
                try:
                    save.job = self._snapshot(trainer, "epoch", None, logs, mine)
                except (TypeError, ValueError) as e:  # a state that cannot be stored: a bug, reported as a failure
                    save.job = e
        save.held = time.perf_counter() - t0
        return True

    def _epoch_end_received(self, trainer, ranks, save):
        """Every rank, in the trainer's stop agreement: the gathered ``ranks`` of the epoch-end save ``save``
        taken as :meth:`~.checkpoint.ModelCheckpoint.save` takes its own gather's, rank 0's write handed on."""
        t0 = time.perf_counter()
        if save.had_pending:  # may raise on every rank (on_error="stop")
            if trainer.is_main:
                self._act_on(trainer, save.previous)  # (counted at the save point)
            else:
                self._accept(trainer, ranks[0]["previous"])
        if not trainer.is_main:
            self._best_before = (self.best, self.best_name)
            if self.save_best and self._improves(ranks[0]["metric"]):
                self.best, self.best_name = float(ranks[0]["metric"]), ck.step_name(save.step)
        for r in ranks:
            r.pop("previous", None)
            r.pop("metric", None)
        if trainer.is_main:
            job = save.job
            if not isinstance(job, Exception):
                try:
                    _add_ranks(job, ranks)
                except (TypeError, ValueError) as e:
                    job = e
            self._pending = self._submit(job)
        else:
            self._pending = True
        self._writes += 1
        self._submitted_at = save.step
        self.timings.append(save.held + time.perf_counter() - t0)


def _add_ranks(job, ranks) -> None:
    """Complete a snapshot taken without the ranks' part (``_snapshot(..., ranks=None, ...)``): ``ranks`` as
    the state's last top-level key, as a snapshot with them has it, and the manifest's ``stop_agreed``."""
    _, files, manifest, _ = job
    skeleton, arrays = ck.encode_state({"ranks": ranks})
    if arrays:  # (_rides_epoch_end keeps a rank's arrays out of this path)
        raise ValueError(f"a rank's part of the checkpoint holds arrays ({sorted(arrays)}): not added afterwards")
    text = files[ck.TRAINER_JSON]
    if type(text) is ck.PendingText:  # (its text is made by the writer, from this skeleton)
        text.skeleton["ranks"] = skeleton["ranks"]
    else:  # the text made already: a JSON object's last member added before its closing brace
        tail = json.dumps(skeleton["ranks"], separators=(",", ":"))
        files[ck.TRAINER_JSON] = bytes(text[:-1]) + b',"ranks":' + tail.encode() + b"}"
    manifest["stop_agreed"] = any(r["stop_requested"] for r in ranks)
