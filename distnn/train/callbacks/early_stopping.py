"""Early stopping on a validation metric, decided identically on every rank."""
from __future__ import annotations

import math

from ..logging_utils import get_logger
from .base import Callback, final_report, get_metric, monitor_mode, same_monitor


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` evaluations
    (epochs, or every ``eval_every``-th epoch when validation is not every epoch).

    ``min_delta`` governs patience alone (as Keras's and Lightning's): an
    evaluation resets the count when it beats the last one that reset it by
    more than ``min_delta``. The best epoch is the best value seen, however
    small the improvement (``best``, ``best_epoch``): the epoch the run's
    summary.json calls best and whose weights the ``best`` checkpoint holds.
    With ``restore_best_weights`` the model ends with that epoch's weights
    (whether it stopped early or ran out of epochs). Values that are not
    finite (nan, inf, -inf) count as no improvement, as for the trainer's best.

    The decision is taken on rank 0's value of the metric, broadcast to all
    ranks (``trainer.agree``), so every rank counts the same patience and stops
    at the same epoch even if their metric values differed. (They should not:
    validation metrics are reduced from sums and counts, so they are equal.)
    """

    state_key = "early_stopping"

    def __init__(self, monitor: str = "val_loss", mode: str = "auto", patience: int = 10,
                 min_delta: float = 0.0, restore_best_weights: bool = True):
        if patience < 1:
            raise ValueError(f"EarlyStopping: patience must be >= 1, got {patience}")
        if min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, got {min_delta}")
        self.monitor = monitor
        self.mode = monitor_mode(monitor, mode)
        self.patience = int(patience)
        self.min_delta = float(min_delta)
        self.restore_best_weights = restore_best_weights
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = -1
        self.reference = self.best  # the value patience measures improvements by min_delta against
        self.wait = 0
        self.stopped_epoch = None
        self.best_weights = None

    def improved(self, value: float, than: float | None = None, min_delta: float | None = None) -> bool:
        """Whether ``value`` beats ``than`` (default: the patience reference) by more than ``min_delta``
        (default: this callback's). A value that is not finite never does: a diverged run's -inf loss (or an
        inf or nan metric) is no best and resets no patience, as the trainer's best and the best checkpoint
        ignore it."""
        than = self.reference if than is None else than
        delta = self.min_delta if min_delta is None else min_delta
        if not math.isfinite(value):
            return False
        if self.mode == "min":
            return value < than - delta
        return value > than + delta

    def on_epoch_end(self, trainer, logs):
        value = get_metric(logs, self.monitor, "EarlyStopping", trainer)
        if value is None:  # no validation this epoch: nothing to judge
            return
        value = trainer.agree(value)
        # any improvement is the best (the run's best epoch, its best checkpoint); only one by more than
        # min_delta resets patience
        if self.improved(value, self.best, 0.0):
            self.best, self.best_epoch = value, trainer.state.epoch
            if self.restore_best_weights:
                self.best_weights = trainer.model.state_dict()
        if self.improved(value):
            self.reference, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stopped_epoch = trainer.state.epoch
                trainer.request_stop(f"early stopping: {self.monitor} has not improved"
                                     + (f" by more than {self.min_delta:g}" if self.min_delta else "")
                                     + f" for {self.patience} "
                                     f"{'epochs' if getattr(trainer, 'eval_every', 1) == 1 else 'evaluations'} "
                                     f"(best {self.best:.6g} at epoch {self.best_epoch + 1})")

    def on_train_end(self, trainer, logs):
        # The last epoch's extra validation off the eval_every schedule is a report that patience does not
        # judge, but it scores the final weights: when they beat the best, they are the best weights seen,
        # and the run's best (the trainer's and the best checkpoint count it too: see final_report).
        final = final_report(trainer, self.monitor, logs)
        if final is not None and self.improved(final, self.best, 0.0):
            if self.restore_best_weights and self.best_epoch >= 0:
                trainer.log.info("kept the final weights (%s %.6g, better than epoch %d's %.6g)", self.monitor,
                                 final, self.best_epoch + 1, self.best)
            self.best, self.best_epoch = final, int(logs["epoch"]) - 1
            self.best_weights = None  # (they are the model's)
            return
        if self.restore_best_weights and self.best_weights is not None and self.best_epoch != trainer.state.epoch:
            trainer.model.load_state_dict(self.best_weights)
            trainer.log.info("restored the weights of epoch %d (best %s %.6g)", self.best_epoch + 1, self.monitor, self.best)

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "reference": self.reference, "wait": self.wait,
                "stopped_epoch": self.stopped_epoch, "best_weights": self.best_weights,
                "monitor": self.monitor, "mode": self.mode}

    def load_state_dict(self, state):
        if not same_monitor(self, state, get_logger("train"), "early stopping"):
            return  # (its patience starts afresh too)
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        # (a state saved before the two were kept apart: its best was patience's reference)
        self.reference = float(state.get("reference", state["best"]))
        self.wait = int(state["wait"])
        self.stopped_epoch = state.get("stopped_epoch")
        self.best_weights = state.get("best_weights")
