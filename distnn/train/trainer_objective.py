"""The trainer's per-step objective: the forward pass and loss of one (micro-)batch.

:class:`StepObjectiveMixin` gives :class:`~distnn.train.trainer.Trainer` the
forward pass of a batch's rows (under those samples' dropout draws, with
padded rows left out of SyncBatchNorm's statistics), the training loss with
its extras (label smoothing; adversarial inputs, :mod:`distnn.train.adversarial`;
the L1 gradient), the count of correct predictions, and the update from the
averaged gradients (L1 gradient, clipping, the optimizer step, max-norm). The
step itself (accumulation, the gradient exchange, the step guard, the loss
scaler of ``precision = "16-mixed"``) is :meth:`~distnn.train.trainer.Trainer.train_step`'s.
The forward pass and loss run under the trainer's precision (:mod:`distnn.train.mixed_precision`).
"""
from __future__ import annotations

import contextlib

import numpy as np

import distnn
import distnn.functional as F
from distnn import random as dn_random
from distnn.backend import get_array_module
from distnn.distributed.sync_batchnorm import valid_rows
from distnn.functional.loss import IGNORE_INDEX
from distnn.optim.constraints import max_norm_


class StepObjectiveMixin:
    """The forward pass and loss of the :class:`~distnn.train.trainer.Trainer`'s steps (model, DataParallel
    wrapper, loader, options and dtype are the trainer's attributes)."""

    def _update(self):
        """The optimizer step on the averaged (unscaled) gradients: L1 gradient, clipping, step, max-norm."""
        if self.l1:
            self._add_l1_gradient()
        if self.clip_grad_norm:
            from distnn.nn.utils import clip_grad_norm_

            clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        if self.amp.enabled:
            self.amp.step(self.optimizer)
        else:
            self.optimizer.step()
        if self.max_norm:
            # On the stepped weights, which are the same on every rank (the same averaged gradient, the same
            # update): the constraint is elementwise and deterministic, so the replicas stay identical.
            max_norm_(self.max_norm_params, self.max_norm)

    def _add_l1_gradient(self) -> None:
        """L1 regularization (the lecture notes: ``l1 * sum |w|`` over the weights, never the biases): its
        gradient ``l1 * sign(w)`` added to the averaged gradient, so every rank adds the same. It is part of
        the loss's gradient (clipped with it, scaled by Adam as the rest); the logged loss leaves it out, as
        it leaves out weight decay."""
        for p in self.l1_params:
            g = p.grad  # (an array, None when this step's forward did not use p: the optimizer skips it too)
            if g is not None:
                g += self.l1 * get_array_module(g).sign(p.data).astype(g.dtype, copy=False)

    @staticmethod
    def _padding_excluded(valid, all_valid):
        """SyncBatchNorm leaves padded rows out of its statistics (they are already out of the loss)."""
        return contextlib.nullcontext() if all_valid else valid_rows(valid)

    def _sample_draws(self, rows):
        """The forward pass of rows ``rows`` of the loader's batch draws (dropout masks) from the generator of
        those samples' global positions: the same masks on any number of ranks and micro-batches."""
        if self._batch_drawn is None:  # train_step called outside train_epoch: the rank's own stream
            return contextlib.nullcontext()
        epoch, b, n = self._batch_drawn
        # made only if the pass draws (most models' passes draw nothing: no generator made a step for them)
        return dn_random.use_generator.deferred(self.loader.sample_generator, epoch, b, n, 1, rows)

    def _forward_loss(self, xb, yb, valid, all_valid, rows, reduction):
        """The forward pass of rows ``rows`` of the batch and the training loss (``reduction`` over targets).

        With adversarial training, ``w * J(x) + (1 - w) * J(x_adv)``. Every pass of the step draws the same
        dropout masks (each starts the samples' stream afresh): one sub-network per step, as without it,
        and nothing drawn that a resumed run would have to replay.
        """
        if all_valid and not self.amp.enabled and not (self.adversarial_eps and self.adversarial_weight < 1):
            # the common step (every row real, "32", no adversarial pass): the same work, none of the
            # no-op contexts (the trainer's per-step cost over a bare loop is mostly such Python calls)
            with self._sample_draws(rows):
                out = self._forward(xb)
            return out, self._loss(out, yb, reduction)

        def run(fn, *args):
            with self._padding_excluded(valid, all_valid), self._sample_draws(rows):
                return fn(*args)

        with self.amp.autocast():  # (precision "16-mixed": float16 matmuls, float32 losses; "32": no-op)
            out = run(self._forward, xb)
            loss = self._loss(out, yb, reduction)
            if self.adversarial_eps and self.adversarial_weight < 1:
                from .adversarial import fgsm

                # the summed loss's gradient: its sign is the mean's, and a micro-batch of padding alone gives 0,
                # not nan. In float32 under "16-mixed" too: through float16 activations the input gradient of a
                # confidently classified sample underflows to 0 (no perturbation at all), and a loss scale large
                # enough against that overflows on the misclassified ones (one scale cannot serve both)
                with self.amp.autocast(enabled=False):
                    x_adv = run(fgsm, self.model, lambda o, t: self._loss(o, t, "sum"), self._input(xb), yb,
                                self.adversarial_eps)
                w = self.adversarial_weight
                loss = w * loss + (1.0 - w) * self._loss(run(self._forward, x_adv), yb, reduction)
        return out, loss

    def _input(self, xb):
        """The batch as the model takes it: floating inputs in the parameters' dtype, on their device."""
        if xb.dtype.kind == "f" and xb.dtype != self.dtype:
            xb = xb.astype(self.dtype)
        return self.xp.asarray(xb) if self.xp is not np else xb

    def _forward(self, xb):
        if self.xp is np and xb.dtype == self.dtype:  # (already the model's input: _input would return it)
            return (self.ddp or self.model)(distnn.Tensor(xb))
        return (self.ddp or self.model)(distnn.Tensor(self._input(xb)))

    def _loss(self, out, y, reduction):
        """Cross-entropy over counted targets; sequence models give (N, T, C) logits for (N, T) targets."""
        if y.ndim == 2 and out.ndim == 3:  # (y first: a numpy attribute, out.ndim a Python property)
            out, y = out.reshape(-1, out.shape[-1]), y.reshape(-1)
        return F.cross_entropy(out, self.xp.asarray(y) if self.xp is not np else y, ignore_index=IGNORE_INDEX,
                               reduction=reduction, label_smoothing=self.label_smoothing)

    def _correct(self, out, y, all_valid=False) -> int:
        pred = out.data.argmax(-1)  # (positional: numpy parses a keyword axis, ~0.1 us a step)
        if all_valid and self.xp is np and pred.shape == y.shape:  # (the common case: fewer numpy calls)
            return int(np.count_nonzero(pred == y))
        y = self.xp.asarray(y) if self.xp is not np else y
        hits = pred == y.reshape(pred.shape)
        if not all_valid:
            hits &= y.reshape(pred.shape) != IGNORE_INDEX
        return int(self.xp.count_nonzero(hits))
