"""Steps a learning-rate scheduler from the training loop."""
from __future__ import annotations

from .base import Callback, get_metric


class LRSchedulerCallback(Callback):
    """Drive ``scheduler`` once per optimizer step or once per epoch.

    ``interval="step"`` suits warmup and per-iteration schedules,
    ``interval="epoch"`` step/cosine schedules. With ``monitor`` set (e.g. for
    ``ReduceLROnPlateau``) the scheduler is stepped at each epoch end with the
    monitored metric, taken from rank 0 and broadcast so every rank changes its
    learning rate identically.
    """

    def __init__(self, scheduler, interval: str = "epoch", monitor: str | None = None, name: str | None = None):
        if interval not in ("epoch", "step"):
            raise ValueError(f"LRSchedulerCallback: interval must be 'epoch' or 'step', got {interval!r}")
        if monitor is not None and interval != "epoch":
            raise ValueError("LRSchedulerCallback: a metric-driven scheduler steps once per epoch (interval='epoch')")
        self.scheduler = scheduler
        self.interval = interval
        self.monitor = monitor
        self.state_key = name or f"lr_scheduler.{type(scheduler).__name__}"

    def on_batch_end(self, trainer, logs):
        if self.interval == "step":
            self.scheduler.step()

    def on_epoch_end(self, trainer, logs):
        if self.interval != "epoch":
            return
        if self.monitor is not None:
            value = get_metric(logs, self.monitor, type(self.scheduler).__name__, trainer)
            if value is not None:
                self.scheduler.step(trainer.agree(value))
        else:
            self.scheduler.step()

    def state_dict(self):
        return self.scheduler.state_dict() if hasattr(self.scheduler, "state_dict") else {}

    def load_state_dict(self, state):
        if hasattr(self.scheduler, "load_state_dict"):
            self.scheduler.load_state_dict(state)
