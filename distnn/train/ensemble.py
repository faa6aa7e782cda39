"""Ensembles across workers: K members trained in one job, their class probabilities averaged.

Stochastic training of a non-convex model gives a different network per seed.
Averaging the members' predicted class PROBABILITIES, ``p(y|x) = sum_k w_k p_k(y|x)``
with ``w_k = 1/K``, reduces that variance; averaging their weights or their
logits does not (the members' hidden units are not aligned). Nothing here ever
averages logits or weights.

The config's ``[ensemble]`` section::

    [ensemble]
    members = 4                       # K (1 = a plain single-model run)
    vary = ["seed"]                   # "seed": member k uses run.seed + k
                                      # "bootstrap": member k trains on a bootstrap
                                      #   resample of the training split (n draws with replacement)
    overrides = [{ "optimizer.lr" = 0.1 }, {}, {}, { "model.hidden_sizes" = [64] }]   # optional, one per member

**Groups.** With world size W and K members the world is split
(``Communicator.split``) into ``G = gcd(W, K)`` groups of ``W/G`` consecutive
ranks; group ``g`` trains members ``g, g+G, g+2G, ...`` one after another, each
data-parallel on the GROUP communicator exactly as a single-model job does
(sharding, gradient averaging, agreed early stopping and checkpoints within the
group). So W = K (or a multiple) trains all members at once; a plain
``python`` run or any W < K (``--simulate-ranks`` too) trains members in turns
on the ranks there are, and the same config works everywhere. K > 1 must divide
W when W >= K: other choices stop the job at start with the valid ones.

**Members.** Member k's config is the run's config with ``run.seed + k``
(when ``vary`` has "seed"), ``overrides[k]`` applied, and ``ensemble.member = k``
(with ``members = 1``): ``members/member-k/config.toml`` retrains that member
alone. Overrides may change the model, optimizer, schedule, training and
augmentation, never the data or its splits: every member is scored on the same
validation and test samples, standardized with the same statistics.

**Evaluation.** Each rank computes float64 probabilities of its group's
members for its shard of the rows (rows ``r::group_size``), weighted by
``1/K``, into a zero buffer holding every validation and test row plus the
members' loss/correct/count sums; ONE allreduce over the world then leaves the
ensemble's averaged probabilities and every member's metrics on every rank.

**Run directory.** ``members/member-k/`` is a complete run directory per member
(config, model, metrics, curves, summary, checkpoints); the top level holds
the ensemble: ``model.json`` (marks it an ensemble, lists the members),
``summary.json`` (members' and ensemble's test metrics and the ensemble's gain),
``metrics.jsonl``/``metrics.csv`` (one row per member and one for the
ensemble) and ``curves.png``. :func:`load_ensemble` (used by
``run_dir.load_model``) turns it back into an :class:`EnsembleModel`, whose
output is the log of the averaged probabilities, so ``distnn evaluate`` and
``distnn predict`` use every member unchanged. The job itself (groups, training,
files) is :mod:`distnn.train.ensemble_run`.
"""
from __future__ import annotations

import copy
import math
import os
import re
from dataclasses import dataclass, field, replace

import numpy as np

import distnn
from distnn import nn

from .run_dir import MEMBERS_DIR  # noqa: F401 - re-exported (ensemble_run, inference)

VARY_CHOICES = ("seed", "bootstrap")
#: config sections a per-member override may NOT change: the data every member is scored on (augmentation
#: excepted), the run itself, the ensemble
FIXED_SECTIONS = ("data", "run", "ensemble")


class EnsembleError(ValueError):
    """A bad ensemble setting (one line, names the setting and the valid choices)."""


# ------------------------------------------------------------------ settings
def _get(cfg, dotted, default=None):
    cur = cfg
    for part in dotted.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        else:
            cur = getattr(cur, part, None)
        if cur is None:
            return default
    return cur


def _set(cfg: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    cur = cfg
    for part in parts[:-1]:
        nxt = cur.get(part)
        if nxt is None:
            nxt = cur[part] = {}
        if not isinstance(nxt, dict):
            raise EnsembleError(f"cannot set {dotted!r}: {part!r} is a value, not a section")
        cur = nxt
    cur[parts[-1]] = value


def _flatten(d: dict, prefix: str = "") -> dict:
    """``{"optimizer": {"lr": 0.1}}`` and ``{"optimizer.lr": 0.1}`` both become ``{"optimizer.lr": 0.1}``."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@dataclass
class EnsembleSettings:
    """The ``[ensemble]`` section, checked. ``member`` >= 0 marks the config of ONE member."""

    members: int = 1
    vary: tuple = ("seed",)
    overrides: list = field(default_factory=list)
    member: int = -1

    @property
    def active(self) -> bool:
        """True when the run trains several members (else it is a plain single-model run)."""
        return self.members > 1


def ensemble_settings(cfg) -> EnsembleSettings:
    """Read and check ``cfg``'s ``ensemble`` section (absent: a 1-member plain run)."""
    sec = _get(cfg, "ensemble") or {}
    sec = sec if isinstance(sec, dict) else dict(vars(sec))
    members = sec.get("members", 1)
    if isinstance(members, bool) or not isinstance(members, (int, np.integer)) or members < 1:
        raise EnsembleError(f"ensemble.members must be an integer >= 1, got {members!r}")
    vary = sec.get("vary", ["seed"])
    vary = [vary] if isinstance(vary, str) else list(vary or [])
    bad = [v for v in vary if v not in VARY_CHOICES]
    if bad:
        raise EnsembleError(f"ensemble.vary: unknown choice(s) {bad}; expected a list of {list(VARY_CHOICES)}")
    overrides = sec.get("overrides") or []
    if not isinstance(overrides, (list, tuple)) or not all(isinstance(o, dict) for o in overrides):
        raise EnsembleError("ensemble.overrides must be a list of tables, one per member, e.g. "
                            "[{ \"optimizer.lr\" = 0.1 }, {}]")
    if len(overrides) > members:
        raise EnsembleError(f"ensemble.overrides has {len(overrides)} entries but ensemble.members is {members}: "
                            f"give at most one table per member (members without one use the config as it is)")
    overrides = [_flatten(o) for o in overrides] + [{}] * (members - len(overrides))
    for k, o in enumerate(overrides):
        for key in o:
            if key.split(".")[0] in FIXED_SECTIONS and not key.startswith("data.augment."):
                raise EnsembleError(f"ensemble.overrides[{k}]: {key!r} cannot differ between members (members share "
                                    f"the data, its splits and the run; only data.augment.* may differ)")
    member = sec.get("member", -1)
    member = -1 if member is None else int(member)
    if members > 1 and not vary and not any(overrides):
        raise EnsembleError(f"ensemble.members={members} with an empty ensemble.vary and no overrides would train "
                            f"{members} identical members; set vary = [\"seed\"] and/or [\"bootstrap\"]")
    if members > 1 and not vary:  # then only the overrides tell members apart: two alike are one model twice
        seen = {}
        for k, o in enumerate(overrides):
            key = repr(sorted(o.items()))
            if key in seen:
                raise EnsembleError(f"ensemble.members {seen[key]} and {k} have the same overrides and ensemble.vary "
                                    "is empty: they would be the same model, counted twice in the average; give "
                                    "each member its own overrides or set vary = [\"seed\"]")
            seen[key] = k
    # (a member's own config has members = 1 and member = k: its vary still picks its bootstrap sample)
    if members == 1 and member < 0 and (sec.get("overrides") or "bootstrap" in vary):
        raise EnsembleError("ensemble.members = 1 trains one model, not an ensemble: ensemble.overrides and "
                            "ensemble.vary apply to the members of an ensemble (members >= 2); set the values in "
                            "the config itself")
    return EnsembleSettings(int(members), tuple(vary), overrides, member)


def seed_key(cfg) -> str:
    """The config key of the run's seed (``run.seed``; ``train.seed`` in configs that keep it there)."""
    return "train.seed" if _get(cfg, "run.seed") is None and _get(cfg, "train.seed") is not None else "run.seed"


def member_seed(base_seed: int, member: int) -> int:
    """Member k's ``run.seed``: the run's seed plus k (member 0 is the plain run's model)."""
    return int(base_seed) + int(member)


def member_config(cfg: dict, member: int, settings: EnsembleSettings | None = None) -> dict:
    """The config that trains member ``member`` alone (a deep copy; ``cfg`` is untouched)."""
    settings = settings or ensemble_settings(cfg)
    if not 0 <= member < settings.members:
        raise EnsembleError(f"member {member} is not in 0..{settings.members - 1}")
    out = copy.deepcopy(cfg)
    if "seed" in settings.vary:
        key = seed_key(cfg)
        _set(out, key, member_seed(_get(cfg, key, 0), member))
    for key, value in settings.overrides[member].items():
        _set(out, key, copy.deepcopy(value))
    ens = out.setdefault("ensemble", {})
    ens.update({"members": 1, "member": int(member), "vary": list(settings.vary), "overrides": []})
    # Checkpoints are per member: an explicit checkpoint.dir gets a member-k subdirectory, and resuming
    # from an ensemble's run directory (or checkpoint root) resumes each member from its own part of it.
    ckdir, resume = _get(cfg, "checkpoint.dir"), _get(cfg, "checkpoint.resume")
    if ckdir:
        _set(out, "checkpoint.dir", os.path.join(str(ckdir), f"member-{member}"))
    if resume and resume != "auto":
        _set(out, "checkpoint.resume", member_resume_path(str(resume), member))
    if type(cfg) is not dict:  # a validated Config: validate the member's too (its overrides may be wrong)
        from .config import config_from_dict

        out = config_from_dict(out.to_dict() if hasattr(out, "to_dict") else dict(out),
                               source=f"{getattr(cfg, 'source', '<config>')} member {member}")
        # Where each key came from (--set or the config file, for error messages) is the ensemble's config's;
        # what this member sets itself has no such origin, and is left out.
        own = ["ensemble", "checkpoint.dir", "checkpoint.resume", *settings.overrides[member]]
        if "seed" in settings.vary:
            own.append(seed_key(cfg))
        origins = {k: o for k, o in getattr(cfg, "origins", {}).items()
                   if not any(k == p or k.startswith(p + ".") for p in own)}
        object.__setattr__(out, "origins", origins)
    return out


def _stored_member(path) -> int | None:
    """The ensemble member whose run directory or checkpoint ``path`` is, from the config.toml stored there
    (every checkpoint holds one; a member's says ``ensemble.member = k``); None for anything else."""
    from .checkpoint import CheckpointError, follow_pointer
    from .checkpoint.read import stored_config_value

    try:
        path = follow_pointer(str(path))  # (a checkpoint root's latest/best: the checkpoint it names)
    except CheckpointError:
        return None
    member = stored_config_value(path, "ensemble", "member")
    return member if isinstance(member, int) and not isinstance(member, bool) and member >= 0 else None


def member_resume_path(path: str, member: int) -> str:
    """Where member ``member`` resumes from when the ensemble resumes from ``path``: its run directory
    inside an ensemble run directory, its ``member-k`` root inside a shared checkpoint root, else ``path``.

    A path inside ONE member's directory (``.../members/member-j/...``) is refused for the others: every
    member would resume from member j's weights, and the ensemble would average near-copies of one model.
    """
    owner = _stored_member(path)
    if owner is None:
        parts = os.path.normpath(str(path)).split(os.sep)
        owner = next((int(m.group(1)) for part, nxt in zip(parts, parts[1:])
                      if part == MEMBERS_DIR and (m := re.fullmatch(r"member-(\d+)", nxt))), None)
    if owner is not None and owner != int(member):
        raise EnsembleError(f"checkpoint.resume {str(path)!r} is member {owner}'s; an ensemble resumes every "
                            f"member from its own checkpoints: give the ensemble's run directory (or --resume "
                            f"auto with --out RUN_DIR)")
    for candidate in (member_dir(path, member), os.path.join(path, f"member-{int(member)}")):
        if os.path.isdir(candidate):
            return candidate
    return path


# --------------------------------------------------------------- bootstrap
def bootstrap_indices(n: int, seed: int, member: int) -> np.ndarray:
    """``n`` indices drawn with replacement, fixed by (the member's seed, member index)."""
    ss = np.random.SeedSequence([abs(int(seed)), int(member), 0xB007])
    return np.sort(np.random.default_rng(ss).integers(0, n, size=n))


def member_splits(cfg, splits):
    """The data member ``ensemble.member`` trains on: a bootstrap resample of the training split when
    ``vary`` has "bootstrap"; validation, test and the standardizer are shared. Identity otherwise."""
    s = ensemble_settings(cfg)
    if s.member < 0 or "bootstrap" not in s.vary:
        return splits
    idx = bootstrap_indices(len(splits.train), _get(cfg, seed_key(cfg), 0), s.member)
    info = dict(getattr(splits, "info", {}) or {})
    info["bootstrap"] = {"member": s.member, "unique": int(len(np.unique(idx))), "n": int(len(idx))}
    return replace(splits, train=splits.train.subset(idx), info=info)


# ------------------------------------------------------------------- groups
@dataclass(frozen=True)
class EnsemblePlan:
    """How K members map onto W ranks: ``groups`` groups of ``group_size`` consecutive ranks.

    Group ``g`` trains members ``g, g + groups, ...`` in that order.
    """

    world_size: int
    members: int
    groups: int

    @property
    def group_size(self) -> int:
        return self.world_size // self.groups

    @property
    def rounds(self) -> int:
        """Members each group trains one after another."""
        return self.members // self.groups

    def group_of(self, rank: int) -> int:
        return int(rank) // self.group_size

    def members_of(self, group: int) -> list:
        return list(range(group, self.members, self.groups))

    def group_of_member(self, member: int) -> int:
        return int(member) % self.groups

    def describe(self) -> str:
        if self.members == 1:
            return f"1 model on {self.world_size} rank(s)"
        how = "at once" if self.rounds == 1 else f"in {self.rounds} turns"
        return (f"{self.members} members {how}: {self.groups} group(s) of {self.group_size} rank(s), "
                f"{self.rounds} member(s) per group")


def _divisors(n: int) -> list:
    return [d for d in range(1, n + 1) if n % d == 0]


def plan_groups(world_size: int, members: int) -> EnsemblePlan:
    """Split ``world_size`` ranks among ``members`` members (see the module docstring).

    Raises :class:`EnsembleError` when ``members <= world_size`` does not divide it.
    """
    W, K = int(world_size), int(members)
    if W < 1 or K < 1:
        raise EnsembleError(f"world size and ensemble.members must be >= 1, got {W} and {K}")
    if W >= K and W % K:
        raise EnsembleError(f"ensemble.members={K} does not divide the world size {W}: use members in "
                            f"{{{', '.join(map(str, _divisors(W)))}}} or a world size that is a multiple of {K} "
                            f"(more members than ranks also works: they train in turns)")
    return EnsemblePlan(W, K, math.gcd(W, K))


def group_communicator(comm, plan: EnsemblePlan):
    """This rank's group communicator (collective over ``comm``; ``comm`` itself when there is one group).

    A split of ``comm`` is the caller's to ``free()`` when done with it (collectively: every rank of its group).
    """
    if plan.groups == 1:
        return comm
    return comm.split(plan.group_of(comm.rank), key=comm.rank)


# --------------------------------------------------------------- averaging
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


# -------------------------------------------------------- the saved ensemble
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


def member_dir(run_dir: str, member: int) -> str:
    return os.path.join(str(run_dir), MEMBERS_DIR, f"member-{int(member)}")


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


# ------------------------------------------------------------ the training job
def requested(config, overrides=()) -> bool:
    """True when ``config`` (with ``overrides``) asks for several members; False on any config error
    (the single-model path then reports it as usual)."""
    try:
        from .config import load_config

        return ensemble_settings(load_config(config, list(overrides or ()))).active
    except Exception:  # noqa: BLE001 - reported by the normal path
        return False


def train_ensemble(comm, config, overrides=(), out=None, quiet=False):
    """Train and score an ensemble run on every rank (see :mod:`distnn.train.ensemble_run`)."""
    from .ensemble_run import train_ensemble as run

    return run(comm, config, overrides, out, quiet)


def summary_lines(summary: dict) -> list:
    """What ``distnn train`` prints at the end of an ensemble run."""
    from .ensemble_run import summary_lines as lines

    return lines(summary)
