"""One optimizer step of the :class:`~distnn.train.trainer.Trainer`: micro-batches, the gradient exchange,
the step guard, the update.

:class:`TrainStepMixin` gives the trainer :meth:`~TrainStepMixin.train_step`: this rank's part of one
global batch, padded rows masked out of the loss; with gradient accumulation, micro-batches whose
gradients stay local (``no_sync``) until the last; the agreed per-step check
(:mod:`distnn.train.step_guard`) before the update; the loss scaler of ``precision = "16-mixed"``
(:mod:`distnn.train.mixed_precision`). The forward pass, loss and update themselves are
:mod:`distnn.train.trainer_objective`'s.
"""
from __future__ import annotations

import contextlib

import numpy as np

from distnn.backend import get_array_module
from distnn.functional.loss import IGNORE_INDEX


class TrainStepMixin:
    """The optimizer step of the :class:`~distnn.train.trainer.Trainer` (its model, optimizer, DataParallel
    wrapper, step guard, precision and batch sizes are the trainer's attributes)."""

    def _global_count(self, step) -> int:
        """Real samples in global step ``step`` (all ranks), known without communication."""
        start = step * self.local_batch * self.world
        return int(max(0, min(len(self.train_data) - start, self.local_batch * self.world)))

    def train_step(self, x, y, valid):
        """One optimizer step on this rank's part ``(x, y)`` of the global batch (already transformed).

        ``valid`` marks real (non-padded) rows. The loss is the mean over this
        rank's counted targets (DataParallel then weights ranks by those
        counts). Returns (that mean loss as a float, number of counted targets).
        """
        # (on the loader's numpy masks count_nonzero is several times quicker than valid.all())
        all_valid = bool(np.count_nonzero(valid) == valid.size if type(valid) is np.ndarray else valid.all())
        if not all_valid:
            y = y.copy()
            y[~valid] = IGNORE_INDEX
        n_valid = len(y) if all_valid and y.ndim == 1 else int((y != IGNORE_INDEX).sum())
        if self.ddp is not None:
            # this rank's weight in the gradient average; with the step's global count (class labels: one
            # target a row) so gradients are weighted right at once, not first by n_valid / world, which
            # overflows float16 gradients (sequence targets: no guess; DataParallel corrects a wrong one)
            n_global = self._global_count(self.state.batch_in_epoch) if y.ndim == 1 else None
            self.ddp.set_num_samples(n_valid, n_global)
        self.optimizer.zero_grad()
        if self.accumulation_steps == 1 and n_valid:
            # the common case: the mean over counted targets (= sum / n_valid) straight from the loss
            out, loss = self._forward_loss(x, y, valid, all_valid, slice(None), "mean")
            loss_sum = float(loss.data) * n_valid
            if self.step_guard is not None:
                loss_sum = self._before_exchange(loss_sum)
            (self.amp.scale(loss) if self.amp.enabled else loss).backward()
            correct = self._correct(out, y, all_valid)
        else:
            loss_sum, correct = self._accumulate(x, y, valid, n_valid, all_valid)
        if self.ddp is not None:
            self.ddp.finish_gradient_synchronization()  # a no-op unless no backward synchronized
        # An agreed per-step check (non-finite values, preemption): every rank skips or stops together.
        if self.step_guard is not None and self.step_guard(self, loss_sum):
            self.optimizer.zero_grad()
            return loss_sum / max(n_valid, 1), n_valid
        # "16-mixed": unscaled first; a float16 overflow is the scaler's skip (counted apart from the guard's)
        # (amp's calls are no-ops without "16-mixed": skipped, as Python calls are most of the step's overhead)
        if not self.amp.enabled:
            self._update()
        else:
            if not self.amp.unscale_overflowed(self.optimizer, self.state):
                self._update()
            self.amp.update()
        s = self.state.epoch_sums
        s["loss"] += loss_sum
        s["correct"] += correct
        s["count"] += n_valid
        s["samples"] += len(y) if all_valid else int(valid.sum())
        return loss_sum / max(n_valid, 1), n_valid

    def _before_exchange(self, loss_sum: float) -> float:
        """This rank's loss, known before the synchronizing backward, to the step guard (it may flag it)."""
        hook = getattr(self.step_guard, "before_exchange", None)
        return loss_sum if hook is None else hook(self, loss_sum)

    def _accumulate(self, x, y, valid, n_valid, all_valid):
        """Micro-batches of one step: local gradients under no_sync, synchronized on the last."""
        m, A = self.micro_batch, self.accumulation_steps
        loss_sum, correct = 0.0, 0
        for i in range(A):
            last = i == A - 1
            with (contextlib.nullcontext() if last or self.ddp is None else self.ddp.no_sync()):
                xb, yb = x[i * m:(i + 1) * m], y[i * m:(i + 1) * m]
                if len(xb) == 0:  # a short last batch; finish_gradient_synchronization covers the sync
                    if last:
                        loss_sum = self._before_exchange(loss_sum)
                    continue
                out, loss = self._forward_loss(xb, yb, valid[i * m:(i + 1) * m], all_valid, slice(i * m, (i + 1) * m),
                                               "sum")
                loss_sum += float(loss.data)
                if last:
                    loss_sum = self._before_exchange(loss_sum)
                xp = get_array_module(loss.data)
                self.amp.scale(loss).backward(xp.full(loss.data.shape, 1.0 / max(n_valid, 1), dtype=loss.data.dtype))
                correct += self._correct(out, yb, all_valid)
        return loss_sum, correct
