"""The checks of a config beyond each key's own type and range: the model's and the dataset's
open keyword arguments, relations between keys, and an ensemble's member configs.

Called by :func:`distnn.train.config.validate`; each appends one-line problems to ``problems``.
Here: the relations between sections (:func:`check_cross`, :func:`check_validation_monitors`), the ensemble's
members (:func:`check_ensemble`) and the keys hints may name (:func:`open_keys`). Beside it, every name importable
from here too: the model's checks (``config_model_checks``), the dataset's (``config_data_checks``), the
optimizer's and schedule's options (``config_option_checks``) and the recorded defaults
(``config_recorded_defaults``).
"""
from __future__ import annotations

import zipfile

import numpy as np

from . import config as C
from . import config_data_checks as _data, config_model_checks as _model, config_option_checks as _options
from . import config_overrides as _overrides, config_recorded_defaults as _recorded, config_values as _values
from .config_data_checks import (check_data, check_split_keys, dataset_kind, dataset_options,
                                 reset_split_keys_in_record)
from .config_model_checks import (check_model, data_decided_arguments, drop_data_decided_in_record,
                                  drop_ignored_in_record, model_arguments)
from .config_option_checks import (INTERVAL_IGNORED, OPTIMIZER_NAMESAKES, OPTIMIZER_OPTIONS, SCHEDULE_OPTIONS,
                                   check_optimizer_options, check_schedule_options, drop_options_not_taken,
                                   reset_ignored_interval_in_record)
from .config_origins import Related
from .config_recorded_defaults import recorded_defaults, split_recorded_defaults
from .config_schema import MODEL_RESERVED, OPTIMIZER_OWN_DEFAULTS, SCHEDULE_OWN_DEFAULTS, SCHEMA

# (private names other modules may read from here, moved beside it)
_argument_table, _set_wins_over_unused = _model._argument_table, _model._set_wins_over_unused
_none_by_set = _model._none_by_set
_absolute_data_paths, _absolute = _data._absolute_data_paths, _data._absolute
_takers, _options_not_taken = _options._takers, _options._options_not_taken
_RECORDED_KEYS = _recorded._RECORDED_KEYS
_members_change, _plain = _overrides._members_change, _values._plain

__all__ = ["Related", "open_keys", "model_arguments", "data_decided_arguments", "drop_data_decided_in_record",
           "drop_ignored_in_record", "dataset_options", "check_model",
           "recorded_defaults", "split_recorded_defaults", "dataset_kind", "check_data", "check_split_keys",
           "reset_split_keys_in_record", "OPTIMIZER_OPTIONS", "OPTIMIZER_NAMESAKES", "SCHEDULE_OPTIONS",
           "check_optimizer_options", "check_schedule_options", "INTERVAL_IGNORED", "reset_ignored_interval_in_record",
           "drop_options_not_taken", "check_cross", "check_validation_monitors", "check_profile", "check_run_name",
           "run_name_problem", "drop_bad_run_name_in_record",
           "check_ensemble", "MODEL_RESERVED", "OPTIMIZER_OWN_DEFAULTS", "SCHEDULE_OWN_DEFAULTS", "SCHEMA"]


def open_keys(raw: dict) -> list:
    """The ``model.*`` and ``data.*`` keys that the model and the dataset ``raw`` names take (the schema's
    defaults if it names none), for "did you mean" hints; [] for a name that is not known."""
    def name_in(section):
        table = raw.get(section) if isinstance(raw, dict) else None
        name = table.get("name") if isinstance(table, dict) else None
        return name if name is not None else SCHEMA[f"{section}.name"].default

    model, dataset = name_in("model"), name_in("data")
    keys = [f"model.{a}" for a in model_arguments(model) or ()] if isinstance(model, str) else []
    if isinstance(dataset, str):
        keys += [f"data.{o}" for o in dataset_options(dataset)]
    return keys


def check_cross(out: dict, problems: list):
    """Relations between keys; each problem is :class:`Related` to the keys involved."""
    d, o, s = out["data"], out["optimizer"], out["schedule"]
    if d["val_fraction"] + d["test_fraction"] >= 1:
        problems.append(Related(f"data.val_fraction + data.test_fraction must be < 1, got "
                                f"{d['val_fraction']} + {d['test_fraction']}",
                                "data.val_fraction", "data.test_fraction"))
    # (another optimizer's nesterov: check_optimizer_options)
    # (momentum unset: an ensemble whose members choose their optimizers, each member's own config checks it)
    if o["nesterov"] and o["name"] in OPTIMIZER_OPTIONS["nesterov"] and o.get("momentum", 1) <= 0:
        problems.append(Related(f"optimizer.nesterov needs optimizer.momentum > 0, got {o['momentum']} for optimizer "
                                f"{o['name']!r}", "optimizer.nesterov", "optimizer.name", "optimizer.momentum"))
    if o["name"] == "rprop" and o.get("weight_decay"):
        problems.append(Related(f"optimizer 'rprop' takes no weight decay (PyTorch's Rprop has none), got "
                                f"optimizer.weight_decay = {o['weight_decay']}: leave it at 0, or use optimizer.l1",
                                "optimizer.weight_decay", "optimizer.name"))
    if o["name"] == "rprop" and not 0 < o["etas"][0] < 1 < o["etas"][1]:
        problems.append(Related(f"optimizer.etas must satisfy 0 < etaminus < 1 < etaplus, got {o['etas']}",
                                "optimizer.etas", "optimizer.name"))
    if o["name"] == "rprop" and o["step_sizes"][0] > o["step_sizes"][1]:
        problems.append(Related(f"optimizer.step_sizes must be (min, max) with min <= max, got {o['step_sizes']}",
                                "optimizer.step_sizes", "optimizer.name"))
    for key in ("max_lr", "step_size_up"):
        if s["name"] == "cyclic" and s.get(key) is None:
            problems.append(Related(f"schedule.{key} is required when schedule.name = 'cyclic'", f"schedule.{key}",
                                    "schedule.name"))
    if s["name"] == "step" and s.get("step_size") is None:
        problems.append(Related("schedule.step_size is required when schedule.name = 'step'", "schedule.step_size",
                                "schedule.name"))
    if s["name"] == "multistep":
        m = s["milestones"]
        if not m:
            problems.append(Related("schedule.milestones is required when schedule.name = 'multistep'",
                                    "schedule.milestones", "schedule.name"))
        elif any(b <= a for a, b in zip(m, m[1:])):
            problems.append(f"schedule.milestones must be strictly increasing, got {m}")
    if s["warmup_steps"] and s["warmup_epochs"]:
        problems.append(Related(f"set schedule.warmup_steps or schedule.warmup_epochs, not both: got "
                                f"{s['warmup_steps']} and {s['warmup_epochs']}", "schedule.warmup_steps",
                                "schedule.warmup_epochs"))
    if out["train"]["precision"] == "16-mixed" and out["run"]["dtype"] != "float32":
        problems.append(Related(f"train.precision = '16-mixed' trains float32 master weights under float16 "
                                f"autocast; run.dtype is {out['run']['dtype']!r}: set run.dtype = 'float32' or "
                                f"train.precision = '32'", "train.precision", "run.dtype"))
    resume = out["checkpoint"].get("resume")
    if resume is not None and not resume.strip():  # (an unset variable in --set checkpoint.resume=$CKPT)
        problems.append("checkpoint.resume is empty: give 'auto' or a checkpoint or run directory, or leave it unset")
    check_validation_monitors(out, problems)
    check_profile(out, problems)
    check_run_name(out, problems)
    e = out["ensemble"]
    if len(e["vary"]) != len(set(e["vary"])):
        problems.append(f"ensemble.vary lists a value twice: {e['vary']}")
    if len(e["overrides"]) > e["members"]:
        problems.append(Related(f"ensemble.overrides has {len(e['overrides'])} entries for {e['members']} members",
                                "ensemble.overrides", "ensemble.members"))
    if e.get("member") is not None and e["member"] >= max(e["members"], 1) and e["members"] > 1:
        problems.append(Related(f"ensemble.member {e['member']} is out of range for {e['members']} members",
                                "ensemble.member", "ensemble.members"))


def check_run_name(out: dict, problems: list):
    """``run.run_name`` is one directory name: the run goes to ``run.out_dir/NAME``. A path in it would put
    the run inside another run's directory (``a/b``) or outside ``run.out_dir`` (``../x``), and a leading '-'
    reads as an option to the shell commands that later name the directory; ``--out DIR`` is the way to put a
    run elsewhere."""
    name = out["run"].get("run_name")
    why = None if name is None else run_name_problem(name)
    if why is None:
        return
    problems.append(f"run.run_name = {name!r} {why}: it must be a single directory name (the run goes to "
                    "run.out_dir/NAME); for a run directory elsewhere give --out DIR, or leave run.run_name unset")


def run_name_problem(name: str) -> str | None:
    """Why ``name`` is not a single directory name for ``run.run_name``, or None when it is one."""
    if not name.strip():  # (an unset variable in --set run.run_name=$NAME)
        return "is empty"
    if "/" in name or "\\" in name:  # (both, so a config means the same on every system)
        return "holds a path separator"
    if name in (".", ".."):
        return "is run.out_dir itself" if name == "." else "is run.out_dir's parent"
    if name.startswith("-"):
        return "starts with '-' (shell commands would read the directory as an option)"
    return None


def drop_bad_run_name_in_record(raw: dict, source: str, overrides=()) -> None:
    """A run's config.toml written before ``run.run_name`` had to be one directory name may hold a path
    (``exp/a``): the run it names exists, so its record is no mistake to refuse (its resume was refused).
    The name goes, with a warning from the launcher's rank 0: a resume continues in ``--out``'s directory,
    and a run started from the record without ``--out`` gets a new one (``--set run.run_name=NAME`` names
    it; that value is checked as any other). In a config a user writes, one is a problem (check_run_name)."""
    run = raw.get("run")
    name = run.get("run_name") if isinstance(run, dict) else None
    if not isinstance(name, str) or run_name_problem(name) is None:
        return
    del run["run_name"]
    if any(str(o).partition("=")[0].strip() == "run.run_name" for o in overrides):
        return  # (--set names the run: nothing of the recorded name is used)
    import warnings

    from distnn._launcher_env import launcher_rank
    from distnn._stacklevel import caller_stacklevel
    from .config_object import ConfigWarning, config_warnings_on

    if launcher_rank() == 0 and config_warnings_on():
        warnings.warn(f"config {source}: the recorded run.run_name = {name!r} {run_name_problem(name)} (an earlier "
                      "distnn allowed that); it is not used: a resume continues in --out's directory, a new run "
                      "goes to a new directory under run.out_dir (--set run.run_name=NAME names it)",
                      ConfigWarning, stacklevel=caller_stacklevel())


def check_profile(out: dict, problems: list):
    """``run.profile`` names a directory (made absolute here, as data.path), records at least one step, and
    profiles one model: ensemble members trained in turn on the same ranks would overwrite each other's traces."""
    run = out["run"]
    if run["profile_steps"][2] < 1:
        problems.append(f"run.profile_steps = {run['profile_steps']}: [wait, warmup, active] needs active >= 1 "
                        "(the steps recorded)")
    directory = run.get("profile")
    if directory is None:
        return
    if not directory.strip():  # (an unset variable in --profile $DIR)
        problems.append("run.profile is empty: give the directory the traces go to, or leave it unset")
        return
    run["profile"] = _absolute(directory)
    if out["ensemble"]["members"] > 1:
        problems.append(Related(f"run.profile profiles one model; an ensemble trains {out['ensemble']['members']} "
                                "(members in turn would overwrite each other's traces): profile a single member "
                                "(ensemble.members = 1)", "run.profile", "ensemble.members"))


#: datasets whose every split is the whole data (data.val_fraction does not apply)
_SPLITS_ARE_ALL_DATA = frozenset({"xor"})


def check_validation_monitors(out: dict, problems: list):
    """A ``val_*`` monitor of early stopping or the plateau schedule needs a validation split.

    Without one, the run would fail after its first epoch ("monitored metric
    'val_loss' is not available"), leaving a run directory behind. The
    checkpoint's ``keep_best`` only warns then and keeps the newest checkpoints
    (its default monitor is val_loss, so a config without validation must work).
    """
    d = out["data"]
    if d["val_fraction"] > 0 or _may_bring_validation_split(d):
        return
    users = []
    es, s = out["early_stopping"], out["schedule"]
    if es["enabled"] and es["monitor"].startswith("val_"):
        users.append(("early_stopping.monitor", es["monitor"], "early_stopping.enabled = true"))
    if s["name"] == "plateau" and s["monitor"].startswith("val_"):
        users.append(("schedule.monitor", s["monitor"], "schedule.name = 'plateau'"))
    for key, monitor, setting in users:
        problems.append(Related(f"{key} is {monitor!r} ({setting}) but data.val_fraction = 0 leaves no validation "
                                f"split: set data.val_fraction > 0, or monitor "
                                f"'{monitor.replace('val_', 'train_', 1)}'", key, setting.split(" = ")[0],
                                "data.val_fraction"))


def _may_bring_validation_split(data: dict) -> bool:
    """True when the dataset has (or may have) a validation split even with data.val_fraction = 0."""
    name = data["name"]
    if name in _SPLITS_ARE_ALL_DATA:
        return True
    if name == "npz":
        path = data.get("path")
    elif name.lower().endswith(".npz"):
        path = name
    else:
        return False
    if data.get("x_key") is not None or data.get("y_key") is not None:
        return False  # explicit keys: one array pair, split by the fractions
    if not isinstance(path, str) or "{rank}" in path:
        return True  # nothing to look at here; the data loader reports what is wrong with the file
    # An archive with x_train/x_val keeps its own validation split. Its table of contents is cheap
    # to read; a file unreadable here is the data loader's to report, so give it the benefit of the doubt.
    try:
        with np.load(path, allow_pickle=False) as archive:
            files = set(archive.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return True
    return "x_train" in files and "x_val" in files


def check_ensemble(raw: dict, out: dict, source: str, problems: list):
    """Each member's overrides must give a valid config (the data may not change). A member's ``[model]`` is
    the ensemble's as checked (the --set model.* already won over the file's: ``--set model.arch=lstm`` dropped
    the file's ``nhead``), as ``member_config`` builds it, with the member's overrides winning over that."""
    raw = {**raw, "model": out["model"]}
    for i, table in enumerate(out["ensemble"]["overrides"]):
        for key in table:
            if key.split(".")[0] in ("data", "ensemble", "run") and not key.startswith("data.augment"):
                problems.append(f"ensemble.overrides[{i}]: '{key}' cannot differ between members (members share "
                                f"the data, its splits and the run)")
        member_raw, keys = C.apply_overrides(raw, list(table.items()))
        member_raw.get("ensemble", {}).pop("overrides", None)
        # (the ensemble's options of another optimizer or schedule than the member's own: back to their defaults;
        # its model arguments that the member's own make the model ignore, model.arch = "lstm"'s nhead: dropped)
        drop_options_not_taken(member_raw, keep=_overrides.override_paths(table))
        _model.drop_switched_off_by_member(member_raw, keys)
        try:
            C.validate(member_raw, source, _nested=True)
        except C.ConfigError as err:
            problems.extend(f"ensemble.overrides[{i}]: {p}" for p in err.problems)
