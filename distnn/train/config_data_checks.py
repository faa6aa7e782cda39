"""The ``[data]`` section beyond the schema: the chosen dataset's own options (:func:`check_data`), which
options a dataset takes (:func:`dataset_options`, :func:`dataset_kind`), and ``data.path`` made absolute."""
from __future__ import annotations

import difflib
import math
import os

from . import config as C
from .config_origins import Related
from .config_schema import SCHEMA
from .config_values import _plain


def dataset_options(name: str) -> list:
    """The options (besides ``path``) a config may give dataset ``name`` (a registered name, or a .npz/.csv
    file); [] for a name that is not known."""
    from distnn.data import datasets as dsets

    if name not in dict(dsets.list_datasets()):
        name = os.path.splitext(name)[1].lower()[1:]
        if name not in ("npz", "csv"):
            return []
    return [o for o in dsets.list_dataset_options(name) if o != "path"]


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


def _ignored_split_keys(data: dict) -> tuple:
    """The split keys the dataset ``data.name`` names never reads (``datasets.split_keys_ignored``); () for a
    name that is not a registered dataset (a file's, or one check_data reports)."""
    from distnn.data import datasets as dsets

    name = data.get("name")
    if not isinstance(name, str) or name not in dict(dsets.list_datasets()):
        return ()
    return dsets.split_keys_ignored(name)


def check_split_keys(out: dict, problems: list, overridden=()):
    """``data.val_fraction``, ``data.test_fraction`` and ``data.split_seed``, off their default, for a dataset
    that never reads them (xor: every split is its 4 points; charlm: contiguous stretches, no seed): each is a
    problem, as a dataset option the dataset does not take is (was: silently ignored). A default is never one.
    From the config file while --set gave ``data.name``, the --set wins: the key goes back to its default. A
    run's config.toml that holds one loads without it (:func:`reset_split_keys_in_record`)."""
    from distnn.data.datasets import SPLIT_KINDS, get_dataset_entry

    data = out["data"]
    for k in _ignored_split_keys(data):
        default = SCHEMA[f"data.{k}"].default
        if data.get(k) == default:
            continue
        if "data.name" in overridden and f"data.{k}" not in overridden:
            data[k] = default
            continue
        name = data["name"]
        why = SPLIT_KINDS[get_dataset_entry(name).split]
        problems.append(Related(f"dataset {name!r} brings its own split ({why}) and ignores data.{k} = {data[k]!r}:"
                                f" remove {k} from [data]", f"data.{k}", "data.name"))


def reset_split_keys_in_record(raw: dict) -> None:
    """A run's config.toml may hold a split key its dataset never read (accepted before a config refused one):
    it goes back to its default, which the run behaved as, and the run re-runs and resumes as it did."""
    data = raw.get("data")
    if isinstance(data, dict):
        for k in _ignored_split_keys(data):
            data.pop(k, None)
