"""Evaluation of a model over arrays, batch by batch: eval mode, no graph.

:func:`eval_outputs` yields the model's outputs batch by batch;
:func:`evaluate_arrays` sums loss, correct predictions and counted targets
(and a confusion matrix) over them, in sums that add up across ranks.
:meth:`Trainer.evaluate <distnn.train.trainer.Trainer.evaluate>`,
:mod:`distnn.train.inference` and the ensembles build on them. Both are
re-exported by :mod:`distnn.train.trainer`.
"""
from __future__ import annotations

import numpy as np

import distnn
import distnn.functional as F
from distnn.backend import to_numpy
from distnn.distributed.exact_sum import ExactSum
from distnn.functional.loss import IGNORE_INDEX
from distnn.nn.module import evaluating


def eval_outputs(model, x, transform=None, batch_size: int = 512, xp=np, dtype=None):
    """Yield ``(start, output)`` for each batch of ``x``: eval mode, no graph; the model's mode is restored.

    Each batch is transformed, cast to ``dtype`` when it is floating point
    (as in training) and moved to ``xp``'s device before the forward call.
    """
    with evaluating(model), distnn.no_grad():
        for s in range(0, len(x), batch_size):
            xb = x[s:s + batch_size]
            if transform is not None:
                xb = transform(xb, None)
            if dtype is not None and xb.dtype.kind == "f" and xb.dtype != dtype:
                xb = xb.astype(dtype)
            if xp is np and np.may_share_memory(xb, x):
                xb = xb.copy()  # a model may change its input in place (ReLU(inplace=True)): not the data
            yield s, model(distnn.Tensor(xp.asarray(xb) if xp is not np else xb))


def evaluate_arrays(model, x, y, valid, transform, batch_size, num_classes=0, xp=np, dtype=None) -> dict:
    """Sums of loss, correct predictions and counted targets (and a confusion matrix) over ``x, y``.

    ``valid`` masks padded rows out. ``loss_sum`` is the exact sum of the
    per-target losses (:class:`~distnn.distributed.exact_sum.ExactSum`; it adds
    up over ranks without rounding) and ``loss`` that sum rounded. Runs in
    eval mode without building a graph; puts the model back into its previous
    mode.
    """
    loss, correct, count = ExactSum(), 0, 0
    cm = np.zeros((num_classes, num_classes), dtype=np.int64) if num_classes else None
    for s, out in eval_outputs(model, x, transform, batch_size, xp, dtype):
        yb, vb = y[s:s + batch_size], valid[s:s + batch_size]
        if not vb.all():
            yb = yb.copy()
            yb[~vb] = IGNORE_INDEX
        logits = out.data
        if logits.ndim == 3 and yb.ndim == 2:
            logits = logits.reshape(-1, logits.shape[-1])
            yb = yb.reshape(-1)
        yt = xp.asarray(yb) if xp is not np else yb
        keep = yt != IGNORE_INDEX
        per_target = F.cross_entropy(distnn.Tensor(logits), yt, ignore_index=IGNORE_INDEX, reduction="none").data
        loss.add(per_target[keep])
        pred = logits.argmax(axis=-1)
        correct += int(((pred == yt) & keep).sum())
        count += int(keep.sum())
        if cm is not None:
            p, t = to_numpy(pred)[to_numpy(keep)], to_numpy(yt)[to_numpy(keep)]
            cm += np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
                num_classes, num_classes)
    return {"loss": loss.value(), "loss_sum": loss, "correct": correct, "count": count, "cm": cm}
