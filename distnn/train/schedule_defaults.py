"""The schedule's own defaults of ``schedule.gamma`` and ``schedule.factor``.

Two schedules that share a key may differ in its default: PyTorch's StepLR decays by ``gamma = 0.1`` but
CyclicLR's exp_range amplitude by ``gamma = 1.0`` (no decay); ReduceLROnPlateau's ``factor`` is 0.1 but
ConstantLR's 1/3. Left unset, each is the chosen schedule's own (:data:`SCHEDULE_DEFAULTS`), as the
optimizer's options are (``optimizer_defaults``): :func:`resolve_schedule_defaults` fills them into a resolved
config, which records them under ``[defaults.schedule.NAME]``, so a re-run with ``--set schedule.name=...``
gets that schedule's own and not the one of the schedule the record ran. A run's config.toml from before
holds them under ``[schedule]`` and re-runs and resumes with them; :func:`drop_old_defaults_not_read` takes out
those its schedule never read.
"""
from __future__ import annotations

from .config_checks import SCHEDULE_OPTIONS, _members_change
from .config_recorded_defaults import fill_own_defaults
from .config_schema import SCHEDULE_OWN_DEFAULTS, SCHEMA

__all__ = ["SCHEDULE_DEFAULTS", "schedule_takes", "schedule_default", "schedule_defaults_text",
           "resolve_schedule_defaults", "drop_old_defaults_not_read"]

#: ``{key: {schedule: its default}}``: torch.optim.lr_scheduler's (ExponentialLR requires its gamma: 0.1, the
#: config's one number of before). Every schedule that takes a key of SCHEDULE_OWN_DEFAULTS has one here.
SCHEDULE_DEFAULTS = {
    "gamma": {"step": 0.1, "multistep": 0.1, "exponential": 0.1, "cyclic": 1.0},
    "factor": {"plateau": 0.1, "constant_factor": 1 / 3},
}


def schedule_takes(name: str, key: str) -> bool:
    """Whether schedule ``name`` takes [schedule] key ``key`` (every schedule takes the keys that
    SCHEDULE_OPTIONS leaves out)."""
    return key not in SCHEDULE_OPTIONS or name in SCHEDULE_OPTIONS[key]


def schedule_default(name: str, key: str):
    """Schedule ``name``'s own default of ``key`` (None: it does not take it)."""
    return SCHEDULE_DEFAULTS.get(key, {}).get(name)


def schedule_defaults_text(key: str) -> str:
    """'step, multistep, exponential 0.1; cyclic 1.0': the schedules that take ``key``, by their default."""
    by_value: dict = {}
    for name, value in SCHEDULE_DEFAULTS[key].items():
        by_value.setdefault(value, []).append(name)
    return "; ".join(f"{', '.join(names)} {'1/3' if value == 1 / 3 else value!r}" for value, names in by_value.items())


def resolve_schedule_defaults(out: dict, problems: list, recorded=None):
    """The keys of SCHEDULE_OWN_DEFAULTS that the config leaves unset and the chosen schedule takes: its own
    default (the one a run's config.toml recorded for it, ``recorded[name]``, first; checked as a given value
    is). Not in an ensemble whose members change ``schedule.name``: each member's config resolves its own."""
    if _members_change(out, "schedule.name"):
        return
    fill_own_defaults(out, "schedule", SCHEDULE_OWN_DEFAULTS, schedule_takes, schedule_default, recorded, problems)


#: the number every schedule got before SCHEDULE_OWN_DEFAULTS (the schema's default then)
_SHARED_DEFAULT_BEFORE = 0.1


def _reads(schedule: dict, key: str) -> bool:
    """Whether a schedule built from ``schedule`` (a [schedule] table) reads ``key``: cyclic reads gamma in
    its exp_range mode alone."""
    name = schedule.get("name", SCHEMA["schedule.name"].default)
    if key == "gamma" and name == "cyclic":
        return schedule.get("cycle_mode", SCHEMA["schedule.cycle_mode"].default) == "exp_range"
    return schedule_takes(name, key)


def drop_old_defaults_not_read(raw: dict) -> None:
    """A run's config.toml from before the schedule's own defaults holds ``gamma = 0.1`` and ``factor = 0.1``
    under [schedule] whatever the schedule: the schema's defaults then, read by none but the schedules that
    take them. Those its schedule never read go, so that the record compares equal to its config resolved now
    (a resume's "config differs" warning; a finished ensemble member is not trained again), and the record
    re-run with another schedule.name gets that schedule's own. Kept where an ensemble member changes
    ``schedule.name`` or ``schedule.cycle_mode`` (the member's schedule may read them)."""
    s = raw.get("schedule")
    if not isinstance(s, dict) or not isinstance(s.get("name", ""), str):
        return
    if _members_change(raw, "schedule.name") or _members_change(raw, "schedule.cycle_mode"):
        return
    for k in SCHEDULE_OWN_DEFAULTS:
        if k in s and not isinstance(s[k], bool) and s[k] == _SHARED_DEFAULT_BEFORE and not _reads(s, k):
            del s[k]
