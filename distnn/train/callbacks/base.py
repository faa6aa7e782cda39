"""The callback protocol of :class:`~distnn.train.trainer.Trainer`.

A callback sees the trainer at fixed points of the loop. Every rank calls every
callback at the same points in the same order, so a callback may run
collectives (``trainer.agree``) — but never inside ``if trainer.is_main``.
Side effects that must happen once (files, the progress bar) are guarded by
``trainer.is_main``; decisions that change the run (stop, LR change, restore)
are taken on values every rank agrees on.

State that a resumed run needs lives in ``state_dict()``/``load_state_dict()``;
the trainer collects it under the callback's ``state_key``.

Checkpoint callbacks run last (PyTorch Lightning's convention): in every hook, the callbacks whose
``runs_last`` is true are called after all the others, in the order they were given among themselves;
the others in the order given. A checkpoint then holds the whole outcome of the point it is taken at:
early stopping's count and the stop it asks for at an epoch's end, a per-step LR schedule's step.
"""
from __future__ import annotations

import math


class Callback:
    """Base class: override the hooks you need. ``logs`` is a plain dict of floats."""

    #: key under which the trainer stores this callback's state (defaults to the class name)
    state_key: str | None = None
    #: True for a checkpoint callback (and one that ends a step for a preemption in its place): its hooks run
    #: after every other callback's, so what it saves holds their outcome (see :class:`CallbackList`)
    runs_last: bool = False

    def on_train_begin(self, trainer) -> None:
        pass

    def on_epoch_begin(self, trainer) -> None:
        pass

    def on_batch_end(self, trainer, logs: dict) -> None:
        """After each optimizer step. ``logs``: ``loss`` (this rank's batch loss, lazy), ``samples``, ``step``."""

    def on_epoch_end(self, trainer, logs: dict) -> None:
        """After training and validation of an epoch; ``logs`` holds the epoch's agreed metrics."""

    def on_loop_end(self, trainer) -> None:
        """The epoch loop has ended (the last epoch, ``max_steps`` or an agreed stop; at once when nothing
        was left to train), before any ``on_train_end``: the state training ends in (a checkpoint's)."""

    def on_train_end(self, trainer, logs: dict) -> None:
        pass

    def on_exception(self, trainer, exception: BaseException) -> None:
        """``fit`` is ending with ``exception`` (on this rank; it is re-raised after the callbacks).

        For local clean-up only (close a bar, finish a file, drop a temporary
        directory): never a collective, since the other ranks may be anywhere.
        """

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class CallbackList:
    """Calls each callback's hooks: every callback whose ``runs_last`` is false, in the order given, then
    those whose ``runs_last`` is true (the checkpoint callbacks), in the order given among themselves.

    ``callbacks`` stays the list as given (``append`` and inserting into it change it); the order the hooks
    are called in, :meth:`in_call_order`, follows it (taken again whenever the list changed). The state
    keys follow the list as given, not the call order, so a checkpoint written before checkpoint callbacks
    ran last still loads.
    """

    def __init__(self, callbacks=()):
        self.callbacks = list(callbacks)
        self._ordered_from, self._order = None, []

    def append(self, cb):
        self.callbacks.append(cb)

    def __iter__(self):
        return iter(self.callbacks)

    def __len__(self):
        return len(self.callbacks)

    def in_call_order(self) -> list:
        """The callbacks in the order every hook calls them: the checkpoint callbacks (``runs_last``) last."""
        if self._ordered_from != self.callbacks:  # (the list changed since: a hook per step must not re-sort it)
            last = [getattr(cb, "runs_last", False) for cb in self.callbacks]  # (duck-typed callbacks: not last)
            self._order = [cb for cb, at_end in zip(self.callbacks, last) if not at_end] + \
                [cb for cb, at_end in zip(self.callbacks, last) if at_end]
            self._ordered_from = list(self.callbacks)
        return self._order

    def on_train_begin(self, trainer):
        for cb in self.in_call_order():
            cb.on_train_begin(trainer)

    def on_epoch_begin(self, trainer):
        for cb in self.in_call_order():
            cb.on_epoch_begin(trainer)

    def on_batch_end(self, trainer, logs):
        for cb in self.in_call_order():
            cb.on_batch_end(trainer, logs)

    def on_epoch_end(self, trainer, logs):
        for cb in self.in_call_order():
            cb.on_epoch_end(trainer, logs)

    def on_loop_end(self, trainer):
        for cb in self.in_call_order():
            cb.on_loop_end(trainer)

    def on_train_end(self, trainer, logs):
        for cb in self.in_call_order():
            cb.on_train_end(trainer, logs)

    def on_exception(self, trainer, exception):
        """Every callback's clean-up runs; one that fails is noted on ``exception``, which stays the error."""
        for cb in self.in_call_order():
            try:
                cb.on_exception(trainer, exception)
            except Exception as e:  # noqa: BLE001 (the original error must not be masked by a clean-up's)
                exception.add_note(f"(and {type(cb).__name__}.on_exception failed: {type(e).__name__}: {e})")

    def _keys(self):
        keys, seen = [], {}
        for cb in self.callbacks:
            k = cb.state_key or type(cb).__name__
            seen[k] = seen.get(k, 0) + 1
            keys.append(k if seen[k] == 1 else f"{k}#{seen[k]}")
        return keys

    def state_dict(self) -> dict:
        return {k: cb.state_dict() for k, cb in zip(self._keys(), self.callbacks)}

    def load_state_dict(self, state: dict) -> None:
        for k, cb in zip(self._keys(), self.callbacks):
            if k in state:
                cb.load_state_dict(state[k])


def monitor_mode(monitor: str, mode: str) -> str:
    """'min' or 'max' for a monitored metric; 'auto' picks max for accuracy-like names."""
    if mode not in ("min", "max", "auto"):
        raise ValueError(f"mode must be 'min', 'max' or 'auto', got {mode!r}")
    if mode == "auto":
        return "max" if any(s in monitor for s in ("acc", "f1", "precision", "recall")) else "min"
    return mode


def metric_counts(trainer, monitor: str) -> bool:
    """Whether monitors judge this epoch's ``monitor``: not a validation metric of an epoch that was not
    validated (``eval_every`` > 1), nor of the last epoch's extra validation off that schedule (a report)."""
    if not monitor.startswith("val_") or trainer is None or getattr(trainer, "val_data", None) is None:
        return True
    return bool(getattr(trainer, "validation_counts", getattr(trainer, "evaluated", True)))


def final_report(trainer, monitor: str, logs) -> float | None:
    """Collective: ``monitor`` of the epoch training ended with (``logs``, its record) when that epoch's
    validation was the report off the ``eval_every`` schedule, agreed from rank 0; None otherwise, or when
    the value is not finite.

    Monitors skip that report while training (see :func:`metric_counts`). At the end it scores the weights
    the run ends with, so the run's best, early stopping's restored weights and the best checkpoint each
    count it then, after the last checkpoint's state was taken: a run resumed with more epochs still goes
    on from the best judged on schedule, as the longer run does."""
    every = int(getattr(trainer, "eval_every", 1))
    if not logs or every == 1 or not monitor.startswith("val_") or monitor not in logs \
            or int(logs.get("epoch", 0)) % every == 0:
        return None
    value = float(trainer.agree(float(logs[monitor])))
    return value if math.isfinite(value) else None


def get_metric(logs: dict, monitor: str, who: str, trainer=None) -> float | None:
    """The monitored value, or None on an epoch whose validation monitors do not judge (see :func:`metric_counts`)."""
    if not metric_counts(trainer, monitor):
        return None
    if monitor not in logs:
        raise ValueError(f"{who}: monitored metric {monitor!r} is not available; epoch metrics are {sorted(logs)}")
    return float(logs[monitor])


def same_monitor(callback, state: dict, log, what: str) -> bool:
    """Whether ``state`` (saved by a callback tracking a best ``monitor`` value) tracked ``callback``'s
    metric and mode; if not, warns that ``what`` starts afresh. (State saved before monitor and mode
    were stored counts as the same.)

    A best value of another metric (or of the other direction) would be compared with this one's
    values: the wrong checkpoint kept as the best, or patience counted against the wrong number.
    """
    saved = (state.get("monitor", callback.monitor), state.get("mode", callback.mode))
    if saved == (callback.monitor, callback.mode):
        return True
    log.warning("%s: the monitored metric is now %s (%s), it was %s (%s): its best starts afresh", what,
                callback.monitor, callback.mode, *saved)
    return False
