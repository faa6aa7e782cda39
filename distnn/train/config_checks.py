"""The checks of a config beyond each key's own type and range: the model's and the dataset's
open keyword arguments, relations between keys, and an ensemble's member configs.

Called by :func:`distnn.train.config.validate`; each appends one-line problems to ``problems``.
"""
from __future__ import annotations

import copy
import difflib
import math
import os
import re
import zipfile

import numpy as np

from . import config as C
from .config_schema import MODEL_RESERVED, OPTIMIZER_OWN_DEFAULTS, SCHEDULE_OWN_DEFAULTS, SCHEMA


class Related(str):
    """A problem of several keys together (``optimizer.nesterov needs optimizer.momentum > 0``): ``keys``
    are the keys involved, whether the message names them or not, so that ``validate`` can say which of
    them --set gave and which the config file (``Config.origins_tag``)."""

    def __new__(cls, message: str, *keys: str):
        problem = super().__new__(cls, message)
        problem.keys = keys
        return problem


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


def model_arguments(name: str) -> list | None:
    """The keyword arguments a config may give model ``name`` (not those the trainer fills in), in the
    order of its signature; None for a model that is not known or takes any (``**kwargs``)."""
    import inspect

    try:
        from distnn.models import registry
    except ImportError:
        return None
    cls = getattr(registry, "_MODELS", {}).get(name.lower())
    if cls is None:
        return None
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    decided = data_decided_arguments(name)
    return [p for p in params if p != "self" and p not in MODEL_RESERVED and p not in decided]


def data_decided_arguments(name: str) -> tuple:
    """The arguments of model ``name`` that the data decides whenever the trainer builds it (``Arguments.
    from_data``: LeNet's ``in_channels`` and ``image_size`` come from the input shape the trainer always
    gives), so that a config's value would be ignored; () for a model without them, or not known."""
    table = _argument_table(name) if isinstance(name, str) else None
    return table.from_data if table is not None else ()


def _argument_table(name):
    """The :class:`~distnn.models.arguments.Arguments` table of model ``name``, or None (unknown, none, or
    no model zoo here: as in check_model, it is optional)."""
    try:
        from distnn.models.arguments import arguments_of
    except ImportError:
        return None
    return arguments_of(name)


def _set_wins_over_unused(extra: dict, out: dict, overridden) -> dict:
    """``extra`` less an argument of the file that one --set gives makes unused (``Arguments.unused_with``).

    ``--set model.sizes=[...]`` on a config that gives ``hidden_sizes`` (digits_mlp) means "these sizes
    instead": --set cannot remove a key, so the file's ``hidden_sizes`` goes (and the other way round).
    Both given in the file, or both by --set, stay a conflict that ``check_model`` reports.
    """
    table = _argument_table(out["model"].get("name", ""))
    if not overridden or table is None:
        return extra
    extra = dict(extra)
    for k, other in table.unused_with.items():
        if k in extra and other in extra:
            by_set = {a for a in (k, other) if f"model.{a}" in overridden}
            if len(by_set) == 1:
                drop = other if k in by_set else k
                del extra[drop]
                out["model"].pop(drop, None)
    return extra


def _none_by_set(extra: dict, out: dict, overridden) -> dict:
    """``extra`` with ``--set model.KEY=none`` (or ``null``) read as None where the model's rule allows None.

    TOML has no null, so --set cannot otherwise undo a file's value of an argument whose off-value is None
    (MLP's ``norm = "layer"``), as ``none`` already unsets an optional schema key.
    """
    table = _argument_table(out["model"].get("name", ""))
    if table is None:
        return extra
    extra = dict(extra)
    for k, v in extra.items():
        rule = table.rules.get(k)
        if (f"model.{k}" in overridden and isinstance(v, str) and v.lower() in ("none", "null")
                and rule is not None and rule.test(None) and not rule.test(v)):
            extra[k] = None
    return extra


def drop_data_decided_in_record(raw: dict) -> None:
    """A run's config.toml may hold an argument the data decides (``model.in_channels``: recorded as given,
    before a config refused one); its model was built from the data's input shape alone, so the argument goes,
    and the run re-runs and resumes as it did. In a config a user writes, one is a problem (check_model)."""
    model = raw.get("model")
    if isinstance(model, dict) and isinstance(model.get("name"), str):
        for k in data_decided_arguments(model["name"]):
            model.pop(k, None)


def drop_unused_in_old_record(raw: dict) -> None:
    """A run's config.toml written before ``[defaults]`` (and before the MLP refused ``hidden_sizes`` beside
    ``sizes``) may hold both: the file's ``hidden_sizes`` next to a --set ``sizes``. Its model was built from
    ``sizes`` alone, so the argument that one ignores goes (as ``run_dir`` reads such a run's model.json),
    and the run re-runs and resumes as it did; in a config a user wrote, both stay a conflict."""
    model = raw.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        return
    table = _argument_table(model["name"])
    if table is not None:
        table.drop_ignored(model)


def drop_ignored_in_record(raw: dict) -> None:
    """A run's config.toml may hold a model argument its other arguments make the model ignore (CharLM's
    ``hidden_size`` with ``arch = "transformer"``: recorded as given, before a config refused one); its model
    was built without it, so it goes, and the run re-runs and resumes as it did. In a config a user writes,
    one is a problem (check_model)."""
    model = raw.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        return
    table = _argument_table(model["name"])
    if table is None or not table.only_with:
        return
    from distnn.models import registry
    from distnn.models.arguments import signature_defaults

    recorded = ((raw.get(C.RECORDED_DEFAULTS) or {}).get("model") or {}).get(model["name"])
    defaults = {**signature_defaults(registry._MODELS[model["name"].lower()]),
                **(recorded if isinstance(recorded, dict) else {})}
    for k in table.ignored(model, defaults):
        del model[k]


def dataset_options(name: str) -> list:
    """The options (besides ``path``) a config may give dataset ``name`` (a registered name, or a .npz/.csv
    file); [] for a name that is not known."""
    from distnn.data import datasets as dsets

    if name not in dict(dsets.list_datasets()):
        name = os.path.splitext(name)[1].lower()[1:]
        if name not in ("npz", "csv"):
            return []
    return [o for o in dsets.list_dataset_options(name) if o != "path"]


def check_model(extra: dict, out: dict, problems: list, known=None, recorded=None, overridden=()):
    """``known``: every dotted key the hints for a misspelt one may name (default: the schema's);
    ``recorded``: a run's recorded model defaults, ``{model name: {argument: value}}`` (see
    ``config_schema.RECORDED_DEFAULTS``): the chosen model's stand for its signature defaults;
    ``overridden``: the dotted keys --set gave."""
    known = list(SCHEMA) if known is None else known
    extra = _set_wins_over_unused(extra, out, overridden)
    extra = _none_by_set(extra, out, overridden)
    decided = data_decided_arguments(out["model"].get("name"))
    for k in sorted(extra):
        if k in MODEL_RESERVED:
            problems.append(f"model.{k} is set by the trainer from the data; remove it from the config")
        elif k in decided:  # (the model takes it, but the input shape the trainer gives overrides it)
            problems.append(Related(f"model.{k} is set by the trainer from the data (its input shape) for model "
                                    f"{out['model']['name']!r}; remove it from the config", f"model.{k}",
                                    "model.name"))
    extra = {k: v for k, v in extra.items() if k not in decided}
    out["model"].update({k: v for k, v in extra.items() if k not in MODEL_RESERVED})
    name = out["model"]["name"]
    try:
        from distnn.models import registry
    except ImportError:  # the model zoo is optional here; the trainer reports it at build time
        return
    models = getattr(registry, "_MODELS", {})
    if not models:
        return
    if name.lower() not in models:
        close = difflib.get_close_matches(name.lower(), sorted(models), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        problems.append(f"model.name {name!r} is not a known model{hint}; available: {', '.join(sorted(models))}")
        return
    params = model_arguments(name)
    if params is None:  # (it takes any keyword)
        return
    accepted = sorted(params)
    for k in sorted(extra):
        if k not in MODEL_RESERVED and k not in params:  # (it may be model.name that --set changed)
            problems.append(Related(f"unknown key 'model.{k}'{C.suggest_key(f'model.{k}', known)}; model {name!r} "
                                    f"takes: {', '.join(accepted)}", f"model.{k}", "model.name"))
    # The known keys against the model's own rules (types, ranges, relations), as the model applies them
    # when it is built; here every problem is reported before any data is loaded or directory created.
    from distnn.models.arguments import Arguments, config_problems, signature_defaults

    table = getattr(models[name.lower()], "arguments", None)
    rules = table.rules if isinstance(table, Arguments) else {}
    defaults = {**signature_defaults(models[name.lower()]), **(recorded or {}).get(name, {})}
    if isinstance(table, Arguments):  # (given arguments the others make the model ignore: CharLM's per arch)
        extra = dict(extra)
        for k, problem in table.ignored(extra, defaults).items():
            other = f"model.{table.only_with[k][0]}"
            if f"model.{k}" not in overridden and other in overridden:  # (--set wins, as _set_wins_over_unused)
                del extra[k]
                out["model"].pop(k, None)
            else:
                problems.append(Related(problem, f"model.{k}", other))
    # Defaults the model does not use with these arguments (MLP's hidden_sizes once sizes is given).
    unused = table.unused(extra, defaults) if isinstance(table, Arguments) else set()
    # The defaults a run recorded for this model (and no other: a re-run with another model.name gets that
    # model's own), for the arguments it takes and uses; checked by its rules as given ones are.
    own = {k: v for k, v in (recorded or {}).get(name, {}).items()
           if k in params and k not in extra and k not in MODEL_RESERVED and k not in unused}
    given = {}
    for k, v in {**own, **extra}.items():
        if k in MODEL_RESERVED or k not in params:
            continue
        # (no model argument is a table: keys under one name nothing)
        expected = rules[k].requirement if k in rules else "a value"
        not_section = C.value_not_section(f"model.{k}", v, expected) if isinstance(v, dict) else None
        if not_section:
            problems.append(not_section)
        else:
            given[k] = v
    for problem in config_problems(models[name.lower()], given):  # (a relation names every key it involves)
        problems.append(Related(problem, *re.findall(r"(?<![\w.])model\.\w+", problem)))
    # The resolved config (a run's config.toml) records what the model is built with: the defaults of the
    # arguments not given too, so that a later default cannot change a re-run. Not those the data decides
    # (LeNet's in_channels) or the arguments given make unused, nor a None (TOML has none: an absent key means the same), nor in an ensemble
    # whose members change the model: this model's defaults would be unknown keys of another one (each
    # member's own config records its model's).
    if _members_change(out, "model.name"):
        return
    for k, default in signature_defaults(models[name.lower()]).items():
        if k not in extra and k not in MODEL_RESERVED and k not in unused and _plain(default):
            out["model"][k] = list(default) if isinstance(default, tuple) else default
    out["model"].update({k: v for k, v in own.items() if k in given})  # (a bad one is a problem already)


def _members_change(out: dict, key: str) -> bool:
    """Whether an ensemble member's overrides set ``key`` (``model.name``); ``out``: a config, resolved or raw."""
    overrides = (out.get("ensemble") or {}).get("overrides") if isinstance(out.get("ensemble"), dict) else None
    return isinstance(overrides, list) and any(
        path == key for table in overrides if isinstance(table, dict) for k, value in table.items()
        for path, _ in C._override_leaves(k, value))


def _plain(value) -> bool:
    """Whether ``value`` is a TOML value (a default a config can hold): a number, string, boolean, or a
    list of them."""
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return isinstance(value, (bool, int, float, str))


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


def dataset_kind(name: str) -> str:
    """The dataset whose options a config's ``data.name`` takes: a registered name, or "npz"/"csv" for a file."""
    from distnn.data import datasets as dsets

    ext = os.path.splitext(name)[1].lower()
    return ext[1:] if name not in dict(dsets.list_datasets()) and ext in (".npz", ".csv") else name


def check_data(extra: dict, out: dict, problems: list, known=None, recorded=None):
    """Dataset options (e.g. data.flatten) are checked against the chosen dataset's source. ``known``: every
    dotted key the hints for a misspelt one may name (default: the schema's and the dataset's options);
    ``recorded``: a run's recorded dataset defaults, ``{dataset: {option: value}}``, as in :func:`check_model`
    (a .npz or .csv file's under "npz" or "csv")."""
    from distnn.data import datasets as dsets

    data = out["data"]
    name = dataset_kind(data["name"])
    if name not in dict(dsets.list_datasets()):
        if name not in ("npz", "csv"):
            close = difflib.get_close_matches(name, [n for n, _ in dsets.list_datasets()], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"data.name {name!r} is not a known dataset{hint}; run 'distnn datasets' for the list")
            for k in sorted(extra):
                problems.append(f"unknown key 'data.{k}'{C.suggest_key('data.' + k, known or list(SCHEMA))}")
            return
    options = dsets.list_dataset_options(name)
    if known is None:
        known = [*SCHEMA, *(f"data.{o}" for o in options if o != "path")]
    # (the recorded defaults of this dataset, checked as given options are; see check_model)
    own = {k: v for k, v in (recorded or {}).get(name, {}).items() if k in options and k != "path" and k not in extra}
    extra = {**own, **extra}
    for k in sorted(extra):
        if k not in options or k == "path":
            hint = C.suggest_key(f"data.{k}", known)
            takes = ", ".join(o for o in options if o != "path") or "none"
            # (it may be data.name that --set changed)
            problems.append(Related(f"unknown key 'data.{k}'{hint}; dataset '{name}' options: {takes}", f"data.{k}",
                                    "data.name"))
            continue
        v = extra[k]
        expected = dsets.get_dataset_entry(name).check_option(k, v)
        not_section = C.value_not_section(f"data.{k}", v, expected or "a value") if isinstance(v, dict) else None
        if not_section:  # (no dataset option is a table: keys under one name nothing)
            problems.append(not_section)
            continue
        if expected is not None:
            problems.append(f"data.{k} must be {expected}, got {C._describe(v)}")
            continue
        if isinstance(v, float) and not math.isfinite(v):  # no dataset option means anything at inf or NaN
            problems.append(f"data.{k} must be a finite number, got {v!r}")
            continue
        data[k] = float(v) if isinstance(options[k], float) and isinstance(v, int) else v
    for k, default in options.items():  # (recorded, as the model's defaults are: see check_model)
        if k != "path" and k not in extra and _plain(default):
            data[k] = list(default) if isinstance(default, tuple) else default
    needs_path = dsets.get_dataset_entry(name).needs_path
    if "path" not in options and data.get("path") is not None and name == data["name"]:
        problems.append(Related(f"data.path is set but dataset '{name}' reads no files; remove data.path",
                                "data.path", "data.name"))
    elif needs_path and data.get("path") is None and name == data["name"]:
        problems.append(Related(f"data.path is required for dataset '{name}': add path = \"...\" under [data] "
                                f"or pass --set data.path=PATH", "data.name", "data.path"))
    _absolute_data_paths(data)


def _absolute_data_paths(data: dict) -> None:
    """Make ``data.path`` (and a file given as ``data.name``) absolute, relative to the working directory.

    The resolved config is saved in the run directory (config.toml, and the data
    section of model.json) and read back by ``distnn evaluate``/``predict`` and by
    resumed runs, possibly from another working directory: a path kept as written
    would then name the wrong file, or none.
    """
    if isinstance(data.get("path"), str) and data["path"]:
        data["path"] = _absolute(data["path"])
    name = data.get("name")
    if isinstance(name, str) and os.path.splitext(name)[1].lower() in (".npz", ".csv"):
        from distnn.data import datasets as dsets

        if name not in dict(dsets.list_datasets()):  # a file path, not a registered dataset's name
            data["name"] = _absolute(name)


def _absolute(path: str) -> str:
    # ~ is expanded first: abspath would otherwise make "~/data" a directory named "~" under the cwd.
    return os.path.abspath(os.path.expanduser(path))


#: the optimizer keys that only some optimizers take: the keyword arguments of that name of their constructors,
#: which job_setup passes (every optimizer takes lr and weight_decay; the trainer applies l1 and max_norm).
#: tests/test_config_optimizer_options.py holds the three together, and the keys' docs in the schema to them.
OPTIMIZER_OPTIONS = {
    "momentum": ("sgd", "rmsprop", "lars"),
    "nesterov": ("sgd", "lars"),
    "betas": ("adam", "adamw", "lamb", "adamax", "nadam", "radam"),
    "eps": ("adam", "adamw", "rmsprop", "adagrad", "lars", "lamb", "adamax", "nadam", "radam", "adadelta"),
    "alpha": ("rmsprop",),
    "rho": ("adadelta",),
    "momentum_decay": ("nadam",),
    "decoupled_weight_decay": ("nadam", "radam"),
    "etas": ("rprop",),
    "step_sizes": ("rprop",),
    "lambd": ("asgd",),
    "t0": ("asgd",),
}

#: constructor arguments that share a key's name but not its meaning, so the builder leaves them at the
#: optimizer's own default: ASGD's alpha is the power of its rate's decay (0.75), not RMSprop's smoothing constant
OPTIMIZER_NAMESAKES = {"asgd": ("alpha",)}

#: the schedule keys that only some schedules take, as job_setup.build_schedule reads them (the others, the
#: warmup, the interval and the linear scaling, go with any schedule); tests/test_config_tables.py holds them
#: together, and the keys' docs in the schema to them.
SCHEDULE_OPTIONS = {
    "step_size": ("step",),
    "gamma": ("step", "multistep", "exponential", "cyclic"),
    "milestones": ("multistep",),
    "T_max": ("cosine",),
    "eta_min": ("cosine",),
    "max_lr": ("onecycle", "cyclic"),
    "power": ("polynomial",),
    **{k: ("cyclic",) for k in ("step_size_up", "step_size_down", "cycle_mode")},
    **{k: ("plateau",) for k in ("monitor", "mode", "patience", "threshold", "cooldown", "min_lr")},
    "factor": ("plateau", "constant_factor"),
    "total_iters": ("constant_factor",),
}


def _takers(key: str, table=OPTIMIZER_OPTIONS) -> str:
    """'sgd, rmsprop and lars': the optimizers (schedules) that take ``key``, in words."""
    *rest, last = table[key]
    return f"{', '.join(rest)} and {last}" if rest else last


def _options_not_taken(section: str, table: dict, out: dict, problems: list, overridden) -> list:
    """Keys of ``section`` (optimizer, schedule), off their default, that the chosen ``section.name`` does not
    take (``table``: the names that take each key). Given by --set, each is a problem: it would be ignored.
    From the config file while --set gave ``section.name``, the --set wins: the key goes back to its default
    (unset, for an optional key). Returns the others: from the file, with the file's own name."""
    o = out[section]
    name = o.get("name")
    if name is None:
        return []
    left = []
    for k, takers in table.items():
        default = SCHEMA[f"{section}.{k}"].default
        if k not in o or name in takers or o[k] == default:
            continue
        if f"{section}.{k}" in overridden:
            one = "an optimizer" if section == "optimizer" else "a schedule"
            problems.append(Related(
                f"{section} {name!r} does not take {section}.{k} (an option of {_takers(k, table)}): {name} would "
                f"ignore it; leave out --set {section}.{k}, or choose {one} that takes it", f"{section}.{k}",
                f"{section}.name"))
        elif f"{section}.name" in overridden:
            if default is None:
                del o[k]
            else:
                o[k] = copy.deepcopy(default)
        else:
            left.append(k)
    return left


def check_optimizer_options(out: dict, problems: list, overridden=()):
    """Optimizer keys, off their default, that the chosen optimizer does not take (``momentum`` for adam).

    Given by --set, each is a problem, as a model argument the model does not take is: it would be ignored.
    From the config file while --set gave ``optimizer.name``, the --set wins (as ``_set_wins_over_unused``
    for the model's arguments): ``--set optimizer.name=adam`` on digits_mlp means adam instead of its SGD with
    Nesterov momentum, so the file's ``momentum`` and ``nesterov`` go back to their defaults (the run's
    config.toml then records what the optimizer used). From the file with the file's own ``optimizer.name``:
    ``nesterov`` is a problem, the others are left (and ignored), as before (a run's config.toml may hold
    them)."""
    if "nesterov" in _options_not_taken("optimizer", OPTIMIZER_OPTIONS, out, problems, overridden):
        name = out["optimizer"]["name"]
        problems.append(Related(
            f"optimizer {name!r} does not take optimizer.nesterov = true (an option of {_takers('nesterov')}, with "
            f"momentum > 0): remove the line nesterov = true from [optimizer], or give --set optimizer.nesterov=false",
            "optimizer.nesterov", "optimizer.name"))


def check_schedule_options(out: dict, problems: list, overridden=()):
    """Schedule keys, off their default, that the chosen schedule does not take (``T_max`` for step), as
    :func:`check_optimizer_options` does for the optimizer's: given by --set, a problem; from the file while
    --set gave ``schedule.name``, back to their defaults; from the file with its own ``schedule.name``, left
    (and ignored: a run's config.toml may hold them)."""
    _options_not_taken("schedule", SCHEDULE_OPTIONS, out, problems, overridden)
    s = out["schedule"]
    default = SCHEMA["schedule.interval"].default
    # (not where ensemble members choose their schedules: each member's config is checked on its own)
    if s.get("name") in INTERVAL_IGNORED and s["interval"] != default and not _members_change(out, "schedule.name"):
        if "schedule.interval" not in overridden and "schedule.name" in overridden:  # (the --set wins)
            s["interval"] = default
        else:
            problems.append(Related(
                f"schedule {s['name']!r} ignores schedule.interval = {s['interval']!r} ({INTERVAL_IGNORED[s['name']]}):"
                f" remove it, or choose a schedule that advances per interval", "schedule.interval", "schedule.name"))


#: the schedules that ignore ``schedule.interval``, and why (job_setup.build_schedule)
INTERVAL_IGNORED = {"constant": "it has nothing to advance; a warmup counts optimizer steps",
                    "plateau": "it steps once per validation",
                    "onecycle": "it spans the run's optimizer steps"}


def reset_ignored_interval_in_record(raw: dict) -> None:
    """A run's config.toml may hold a ``schedule.interval`` its schedule ignored (accepted before a config
    refused one): it goes back to its default, which the run behaved as, and the run re-runs and resumes as it
    did. In a config a user writes, one is a problem (check_schedule_options)."""
    s = raw.get("schedule")
    if isinstance(s, dict) and s.get("name") in INTERVAL_IGNORED and "interval" in s:
        s["interval"] = SCHEMA["schedule.interval"].default


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
    resume = out["checkpoint"].get("resume")
    if resume is not None and not resume.strip():  # (an unset variable in --set checkpoint.resume=$CKPT)
        problems.append("checkpoint.resume is empty: give 'auto' or a checkpoint or run directory, or leave it unset")
    check_validation_monitors(out, problems)
    e = out["ensemble"]
    if len(e["vary"]) != len(set(e["vary"])):
        problems.append(f"ensemble.vary lists a value twice: {e['vary']}")
    if len(e["overrides"]) > e["members"]:
        problems.append(Related(f"ensemble.overrides has {len(e['overrides'])} entries for {e['members']} members",
                                "ensemble.overrides", "ensemble.members"))
    if e.get("member") is not None and e["member"] >= max(e["members"], 1) and e["members"] > 1:
        problems.append(Related(f"ensemble.member {e['member']} is out of range for {e['members']} members",
                                "ensemble.member", "ensemble.members"))


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
    """Each member's overrides must give a valid config (the data may not change)."""
    for i, table in enumerate(out["ensemble"]["overrides"]):
        for key in table:
            if key.split(".")[0] in ("data", "ensemble", "run") and not key.startswith("data.augment"):
                problems.append(f"ensemble.overrides[{i}]: '{key}' cannot differ between members (members share "
                                f"the data, its splits and the run)")
        member_raw, _ = C.apply_overrides(raw, list(table.items()))
        member_raw.get("ensemble", {}).pop("overrides", None)
        try:
            C.validate(member_raw, source, _nested=True)
        except C.ConfigError as err:
            problems.extend(f"ensemble.overrides[{i}]: {p}" for p in err.problems)
