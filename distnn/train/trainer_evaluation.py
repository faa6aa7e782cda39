"""The trainer's evaluation: loss, accuracy (and a confusion matrix) of the model on a dataset, split over
ranks and reduced from exact sums, bit for bit what one process computes."""
from __future__ import annotations

import numpy as np

from distnn.distributed.exact_sum import ExactSum

from .batch_eval import evaluate_arrays
from .trainer_data import take


class EvaluationMixin:
    """``Trainer.evaluate`` (reads the trainer's model, comm, rank/world, eval batch size and transform)."""

    def evaluate(self, dataset, prefix: str = "", confusion: bool = False) -> dict:
        """Loss and accuracy of the model on ``dataset``, split over ranks and reduced from exact sums.

        Returns ``{prefix+"loss", prefix+"accuracy", prefix+"count"}`` (and
        ``prefix+"confusion_matrix"`` as a nested list with ``confusion``);
        identical on every rank, and bit for bit what one process computes:
        the ranks take whole evaluation batches in turn (batch ``i`` goes to
        rank ``i % world``), so every sample's output comes from the same
        batch on any number of ranks (a matrix product's last bits depend on
        the batch it is part of), and the loss is an exact sum (no rounding
        until the mean is taken). A set smaller than one batch is evaluated by
        rank 0 alone. ``dataset``: as ``train_data`` (with ``confusion``, it names
        ``num_classes``).
        """
        n, B = len(dataset), self.eval_batch_size
        starts = range(self.rank * B, n, self.world * B)
        idx = (np.concatenate([np.arange(s, min(s + B, n)) for s in starts]) if len(starts)
               else np.zeros(0, dtype=np.int64))
        # idx is whole batches in order (only the set's last batch can be short, and it comes last), so
        # evaluate_arrays cuts it into exactly those batches
        k = self._num_classes(dataset) if confusion else 0
        x, y = take(dataset, idx)
        sums = evaluate_arrays(self.model, x, y, np.ones(len(idx), dtype=bool), self.eval_transform, B, k,
                               self.xp, self.dtype)
        flat = np.concatenate([sums["loss_sum"].to_array(), [sums["correct"], sums["count"]],
                               sums["cm"].ravel() if confusion else []])
        red = np.asarray(self.comm.allreduce(flat, "sum") if self.world > 1 else flat, dtype=np.float64)
        size = ExactSum.ARRAY_SIZE
        loss, (correct, count) = ExactSum.from_array(red[:size]).value(), red[size:size + 2]
        out = {f"{prefix}loss": float(loss / count) if count else float("nan"),
               f"{prefix}accuracy": float(correct / count) if count else float("nan"), f"{prefix}count": int(count)}
        if confusion:
            out[f"{prefix}confusion_matrix"] = np.asarray(red[size + 2:], dtype=np.int64).reshape(k, k).tolist()
        return out

    @staticmethod
    def _num_classes(dataset) -> int:
        k = getattr(dataset, "num_classes", None)
        if k is None:
            raise ValueError(f"evaluate(confusion=True): {type(dataset).__name__} has no num_classes attribute "
                             "(the confusion matrix's size)")
        return int(k)
