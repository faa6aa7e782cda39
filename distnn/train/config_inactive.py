"""Keys a config gives that have no effect while a switch is off (``early_stopping.patience`` with
``early_stopping.enabled = false``): a warning, not an error (:func:`warn_inactive`).

An option of another optimizer, schedule or dataset is refused (``config_option_checks``,
``config_data_checks``): nothing in the config makes it mean anything, as PyTorch's optimizers raise
TypeError for a keyword they do not take. These are different: the feature they tune is one users turn on
and off (``--set early_stopping.enabled=true``, ``--set schedule.warmup_epochs=0``) while its settings stay
written for when it is on, and refusing the file each time it is off would make every toggle an edit. So, as
PyTorch's LSTM warns of a dropout with one layer and Lightning of settings its loop will not use, the config
loads and a :class:`ConfigWarning` (a UserWarning of its own category, as Lightning's PossibleUserWarning)
names the config file, the key and the switch. Quiet for a value at its default, where --set turned
the switch off (the user just did so), where ensemble members set the switch, and for a run's config.toml
(a record holds every key: ``loads_config`` does not call this for one).
"""
from __future__ import annotations

import warnings

from distnn._stacklevel import caller_stacklevel as _caller_stacklevel

from .config_object import ConfigWarning, config_warnings_on
from .config_origins import SET_BY_OVERRIDE
from .config_overrides import _members_change
from .config_schema import SCHEMA
from .config_values import _get_path

#: the [checkpoint] keys that only tune how checkpoints are written
CHECKPOINT_WRITING = ("checkpoint.every_steps", "checkpoint.every_epochs", "checkpoint.every_seconds",
                      "checkpoint.keep_last", "checkpoint.keep_best", "checkpoint.save_last", "checkpoint.monitor",
                      "checkpoint.mode", "checkpoint.on_error", "checkpoint.async_save")

#: the loss scaler's settings (precision '16-mixed' alone scales the loss)
GRAD_SCALER = tuple(k for k in SCHEMA if k.startswith("train.grad_scaler."))

#: (the switch's keys, whether it is off in a resolved config, the keys it leaves unused, the state in words,
#: how to turn it on); a key two switches leave unused is named once, with the first
SWITCHES = (
    (("early_stopping.enabled",), lambda c: not c["early_stopping"]["enabled"],
     ("early_stopping.monitor", "early_stopping.mode", "early_stopping.patience", "early_stopping.min_delta",
      "early_stopping.restore_best"), "while early_stopping.enabled = false", "early_stopping.enabled = true"),
    (("schedule.warmup_steps", "schedule.warmup_epochs"),
     lambda c: not c["schedule"]["warmup_steps"] and not c["schedule"]["warmup_epochs"],
     ("schedule.warmup_start_factor",), "with no warmup (schedule.warmup_steps = schedule.warmup_epochs = 0)",
     "schedule.warmup_steps or schedule.warmup_epochs > 0"),
    (("schedule.linear_scaling",), lambda c: not c["schedule"]["linear_scaling"], ("schedule.reference_batch",),
     "while schedule.linear_scaling = false", "schedule.linear_scaling = true"),
    (("train.adversarial_eps",), lambda c: not c["train"]["adversarial_eps"], ("train.adversarial_weight",),
     "while train.adversarial_eps = 0 (no adversarial training)", "train.adversarial_eps > 0"),
    # (not checkpoint.dir and checkpoint.resume: a resume reads the checkpoints there with checkpointing off too)
    (("checkpoint.enabled",), lambda c: not c["checkpoint"]["enabled"], CHECKPOINT_WRITING,
     "while checkpoint.enabled = false (no checkpoint is written)", "checkpoint.enabled = true"),
    (("checkpoint.keep_best",), lambda c: not c["checkpoint"]["keep_best"], ("checkpoint.monitor", "checkpoint.mode"),
     "while checkpoint.keep_best = false (no best checkpoint is picked)", "checkpoint.keep_best = true"),
    (("train.precision",), lambda c: c["train"]["precision"] != "16-mixed", GRAD_SCALER,
     "with train.precision = '32' (no loss scaling)", "train.precision = '16-mixed'"),
    (("train.nonfinite",), lambda c: c["train"]["nonfinite"] == "error", ("train.max_nonfinite",),
     "with train.nonfinite = 'error' (the first non-finite step stops the run)", "train.nonfinite = 'skip'"),
    (("distributed.compression",), lambda c: c["distributed"]["compression"] != "powersgd",
     tuple(k for k in SCHEMA if k.startswith("distributed.powersgd.")),
     "while distributed.compression is not 'powersgd'", "distributed.compression = 'powersgd'"),
    (("run.profile",), lambda c: not c["run"].get("profile"), ("run.profile_steps",),
     "while run.profile is unset (no profiling)", "run.profile = DIR (--profile DIR)"),
    # (lars and lamb exempt them from their layer adaptation too, whatever the decay)
    (("optimizer.weight_decay", "optimizer.l1", "optimizer.name"),
     lambda c: not c["optimizer"].get("weight_decay") and not c["optimizer"]["l1"]
     and c["optimizer"]["name"] not in ("lars", "lamb"), ("optimizer.no_decay_bias_norm",),
     "with no weight decay or l1 penalty (optimizer.weight_decay = optimizer.l1 = 0)",
     "optimizer.weight_decay or optimizer.l1 > 0"),
)


def inactive_keys(cfg) -> list[str]:
    """One line per key ``cfg`` (a resolved Config) gives off its default that its switch leaves unused."""
    origins = getattr(cfg, "origins", {})
    lines, named = [], set()
    for switch, off, keys, state, turn_on in SWITCHES:
        if not off(cfg) or any(origins.get(k) == SET_BY_OVERRIDE or _members_change(cfg, k) for k in switch):
            continue
        for key in keys:
            value = _get_path(cfg, key)
            if value != SCHEMA[key].default and key not in named:
                named.add(key)
                lines.append(f"{key} = {value!r} has no effect {state}; it takes effect with {turn_on}")
    return lines


def warn_inactive(cfg) -> None:
    """A :class:`ConfigWarning` (a UserWarning) for each of :func:`inactive_keys`, from the launcher's rank 0
    alone (every rank of a job loads the config). The message names the config file; the warning's location
    is the first caller outside distnn (the line that called ``load_config``), as ``stacklevel=2`` of a
    PyTorch function names its caller, and not a line of distnn's own that the user cannot change."""
    from distnn._launcher_env import launcher_rank

    if launcher_rank() != 0 or not config_warnings_on():
        return
    where = f"config {cfg.source}: " if getattr(cfg, "source", None) else ""
    for line in inactive_keys(cfg):
        warnings.warn(where + line, ConfigWarning, stacklevel=_caller_stacklevel())
