"""Progress display on rank 0: a tqdm bar on a terminal, plain log lines otherwise."""
from __future__ import annotations

import sys
import time

from .base import Callback


def _is_terminal() -> bool:
    try:
        return sys.stdout.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressBar(Callback):
    """Epoch, step, loss, samples/s and ETA while training; one summary line per epoch.

    Only rank 0 shows anything. The bar is a tqdm bar on stderr when both
    stdout and stderr are terminals (and ``quiet`` is off, and tqdm is
    installed); otherwise each epoch ends with one log line, plus a line every
    ``log_every`` steps when that is set. The per-step loss (bar and lines) is rank 0's at
    that step, on its shard of the global batch: no collective is spent on it (as Lightning's
    ``on_step`` logging without ``sync_dist``); the epoch line has the all-rank mean.
    """

    def __init__(self, quiet: bool = False, log_every: int = 0, use_bar: bool | None = None):
        self.quiet = quiet
        self.log_every = int(log_every)
        self.use_bar = use_bar
        self.bar = None
        self._t0 = None
        self._samples = 0
        self._train_t0 = None

    def on_train_begin(self, trainer):
        if self.use_bar is None:
            self.use_bar = not self.quiet and _is_terminal()
        if self.use_bar:
            try:
                import tqdm  # noqa: F401
            except ImportError:
                self.use_bar = False
        self._train_t0 = time.perf_counter()
        self._first_step = trainer.state.global_step

    def on_epoch_begin(self, trainer):
        if not trainer.is_main:
            return
        self._t0 = time.perf_counter()
        self._samples = 0
        if self.use_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=trainer.steps_per_epoch, initial=trainer.state.batch_in_epoch,
                            desc=f"epoch {trainer.state.epoch + 1}/{trainer.epochs}", unit="step",
                            leave=False, dynamic_ncols=True, file=sys.stderr)

    def on_batch_end(self, trainer, logs):
        if not trainer.is_main:
            return
        self._samples += logs["global_samples"]
        step = trainer.state.batch_in_epoch
        if self.bar is not None:
            self.bar.update(1)
            if step % 5 == 0 or step == trainer.steps_per_epoch:
                rate = self._samples / max(time.perf_counter() - self._t0, 1e-9)
                self.bar.set_postfix({"loss": f"{float(logs['loss']):.4f}", "samples/s": f"{rate:.0f}"}, refresh=False)
        elif self.log_every and step % self.log_every == 0:
            rate = self._samples / max(time.perf_counter() - self._t0, 1e-9)
            left = (trainer.steps_per_epoch - step) * (time.perf_counter() - self._t0) / max(step, 1)
            trainer.log.info("epoch %d step %d/%d loss %.4f %.0f samples/s eta %.0fs", trainer.state.epoch + 1, step,
                             trainer.steps_per_epoch, float(logs["loss"]), rate, left)

    def on_epoch_end(self, trainer, logs):
        if not trainer.is_main:
            return
        self._close()
        parts = [f"epoch {int(logs['epoch'])}/{trainer.epochs}"]
        for key, fmt in (("train_loss", "train loss {:.4f}"), ("train_accuracy", "acc {:.4f}"),
                         ("val_loss", "| val loss {:.4f}"), ("val_accuracy", "acc {:.4f}"), ("lr", "| lr {:.3g}"),
                         ("samples_per_sec", "| {:.0f} samples/s")):
            if key in logs and logs[key] is not None:
                parts.append(fmt.format(logs[key]))
        # from the steps left (train.max_steps may end the run before its last epoch) at this session's pace
        total = trainer.epochs * trainer.steps_per_epoch
        if trainer.max_steps is not None:
            total = min(total, trainer.max_steps)
        step, taken = trainer.state.global_step, trainer.state.global_step - self._first_step
        if step < total and taken > 0:
            parts.append(f"| eta {(time.perf_counter() - self._train_t0) / taken * (total - step):.0f}s")
        trainer.log.info(" ".join(parts))

    def on_train_end(self, trainer, logs):
        self._close()

    def on_exception(self, trainer, exception):
        self._close()  # the traceback then starts on a line of its own

    def _close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
