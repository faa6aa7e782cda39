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
``[distributed]``  bucket_mb, compression, overlap, check_every, timeout,
                   sync_batchnorm
=================  ==============================================================

Overrides: ``"optimizer.lr=0.05"``, ``"model.hidden_sizes=[256, 128]"``,
``"data.name=iris"``. The value is parsed as a TOML literal, falling back to
the plain string (so ``data.path=/tmp/mnist`` needs no quotes); string keys
always take the text as written; ``key=none`` clears an optional key. The
schema is one table, so a later feature adds a key in one place.
"""
from __future__ import annotations

import copy
import difflib
import math
import os
import tomllib
from dataclasses import dataclass
from importlib import resources

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


# ---------------------------------------------------------------- the schema

@dataclass(frozen=True)
class Key:
    """One config key: type, default, doc, and optional bounds / choices.

    type: "int" | "float" | "bool" | "str" | "list[int]" | "list[float]" |
    "list[str]" | "list[table]". ``bounds`` is a tuple of (op, value) with op in
    ">", ">=", "<", "<=", applied to the value (to each element of a list).
    ``optional`` keys default to ``None`` (absent from TOML).
    """

    type: str
    default: object
    doc: str
    bounds: tuple = ()
    choices: tuple | None = None
    optional: bool = False
    length: int | None = None


def _k(type_, default, doc, *bounds, choices=None, optional=False, length=None):
    return Key(type_, default, doc, tuple(bounds), tuple(choices) if choices else None, optional, length)


POS = (">", 0)
NONNEG = (">=", 0)
MONITORS = ("val_loss", "val_accuracy", "train_loss", "train_accuracy")
MODES = ("auto", "min", "max")

SCHEMA: dict[str, Key] = {
    # --- top level
    "name": _k("str", "", "config name (default: the built-in name or the file's stem)"),
    "description": _k("str", "", "one-line description"),
    # --- run
    "run.seed": _k("int", 0, "seed of weight init, data order, augmentation and dropout", NONNEG),
    "run.out_dir": _k("str", "runs", "parent directory of run directories"),
    "run.run_name": _k("str", None, "run directory name (default: config name + timestamp)", optional=True),
    "run.device": _k("str", "auto", "where to compute: auto (GPU when cupy sees one), cpu, gpu",
                     choices=("auto", "cpu", "gpu")),
    "run.dtype": _k("str", "float32", "floating-point type of parameters and inputs",
                    choices=("float32", "float64")),
    "run.quiet": _k("bool", False, "only warnings and the final summary on the console"),
    "run.plots": _k("bool", True, "write curves.png (needs matplotlib)"),
    # --- data
    "data.name": _k("str", "digits", "dataset name (distnn datasets lists them) or a .npz/.csv path"),
    "data.path": _k("str", None, "file or directory for file-based datasets (mnist, npz, csv, charlm)",
                    optional=True),
    "data.batch_size": _k("int", 64, "GLOBAL samples per optimizer step (split evenly over ranks)", (">=", 1)),
    "data.eval_batch_size": _k("int", 512, "GLOBAL samples per evaluation batch", (">=", 1)),
    "data.val_fraction": _k("float", 0.1, "fraction of samples held out for validation", NONNEG, ("<", 1)),
    "data.test_fraction": _k("float", 0.2, "fraction of samples held out for the final test", NONNEG, ("<", 1)),
    "data.split_seed": _k("int", 0, "seed of the fixed stratified split (independent of run.seed)", NONNEG),
    "data.standardize": _k("str", "feature", "statistics fitted on the training split: per feature, per "
                           "channel, one global mean/std, or none",
                           choices=("feature", "channel", "global", "none")),
    "data.shuffle": _k("bool", True, "reshuffle the training data every epoch"),
    "data.drop_last": _k("bool", False, "drop the last incomplete training batch of each epoch"),
    "data.augment.shift": _k("int", 0, "random image shifts of up to this many pixels (0 = off)", NONNEG),
    "data.augment.rotate": _k("float", 0.0, "random rotations of up to this many degrees (0 = off)",
                              NONNEG, ("<=", 180)),
    "data.augment.noise": _k("float", 0.0, "std of gaussian noise added after standardization (0 = off)",
                             NONNEG),
    # --- model (open: other keys are the model's keyword arguments)
    "model.name": _k("str", "mlp", "model name in distnn.models (mlp, lenet, resnet, lstm, transformer, charlm)"),
    # --- optimizer
    "optimizer.name": _k("str", "sgd", "optimizer", choices=("sgd", "adam", "adamw", "rmsprop", "adagrad",
                                                            "lars", "lamb")),
    "optimizer.lr": _k("float", 0.01, "base learning rate (before linear scaling)", POS),
    "optimizer.momentum": _k("float", 0.0, "momentum (sgd, rmsprop, lars)", NONNEG, ("<", 1)),
    "optimizer.nesterov": _k("bool", False, "Nesterov momentum (sgd; needs momentum > 0)"),
    "optimizer.weight_decay": _k("float", 0.0, "L2 weight decay (decoupled for adamw)", NONNEG),
    "optimizer.betas": _k("list[float]", [0.9, 0.999], "Adam-family (beta1, beta2)", NONNEG, ("<", 1), length=2),
    "optimizer.eps": _k("float", 1e-8, "denominator epsilon (adam, rmsprop, adagrad, lamb)", POS),
    "optimizer.alpha": _k("float", 0.99, "RMSprop smoothing constant", POS, ("<", 1)),
    "optimizer.no_decay_bias_norm": _k("bool", True, "exempt biases and normalization weights from weight decay"),
    # --- schedule
    "schedule.name": _k("str", "constant", "learning-rate schedule",
                        choices=("constant", "step", "multistep", "exponential", "cosine", "plateau", "onecycle")),
    "schedule.interval": _k("str", "epoch", "advance the schedule every epoch or every optimizer step",
                            choices=("epoch", "step")),
    "schedule.warmup_steps": _k("int", 0, "linear warmup over this many optimizer steps (0 = none)", NONNEG),
    "schedule.warmup_epochs": _k("int", 0, "linear warmup over this many epochs (alternative to warmup_steps)",
                                 NONNEG),
    "schedule.warmup_start_factor": _k("float", 0.1, "warmup starts at lr * this factor", POS, ("<=", 1)),
    "schedule.step_size": _k("int", None, "step: decay every step_size intervals", (">=", 1), optional=True),
    "schedule.gamma": _k("float", 0.1, "step/multistep/exponential decay factor", POS, ("<=", 1)),
    "schedule.milestones": _k("list[int]", [], "multistep: intervals at which to decay", (">=", 1)),
    "schedule.T_max": _k("int", None, "cosine: intervals of one half-period (default: the whole run after "
                         "warmup)", (">=", 1), optional=True),
    "schedule.eta_min": _k("float", 0.0, "cosine: final learning rate", NONNEG),
    "schedule.max_lr": _k("float", None, "onecycle: peak learning rate (default: optimizer.lr)", POS,
                          optional=True),
    "schedule.monitor": _k("str", "val_loss", "plateau: metric watched", choices=MONITORS),
    "schedule.mode": _k("str", "auto", "plateau: min or max (auto: from the metric name)", choices=MODES),
    "schedule.patience": _k("int", 5, "plateau: epochs without improvement before decaying", NONNEG),
    "schedule.factor": _k("float", 0.1, "plateau: decay factor", POS, ("<", 1)),
    "schedule.threshold": _k("float", 1e-4, "plateau: relative improvement that counts", NONNEG),
    "schedule.cooldown": _k("int", 0, "plateau: epochs to wait after a decay", NONNEG),
    "schedule.min_lr": _k("float", 0.0, "plateau: lower bound of the learning rate", NONNEG),
    "schedule.linear_scaling": _k("bool", False, "scale lr by data.batch_size / reference_batch (Goyal et al.)"),
    "schedule.reference_batch": _k("int", 256, "global batch at which optimizer.lr was tuned", (">=", 1)),
    # --- train
    "train.epochs": _k("int", 20, "number of passes over the training data", (">=", 1)),
    "train.max_steps": _k("int", None, "stop after this many optimizer steps", (">=", 1), optional=True),
    "train.grad_clip": _k("float", 0.0, "clip the global gradient L2 norm to this (0 = off)", NONNEG),
    "train.grad_accumulation": _k("int", 1, "micro-batches per optimizer step (per-rank batch must divide)",
                                  (">=", 1)),
    "train.label_smoothing": _k("float", 0.0, "cross-entropy label smoothing", NONNEG, ("<", 1)),
    "train.log_every": _k("int", 0, "log the running loss every N steps (0 = once per epoch)", NONNEG),
    "train.eval_every": _k("int", 1, "evaluate on the validation split every N epochs", (">=", 1)),
    "train.nonfinite": _k("str", "skip", "a NaN/inf loss or gradient: skip the step on every rank, or stop",
                          choices=("skip", "error")),
    "train.max_nonfinite": _k("int", 10, "stop after this many consecutive skipped steps", (">=", 1)),
    # --- early stopping
    "early_stopping.enabled": _k("bool", False, "stop when the monitored metric stops improving"),
    "early_stopping.monitor": _k("str", "val_loss", "metric watched", choices=MONITORS),
    "early_stopping.mode": _k("str", "auto", "min or max (auto: from the metric name)", choices=MODES),
    "early_stopping.patience": _k("int", 10, "evaluations without improvement before stopping", (">=", 1)),
    "early_stopping.min_delta": _k("float", 0.0, "smallest change that counts as improvement", NONNEG),
    "early_stopping.restore_best": _k("bool", True, "end with the best weights seen"),
    # --- checkpoint
    "checkpoint.enabled": _k("bool", True, "write checkpoints"),
    "checkpoint.dir": _k("str", None, "checkpoint directory (default: <run dir>/checkpoints)", optional=True),
    "checkpoint.every_steps": _k("int", 0, "also save every N optimizer steps (0 = off)", NONNEG),
    "checkpoint.every_epochs": _k("int", 1, "save every N epochs (0 = off)", NONNEG),
    "checkpoint.keep_last": _k("int", 2, "keep this many most recent checkpoints (0 = all)", NONNEG),
    "checkpoint.keep_best": _k("bool", True, "also keep the best checkpoint by checkpoint.monitor"),
    "checkpoint.monitor": _k("str", "val_loss", "metric that picks the best checkpoint", choices=MONITORS),
    "checkpoint.mode": _k("str", "auto", "min or max (auto: from the metric name)", choices=MODES),
    "checkpoint.resume": _k("str", None, "resume from 'auto' (latest in the run dir) or a checkpoint path",
                            optional=True),
    "checkpoint.on_error": _k("str", "stop", "a checkpoint that cannot be written: stop the job, or train on",
                              choices=("stop", "continue")),
    "checkpoint.async_save": _k("bool", True, "write checkpoint files in a background thread on rank 0 (the "
                                "outcome is agreed at the next save or the end of training)"),
    # --- ensemble
    "ensemble.members": _k("int", 1, "number of independently trained members (1 = no ensemble)", (">=", 1)),
    "ensemble.vary": _k("list[str]", ["seed"], "what differs between members: seed, bootstrap",
                        choices=("seed", "bootstrap")),
    "ensemble.overrides": _k("list[table]", [], "per-member overrides: a list of {\"dotted.key\" = value} tables"),
    "ensemble.member": _k("int", None, "index of the member this config trains (set by the ensemble runner)",
                          NONNEG, optional=True),
    # --- distributed
    "distributed.bucket_mb": _k("float", 25.0, "gradient bucket size in MiB for overlapped allreduce", POS),
    "distributed.compression": _k("str", "none", "gradient compression on the wire", choices=("none", "fp16", "bf16")),
    "distributed.overlap": _k("bool", True, "start bucket allreduces during backward"),
    "distributed.check_every": _k("int", 0, "check replicas are identical every N steps (0 = off)", NONNEG),
    "distributed.timeout": _k("float", 300.0, "seconds a collective may take before the job is aborted", POS),
    "distributed.sync_batchnorm": _k("bool", False, "batch-norm statistics over all ranks"),
}

#: Tables whose other keys are passed through (the model's keyword arguments).
OPEN_TABLES = frozenset({"model"})
#: Keys the trainer fills from the data; a config must not set them.
MODEL_RESERVED = frozenset({"num_classes", "input_shape", "generator"})
#: Common misspellings / names from other tools, to suggest the right key.
ALIASES = {
    "learning_rate": "optimizer.lr", "lr": "optimizer.lr", "wd": "optimizer.weight_decay",
    "weightdecay": "optimizer.weight_decay", "batchsize": "data.batch_size", "batch": "data.batch_size",
    "batch_size": "data.batch_size", "epoch": "train.epochs", "epochs": "train.epochs", "seed": "run.seed",
    "clip_grad_norm": "train.grad_clip", "max_grad_norm": "train.grad_clip", "gradient_clip": "train.grad_clip",
    "accumulation_steps": "train.grad_accumulation", "grad_accum": "train.grad_accumulation",
    "restore_best_weights": "early_stopping.restore_best", "optim": "optimizer", "scheduler": "schedule",
    "lr_schedule": "schedule", "output_dir": "run.out_dir", "outdir": "run.out_dir", "dataset": "data",
    "warmup": "schedule.warmup_steps", "step_size": "schedule.step_size",
}

# Every proper prefix of a key is a table: "data", "data.augment", ...
TABLES = list(dict.fromkeys(".".join(k.split(".")[:i]) for k in SCHEMA for i in range(1, k.count(".") + 1)))

_TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
               "list[int]": "a list of integers", "list[float]": "a list of numbers",
               "list[str]": "a list of strings", "list[table]": "a list of tables"}


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


def _bound_text(bounds) -> str:
    if len(bounds) == 2:
        (op1, a), (op2, b) = bounds
        return f"in {'[' if op1 == '>=' else '('}{a}, {b}{']' if op2 == '<=' else ')'}"
    op, a = bounds[0]
    return f"{op} {a}"


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
        if key.bounds and isinstance(v, (int, float)):
            if (isinstance(v, float) and math.isnan(v)) or not all(_OPS[op](v, a) for op, a in key.bounds):
                problems.append(f"{where} must be {_bound_text(key.bounds)}, got {raw!r}")
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
        default, v = options[k], extra[k]
        expected = type(default) if default is not None else None
        ok = (expected is None or isinstance(v, expected) and not (expected is int and isinstance(v, bool))
              or (expected is float and isinstance(v, int) and not isinstance(v, bool)))
        if not ok:
            problems.append(f"data.{k} must be {_TYPE_WORDS.get(expected.__name__, expected.__name__)}, "
                            f"got {_describe(v)}")
            continue
        data[k] = float(v) if expected is float else v
    needs_path = dsets.get_dataset_entry(name).needs_path
    if "path" not in options and data.get("path") is not None and name == data["name"]:
        problems.append(f"data.path is set but dataset '{name}' reads no files; remove data.path")
    elif needs_path and data.get("path") is None and name == data["name"]:
        problems.append(f"data.path is required for dataset '{name}': add path = \"...\" under [data] "
                        f"or pass --set data.path=PATH")


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
    e = out["ensemble"]
    if len(e["vary"]) != len(set(e["vary"])):
        problems.append(f"ensemble.vary lists a value twice: {e['vary']}")
    if len(e["overrides"]) > e["members"]:
        problems.append(f"ensemble.overrides has {len(e['overrides'])} entries for {e['members']} members")
    if e.get("member") is not None and e["member"] >= max(e["members"], 1) and e["members"] > 1:
        problems.append(f"ensemble.member {e['member']} is out of range for {e['members']} members")


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


def describe_schema() -> str:
    """Every key: dotted name, type, default, allowed values, meaning (for ``--help`` screens)."""
    lines = []
    for path, key in SCHEMA.items():
        default = "(unset)" if key.default is None else repr(key.default)
        allowed = ""
        if key.choices:
            allowed = " {" + "|".join(key.choices) + "}"
        elif key.bounds:
            allowed = " " + _bound_text(key.bounds)
        lines.append(f"{path:<34} {key.type:<11} {default:<14}{allowed}  {key.doc}")
    lines.append(f"{'model.*':<34} {'any':<11} {'':<14}  keyword arguments of the model (see distnn.models)")
    lines.append(f"{'data.*':<34} {'any':<11} {'':<14}  options of the chosen dataset (distnn datasets)")
    return "\n".join(lines)
