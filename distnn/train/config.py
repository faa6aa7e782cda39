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
                   eval_every, nonfinite policy, precision ("32" / "16-mixed")
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

This module reads configs (built-in names, files, TOML text, dicts) and
validates them; the rest lives beside it and is importable from here too:
the :class:`Config` object and :class:`ConfigError` (``config_object``), where
each key came from (``config_origins``), one value's checks
(``config_values``), ``--set`` overrides (``config_overrides``), the checks
beyond one key (``config_checks``) and writing the run record
(``config_record``).
"""
from __future__ import annotations

import copy
import difflib
import os
import re
import tomllib
from importlib import resources

from . import config_overrides as _overrides, config_values as _values
from .config_schema import (ALIASES, LIBRARY_ONLY, MODEL_RESERVED, MODES, MONITORS, OPEN_TABLES,
                            RECORDED_DEFAULTS, SCHEMA, TABLES, Key, bound_text, describe_schema)
from .config_object import Config, ConfigError, ConfigWarning
from .config_origins import DEFAULT, FROM_FILE, SET_BY_OVERRIDE, UNSET, key_origins, origins_tag
from .config_values import _check_value, _describe, _get_path, _int64_problems, _set_path, value_not_section
from .config_overrides import apply_overrides, parse_override
from . import config_checks as checks  # (it reads this module's helpers at call time)
from . import optimizer_defaults, schedule_defaults  # (as config_checks: they read this module's helpers at call time)
from .config_inactive import warn_inactive
from .config_hints import suggest_key  # (config_checks and the CLI take it from here)
from .config_record import RUN_RECORD_HEADER, dump_config, dump_run_config, save_config
from . import toml_writer as _toml

# (names other modules may read from here: moved to config_values and config_overrides, or imported by name)
_TYPE_WORDS, _OPS, _BAD = _values._TYPE_WORDS, _values._OPS, _values._BAD
_override_leaves = _overrides._override_leaves
toml_dumps, toml_value = _toml.dumps, _toml.format_value


_HINT = re.compile(r" \(did you mean (?:the top-level key )?'[^']*'\?\)")


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
        checks.check_split_keys(out, problems, override_keys)
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
            if hasattr(k, "flag"):  # (--resume's checkpoint.resume: no --set)
                continue
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
                from .regular_file import read_regular

                data = read_regular(name_or_path)  # (swapped for a pipe since isfile: refused, not waited on)
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
    record = text.lstrip("\ufeff").startswith(RUN_RECORD_HEADER)
    if record:
        checks.drop_data_decided_in_record(raw)
        checks.drop_ignored_in_record(raw)
        checks.reset_ignored_interval_in_record(raw)
        checks.drop_options_not_taken(raw)
        checks.reset_split_keys_in_record(raw)
        optimizer_defaults.drop_shared_defaults_not_taken(raw)
        schedule_defaults.drop_old_defaults_not_read(raw)
        checks.drop_bad_run_name_in_record(raw, source, overrides)
    cfg = config_from_dict(raw, overrides, source, default_name)
    if not record:  # (a record holds every key, its switches' settings too)
        warn_inactive(cfg)
    return cfg


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


# The public names, those of the modules split out of this one included (every name importable from here before).
__all__ = ["ALIASES", "LIBRARY_ONLY", "MODEL_RESERVED", "MODES", "MONITORS", "OPEN_TABLES", "RECORDED_DEFAULTS",
           "SCHEMA", "TABLES", "Key", "bound_text", "describe_schema",
           "Config", "ConfigError", "ConfigWarning", "DEFAULT", "FROM_FILE", "SET_BY_OVERRIDE", "UNSET", "key_origins", "origins_tag",
           "value_not_section", "apply_overrides", "parse_override", "suggest_key", "RUN_RECORD_HEADER", "dump_config",
           "dump_run_config", "save_config", "validate", "CONFIG_PACKAGE", "list_configs", "CheckedConfigFile",
           "config_text", "loads_config", "config_from_dict", "load_config", "default_config"]
