"""The ``distnn`` command line: the parser of every command, and the hints that come with an argument it
does not know (a misspelled option, a framework's ``--epochs 3`` that is ``--set train.epochs=3`` here)."""
from __future__ import annotations

import argparse
import os
import sys

from distnn.cli_common import EXIT_USAGE, _launcher_rank
from distnn.cli_inference import cmd_evaluate, cmd_predict
from distnn.cli_listings import cmd_config_keys, cmd_datasets
from distnn.cli_train import cmd_train


_TRAIN_EPILOG = """\
examples:
  python -m distnn train                                  # digits_mlp on this process
  mpiexec -n 2 python -m distnn train --config digits_mlp # the same job on 2 MPI ranks
  python -m distnn train --simulate-ranks 2               # 2 ranks simulated in one process
  python -m distnn train --config digits_cnn --set train.epochs=5 --set optimizer.lr=0.002
  python -m distnn train --config my_run.toml --out runs/my_run
  mpiexec -n 2 python -m distnn train --profile prof  # prof/rank-0.json, rank-1.json, summary-rank0.txt
  mpiexec -n 4 python -m distnn train --set ensemble.members=4  # 4 members at once, probabilities averaged
  python -m distnn train --check --check-ranks 4 --config digits_cnn  # what a 4-rank job would refuse

The run directory (default runs/<config>-<timestamp>) receives config.toml,
metrics.jsonl, metrics.csv, curves.png, summary.json, model.npz/model.json,
SHA256SUMS (their checksums: 'sha256sum -c SHA256SUMS' in it) and checkpoints/.
data.batch_size is the GLOBAL batch: each of N ranks takes batch_size/N.
Log lines come from rank 0 only; DISTNN_LOG_ALL_RANKS=1 shows every rank.

checkpoints and preemption:
  mpiexec -n 2 python -m distnn train --out runs/r1 --resume auto   # continue runs/r1 (or start it)
  python -m distnn train --out runs/r2 --resume runs/r1/checkpoints/step-00000420
Checkpoints go to <run>/checkpoints/step-<N>/ (checkpoint.every_epochs,
checkpoint.every_steps, checkpoint.every_seconds, checkpoint.keep_last); --resume auto picks the newest
one whose checksums verify, also on a different number of ranks. Without
--config, a resume runs with the run's own config.toml (for --resume PATH, the
one stored with that checkpoint), any --set applied on top. SIGTERM or
SIGUSR1 (e.g. sbatch --signal=USR1@60, scancel, mpiexec forwarding a kill):
every rank stops at the same step (within two steps of the signal), a
checkpoint is written, and the exit status is 75; run the same command with
--resume auto to continue. Between two ensemble members trained in turn the next
member does not start (75 too); once training has ended the signal is only noted
and the run finishes writing its results (0).

exit status: 0 finished, 2 error (one line on stderr), 75 preempted after
writing a checkpoint, 74 preempted but the checkpoint could not be written (the
steps since the newest valid one are lost), 130 interrupted (Ctrl-C), 128+N
stopped cleanly by signal N with checkpointing off (143 SIGTERM, 138 SIGUSR1:
nothing saved, nothing to resume). Under mpiexec, a rank that ends on its own
with status S while the others still train ends the whole job with S.
"""


_EVAL_EPILOG = """\
examples:
  python -m distnn evaluate runs/digits_mlp-20250101-120000
  python -m distnn evaluate runs/digits_mlp-20250101-120000 --split val
  python -m distnn evaluate runs/my_run --data new_samples.csv
  python -m distnn evaluate runs/my_run --mc-samples 20   # Monte Carlo dropout

Prints loss, accuracy, the confusion matrix and per-class precision/recall/F1.
A --data file is read like the run's training data (same format, columns and
units: digits pixel values 0..16 divided by 16, IDX images scaled to [0, 1])
and standardized with the statistics saved in the run.
"""


_PREDICT_EPILOG = """\
examples:
  python -m distnn predict runs/digits_mlp-20250101-120000 --input samples.csv --output preds.csv
  python -m distnn predict runs/my_run --input samples.csv --output preds.csv --mc-samples 20 --mc-seed 1

The output CSV has one row per input sample: predicted_label (the class
index), predicted_class (its name), then one probability column per class
(prob_<class>). --output - writes it to standard output. A CSV input may or may
not have a label column; see 'distnn evaluate --help' to score labelled data.
Inputs are in the units the run's dataset loader gives (digits: pixel values
0..16 divided by 16; IDX images are scaled to [0, 1] when read); the run's
standardization is then applied as in training.
"""


_KEYS_EPILOG = """\
examples:
  python -m distnn config-keys                     # the top-level keys and the sections
  python -m distnn config-keys optimizer schedule  # the keys of these sections
  python -m distnn config-keys optimizer.lr name   # these keys
  python -m distnn config-keys --all               # every key
  python -m distnn train --set optimizer.lr=0.02 --set train.epochs=20

columns: key, type, default, allowed values, meaning. The built-in configs
(python -m distnn datasets lists them) are TOML files in distnn/configs/:
copy one as a starting point for your own (--config my.toml).
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but under an MPI launcher a usage error and ``--help`` are printed by rank 0 only
    (every rank exits, 2 and 0), and no option is taken by a prefix of its name (``allow_abbrev``
    off, for distnn's parser and every command's: ``predict --out X`` meant ``--output X`` without a
    word, and a new option sharing a prefix would change what an old command line means)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)  # (sub.add_parser makes each command's parser of this class)
        super().__init__(*args, **kwargs)
        self.defer_missing = False

    def print_help(self, file=None):
        if _launcher_rank() == 0:
            super().print_help(file)

    def error(self, message):
        if self.defer_missing and message.startswith("the following arguments are required"):
            raise _MissingRequired(self, message)  # (see _parse: an unknown option may be the one missing)
        if _launcher_rank() == 0:
            self.print_usage(sys.stderr)
            self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")
        self.exit(EXIT_USAGE)


class _MissingRequired(Exception):
    """A required option is missing (argparse's message); raised instead of the usage error while
    :func:`_parse` looks for an unknown option first."""

    def __init__(self, parser, message):
        super().__init__(message)
        self.parser, self.message = parser, message


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="distnn",
        description="Data-parallel neural-network training over MPI on distnn's own autograd engine.",
        epilog="Run 'python -m distnn <command> --help' for the options of each command.\n"
               "Quick start: ./launch/quickstart.sh (2 MPI ranks on the digits data).\n"
               "Config keys: 'python -m distnn config-keys'; built-in configs: distnn/configs/*.toml.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="<command>")

    t = sub.add_parser("train", help="train a model from a config (built-in name or TOML file)",
                       description="Train a model. Every rank loads the data, takes its shard and averages "
                                   "gradients with the others.",
                       epilog=_TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--config", default=None, metavar="FILE|NAME",
                   help="a TOML config file or a built-in config name (default: digits_mlp; with --resume, the "
                        "run's own saved config.toml; 'python -m distnn datasets' lists them)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config value, e.g. --set train.epochs=5 (repeatable; typed and checked; "
                        "'python -m distnn config-keys --all' lists the keys)")
    t.add_argument("--out", metavar="DIR", help="run directory (default: runs/<config>-<timestamp>)")
    t.add_argument("--resume", metavar="auto|PATH",
                   help="continue from a checkpoint: 'auto' = the newest valid one in --out RUN_DIR (a fresh "
                        "start if there is none yet), or a checkpoint directory or run directory")
    t.add_argument("--simulate-ranks", type=int, default=None, metavar="N",
                   help="run N >= 1 ranks as threads in this process (same sharding and averaging as mpiexec -n N)")
    t.add_argument("--profile", metavar="DIR",
                   help="profile a few training steps (distnn.profiler) on every rank: DIR/rank-R.json, a Chrome "
                        "trace per rank (chrome://tracing, ui.perfetto.dev), and DIR/summary-rank0.txt, rank 0's "
                        "ops by self CPU time with the collectives; the rest of the run is not profiled "
                        "(sets run.profile)")
    t.add_argument("--profile-steps", type=_profile_steps, default=None, metavar="W,U,A",
                   help="which steps --profile records: skip W, warm up U, record the next A >= 1 (default 1,1,3; "
                        "sets run.profile_steps)")
    t.add_argument("--quiet", action="store_true", help="no progress bar: one log line per epoch")
    t.add_argument("--log-all-ranks", action="store_true", help="show log lines of every rank, not only rank 0")
    t.add_argument("--check", action="store_true",
                   help="check everything train refuses before it trains (config, --set, data, model, batch "
                        "against the ranks, run directory, --resume), in this process, writing nothing; print a "
                        "summary and exit 0, or train's one-line error and exit 2 (slurm/submit.sh runs it); a GPU or "
                        "data file missing here is noted, not refused (see --check-strict)")
    t.add_argument("--check-ranks", type=_count(1), default=None, metavar="N",
                   help="with --check: the number of ranks the job will have (default: --simulate-ranks, the "
                        "MPI launcher's ranks, SLURM_NTASKS inside an allocation, else 1)")
    t.add_argument("--check-strict", action="store_true",
                   help="with --check: refuse, as train on this host would, what only the job's hosts can check "
                        "(run.device = 'gpu' without a GPU here, a data path outside the current directory that does "
                        "not exist here), which --check otherwise notes ('not checked on this host') and passes")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="score a trained run on a split or a data file",
                       description="Evaluate the model saved in a run directory.", epilog=_EVAL_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by 'distnn train'")
    g = e.add_mutually_exclusive_group()
    g.add_argument("--split", choices=("test", "val", "train"), default=None,
                   help="which split of the run's dataset to score (default: test)")
    g.add_argument("--data", metavar="FILE", help="score a labelled data file instead (CSV, npz or IDX)")
    e.add_argument("--header", choices=("auto", "true", "false"), default=None, help=_HEADER_HELP)
    _add_mc_options(e)
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("predict", help="write class probabilities and labels for new inputs",
                       description="Predict with the model saved in a run directory.", epilog=_PREDICT_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by 'distnn train'")
    r.add_argument("--input", required=True, metavar="FILE", help="inputs to classify (CSV, npz or IDX)")
    r.add_argument("--output", required=True, metavar="FILE",
                   help="CSV file to write (e.g. preds.csv; - for standard output)")
    r.add_argument("--header", choices=("auto", "true", "false"), default=None, help=_HEADER_HELP)
    _add_mc_options(r)
    r.set_defaults(func=cmd_predict)

    d = sub.add_parser("datasets", help="list the datasets and built-in configs",
                       description="List the datasets distnn can load and the built-in configs.",
                       epilog="examples:\n  python -m distnn datasets\n"
                              "  python -m distnn train --config digits_cnn",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    d.set_defaults(func=cmd_datasets)

    k = sub.add_parser("config-keys", help="list the config keys with their types, defaults and meaning",
                       description="List config keys: dotted name, type, default, allowed values, meaning. "
                                   "Without a name, the top-level keys and the sections ([run], [data], ...); "
                                   "with names, the keys of those sections or those keys; --all, every key. "
                                   "Set a key in a TOML config file (its section, then the key) or with "
                                   "'train --set KEY=VALUE'.",
                       epilog=_KEYS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    k.add_argument("tables", nargs="*", metavar="NAME",
                   help="list only the keys of these sections (e.g. optimizer, data.augment) or these keys "
                        "(e.g. optimizer.lr, name)")
    k.add_argument("--all", action="store_true", help="list every key")
    k.set_defaults(func=cmd_config_keys)
    p.commands = {"train": t, "evaluate": e, "predict": r, "datasets": d, "config-keys": k}
    return p


def _parse(parser, argv):
    """``parser.parse_args(argv)``, but an argument the command does not know is reported by that command's
    parser (its usage line, not distnn's ``<command> ...``) with a hint: the option it likely misspells, or,
    for train, the ``--set KEY=VALUE`` a framework's ``--epochs 3`` or a spaced ``--set train.epochs 3`` means.
    A required option that is missing is reported so too when an unknown one was given: ``predict --out X``
    is "unrecognized arguments: --out X (did you mean --output?)", not only "--output is required"."""
    try:
        args, extra = _parse_known(parser, argv, defer_missing=True)
    except _MissingRequired as missing:
        required = [a for a in missing.parser._actions if a.required]
        for action in required:
            action.required = False
        try:
            args, extra = _parse_known(parser, argv)
        finally:
            for action in required:
                action.required = True
        if not extra:
            missing.parser.error(missing.message)
    if extra:
        command = parser.commands.get(args.command, parser)
        command.error(f"unrecognized arguments: {' '.join(extra)}{_unrecognized_hint(command, args, extra)}")
    return args


def _parse_known(parser, argv, defer_missing=False):
    parsers = [parser, *parser.commands.values()]
    for p in parsers:
        p.defer_missing = defer_missing
    try:
        return parser.parse_known_args(argv)
    finally:
        for p in parsers:
            p.defer_missing = False


def _unrecognized_hint(command, args, extra) -> str:
    from distnn.train.config_hints import closest_key, closest_name
    from distnn.train.config_schema import SCHEMA

    spaced = next((o for o in getattr(args, "overrides", ()) if "=" not in o), None)
    if spaced is not None and not extra[0].startswith("-"):  # --set train.epochs 3
        value = extra[1] if extra[0] == "=" and len(extra) > 1 else extra[0]
        return f" (--set takes KEY=VALUE as one argument: --set {spaced}={value})"
    if args.command == "train" and not extra[0].startswith("-"):  # train my.toml, train runs/r1
        from distnn.train.config import list_configs

        names = [c if isinstance(c, str) else c[0] for c in list_configs()]
        if extra[0] in names or extra[0].endswith(".toml"):
            return f" (a config is given with --config: --config {extra[0]})"
        if os.path.isdir(extra[0]):
            return f" (a run directory is given with --out: --out {extra[0]}; --resume auto continues it)"
    option = next((a for a in extra if a.startswith("--")), None)
    if option is None:
        return ""
    name, _, value = option[2:].partition("=")
    known = [o[2:] for action in command._actions for o in action.option_strings if o.startswith("--")]
    # (the one option it starts: what argparse's abbreviations took it for, before they were turned off)
    starts = [o for o in known if o.startswith(name)] if name else []
    if len(starts) > 1:
        return f" (did you mean {' or '.join('--' + o for o in starts)}?)"
    close = starts[0] if starts else closest_name(name, known)
    if close is not None:
        return f" (did you mean --{close}?)"
    key = closest_key(name.replace("-", "_"), list(SCHEMA)) if args.command == "train" else None
    if key is None or key not in SCHEMA:
        return ""
    if not value:
        after = extra[extra.index(option) + 1:]
        value = after[0] if after and not after[0].startswith("-") else "VALUE"
    return f" (config values are set with --set KEY=VALUE: --set {key}={value})"


_HEADER_HELP = ("whether a CSV input's first row is a header: true, false, or auto (a header only if none of its "
                "cells is a number). Default: auto, except for the run's own training file, read as the run read "
                "it. Only for a CSV file (evaluate: with --data)")


def _count(minimum):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value

    return parse


def _profile_steps(text):
    """An argparse type: --profile-steps WAIT,WARMUP,ACTIVE, three integers >= 0 with ACTIVE >= 1."""
    parts = [p.strip() for p in text.split(",")]
    try:
        steps = [int(p) for p in parts]
    except ValueError:
        steps = None
    if steps is None or len(steps) != 3 or min(steps) < 0 or steps[2] < 1:
        raise argparse.ArgumentTypeError(f"expected WAIT,WARMUP,ACTIVE: three integers >= 0, ACTIVE >= 1 (the "
                                         f"steps recorded), e.g. 1,1,3; got {text!r}")
    return steps


def _add_mc_options(parser) -> None:
    # (None: not given; --mc-seed without --mc-samples is refused, with 0 or 1 a warning: see _mc_options)
    parser.add_argument("--mc-samples", type=_count(0), default=None, metavar="N",
                        help="Monte Carlo dropout: average the class probabilities of N passes with dropout on "
                             "(batch norm stays in eval mode; a model without dropout is refused); 0 or 1 (default): "
                             "dropout off")
    parser.add_argument("--mc-seed", type=_count(0), default=None, metavar="S",
                        help="seed of the dropout masks when --mc-samples N > 1 (default 0): the same seed, the same "
                             "result; needs --mc-samples (with 0 or 1 it is not used)")
