"""Writing a resolved config back as TOML: :func:`dump_config` (a run's record, the model's, dataset's,
optimizer's and schedule's defaults under ``[defaults.SECTION.NAME]``), :func:`dump_run_config` (a run
directory's ``config.toml``) and :func:`save_config`."""
from __future__ import annotations

import copy

from . import config_checks as checks
from .config_object import Config
from .config_schema import RECORDED_DEFAULTS
from .toml_writer import dumps as toml_dumps


#: The first words of a config.toml that ``dump_config`` wrote (a run's record, not a config a user wrote).
RUN_RECORD_HEADER = "# distnn run configuration (resolved"


def dump_config(cfg) -> str:
    """TOML text of a (resolved) config; ``loads_config`` of it gives the same Config.

    The model's, the dataset's, the optimizer's and the schedule's defaults (the ``model.*``/``data.*`` keys,
    the optimizer's and the schedule's own defaults, ``config_schema.OPTIMIZER_OWN_DEFAULTS`` and
    ``SCHEDULE_OWN_DEFAULTS``, that a Config's origins say are at their default) go to
    ``[defaults.model.NAME]``, ``[defaults.data.NAME]``, ``[defaults.optimizer.NAME]`` and
    ``[defaults.schedule.NAME]``: a run's full record that applies to that model, dataset, optimizer and
    schedule alone, so the file re-run with ``--set model.name=...`` (``data.name``, ``optimizer.name``,
    ``schedule.name``) works as the config it came from does, and not on the old model's arguments
    (Adagrad's eps for Adam, CyclicLR's gamma 1.0 for StepLR)."""
    data = cfg.to_dict() if isinstance(cfg, Config) else copy.deepcopy(dict(cfg))
    ordered = {k: data.pop(k) for k in ("name", "description") if k in data}
    ordered.update(data)
    recorded = checks.split_recorded_defaults(ordered, getattr(cfg, "origins", {}))
    if recorded:
        ordered[RECORDED_DEFAULTS] = recorded
    return toml_dumps(ordered, header="distnn run configuration (resolved: every key, defaults filled in;\n"
                                      "[defaults.model.NAME], [defaults.data.NAME], [defaults.optimizer.NAME] and\n"
                                      "[defaults.schedule.NAME] hold the model's, the dataset's, the optimizer's\n"
                                      "and the schedule's, which apply while model.name, data.name,\n"
                                      "optimizer.name and schedule.name name them)")


def dump_run_config(cfg) -> str:
    """The ``config.toml`` of a run directory and of its checkpoints: :func:`dump_config` without
    ``checkpoint.resume``. Where a session started from (``--resume``) is no setting of the run: kept,
    ``train --config RUN/config.toml`` of a resumed run asked for an ``--out`` (``auto``) or resumed
    from that run's checkpoint (a path, relative to wherever the first session ran) instead of
    training the same way afresh. A resume names its checkpoint on the command line each time."""
    record = copy.deepcopy(cfg)
    if isinstance(record.get("checkpoint"), dict):
        record["checkpoint"].pop("resume", None)
    return dump_config(record)


def save_config(cfg, path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(dump_config(cfg))
