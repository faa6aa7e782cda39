"""Run configuration: TOML files validated against one schema table.

``load_config(name_or_path, overrides)`` reads a built-in config
(``distnn/configs/NAME.toml``) or a TOML file, applies ``--set key=value``
overrides, fills in defaults and validates everything against :data:`SCHEMA`.
The result is a :class:`Config`: nested dicts with attribute access
(``cfg.optimizer.lr`` or ``cfg["optimizer"]["lr"]``). ``dump_config(cfg)``
writes it back as TOML; loading that text gives an identical Config.

Errors are :class:`ConfigError` (a ``ValueError``) naming the dotted key:
``unknown key 'optimizer.learning_rate' (did you mean 'optimizer.lr'?)``,
``optimizer.lr must be > 0, got -1``, ``train.epochs must be an integer, got
'ten' (string)``. All problems found are reported at once, one per line.
Numbers must be finite (``distributed.timeout`` alone takes ``inf``: no limit);
``model.*`` keys are checked against the chosen model's argument rules
(``distnn.models.arguments``); a ``val_*`` monitor of early stopping or the
plateau schedule needs a validation split. ``data.path`` (and a file named as
``data.name``) is made absolute, so the resolved config saved with a run names
the same file from any working directory.

Sections (``describe_schema()`` prints every key with its type, default and
meaning; the table below is the overview):

=================  ==============================================================
``name``           the config's name (defaults to the built-in name / file stem)
``description``    one line shown by ``distnn datasets``
``[run]``          seed, output directory, device, dtype, quiet, plots
``[data]``         dataset name/path, GLOBAL batch size, split fractions and seed,
                   standardization, ``[data.augment]`` (shift, rotate, noise),
                   plus the chosen dataset's own options (e.g. ``flatten``,
                   ``length``, ``label_column``), checked against the dataset
``[model]``        ``name`` (a ``distnn.models`` name) plus the model's keyword
                   arguments (e.g. ``hidden_sizes``, ``dropout``, ``norm``);
                   ``num_classes``/``input_shape`` come from the data
``[optimizer]``    name, lr, momentum, nesterov, weight_decay, betas, eps, alpha,
                   no_decay_bias_norm
``[schedule]``     name (constant, step, multistep, exponential, cosine, plateau,
                   onecycle), warmup, step_size, gamma, milestones, T_max,
                   eta_min, plateau settings, linear_scaling + reference_batch
``[train]``        epochs, max_steps, grad_clip, grad_accumulation,
                   label_smoothing, log_every, eval_every, nonfinite policy
``[early_stopping]``  enabled, monitor, mode, patience, min_delta, restore_best
``[checkpoint]``   enabled, dir, every_steps, every_epochs, keep_last, keep_best,
                   monitor, mode, resume, on_error, async_save
``[ensemble]``     members, vary (seed / bootstrap), per-member overrides, member
``[distributed]``  bucket_mb, compression, check_every, timeout,
                   sync_batchnorm
=================  ==============================================================

Overrides: ``"optimizer.lr=0.05"``, ``"model.hidden_sizes=[256, 128]"``,
``"data.name=iris"``. The value is parsed as a TOML literal, falling back to
the plain string (so ``data.path=/tmp/mnist`` needs no quotes); string keys
always take the text as written; ``key=none`` clears an optional key. The
schema is one table (``config_schema.py``), so a later feature adds a key in
one place.
"""
from __future__ import annotations

import copy
import difflib
import math
import os
import tomllib
import zipfile
from importlib import resources

import numpy as np

from .config_schema import (ALIASES, MODEL_RESERVED, MODES, MONITORS, OPEN_TABLES, SCHEMA, TABLES,  # noqa: F401
                            TYPE_WORDS as _TYPE_WORDS, Key, bound_text, describe_schema)
from .toml_writer import dumps as toml_dumps


class ConfigError(ValueError):
    """An invalid config: every problem, one per line, each naming its dotted key."""

    def __init__(self, problems, source: str | None = None):
        problems = [problems] if isinstance(problems, str) else list(problems)
        self.problems = problems
        self.source = source
        where = f"config {source}: " if source else ""
        if len(problems) == 1:
            msg = where + problems[0]
        else:
            msg = f"{where}{len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)
        super().__init__(msg)


# ---------------------------------------------------------------- the Config object

class Config(dict):
    """A validated config: nested dicts with attribute access (``cfg.optimizer.lr``).

    ``cfg.get_path("optimizer.lr")`` reads a dotted key; ``cfg.to_dict()`` is a
    plain nested dict; ``cfg.source`` tells where it came from.
    """

    def __init__(self, data=(), source: str = "<dict>"):
        super().__init__()
        object.__setattr__(self, "source", source)
        for k, v in dict(data).items():
            self[k] = Config(v, source) if isinstance(v, dict) else v

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def __setattr__(self, name, value):
        self[name] = value

    def __deepcopy__(self, memo):
        return Config(copy.deepcopy(self.to_dict(), memo), self.source)

    def get_path(self, dotted: str, default=None):
        cur = self
        for part in dotted.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return default
            cur = cur[part]
        return cur

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, Config) else copy.deepcopy(v) for k, v in self.items()}

    def to_toml(self) -> str:
        return dump_config(self)


# ---------------------------------------------------------------- helpers

def _describe(v) -> str:
    kind = {bool: "boolean", int: "integer", float: "float", str: "string", list: "list", dict: "table"}.get(
        type(v), type(v).__name__)
    return f"{v!r} ({kind})"


_OPS = {">": lambda v, a: v > a, ">=": lambda v, a: v >= a, "<": lambda v, a: v < a, "<=": lambda v, a: v <= a}


def _check_value(path: str, key: Key, value, problems: list):
    """Type-check, coerce and range-check one value; returns the coerced value (or None on error)."""
    t = key.type

    def scalar(v, kind):
        if kind == "int":
            return v if isinstance(v, int) and not isinstance(v, bool) else _BAD
        if kind == "float":
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else _BAD
        if kind == "bool":
            return v if isinstance(v, bool) else _BAD
        if kind == "str":
            return v if isinstance(v, str) else _BAD
        if kind == "table":
            return v if isinstance(v, dict) else _BAD
        raise AssertionError(kind)

    if t.startswith("list["):
        inner = t[5:-1]
        if not isinstance(value, list):
            problems.append(f"{path} must be {_TYPE_WORDS[t]}, got {_describe(value)}")
            return None
        out = []
        for i, item in enumerate(value):
            c = scalar(item, inner)
            if c is _BAD:
                problems.append(f"{path}[{i}] must be {_TYPE_WORDS[inner] if inner != 'table' else 'a table'}, "
                                f"got {_describe(item)}")
                return None
            out.append(c)
        if key.length is not None and len(out) != key.length:
            problems.append(f"{path} must have {key.length} entries, got {len(out)}")
            return None
        items = [(f"{path}[{i}]", raw, v) for i, (raw, v) in enumerate(zip(value, out))]
    else:
        c = scalar(value, t)
        if c is _BAD:
            problems.append(f"{path} must be {_TYPE_WORDS[t]}, got {_describe(value)}")
            return None
        out = c
        items = [(path, value, c)]
    for where, raw, v in items:
        rng = bound_text(key.bounds) if key.bounds else ""
        if isinstance(v, float) and not math.isfinite(v) and not (key.allow_inf and v == math.inf):
            # inf passes a one-sided bound ("> 0") and would only surface later, as skipped steps
            # and a "diverging" run; NaN fails every bound. Both are refused here, naming the key.
            allowed = f"{rng} (or inf: no limit)" if key.allow_inf else f"a finite number {rng}".rstrip()
            problems.append(f"{where} must be {allowed}, got {raw!r}")
            return None
        if key.bounds and isinstance(v, (int, float)) and not all(_OPS[op](v, a) for op, a in key.bounds):
            problems.append(f"{where} must be {rng}{' (or inf: no limit)' if key.allow_inf else ''}, got {raw!r}")
            return None
        if key.choices is not None and v not in key.choices:
            close = difflib.get_close_matches(str(v), key.choices, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"{where} must be one of {', '.join(map(repr, key.choices))}; got {raw!r}{hint}")
            return None
    return out


_BAD = object()


def suggest_key(path: str, candidates) -> str:
    """' (did you mean 'x'?)' for an unknown dotted key, or ''."""
    leaf = path.rsplit(".", 1)[-1]
    parent = path.rsplit(".", 1)[0] if "." in path else ""
    alias = ALIASES.get(leaf.lower())
    if alias and alias != path and (alias in candidates or alias in TABLES):
        return f" (did you mean '{alias}'?)"
    siblings = [c for c in candidates if (c.rsplit(".", 1)[0] if "." in c else "") == parent]
    close = difflib.get_close_matches(path, siblings, n=1, cutoff=0.6)
    if not close:  # the same name in another section (e.g. train.lr -> optimizer.lr)
        close = [c for c in candidates if c.rsplit(".", 1)[-1] == leaf]
    if not close:
        close = difflib.get_close_matches(path, list(candidates), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _set_path(d: dict, path: str, value):
    parts = path.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = cur[p] = {}
        cur = nxt
    if value is None:
        cur.pop(parts[-1], None)
    else:
        cur[parts[-1]] = value


def _get_path(d: dict, path: str, default=None):
    cur = d
    for p in path.split("."):
        if not isinstance(cur, dict) or p not in cur:
            return default
        cur = cur[p]
    return cur


# ---------------------------------------------------------------- overrides

def parse_override(text: str) -> tuple[str, object]:
    """``"a.b=value"`` -> ("a.b", value parsed as a TOML literal, else the string)."""
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(f"--set expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    key, raw = key.strip(), raw.strip()
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"--set expects key=value with a dotted key, got {text!r}")
    spec = SCHEMA.get(key)
    if spec is not None and spec.optional and raw.lower() in ("none", "null"):
        return key, None
    if spec is not None and spec.type == "str":
        # String keys take the text as written (unquoted if it was a quoted TOML string).
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
            return key, value if isinstance(value, str) else raw
        except tomllib.TOMLDecodeError:
            return key, raw
    try:
        return key, tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if spec is not None and spec.type == "list[str]":  # --set ensemble.vary=seed,bootstrap
            return key, [s.strip().strip("'\"") for s in raw.strip("[]").split(",") if s.strip()]
        return key, raw


def apply_overrides(raw: dict, overrides) -> tuple[dict, set]:
    """A copy of ``raw`` with the ``key=value`` overrides applied; also the set of keys they set."""
    raw = copy.deepcopy(raw)
    keys = set()
    for item in overrides or ():
        key, value = parse_override(item) if isinstance(item, str) else item
        _set_path(raw, key, value)
        keys.add(key)
    return raw, keys


# ---------------------------------------------------------------- validation

def validate(raw: dict, source: str = "<dict>", override_keys=(), _nested: bool = False) -> Config:
    """Check ``raw`` (a nested dict, e.g. parsed TOML) and return the resolved Config."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a table of sections, got {type(raw).__name__}", source)
    known = set(SCHEMA) | set(TABLES)
    extras: dict[str, dict] = {"model": {}, "data": {}}

    def walk(table: dict, prefix: str):
        for k, v in table.items():
            path = f"{prefix}{k}"
            if path in TABLES:
                if not isinstance(v, dict):
                    problems.append(f"{path} must be a table ([{path}]), got {_describe(v)}")
                else:
                    walk(v, path + ".")
            elif path in SCHEMA:
                continue
            elif prefix[:-1] in OPEN_TABLES or prefix == "data.":
                extras[prefix[:-1]][k] = v
            else:
                kind = "section" if isinstance(v, dict) and not prefix else "key"
                problems.append(f"unknown {kind} '{path}'{suggest_key(path, known)}")

    walk(raw, "")
    out: dict = {}
    for path, key in SCHEMA.items():  # in schema order, so written configs read top to bottom
        value = _get_path(raw, path, None)
        value = copy.deepcopy(key.default) if value is None else _check_value(path, key, value, problems)
        _set_path(out, path, value)  # None (unset optional key, or an error) leaves it out
    for table in TABLES:  # every section exists, even one whose keys are all unset
        if _get_path(out, table) is None:
            _set_path(out, table, {})
    if "name" in out["model"]:
        _check_model(extras["model"], out, problems)
    if "name" in out["data"]:
        _check_data(extras["data"], out, problems)
    if not problems:  # relations between keys are only meaningful once each key is valid
        _check_cross(out, problems)
    if not _nested and not problems:
        _check_ensemble(raw, out, source, problems)
    if override_keys:
        def from_override(p):
            for k in override_keys:
                prefixes = [".".join(k.split(".")[:i]) for i in range(1, k.count(".") + 2)]
                if p.startswith(k) or any(f"'{q}'" in p for q in prefixes):
                    return True
            return False
        problems = [p + (" (set by --set)" if from_override(p) else "") for p in problems]
    if problems:
        raise ConfigError(problems, source)
    return Config(out, source)


def _check_model(extra: dict, out: dict, problems: list):
    for k in sorted(extra):
        if k in MODEL_RESERVED:
            problems.append(f"model.{k} is set by the trainer from the data; remove it from the config")
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
    import inspect

    params = inspect.signature(models[name.lower()].__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = sorted(p for p in params if p != "self" and p not in MODEL_RESERVED)
    for k in sorted(extra):
        if k not in MODEL_RESERVED and k not in params:
            close = difflib.get_close_matches(k, accepted, n=1)
            hint = f" (did you mean 'model.{close[0]}'?)" if close else ""
            problems.append(f"unknown key 'model.{k}'{hint}; model {name!r} takes: {', '.join(accepted)}")
    # The known keys against the model's own rules (types, ranges, relations), as the model applies them
    # when it is built; here every problem is reported before any data is loaded or directory created.
    from distnn.models.arguments import config_problems

    given = {k: v for k, v in extra.items() if k not in MODEL_RESERVED and k in params}
    problems.extend(config_problems(models[name.lower()], given))


def _check_data(extra: dict, out: dict, problems: list):
    """Dataset options (e.g. data.flatten) are checked against the chosen dataset's source."""
    from distnn.data import datasets as dsets

    data = out["data"]
    name = data["name"]
    if name not in dict(dsets.list_datasets()):
        if os.path.splitext(name)[1].lower() in (".npz", ".csv"):
            name = os.path.splitext(name)[1].lower()[1:]
        else:
            close = difflib.get_close_matches(name, [n for n, _ in dsets.list_datasets()], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"data.name {name!r} is not a known dataset{hint}; run 'distnn datasets' for the list")
            for k in sorted(extra):
                problems.append(f"unknown key 'data.{k}'{suggest_key('data.' + k, SCHEMA)}")
            return
    options = dsets.list_dataset_options(name)
    for k in sorted(extra):
        if k not in options or k == "path":
            hint = suggest_key(f"data.{k}", list(SCHEMA) + [f"data.{o}" for o in options if o != "path"])
            takes = ", ".join(o for o in options if o != "path") or "none"
            problems.append(f"unknown key 'data.{k}'{hint}; dataset '{name}' options: {takes}")
            continue
        v = extra[k]
        expected = dsets.get_dataset_entry(name).check_option(k, v)
        if expected is not None:
            problems.append(f"data.{k} must be {expected}, got {_describe(v)}")
            continue
        if isinstance(v, float) and not math.isfinite(v):  # no dataset option means anything at inf or NaN
            problems.append(f"data.{k} must be a finite number, got {v!r}")
            continue
        data[k] = float(v) if isinstance(options[k], float) and isinstance(v, int) else v
    needs_path = dsets.get_dataset_entry(name).needs_path
    if "path" not in options and data.get("path") is not None and name == data["name"]:
        problems.append(f"data.path is set but dataset '{name}' reads no files; remove data.path")
    elif needs_path and data.get("path") is None and name == data["name"]:
        problems.append(f"data.path is required for dataset '{name}': add path = \"...\" under [data] "
                        f"or pass --set data.path=PATH")
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


def _check_cross(out: dict, problems: list):
    d, o, s = out["data"], out["optimizer"], out["schedule"]
    if d["val_fraction"] + d["test_fraction"] >= 1:
        problems.append(f"data.val_fraction + data.test_fraction must be < 1, got "
                        f"{d['val_fraction']} + {d['test_fraction']}")
    if o["nesterov"] and (o["name"] != "sgd" or o["momentum"] <= 0):
        problems.append("optimizer.nesterov needs optimizer.name = 'sgd' and optimizer.momentum > 0")
    if s["name"] == "step" and s.get("step_size") is None:
        problems.append("schedule.step_size is required when schedule.name = 'step'")
    if s["name"] == "multistep":
        m = s["milestones"]
        if not m:
            problems.append("schedule.milestones is required when schedule.name = 'multistep'")
        elif any(b <= a for a, b in zip(m, m[1:])):
            problems.append(f"schedule.milestones must be strictly increasing, got {m}")
    if s["warmup_steps"] and s["warmup_epochs"]:
        problems.append("set schedule.warmup_steps or schedule.warmup_epochs, not both")
    _check_validation_monitors(out, problems)
    e = out["ensemble"]
    if len(e["vary"]) != len(set(e["vary"])):
        problems.append(f"ensemble.vary lists a value twice: {e['vary']}")
    if len(e["overrides"]) > e["members"]:
        problems.append(f"ensemble.overrides has {len(e['overrides'])} entries for {e['members']} members")
    if e.get("member") is not None and e["member"] >= max(e["members"], 1) and e["members"] > 1:
        problems.append(f"ensemble.member {e['member']} is out of range for {e['members']} members")


#: datasets whose every split is the whole data (data.val_fraction does not apply)
_SPLITS_ARE_ALL_DATA = frozenset({"xor"})


def _check_validation_monitors(out: dict, problems: list):
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
        problems.append(f"{key} is {monitor!r} ({setting}) but data.val_fraction = 0 leaves no validation split: "
                        f"set data.val_fraction > 0, or monitor '{monitor.replace('val_', 'train_', 1)}'")


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


def _check_ensemble(raw: dict, out: dict, source: str, problems: list):
    """Each member's overrides must give a valid config (the data may not change)."""
    for i, table in enumerate(out["ensemble"]["overrides"]):
        for key in table:
            if key.split(".")[0] in ("data", "ensemble", "run") and not key.startswith("data.augment"):
                problems.append(f"ensemble.overrides[{i}]: '{key}' cannot differ between members (members share "
                                f"the data, its splits and the run)")
        member_raw, _ = apply_overrides(raw, list(table.items()))
        member_raw.get("ensemble", {}).pop("overrides", None)
        try:
            validate(member_raw, source, _nested=True)
        except ConfigError as err:
            problems.extend(f"ensemble.overrides[{i}]: {p}" for p in err.problems)


# ---------------------------------------------------------------- loading and saving

CONFIG_PACKAGE = "distnn.configs"


def _builtin_files() -> dict:
    root = resources.files(CONFIG_PACKAGE)
    return {p.name[:-5]: p for p in sorted(root.iterdir(), key=lambda p: p.name) if p.name.endswith(".toml")}


def list_configs() -> list[tuple[str, str]]:
    """``[(name, description), ...]`` of the built-in configs."""
    out = []
    for name, path in _builtin_files().items():
        try:
            desc = tomllib.loads(path.read_text(encoding="utf-8")).get("description", "")
        except tomllib.TOMLDecodeError:
            desc = "(unreadable)"
        out.append((name, desc))
    return out


def config_text(name_or_path: str) -> tuple[str, str, str]:
    """(TOML text, source label, default name) of a built-in name or a file path."""
    name_or_path = str(name_or_path)
    if os.path.isfile(name_or_path):
        with open(name_or_path, "rb") as f:
            data = f.read()
        try:
            return data.decode("utf-8"), repr(name_or_path), os.path.splitext(os.path.basename(name_or_path))[0]
        except UnicodeDecodeError as e:
            raise ConfigError(f"config file {name_or_path!r} is not UTF-8 text: {e}") from None
    builtins = _builtin_files()
    stem = name_or_path[:-5] if name_or_path.endswith(".toml") else name_or_path
    if stem in builtins:
        return builtins[stem].read_text(encoding="utf-8"), f"'{stem}' (built-in)", stem
    if os.path.exists(name_or_path):
        raise ConfigError(f"config path {name_or_path!r} is not a file")
    close = difflib.get_close_matches(stem, list(builtins), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(f"config {name_or_path!r} is neither a file nor a built-in config{hint}; "
                      f"built-ins: {', '.join(builtins)}")


def loads_config(text: str, overrides=(), source: str = "<string>", default_name: str = "") -> Config:
    """Parse TOML ``text``, apply overrides, validate."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML: {e}", source) from None
    return config_from_dict(raw, overrides, source, default_name)


def config_from_dict(raw: dict, overrides=(), source: str = "<dict>", default_name: str = "") -> Config:
    raw = raw.to_dict() if isinstance(raw, Config) else raw
    try:
        raw, keys = apply_overrides(raw, overrides)
    except ConfigError as e:
        raise ConfigError(e.problems, source) from None
    if default_name and not raw.get("name"):
        raw["name"] = default_name
    return validate(raw, source, keys)


def load_config(name_or_path="digits_mlp", overrides=()) -> Config:
    """The validated config of a built-in name (``digits_mlp``) or a TOML file, with overrides.

    A ``Config`` or dict is accepted too (re-validated, overrides applied).
    """
    if isinstance(name_or_path, dict):
        return config_from_dict(name_or_path, overrides, getattr(name_or_path, "source", "<dict>"))
    text, source, stem = config_text(name_or_path)
    return loads_config(text, overrides, source, stem)


def default_config() -> Config:
    """Every key at its schema default."""
    return validate({}, "<defaults>")


def dump_config(cfg) -> str:
    """TOML text of a (resolved) config; ``loads_config`` of it gives the same Config."""
    data = cfg.to_dict() if isinstance(cfg, Config) else copy.deepcopy(dict(cfg))
    ordered = {k: data.pop(k) for k in ("name", "description") if k in data}
    ordered.update(data)
    return toml_dumps(ordered, header="distnn run configuration (resolved: every key, defaults filled in)")


def save_config(cfg, path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(dump_config(cfg))
