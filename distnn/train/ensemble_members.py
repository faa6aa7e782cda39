"""One member of an ensemble: its config (seed, overrides, checkpoints), its run directory, the
checkpoint it resumes from and its bootstrap sample of the training data (see :mod:`distnn.train.ensemble`)."""
from __future__ import annotations

import copy
import os
import re
from dataclasses import replace

import numpy as np

from .config_model_checks import drop_switched_off_by_member
from .config_option_checks import drop_options_not_taken
from .config_overrides import override_paths
from .ensemble_config import EnsembleError, EnsembleSettings, _get, _set, ensemble_settings
from .run_dir import MEMBERS_DIR


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
    # The ensemble's options of another optimizer or schedule than the member's own go back to their defaults
    # (they are for the members whose overrides choose one that takes them).
    drop_options_not_taken(out, keep=override_paths(settings.overrides[member]))
    # Likewise its model arguments that the member's own make the model ignore (model.arch = "lstm": the
    # transformer's nhead), as --set model.arch=lstm drops the file's.
    drop_switched_off_by_member(out, settings.overrides[member])
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
        # (checkpoint.resume is the ensemble's, resolved to the member's part: where it came from stays)
        own = ["ensemble", "checkpoint.dir", *settings.overrides[member]]
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


def member_dir(run_dir: str, member: int) -> str:
    """Member ``member``'s run directory inside the ensemble run directory ``run_dir``."""
    return os.path.join(str(run_dir), MEMBERS_DIR, f"member-{int(member)}")


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
