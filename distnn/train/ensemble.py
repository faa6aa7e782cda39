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
``distnn predict`` use every member unchanged.
"""
from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, field, replace

import numpy as np

import distnn
from distnn import nn

MEMBERS_DIR = "members"
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
    return out


def member_resume_path(path: str, member: int) -> str:
    """Where member ``member`` resumes from when the ensemble resumes from ``path``: its run directory
    inside an ensemble run directory, its ``member-k`` root inside a shared checkpoint root, else ``path``."""
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
    """This rank's group communicator (collective over ``comm``; ``comm`` itself when there is one group)."""
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

    params = list(model.parameters())
    xp = get_array_module(params[0].data) if params else np
    was_training = model.training
    model.eval()
    out = []
    try:
        with distnn.no_grad():
            for s in range(0, len(x), batch_size):
                xb = x[s:s + batch_size]
                if transform is not None:
                    xb = transform(xb, None)
                logits = model(distnn.Tensor(xp.asarray(xb) if xp is not np else xb)).data
                out.append(log_softmax_np(to_numpy(logits)))
    finally:
        model.train(was_training)
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
        import distnn.functional as F

        logps = [m(x).log_softmax(axis=-1) + math.log(w) for m, w in zip(self.members, self.weights) if w > 0]
        stacked = F.stack(logps, axis=0)
        top = distnn.Tensor(stacked.data.max(axis=0))  # a constant shift: exact, and nothing overflows
        return (stacked - top).exp().sum(axis=0).log() + top


def member_dir(run_dir: str, member: int) -> str:
    return os.path.join(str(run_dir), MEMBERS_DIR, f"member-{int(member)}")


def is_ensemble_dir(directory: str) -> bool:
    """True when ``directory``'s model.json describes an ensemble."""
    import json

    from . import run_dir as rd

    path = os.path.join(str(directory), rd.MODEL_META)
    if not os.path.isfile(path):
        return False
    try:
        with open(path) as f:
            return "ensemble" in json.load(f)
    except (OSError, ValueError):
        return False


def load_ensemble(directory: str):
    """``(EnsembleModel, meta, eval_transform)`` of an ensemble run directory (every member loaded)."""
    import json

    from . import run_dir as rd

    with open(os.path.join(directory, rd.MODEL_META)) as f:
        meta = json.load(f)
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


# ------------------------------------------------------------ the training job
def requested(config, overrides=()) -> bool:
    """True when ``config`` (with ``overrides``) asks for several members; False on any config error
    (the single-model path then reports it as usual)."""
    try:
        from .config import load_config

        return ensemble_settings(load_config(config, list(overrides or ()))).active
    except Exception:  # noqa: BLE001 - reported by the normal path
        return False


def _member_job_class():
    from .job import Job

    class MemberJob(Job):
        """A Job for one member: its own config, the group communicator, data loaded once per process."""

        def __init__(self, config, comm, cfg, quiet=False, shared_splits=None):
            self.shared_splits = shared_splits
            super().__init__(config, [], comm, quiet=quiet, cfg=cfg)

        def _load_data(self):
            if self.shared_splits is None:
                self.shared_splits = super()._load_data()
            return self.shared_splits

    return MemberJob


def train_ensemble(comm, config, overrides=(), out=None, quiet=False):
    """Train every member of an ensemble run and score the ensemble (every rank; collective).

    Phases as in :func:`distnn.train.job.train_rank`: build and check every
    member's job (errors agreed over the whole world), create the run
    directory, train this group's members in turn on the group communicator,
    then one allreduce scores members and ensemble. Returns the summary on
    world rank 0, None elsewhere.
    """
    from distnn import random as dn_random

    from . import job as J
    from . import run_dir as rd
    from .config import load_config

    error, jobs, rng_states, plan, gcomm, cfg = None, {}, {}, None, None, None
    try:
        cfg = load_config(config, list(overrides or ()))
        settings = ensemble_settings(cfg)
        plan = plan_groups(comm.size, settings.members)
    except (ValueError, OSError, KeyError, TypeError) as e:
        error = J._one_line(e)
    J.agree_on_errors(comm, error)
    gcomm = group_communicator(comm, plan)
    MemberJob, shared, current = _member_job_class(), None, None
    try:
        for m in plan.members_of(plan.group_of(comm.rank)):
            current = m
            job = MemberJob(config, gcomm, member_config(cfg, m, settings), quiet=quiet or comm.rank != 0,
                            shared_splits=shared)
            shared, jobs[m] = job.shared_splits, job
            # The trainer seeded this thread's dropout stream for member m; the next member's setup reseeds
            # it, so it is restored right before member m trains (same stream as a member trained alone).
            rng_states[m] = dn_random.get_state()
    except (ValueError, OSError, KeyError, TypeError) as e:
        error = f"ensemble member {current}: {J._one_line(e)}"
    J.agree_on_errors(comm, error)
    first = next(iter(jobs.values()))
    path = out or (J._default_path(first) if comm.rank == 0 else None)
    if comm.size > 1:
        path = comm.broadcast_object(path, root=0)
    try:
        created = rd.prepare_run_dir(path, comm)
    except rd.RunDirError as e:
        raise J.JobError(str(e), report=comm.rank == 0) from None
    try:
        return _train_members(comm, gcomm, plan, settings, cfg, jobs, rng_states, path)
    except BaseException:
        # Nothing half-written, unless some member trained an epoch or left a checkpoint to resume from.
        if comm.rank == 0 and created and not any(j.trainer.history for j in jobs.values()) and not any(
                _has_checkpoint(member_dir(path, m)) for m in range(plan.members)):
            rd.remove_run_dir(path)
        raise


def _has_checkpoint(directory) -> bool:
    from .checkpoint import DEFAULT_DIRNAME, list_checkpoints

    return bool(list_checkpoints(os.path.join(directory, DEFAULT_DIRNAME)))


def finished_member(gcomm, job, directory):
    """Collective over the group: the member in ``directory`` if a previous session finished it with this
    very config (a resumed ensemble does not train it again), else None.

    Returns ``(state_dict, history, summary)``; read on group rank 0 and broadcast.
    """
    import json

    from . import run_dir as rd
    from .config import load_config

    found = None
    if gcomm.rank == 0:
        try:
            s = rd.read_summary(directory)
            old = load_config(os.path.join(directory, rd.CONFIG)).to_dict()
            new = job.cfg.to_dict() if hasattr(job.cfg, "to_dict") else copy.deepcopy(dict(job.cfg))
            for c in (old, new):
                c.get("checkpoint", {}).pop("resume", None)
            done = s.get("epochs") == job.trainer.epochs and (s.get("epochs_run") == s.get("epochs")
                                                              or s.get("stopped_early"))
            if done and old == new:
                with np.load(os.path.join(directory, rd.MODEL_WEIGHTS)) as npz:
                    sd = {k: npz[k] for k in npz.files}
                with open(os.path.join(directory, "metrics.jsonl")) as f:
                    history = [json.loads(line) for line in f if line.strip()]
                found = (sd, history, s)
        except (OSError, ValueError, KeyError):
            found = None
    return gcomm.broadcast_object(found, root=0) if gcomm.size > 1 else found


def _train_members(comm, gcomm, plan, settings, cfg, jobs, rng_states, path):
    import time

    from distnn import random as dn_random

    from . import job as J
    from . import run_dir as rd
    from .config import dump_config
    from .logging_utils import get_logger

    log = get_logger("ensemble")
    first = next(iter(jobs.values()))
    if comm.rank == 0:
        rd.write_text(os.path.join(path, rd.CONFIG), dump_config(cfg))
        log.info("ensemble: %s (vary: %s)", plan.describe(), ", ".join(settings.vary) or "overrides only")
    t0 = time.perf_counter()
    summaries = {}
    for m, job in jobs.items():
        mdir = member_dir(path, m)
        if gcomm.rank == 0:
            os.makedirs(mdir, exist_ok=True)
        done = finished_member(gcomm, job, mdir) if _get(job.cfg, "checkpoint.resume") else None
        if done is not None:
            sd, job.trainer.history, summary = done
            job.model.load_state_dict(sd)
            summaries[m] = summary if gcomm.rank == 0 else None
            log.info("member-%d (%d of %d): finished in an earlier session, not trained again", m, m + 1,
                     plan.members)
            continue
        dn_random.set_state(rng_states[m])
        log.info("member-%d (%d of %d): seed %s, run directory %s", m, m + 1, plan.members, job.trainer.seed, mdir)
        summaries[m] = J._train(job, mdir)
    wall = time.perf_counter() - t0
    splits = first.shared_splits
    ev = evaluate_ensemble(comm, gcomm, plan, {m: (j.model, j.eval_tf) for m, j in jobs.items()},
                           {"val": splits.val, "test": splits.test}, batch_size=first.trainer.eval_batch_size)
    mine = {m: {"summary": summaries[m], "history": jobs[m].trainer.history, "seed": jobs[m].trainer.seed}
            for m in jobs} if gcomm.rank == 0 else {}
    members = {}
    for part in (comm.allgather_object(mine) if comm.size > 1 else [mine]):
        members.update(part)
    summary = None
    if comm.rank == 0:
        summary = ensemble_summary(path, first.config_name, plan, settings, members, ev, wall)
        write_ensemble_files(path, first.model_meta(), plan, summary, members, ev)
        t = summary
        if t["test_accuracy"] is not None:
            log.info("ensemble of %d: test accuracy %.4f (members %s; gain %+.4f), test NLL %.4f (members' mean "
                     "%.4f)", plan.members, t["test_accuracy"],
                     " ".join(f"{a:.4f}" for a in t["member_test_accuracy"]), t["ensemble_gain_accuracy"],
                     t["test_loss"], t["mean_member_test_loss"])
    if comm.size > 1:
        comm.barrier()  # nobody leaves before rank 0 has written the results
    return summary


def ensemble_summary(path, config_name, plan, settings, members, ev, wall) -> dict:
    """The top-level ``summary.json`` of an ensemble run (members' and ensemble's metrics, gains)."""
    K = plan.members
    rows = []
    for m in range(K):
        s, h = members[m]["summary"] or {}, members[m]["history"]
        row = {"member": m, "run_dir": os.path.join(MEMBERS_DIR, f"member-{m}"),
               "seed": members[m].get("seed"), "epochs_run": s.get("epochs_run", len(h)), "best_epoch": s.get("best_epoch"),
               "stopped_early": s.get("stopped_early"), "wall_time": s.get("wall_time")}
        for split in ("val", "test"):
            if split in ev:
                row[f"{split}_accuracy"] = ev[split]["member_accuracy"][m]
                row[f"{split}_loss"] = ev[split]["member_loss"][m]
        rows.append(row)
    out = {"config": config_name, "run_dir": os.path.abspath(path), "ensemble_members": K,
           "test_accuracy": None, "test_loss": None, "test_samples": None}
    for split in ("val", "test"):
        if split not in ev:
            continue
        r, g = ev[split], ensemble_gain(ev[split])
        out.update({f"{split}_accuracy": r["accuracy"], f"{split}_loss": r["loss"], f"{split}_samples": r["count"],
                    f"member_{split}_accuracy": list(r["member_accuracy"]),
                    f"member_{split}_loss": list(r["member_loss"]),
                    f"mean_member_{split}_accuracy": g["mean_member_accuracy"],
                    f"median_member_{split}_accuracy": g["median_member_accuracy"],
                    f"mean_member_{split}_loss": g["mean_member_loss"]})
        if split == "test":
            out.update({"ensemble_gain_accuracy": g["accuracy_gain"], "ensemble_nll_reduction": g["nll_reduction"]})
    s0 = members[0]["summary"] or {}
    out.update({
        "ensemble": {"members": K, "vary": list(settings.vary), "overrides": settings.overrides,
                     "groups": plan.groups, "ranks_per_group": plan.group_size, "members_per_group": plan.rounds,
                     "schedule": plan.describe(), "averaging": "mean of the members' class probabilities"},
        "members": rows,
        "epochs_run": [r["epochs_run"] for r in rows], "epochs": s0.get("epochs"),
        "world_size": plan.world_size, "global_batch_size": s0.get("global_batch_size"),
        "wall_time": wall,
    })
    return out


def summary_lines(s: dict) -> list:
    """What ``distnn train`` prints at the end of an ensemble run (from its summary)."""
    e = s["ensemble"]
    head = f"ensemble of {e['members']} members ({e['schedule']}; {s.get('wall_time') or 0:.1f}s)"
    if s.get("test_accuracy") is None:
        return [head + ": no test split"]
    lines = [head]
    for r in s["members"]:
        lines.append(f"  member-{r['member']}  test accuracy {r['test_accuracy']:.4f}  test NLL {r['test_loss']:.4f}  "
                     f"(seed {r.get('seed')}, {r.get('epochs_run')} epochs)")
    lines.append(f"  ensemble  test accuracy {s['test_accuracy']:.4f}  test NLL {s['test_loss']:.4f}  "
                 f"(gain over the members' mean: accuracy {s['ensemble_gain_accuracy']:+.4f}, "
                 f"NLL {-s['ensemble_nll_reduction']:+.4f})")
    return lines


#: columns of an ensemble run's top-level metrics.csv: one row per member, then one for the ensemble
ENSEMBLE_CSV_COLUMNS = ["model", "val_loss", "val_accuracy", "test_loss", "test_accuracy", "epochs_run"]


def write_ensemble_files(path, meta, plan, summary, members, ev) -> None:
    """Rank 0: the top level of an ensemble run (model.json, summary.json, metrics.jsonl/csv, curves.png)."""
    import csv
    import json

    from . import run_dir as rd

    meta = {k: v for k, v in meta.items() if k != "model"}
    meta["ensemble"] = {"members": plan.members, "weights": [1.0 / plan.members] * plan.members,
                        "paths": [os.path.join(MEMBERS_DIR, f"member-{m}") for m in range(plan.members)],
                        "averaging": "probabilities"}
    rd.write_json(os.path.join(path, rd.MODEL_META), meta)
    rd.write_json(os.path.join(path, rd.SUMMARY), summary)
    rows = [{"model": f"member-{r['member']}", **{c: r.get(c) for c in ENSEMBLE_CSV_COLUMNS[1:]}}
            for r in summary["members"]]
    rows.append({"model": "ensemble", **{c: summary.get(c) for c in ENSEMBLE_CSV_COLUMNS[1:-1]},
                 "epochs_run": None})
    rd.write_text(os.path.join(path, "metrics.jsonl"),
                  "".join(json.dumps(rd._clean(r)) + "\n" for r in rows))
    tmp = os.path.join(path, "metrics.csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=ENSEMBLE_CSV_COLUMNS)
        w.writeheader()
        w.writerows([{k: ("" if v is None else v) for k, v in r.items()} for r in rows])
    os.replace(tmp, os.path.join(path, "metrics.csv"))
    plot_members(members, summary, os.path.join(path, "curves.png"))


def plot_members(members, summary, path) -> str | None:
    """Each member's validation loss/accuracy vs epoch, with the ensemble's as a dashed line."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        from matplotlib.figure import Figure  # no pyplot: no global state shared with other threads
    except ImportError:
        return None
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for m in sorted(members):
            pts = [(r["epoch"], r.get(f"val_{metric}")) for r in members[m]["history"]
                   if r.get(f"val_{metric}") is not None]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "-", alpha=0.7, label=f"member {m}")
        if summary.get(f"val_{metric}") is not None:
            ax.axhline(summary[f"val_{metric}"], color="k", linestyle="--", label="ensemble (final)")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {metric}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{summary.get('config')}: ensemble of {len(members)}")
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)
    return path
