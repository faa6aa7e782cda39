"""The ``[defaults]`` table of a run's ``config.toml``: the model's, the dataset's, the optimizer's and the
schedule's own defaults, read back (:func:`recorded_defaults`) and taken out of a config to write
(:func:`split_recorded_defaults`)."""
from __future__ import annotations

from . import config as C
from .config_data_checks import dataset_kind
from .config_schema import OPTIMIZER_OWN_DEFAULTS, SCHEDULE_OWN_DEFAULTS, SCHEMA


#: the sections whose own defaults [defaults.SECTION.NAME] may record: the keys it may hold (None: any)
_RECORDED_KEYS = {"model": None, "data": None, "optimizer": OPTIMIZER_OWN_DEFAULTS, "schedule": SCHEDULE_OWN_DEFAULTS}


def recorded_defaults(raw: dict, problems: list) -> dict:
    """``{"model": {name: {argument: value}}, "data": {...}, "optimizer": {...}, "schedule": {...}}``: the
    model's, the dataset's, the optimizer's and the schedule's defaults a run's config.toml recorded
    (``[defaults.model.NAME]``, ``[defaults.data.NAME]``, ``[defaults.optimizer.NAME]``,
    ``[defaults.schedule.NAME]``)."""
    out: dict = {section: {} for section in _RECORDED_KEYS}
    table = raw.get(C.RECORDED_DEFAULTS, {})
    if not isinstance(table, dict):
        problems.append(f"{C.RECORDED_DEFAULTS} must be a table, got {C._describe(table)}")
        return out
    for section, by_name in table.items():
        path = f"{C.RECORDED_DEFAULTS}.{section}"
        keys = _RECORDED_KEYS.get(section)
        if section not in out:
            problems.append(f"unknown key '{path}': [{C.RECORDED_DEFAULTS}] records the model's, the dataset's, "
                            f"the optimizer's and the schedule's defaults only "
                            f"({', '.join(f'[{C.RECORDED_DEFAULTS}.{s}.NAME]' for s in _RECORDED_KEYS)})")
        elif not isinstance(by_name, dict) or not all(isinstance(v, dict) for v in by_name.values()):
            problems.append(f"{path} must hold a table per name ([{path}.NAME]), got {C._describe(by_name)}")
        elif keys is not None and any(k not in keys for v in by_name.values() for k in v):
            bad = next(f"{path}.{n}.{k}" for n, v in by_name.items() for k in v if k not in keys)
            problems.append(f"unknown key '{bad}': [{path}.NAME] records the {section}'s own defaults of "
                            f"{', '.join(keys)} only")
        else:
            out[section] = by_name
    return out


def split_recorded_defaults(data: dict, origins: dict) -> dict:
    """Take the model's, the dataset's, the optimizer's and the schedule's keys at their default out of
    ``data``: ``{"model": {name: {...}}, "data": {name: {...}}, "optimizer": {name: {...}}, "schedule": {...}}``
    (a .npz/.csv file's options under "npz"/"csv", as check_data reads them; the optimizer's and the
    schedule's: those of OPTIMIZER_OWN_DEFAULTS and SCHEDULE_OWN_DEFAULTS)."""
    out = {}
    for section in ("model", "data"):
        table = data.get(section)
        if not isinstance(table, dict) or not isinstance(table.get("name"), str):
            continue
        moved = {k: table.pop(k) for k in list(table)
                 if f"{section}.{k}" not in SCHEMA and origins.get(f"{section}.{k}") == C.DEFAULT}
        if moved:
            name = dataset_kind(table["name"]) if section == "data" else table["name"]
            out[section] = {name: moved}
    for section in ("optimizer", "schedule"):
        table = data.get(section)
        if isinstance(table, dict) and isinstance(table.get("name"), str):
            moved = {k: table.pop(k) for k in _RECORDED_KEYS[section]
                     if k in table and origins.get(f"{section}.{k}") == C.DEFAULT}
            if moved:
                out[section] = {table["name"]: moved}
    return out


def fill_own_defaults(out: dict, section: str, keys, takes, default, recorded, problems: list) -> None:
    """Fill the ``keys`` of ``out[section]`` left unset with the chosen class's own default
    (``default(name, key)``), or with the one a run's config.toml recorded for it (``recorded[name]``,
    checked as a given value is); a key the class does not take (``takes(name, key)``) stays unset. The
    section's keys are then put in schema order (a config reads in that order)."""
    table = out[section]
    name = table.get("name")
    own = (recorded or {}).get(name, {})
    for k in keys:
        if table.get(k) is not None or not takes(name, k):
            continue
        path = f"{section}.{k}"
        value = C._check_value(path, SCHEMA[path], own[k], problems) if k in own else default(name, k)
        if value is not None:
            table[k] = value
    order = [p.split(".", 1)[1] for p in SCHEMA if p.startswith(section + ".")]
    out[section] = {k: table[k] for k in sorted(table, key=lambda k: order.index(k) if k in order else len(order))}

