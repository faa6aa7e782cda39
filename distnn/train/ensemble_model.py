"""The saved ensemble: :class:`EnsembleModel` (the log of the members' averaged probabilities) and
loading it from a run directory, finished or not (see :mod:`distnn.train.ensemble`)."""
from __future__ import annotations

import math
import os

import distnn
from distnn import nn

from .ensemble_config import ensemble_settings
from .ensemble_members import member_dir
from .ensemble_scoring import _weights
from .run_dir import MEMBERS_DIR


class EnsembleModel(nn.Module):
    """K member models whose class probabilities are averaged.

    ``forward`` returns ``log(sum_k w_k softmax(member_k(x)))``, computed as a
    log-sum-exp of the members' log-probabilities (stable; differentiable). It
    is a valid logits tensor: its softmax is the averaged probability vector and
    its cross-entropy is the ensemble's negative log-likelihood, so code written
    for one model (evaluate, predict) works on an ensemble unchanged.
    """

    def __init__(self, members, weights=None):
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("EnsembleModel needs at least one member")
        self.members = nn.ModuleList(members)
        self.weights = [float(v) for v in _weights(len(members), weights)]

    def forward(self, x):
        used = [(m, w) for m, w in zip(self.members, self.weights) if w > 0]  # (a member weighted 0 is not run)
        return log_average_probabilities([m(x) for m, _ in used], [w for _, w in used])


def log_average_probabilities(logits, weights=None):
    """``log(sum_k w_k softmax(logits_k))`` of K logits Tensors (default ``w_k = 1/K``), as a Tensor.

    The log of the averaged probability vectors, computed as a log-sum-exp of
    the log-probabilities (stable; differentiable): a valid logits tensor whose
    softmax is the average. The ensemble's members and Monte Carlo dropout's
    samples (:mod:`distnn.train.mc_dropout`) are combined here.
    """
    import distnn.functional as F

    logits = list(logits)
    if not logits:
        raise ValueError("log_average_probabilities: no logits to average")
    w = _weights(len(logits), weights)
    logps = [z.log_softmax(axis=-1) + math.log(wk) for z, wk in zip(logits, w) if wk > 0]
    stacked = F.stack(logps, axis=0)
    top = distnn.Tensor(stacked.data.max(axis=0))  # a constant shift: exact, and nothing overflows
    return (stacked - top).exp().sum(axis=0).log() + top


def is_ensemble_dir(directory: str) -> bool:
    """True when ``directory``'s model.json describes an ensemble.

    model.json is read as every reader of a run's files reads it, checked against the run's
    ``SHA256SUMS``. In a run with ``members/`` a damaged one is a RunFileError naming it: taken for no
    ensemble, it had the members averaged as those of an ensemble that did not finish. (Elsewhere the
    single-model path reads it, and says so, or reads a checkpoint instead.)
    """
    import json

    from . import run_dir as rd
    from .run_checksums import RunFileError, read_sums, read_verified

    if not os.path.isfile(os.path.join(str(directory), rd.MODEL_META)):
        return False
    try:
        meta = json.loads(read_verified(directory, rd.MODEL_META, read_sums(directory)))
    except RunFileError:
        if os.path.isdir(os.path.join(str(directory), MEMBERS_DIR)):
            raise
        return False
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and "ensemble" in meta  # (a damaged model.json may hold a number, or text)


def load_ensemble(directory: str):
    """``(EnsembleModel, meta, eval_transform)`` of an ensemble run directory (every member loaded)."""
    import json

    from . import run_dir as rd

    from .run_checksums import read_sums, read_verified

    try:  # (checked against the run's SHA256SUMS, and parsed from the bytes checked)
        meta = json.loads(read_verified(directory, rd.MODEL_META, read_sums(directory)))
    except OSError as e:
        raise ValueError(f"cannot load the ensemble of {directory!r}: {e.filename}: {e.strerror or e}") from None
    ens = meta["ensemble"]
    models = []
    for k, rel in enumerate(ens["paths"]):
        path = os.path.join(directory, rel)
        try:
            model, _, _ = rd.load_model(path)
        except ValueError as e:
            raise ValueError(f"ensemble {directory!r}: member {k} ({rel}) cannot be loaded: {e}") from None
        models.append(model)
    model = EnsembleModel(models, ens.get("weights"))
    model.eval()
    transform = None
    if meta.get("standardizer"):
        from distnn.data.transforms import Standardizer

        transform = Standardizer.from_state_dict(meta["standardizer"])
    return model, meta, transform


def ensemble_table(members: int) -> dict:
    """model.json's ``ensemble`` table: K members in ``members/member-k``, probabilities averaged equally."""
    return {"members": members, "weights": [1.0 / members] * members,
            "paths": [os.path.join(MEMBERS_DIR, f"member-{m}") for m in range(members)], "averaging": "probabilities"}


def load_unfinished_ensemble(directory: str):
    """``load_ensemble`` for an ensemble run that did not finish (interrupted, preempted): every member as
    far as it got (a finished member's model, else its newest valid checkpoint), probabilities averaged.

    A single-model run falls back to its newest checkpoint the same way. A member with no weights
    at all yet is an error naming it.
    """
    import sys

    from . import run_dir as rd
    from .config import load_config

    members = ensemble_settings(load_config(os.path.join(directory, rd.CONFIG))).members
    models, meta, transform = [], None, None
    for k in range(members):
        try:
            model, m_meta, m_transform = rd.load_model(member_dir(directory, k))
        except ValueError as e:
            raise ValueError(f"ensemble {directory!r} did not finish, and member {k} has no weights to load yet "
                             f"({e})") from None
        models.append(model)
        if meta is None:
            meta, transform = m_meta, m_transform
    sys.stderr.write(f"distnn: warning: ensemble {directory!r} did not finish: averaging its {members} members "
                     "as far as each got (resume it with --resume auto to finish)\n")
    meta = {k: v for k, v in meta.items() if k != "model"}
    meta["ensemble"] = {**ensemble_table(members), "finished": False}
    model = EnsembleModel(models)
    model.eval()
    return model, meta, transform
