"""The ``[ensemble]`` section of a config, read and checked (see :mod:`distnn.train.ensemble`)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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
