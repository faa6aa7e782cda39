"""The trainer's state: where a run is, and everything a resumed run needs.

:class:`TrainState` is the run's position and counters (epoch, step, best
metric, stop request, the epoch's running sums). :class:`TrainerStateMixin`
gives :class:`~distnn.train.trainer.Trainer` its checkpoint methods:
``state_dict``/``load_state_dict`` (the whole run state, this rank's RNG
state included) and ``replica_state``/``load_replica_state`` (a rank's own
replica when it trains without DataParallel). Both are re-exported by
:mod:`distnn.train.trainer`.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields

from distnn import random as dn_random
from distnn.nn.module import Module
from distnn.optim.optimizer import Optimizer


@dataclass
class TrainState:
    """Where the run is. ``epoch`` is 0-based; ``batch_in_epoch`` counts optimizer steps done in it."""

    epoch: int = 0
    global_step: int = 0
    batch_in_epoch: int = 0
    best_metric: float | None = None
    best_epoch: int = -1            # 0-based epoch of best_metric, -1 before any
    stop_requested: bool = False
    stop_reason: str = ""
    stopped_early: bool = False
    elapsed: float = 0.0            # training wall time of earlier sessions (resume)
    skipped_steps: int = 0          # optimizer steps skipped by the step guard (non-finite values)
    scaler_skipped_steps: int = 0   # steps the loss scaler skipped (float16 overflow, precision "16-mixed")
    # running sums of the current epoch's training metrics (this rank's share)
    epoch_sums: dict = field(default_factory=lambda: {"loss": 0.0, "correct": 0.0, "count": 0.0, "samples": 0.0,
                                                      "time": 0.0})


class TrainerStateMixin:
    """The :class:`~distnn.train.trainer.Trainer`'s checkpoint methods (state, history, model, optimizer,
    callbacks, RNG and DataParallel state are the trainer's attributes)."""

    def state_dict(self, *, copy: bool = True, rng: dict | None = None) -> dict:
        """Everything a resumed run needs (this rank's RNG state included).

        ``model``/``optimizer`` are those objects' state dicts (``copy=False``:
        their arrays uncopied, valid until the next step, and ``history``'s
        records the trainer's own, to be read, not changed); ``callbacks``
        maps each callback's key to its state; ``rng`` holds this rank's
        distnn.random state (dropout) and the states of generators given to
        the model's layers. Data order and augmentation are derived from
        (seed, epoch, batch), so they need no saved state. ``rng``: that
        ``{"distnn": ..., "modules": ...}`` read already, at this very point
        (a checkpoint's gather holds it): not read again (a walk of the model).
        """
        state = _fields_of(self.state)
        if getattr(self, "_fit_started", None) is not None:  # saved during fit: this session's time so far too
            state["elapsed"] += time.perf_counter() - self._fit_started
        ddp = self.ddp
        return {"state": state, "history": [dict(r) for r in self.history] if copy else list(self.history),
                "model": _state_dict_of(self.model, copy), "optimizer": _state_dict_of(self.optimizer, copy),
                "callbacks": self.callbacks.state_dict(),
                "rng": rng if rng is not None else {"distnn": dn_random.get_state(),
                                                    "modules": dn_random.module_generator_states(self.model)},
                "seed": self.seed, "world": self.world, "batch_size": self.batch_size,
                # (a resume on another number of ranks warns about these: see callbacks/resume.py)
                "per_rank_batch_norm": per_rank_batch_norms(self.model, self.world),
                # DataParallel's global sample count guess: it weights the next step's gradients
                "data_parallel": ddp.sync_state_dict() if ddp is not None else dict(self._pending_ddp_state or {}),
                # the loss scaler's scale and growth tracker (precision "16-mixed" only: no key with "32")
                **({"grad_scaler": self.amp.state_dict()} if self.amp.enabled else {})}

    def replica_state(self) -> dict | None:
        """This rank's model and optimizer state (copies) when its replica is its own (``data_parallel=False``
        on several ranks), for a checkpoint to restore on this rank; None otherwise (the replicas are rank 0's)."""
        if not self.own_replicas:
            return None
        replica = {"model": _state_dict_of(self.model, True), "optimizer": _state_dict_of(self.optimizer, True)}
        if self.amp.enabled:  # (its own gradients overflow on their own: its loss scale and skips are its own)
            replica["grad_scaler"] = self.amp.state_dict()
            replica["scaler_skipped_steps"] = self.state.scaler_skipped_steps
        return replica

    def load_replica_state(self, replica: dict) -> None:
        """Restore :meth:`replica_state` output (after :meth:`load_state_dict`, which loads rank 0's)."""
        self.model.load_state_dict(replica["model"])
        self.optimizer.load_state_dict(replica["optimizer"])
        if self.amp.enabled and replica.get("grad_scaler"):
            self.amp.load_state_dict(replica["grad_scaler"])
            self.state.scaler_skipped_steps = int(replica.get("scaler_skipped_steps", 0))

    def load_state_dict(self, sd: dict) -> None:
        """Restore :meth:`state_dict` output; ``fit()`` then continues where it stopped."""
        self.state = TrainState(**sd["state"])
        self.history = [dict(r) for r in sd["history"]]
        self.model.load_state_dict(sd["model"])
        self.optimizer.load_state_dict(sd["optimizer"])
        self.callbacks.load_state_dict(sd.get("callbacks", {}))
        rng = sd.get("rng", {})
        if "distnn" in rng:
            dn_random.set_state(rng["distnn"])
        dn_random.set_module_generator_states(self.model, rng.get("modules", {}))
        # (none saved: "32" or an older distnn, the scaler starts afresh; saved but "32" now: dropped, logged)
        self.amp.load_state_dict(sd.get("grad_scaler"), self.log if self.is_main else None)
        self._pending_ddp_state = dict(sd.get("data_parallel") or {})
        self._apply_ddp_state()

    def _apply_ddp_state(self) -> None:
        """The restored DataParallel state, now or once ``fit`` has built the wrapper."""
        if self.ddp is not None and self._pending_ddp_state:
            self.ddp.load_sync_state_dict(self._pending_ddp_state)
            self._pending_ddp_state = None


def per_rank_batch_norms(model, world: int) -> list[str]:
    """The names of ``model``'s batch-norm layers that normalize by each rank's own batch statistics on
    ``world`` ranks (plain BatchNorm; SyncBatchNorm's statistics span the ranks): with them, training
    depends on the number of ranks. Empty on one rank."""
    if world == 1:
        return []
    from distnn.distributed.sync_batchnorm import SyncBatchNorm
    from distnn.nn.normalization import _BatchNorm

    return [name for name, m in model.named_modules() if isinstance(m, _BatchNorm) and not isinstance(m, SyncBatchNorm)]


_PLAIN = frozenset((float, int, str, bool, type(None)))


def _fields_of(state: TrainState) -> dict:
    """``dataclasses.asdict(state)``, without its generic deep copy where every value is plain (as in
    training: a checkpoint calls this at every save, and asdict's walk was a tenth of a save's time)."""
    if type(state) is not TrainState:
        return asdict(state)
    out = {f.name: getattr(state, f.name) for f in _FIELDS}
    sums = out["epoch_sums"]
    if type(sums) is not dict or not all(type(v) in _PLAIN for k, v in out.items() if k != "epoch_sums") \
            or not _PLAIN.issuperset(map(type, sums)) or not _PLAIN.issuperset(map(type, sums.values())):
        return asdict(state)
    out["epoch_sums"] = dict(sums)  # (the rest are immutable: asdict's copies of them are themselves)
    return out


_FIELDS = fields(TrainState)


def _state_dict_of(obj, copy: bool) -> dict:
    """``obj.state_dict(copy=False)`` where ``obj`` has distnn's own method (a user's override may not
    take ``copy``: it is called as written, and its arrays are copied as before)."""
    method = type(obj).state_dict
    if not copy and (method is Module.state_dict or method is Optimizer.state_dict):
        return obj.state_dict(copy=False)
    return obj.state_dict()
