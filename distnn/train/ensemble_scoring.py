"""Averaging and scoring an ensemble's class probabilities: the members' and the ensemble's loss and
accuracy with one allreduce (see :mod:`distnn.train.ensemble`). Nothing here averages logits or weights."""
from __future__ import annotations

import numpy as np

from .ensemble_groups import EnsemblePlan


def log_softmax_np(logits) -> np.ndarray:
    """float64 log-probabilities from logits over the last axis (max-subtracted)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def average_probabilities(probs, weights=None) -> np.ndarray:
    """``sum_k w_k p_k`` of the members' probability arrays (default ``w_k = 1/K``), in float64."""
    probs = [np.asarray(p, dtype=np.float64) for p in probs]
    if not probs:
        raise ValueError("average_probabilities: no members")
    w = _weights(len(probs), weights)
    out = np.zeros_like(probs[0])
    for wk, p in zip(w, probs):
        if p.shape != out.shape:
            raise ValueError(f"average_probabilities: member shapes differ: {p.shape} vs {out.shape}")
        out += wk * p
    return out


def _weights(k: int, weights=None) -> np.ndarray:
    w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (k,) or (w < 0).any() or not np.isclose(w.sum(), 1.0):
        raise ValueError(f"ensemble weights must be {k} non-negative numbers summing to 1, got {weights!r}")
    return w


def nll_and_accuracy(probs, y) -> tuple:
    """Mean negative log-likelihood and accuracy of probabilities ``(..., C)`` for labels ``y`` (-ve: ignored)."""
    probs, y = np.asarray(probs, dtype=np.float64), np.asarray(y)
    keep = y >= 0
    n = int(keep.sum())
    if n == 0:
        return float("nan"), float("nan")
    p_true = np.take_along_axis(probs, np.where(keep, y, 0)[..., None], axis=-1)[..., 0]
    nll = -np.log(np.maximum(p_true[keep], np.finfo(np.float64).tiny)).sum() / n
    acc = ((probs.argmax(axis=-1) == y) & keep).sum() / n
    return float(nll), float(acc)


def member_log_probs(model, x, transform=None, batch_size: int = 512) -> np.ndarray:
    """float64 log-probabilities of ``model`` (eval mode, no graph) on the raw inputs ``x``."""
    from distnn.backend import get_array_module, to_numpy

    from .batch_eval import eval_outputs

    params = list(model.parameters())
    xp = get_array_module(params[0].data) if params else np
    dtype = params[0].data.dtype if params else None  # float inputs in the parameters' dtype (as in training)
    out = [log_softmax_np(to_numpy(o.data)) for _, o in eval_outputs(model, x, transform, batch_size, xp, dtype)]
    return np.concatenate(out) if out else np.zeros((0,), np.float64)


def evaluate_ensemble(comm, group_comm, plan: EnsemblePlan, models: dict, datasets: dict, batch_size: int = 512,
                      weights=None) -> dict:
    """Members' and ensemble's loss/accuracy on each dataset with ONE allreduce over ``comm`` (collective).

    ``models`` maps each member of this rank's group to ``(model, eval_transform)``;
    ``datasets`` maps a name (``"val"``, ``"test"``) to a Dataset (or None: skipped).
    Returns, identically on every rank, ``{name: {"loss", "accuracy", "count",
    "member_loss": [K], "member_accuracy": [K], "probs"}}`` where ``probs`` are the
    averaged class probabilities of every row.
    """
    K = plan.members
    w = _weights(K, weights)
    gr, gs = (group_comm.rank, group_comm.size) if group_comm is not None else (0, 1)
    names = [n for n, d in datasets.items() if d is not None]
    chunks, shapes = [], []
    for name in names:
        ds = datasets[name]
        rows = np.arange(gr, len(ds), gs)
        y = np.asarray(ds.y)
        shape = y.shape + (int(ds.num_classes),)
        probs = np.zeros(shape, np.float64)
        sums = np.zeros((K, 3), np.float64)  # per member: loss sum, correct, count
        yr = y[rows]
        keep = yr >= 0
        for m, (model, transform) in sorted(models.items()):
            logp = member_log_probs(model, ds.x[rows], transform, batch_size)
            if logp.shape != (len(rows),) + shape[1:]:
                raise ValueError(f"ensemble member {m}: outputs {logp.shape[1:]} per sample but the {name} split "
                                 f"needs {shape[1:]}")
            probs[rows] += w[m] * np.exp(logp)
            picked = np.take_along_axis(logp, np.where(keep, yr, 0)[..., None], axis=-1)[..., 0]
            sums[m] = (-picked[keep].sum(), ((logp.argmax(axis=-1) == yr) & keep).sum(), keep.sum())
        chunks += [probs.ravel(), sums.ravel()]
        shapes.append(shape)
    buf = np.concatenate(chunks) if chunks else np.zeros(0)
    if comm is not None and comm.size > 1:
        buf = np.asarray(comm.allreduce(buf, op="sum"), dtype=np.float64)  # the one collective
    out, pos = {}, 0
    for name, shape in zip(names, shapes):
        size = int(np.prod(shape))
        probs = buf[pos:pos + size].reshape(shape)
        sums = buf[pos + size:pos + size + 3 * K].reshape(K, 3)
        pos += size + 3 * K
        loss, acc = nll_and_accuracy(probs, datasets[name].y)
        cnt = np.maximum(sums[:, 2], 1)
        out[name] = {"loss": loss, "accuracy": acc, "count": int(sums[0, 2]), "probs": probs,
                     "member_loss": (sums[:, 0] / cnt).tolist(), "member_accuracy": (sums[:, 1] / cnt).tolist()}
    return out


def ensemble_gain(result: dict) -> dict:
    """Ensemble vs members on one split: accuracy gain over the mean member, NLL reduction, medians."""
    accs, losses = np.asarray(result["member_accuracy"]), np.asarray(result["member_loss"])
    return {"mean_member_accuracy": float(accs.mean()), "median_member_accuracy": float(np.median(accs)),
            "best_member_accuracy": float(accs.max()), "mean_member_loss": float(losses.mean()),
            "accuracy_gain": float(result["accuracy"] - accs.mean()),
            "nll_reduction": float(losses.mean() - result["loss"])}
