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
A problem caused by a ``--set`` ends ``(set by --set)``; a problem of several
keys together says which came from ``--set`` and which from the config file:
``... (optimizer.momentum set by --set, optimizer.nesterov from the config
file)``, and nothing when none came from ``--set``. Numbers must be finite
(``distributed.timeout`` alone takes ``inf``: no limit) and integers within
TOML's 64 bits;
``model.*`` keys are checked against the chosen model's argument rules
(``distnn.models.arguments``); a ``val_*`` monitor of early stopping or the
plateau schedule needs a validation split. ``data.path`` (and a file named as
``data.name``) is made absolute, so the resolved config saved with a run names
the same file from any working directory.

Sections (``describe_schema()`` prints every key with its type, default and
meaning, ``describe_sections()`` the sections, from ``config_schema.SECTIONS``;
the table below is the overview):

=================  ==============================================================
``name``           the config's name (defaults to the built-in name / file stem)
``description``    one line shown by ``distnn datasets``
``[run]``          seed, output directory, device, dtype, quiet, plots
``[data]``         dataset name/path, GLOBAL batch size, split fractions and seed,
                   standardization, ``[data.augment]`` (shift, rotate, flip,
                   brightness, contrast, noise),
                   plus the chosen dataset's own options (e.g. ``flatten``,
                   ``length``, ``label_column``), checked against the dataset
``[model]``        ``name`` (a ``distnn.models`` name) plus the model's keyword
                   arguments (e.g. ``hidden_sizes``, ``dropout``, ``norm``);
                   ``num_classes``/``input_shape`` come from the data
``[optimizer]``    name, lr, momentum, nesterov, weight_decay, l1, betas, eps, alpha,
                   no_decay_bias_norm
``[schedule]``     name (constant, step, multistep, exponential, cosine, plateau,
                   onecycle), warmup, step_size, gamma, milestones, T_max,
                   eta_min, plateau settings, linear_scaling + reference_batch
``[train]``        epochs, max_steps, grad_clip, grad_accumulation,
                   label_smoothing, adversarial_eps + adversarial_weight, log_every,
                   eval_every, nonfinite policy
``[early_stopping]``  enabled, monitor, mode, patience, min_delta, restore_best
``[checkpoint]``   enabled, dir, every_steps, every_epochs, every_seconds, keep_last, keep_best,
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
import re
import tomllib
from importlib import resources

from .config_schema import (ALIASES, LIBRARY_ONLY, MODEL_RESERVED, MODES, MONITORS, OPEN_TABLES,  # noqa: F401
                            RECORDED_DEFAULTS, SCHEMA, TABLES, TYPE_WORDS as _TYPE_WORDS, Key, bound_text, describe_schema)
from . import config_checks as checks  # (it reads this module's helpers at call time)
from . import optimizer_defaults, schedule_defaults  # (as config_checks: they read this module's helpers at call time)
from .config_hints import suggest_key  # noqa: F401  (config_checks and the CLI take it from here)
from .toml_writer import dumps as toml_dumps, format_value as toml_value


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
    plain nested dict; ``cfg.source`` tells where it came from, ``cfg.origins``
    where each key did (:data:`SET_BY_OVERRIDE`, :data:`FROM_FILE`, ...; see
    :meth:`origins_tag`).
    """

    def __init__(self, data=(), source: str = "<dict>", origins: dict | None = None):
        super().__init__()
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "origins", dict(origins or {}))
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
        return Config(copy.deepcopy(self.to_dict(), memo), self.source, self.origins)

    def origins_tag(self, keys) -> str:
        """' (set by --set)' when every one of ``keys`` was set by --set; when only some were, where each
        came from, those first: ' (data.val_fraction set by --set, data.test_fraction from the config
        file)'; '' when none was (a problem of the config file's own says nothing of it, as ever). Keys
        whose origin is not known (an ensemble member's own values) are left out."""
        return origins_tag(self.origins, keys)

    def tag_message(self, message: str) -> str:
        """``message`` with :meth:`origins_tag` of the config keys it names (an error raised by code that
        knows nothing of --set, e.g. the trainer's batch-size checks)."""
        named = [k for k in self.origins if re.search(rf"(?<![\w.]){re.escape(k)}(?![\w.])", message)]
        return message + self.origins_tag(named)

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


# ---------------------------------------------------------------- where keys came from

SET_BY_OVERRIDE = "set by --set"
FROM_FILE = "from the config file"
DEFAULT = "at its default"
UNSET = "unset"


def key_origins(raw: dict, out: dict, override_keys) -> dict:
    """``{dotted key: origin}`` for every key of the resolved config ``out`` and of ``raw`` (the config file
    with the overrides applied; a key it holds that ``out`` has not is refused), and every unset schema
    key: set by --set, from the config file, at its default or unset."""
    def set_by_override(path):
        return any(path == k or path.startswith(k + ".") for k in override_keys)

    origins = {path: UNSET for path in SCHEMA}

    def walk(table, prefix):
        for k, v in table.items():
            path = f"{prefix}{k}"
            if path == RECORDED_DEFAULTS:  # (no key of the config: the values it holds are the keys' own)
                continue
            if isinstance(v, dict) and path in TABLES:
                walk(v, path + ".")
            elif set_by_override(path):
                origins[path] = SET_BY_OVERRIDE
            else:
                origins[path] = FROM_FILE if _get_path(raw, path) is not None else DEFAULT

    walk(out, "")
    walk(raw, "")
    for path in SCHEMA:  # (an optional key cleared by --set key=none)
        if origins[path] == UNSET and set_by_override(path):
            origins[path] = SET_BY_OVERRIDE
    return origins


def origins_tag(origins: dict, keys) -> str:
    """The tag of a problem that involves ``keys`` (see :meth:`Config.origins_tag`)."""
    known = {k: origins[k] for k in dict.fromkeys(keys) if k in origins}
    if SET_BY_OVERRIDE not in known.values():
        return ""
    if all(o == SET_BY_OVERRIDE for o in known.values()):
        return f" ({SET_BY_OVERRIDE})"
    first = sorted(known, key=lambda k: known[k] != SET_BY_OVERRIDE)  # (what --set did, then the rest)
    return " (" + ", ".join(f"{k} {known[k]}" for k in first) + ")"


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
            if str(v).lower() in LIBRARY_ONLY.get(path, {}):
                hint = f" ({LIBRARY_ONLY[path][str(v).lower()]})"
            problems.append(f"{where} must be one of {', '.join(map(repr, key.choices))}; got {raw!r}{hint}")
            return None
    return out


_BAD = object()
_HINT = re.compile(r" \(did you mean (?:the top-level key )?'[^']*'\?\)")


def value_not_section(path: str, table: dict, expected: str) -> str | None:
    """The problem of a table where a value belongs (``--set optimizer.lr.x=1``, or ``[optimizer.lr]`` in a
    file): the keys under it name nothing, which says more than "must be a number, got {'x': 1} (table)".
    None for an empty table (nothing is named under it: the type error says it)."""
    leaves = []

    def walk(t, prefix):
        for k, v in t.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}.{k}")
            else:
                try:
                    text = toml_value(v)  # as it would be written
                except TypeError:  # (a TOML date or time)
                    text = str(v)
                leaves.append(f"'{prefix}.{k}' = {text}")

    walk(table, path)
    if not leaves:
        return None
    verb = "names" if len(leaves) == 1 else "name"
    return f"{path} is a value ({expected}), not a section: {', '.join(leaves)} {verb} no key"


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
    """A copy of ``raw`` with the ``key=value`` overrides applied; also the set of keys they set.

    A table given to a table (``optimizer={lr=0.2}``) sets the keys it names, as ``optimizer.lr=0.2``
    does: the section's other keys stay (replacing the table silently reset them to their defaults)."""
    raw = copy.deepcopy(raw)
    keys = set()
    for item in overrides or ():
        key, value = parse_override(item) if isinstance(item, str) else item
        for path, leaf in _override_leaves(key, value):
            _set_path(raw, path, leaf)
            keys.add(path)
    return raw, keys


def _override_leaves(key: str, value):
    """``(dotted key, value)`` pairs an override sets: a table for a table is merged key by key."""
    if isinstance(value, dict) and (key in TABLES or key not in SCHEMA):
        for k, v in value.items():
            yield from _override_leaves(f"{key}.{k}", v)
    else:
        yield key, value


# ---------------------------------------------------------------- validation

def validate(raw: dict, source: str = "<dict>", override_keys=(), _nested: bool = False) -> Config:
    """Check ``raw`` (a nested dict, e.g. parsed TOML) and return the resolved Config."""
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError(f"a config must be a table of sections, got {type(raw).__name__}", source)
    # Every key a hint may name, in schema order (ties go to the first): the sections, and the options of
    # the chosen model and dataset (train.dropout -> model.dropout, model.flatten -> data.flatten).
    known = list(dict.fromkeys([*SCHEMA, *TABLES, *checks.open_keys(raw)]))
    extras: dict[str, dict] = {"model": {}, "data": {}}

    def walk(table: dict, prefix: str):
        for k, v in table.items():
            path = f"{prefix}{k}"
            if path == RECORDED_DEFAULTS:
                continue  # (read below)
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
    _int64_problems(raw, "", problems)
    out: dict = {}
    for path, key in SCHEMA.items():  # in schema order, so written configs read top to bottom
        value = _get_path(raw, path, None)
        not_section = value_not_section(path, value, _TYPE_WORDS[key.type]) if isinstance(value, dict) else None
        if not_section:
            problems.append(not_section)
            continue
        value = copy.deepcopy(key.default) if value is None else _check_value(path, key, value, problems)
        _set_path(out, path, value)  # None (unset optional key, or an error) leaves it out
    for table in TABLES:  # every section exists, even one whose keys are all unset
        if _get_path(out, table) is None:
            _set_path(out, table, {})
    recorded = checks.recorded_defaults(raw, problems)
    if "name" in out["model"]:
        checks.check_model(extras["model"], out, problems, known, recorded["model"], override_keys)
    if "name" in out["data"]:
        checks.check_data(extras["data"], out, problems, known, recorded["data"])
    if not problems:  # relations between keys are only meaningful once each key is valid
        checks.check_optimizer_options(out, problems, override_keys)
        optimizer_defaults.resolve_optimizer_defaults(out, problems, recorded["optimizer"])
        checks.check_schedule_options(out, problems, override_keys)
        schedule_defaults.resolve_schedule_defaults(out, problems, recorded["schedule"])
        checks.check_cross(out, problems)
    if not _nested and not problems:
        checks.check_ensemble(raw, out, source, problems)
    origins = key_origins(raw, out, override_keys)

    def from_override(p):
        # (not the "did you mean 'train'?" hint: it names a key the user did not write)
        p = _HINT.sub("", p)
        for k in override_keys:
            prefixes = [".".join(k.split(".")[:i]) for i in range(1, k.count(".") + 2)]
            if p.startswith(k) or any(f"'{q}'" in p for q in prefixes):
                return True
        return False

    def tagged(p) -> str:
        if isinstance(p, checks.Related):  # several keys: which came from --set, which from the file
            return str(p) + origins_tag(origins, p.keys)
        return p + (f" ({SET_BY_OVERRIDE})" if from_override(p) else "")

    problems = [tagged(p) for p in problems]
    if problems:
        raise ConfigError(problems, source)
    return Config(out, source, origins)


def _int64_problems(value, path: str, problems: list) -> None:
    """TOML integers are 64-bit (the spec); Python's parser takes any size, which numpy then refuses
    with a message that names no key ("Maximum allowed size exceeded") or not at all (a seed)."""
    if isinstance(value, dict):
        for k, v in value.items():
            _int64_problems(v, f"{path}.{k}" if path else str(k), problems)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _int64_problems(v, f"{path}[{i}]", problems)
    elif isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        problems.append(f"{path} must be an integer in the 64-bit range of TOML (-2**63 .. 2**63 - 1), got {value}")


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


class CheckedConfigFile(str):
    """The path of a config file, carrying the bytes read from it and checked (a checkpoint's ``config.toml``,
    its SHA-256 verified): :func:`config_text` parses these bytes, never the file read again, which may have
    changed since. Otherwise a path like any other (printed, compared, joined)."""

    def __new__(cls, path: str, data: bytes):
        self = super().__new__(cls, path)
        self.data = bytes(data)
        return self


def config_text(name_or_path: str) -> tuple[str, str, str]:
    """(TOML text, source label, default name) of a built-in name or a file path (a
    :class:`CheckedConfigFile`: the bytes it carries)."""
    checked = name_or_path.data if isinstance(name_or_path, CheckedConfigFile) else None
    name_or_path = str(name_or_path)
    if checked is not None or os.path.isfile(name_or_path):
        try:
            if checked is not None:
                data = checked
            else:
                with open(name_or_path, "rb") as f:
                    data = f.read()
        except OSError as e:
            raise ConfigError(f"config file {name_or_path!r} cannot be read: {e.strerror or e}") from None
        try:
            # (utf-8-sig: an editor's byte-order mark is not TOML's "invalid statement at line 1, column 1")
            return data.decode("utf-8-sig"), repr(name_or_path), os.path.splitext(os.path.basename(name_or_path))[0]
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
    if text.lstrip("\ufeff").startswith(RUN_RECORD_HEADER):
        checks.drop_data_decided_in_record(raw)
        checks.drop_ignored_in_record(raw)
        checks.reset_ignored_interval_in_record(raw)
        optimizer_defaults.drop_shared_defaults_not_taken(raw)
        schedule_defaults.drop_old_defaults_not_read(raw)
        if RECORDED_DEFAULTS not in raw:
            checks.drop_unused_in_old_record(raw)
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
