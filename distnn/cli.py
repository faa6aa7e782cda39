"""``python -m distnn`` / ``distnn``: train, evaluate, predict, list datasets and config keys.

Errors caused by the user's input (a bad config key, an unreadable data file,
a batch size that does not fit) end the program with ONE line on stderr,
``distnn: error: <message>``, and exit status 2. Under MPI every rank exits
with that status; only rank 0 prints. ``evaluate``, ``predict``, ``datasets`` and
``config-keys`` run in one process: started under an MPI launcher, ranks other than 0
do nothing.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

EXIT_USAGE = 2
DEFAULT_CONFIG = "digits_mlp"  # train's config when neither --config nor a resumed run's saved one names one

_TRAIN_EPILOG = """\
examples:
  python -m distnn train                                  # digits_mlp on this process
  mpiexec -n 2 python -m distnn train --config digits_mlp # the same job on 2 MPI ranks
  python -m distnn train --simulate-ranks 2               # 2 ranks simulated in one process
  python -m distnn train --config digits_cnn --set train.epochs=5 --set optimizer.lr=0.002
  python -m distnn train --config my_run.toml --out runs/my_run
  mpiexec -n 4 python -m distnn train --set ensemble.members=4  # 4 members at once, probabilities averaged

The run directory (default runs/<config>-<timestamp>) receives config.toml,
metrics.jsonl, metrics.csv, curves.png, summary.json and model.npz/model.json.
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
    t.add_argument("--quiet", action="store_true", help="no progress bar: one log line per epoch")
    t.add_argument("--log-all-ranks", action="store_true", help="show log lines of every rank, not only rank 0")
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


# ------------------------------------------------------------------ commands
def cmd_train(args) -> int:
    from distnn.train.job import run_training

    if args.log_all_ranks:
        os.environ["DISTNN_LOG_ALL_RANKS"] = "1"
    if args.simulate_ranks is not None:
        from distnn.distributed.mpi_comm import launcher_world_size
        from distnn.train.job import JobError

        # the same arguments on every rank: agreed usage errors, printed once, no MPI abort
        if args.simulate_ranks < 1:
            raise JobError(f"--simulate-ranks must be >= 1, got {args.simulate_ranks}", report=_launcher_rank() == 0)
        launched = launcher_world_size() or 1
        if launched > 1:  # every rank would run its own simulation, racing for one run directory
            raise JobError(f"--simulate-ranks runs {args.simulate_ranks} ranks as threads of one process, but this "
                           f"is one of {launched} processes an MPI launcher started: drop --simulate-ranks (the "
                           "launcher's ranks are real ones) or start a single process", report=_launcher_rank() == 0)
    for option, value, what in (("--out", args.out, "the run directory (or leave --out out: a new "
                                                  "runs/<config>-<timestamp>)"),
                                ("--resume", args.resume, "'auto' or a checkpoint or run directory")):
        if value is not None and not value.strip():  # (an unset shell variable: not silently ignored)
            from distnn.train.job import JobError

            raise JobError(f"{option} is empty: give {what}", report=_launcher_rank() == 0)
    config, overrides = _train_config(args)
    if args.resume:  # (resume = auto needs --out: checked with the resolved config, which may set it too)
        overrides.append(f"checkpoint.resume={args.resume}")
    import contextlib

    from distnn.train import preemption

    # Called from Python (main(argv)): the caller's signal handlers come back afterwards, and a signal noted
    # after training goes to the caller then (preemption.caller_signals); `python -m distnn` exits instead.
    with preemption.caller_signals() if args.embedded else contextlib.nullcontext():
        preemption.start_up()  # a SIGTERM/SIGUSR1 while the job sets up: exit 75 (requeue), not death by it
        try:
            summary = run_training(config, overrides, out=args.out, simulate_ranks=args.simulate_ranks,
                                   quiet=args.quiet)
            late = preemption.job_requested()
        finally:
            preemption.end_job()  # (a job that failed before training: its start-up phase is over all the same)
        if late:  # noted, not acted on: it came once this process's training had ended (see preemption)
            import signal

            comm = _running_mpi_comm()
            who = f"rank {comm.rank}: " if comm is not None else ""
            then = "it goes to the caller now" if args.embedded else "exit status 0"
            print(f"distnn: {who}{signal.Signals(late).name} came after training had ended: nothing left to "
                  f"checkpoint, the run finished writing its results ({then})", file=sys.stderr, flush=True)
        if summary is not None:  # rank 0 (every other rank returns None)
            _print_train_summary(summary)
    return 0


def _train_config(args) -> tuple[str, list]:
    """The config ``train`` runs and its overrides: --config and --set; else, resuming a run, the run's own
    saved config.toml (a checkpoint of a ResNet does not resume into the default MLP) with --set on top;
    else the default, digits_mlp."""
    overrides = list(args.overrides)
    if args.config is not None:
        return args.config, overrides
    from distnn.train.resume_config import run_dir_from_overrides, saved_config_for_resume

    saved = saved_config_for_resume(args.resume, args.out or run_dir_from_overrides(overrides))
    if saved is None:
        return DEFAULT_CONFIG, overrides
    if _launcher_rank() == 0:  # (every rank resolves it alike; one says so)
        from distnn.train.logging_utils import get_logger, setup_logging

        setup_logging()
        get_logger("job").info("resuming with the run's config %s", saved)
    # run.quiet records the --quiet of the session that saved it: this session's own --quiet decides
    return saved, ["run.quiet=false", *overrides]


def _print_train_summary(s: dict) -> None:
    acc = s.get("test_accuracy")
    where = s.get("run_dir", "")
    lines = []
    if s.get("ensemble"):  # an ensemble run: every member's and the ensemble's test metrics
        from distnn.train.ensemble import summary_lines

        lines += summary_lines(s)
    elif acc is not None:
        # (no best epoch when no validation counted: e.g. fewer epochs than train.eval_every)
        best = f", best epoch {s['best_epoch']}" if s.get("best_epoch") is not None else ""
        lines.append(f"test accuracy {acc:.4f}  test loss {s.get('test_loss', float('nan')):.4f}  "
                     f"({s.get('epochs_run')} epochs{best}, {_ranks(s.get('world_size'))}, "
                     f"{s.get('wall_time', 0):.1f}s)")
    else:
        lines.append(f"trained {s.get('epochs_run')} epochs in {s.get('wall_time', 0):.1f}s (no test split)")
    lines.append(f"run directory: {where}")
    if os.path.exists(os.path.join(where, "curves.png")):  # (not drawn with run.plots = false)
        lines.append(f"curves:        {os.path.join(where, 'curves.png')}")
    print("\n".join(lines), flush=True)


def _ranks(n) -> str:
    return f"{n} rank" + ("" if n == 1 else "s")


def _one_process_only() -> bool:
    """evaluate, predict, datasets and config-keys run in one process: under an MPI launcher, ranks other
    than 0 do nothing (they would repeat the report, or race rank 0 writing the same output file)."""
    return _launcher_rank() != 0


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


def _add_mc_options(parser) -> None:
    # (None: not given; --mc-seed without --mc-samples is refused, with 0 or 1 a warning: see _mc_options)
    parser.add_argument("--mc-samples", type=_count(0), default=None, metavar="N",
                        help="Monte Carlo dropout: average the class probabilities of N passes with dropout on "
                             "(batch norm stays in eval mode; a model without dropout is refused); 0 or 1 (default): "
                             "dropout off")
    parser.add_argument("--mc-seed", type=_count(0), default=None, metavar="S",
                        help="seed of the dropout masks when --mc-samples N > 1 (default 0): the same seed, the same "
                             "result; needs --mc-samples (with 0 or 1 it is not used)")


def _mc_options(args) -> tuple[int, int]:
    """``(mc_samples, mc_seed)`` of evaluate and predict.

    ``--mc-seed`` without ``--mc-samples`` asks for no Monte Carlo dropout at all: a usage error, as a
    mistyped option is, not a seed silently dropped. With ``--mc-samples`` 0 or 1 (dropout off) the seed
    does nothing either, but there the command line is a point of a sweep over N whose baseline is N <= 1
    (``for n in 1 8 32; do ... --mc-samples $n --mc-seed 7``): it runs, and a warning says that the seed
    was not used and that N = 1 is no random pass (as scikit-learn warns of ``l1_ratio`` without an
    elastic-net penalty, which a grid search gives it)."""
    if args.mc_seed is not None and args.mc_samples is None:
        raise ValueError(f"--mc-seed {args.mc_seed} does nothing without --mc-samples: it seeds the dropout masks "
                         "of Monte Carlo dropout; add --mc-samples N (N > 1), or drop --mc-seed")
    if args.mc_seed is not None and args.mc_samples <= 1 and _launcher_rank() == 0:
        print(f"distnn: warning: --mc-seed {args.mc_seed} is not used: --mc-samples {args.mc_samples} keeps "
              "dropout off (Monte Carlo dropout samples for N > 1 only; 1 is not one random pass)",
              file=sys.stderr, flush=True)
    return (0 if args.mc_samples is None else args.mc_samples), (0 if args.mc_seed is None else args.mc_seed)


def _mc_refused(e) -> ValueError:
    """A model without dropout asked for --mc-samples N: the message names the option typed, not the
    library's ``mc_samples`` argument."""
    return ValueError(e.naming("--mc-samples ", "drop --mc-samples, or give 0 or 1"))


def _header(choice, data_file, option):
    """``--header`` as evaluate_run/predict_run take it (None: not given). ``true``/``false`` where no CSV file
    is read is a usage error, as ``--mc-seed`` without ``--mc-samples`` is (it was ignored without a word);
    ``auto``, the default's rule, is accepted with any input file."""
    if choice is None or (choice == "auto" and data_file is not None):
        return choice
    if data_file is None:
        raise ValueError(f"--header {choice} decides how a --data CSV file is read; without --data, evaluate "
                         "scores a split of the run's dataset, read as the run read it: drop --header, or add "
                         "--data FILE")
    if not str(data_file).lower().endswith(".csv"):
        raise ValueError(f"--header {choice} applies to CSV files, and {option} {str(data_file)!r} is not one: "
                         "drop --header")
    return {"true": True, "false": False}.get(choice, choice)


def cmd_evaluate(args) -> int:
    from distnn.train.inference import evaluate_run
    from distnn.train.mc_dropout import NoDropoutError

    mc_samples, mc_seed = _mc_options(args)  # (usage errors: on every rank, as argparse's)
    header = _header(args.header, args.data, "--data")
    if _one_process_only():
        return 0

    try:
        report = evaluate_run(args.run_dir, split=args.split, data=args.data, header=header,
                              mc_samples=mc_samples, mc_seed=mc_seed)
    except NoDropoutError as e:
        raise _mc_refused(e) from None
    print(report, flush=True)
    return 0


def cmd_predict(args) -> int:
    from distnn.train.inference import predict_run
    from distnn.train.mc_dropout import NoDropoutError

    mc_samples, mc_seed = _mc_options(args)  # (usage errors: on every rank, as argparse's)
    header = _header(args.header, args.input, "--input")
    if _one_process_only():
        return 0

    try:
        n = predict_run(args.run_dir, args.input, args.output, header=header, mc_samples=mc_samples,
                        mc_seed=mc_seed)
    except NoDropoutError as e:
        raise _mc_refused(e) from None
    # (on stderr when the predictions themselves went to a stream, e.g. --output - or /dev/stdout)
    stream = args.output == "-" or (os.path.exists(args.output) and not os.path.isfile(args.output))
    print(f"wrote {n} predictions to {args.output}", file=sys.stderr if stream else sys.stdout, flush=True)
    return 0


def cmd_datasets(args) -> int:
    from distnn.train.inference import describe_datasets

    if _one_process_only():  # (under mpiexec every rank printed the listing)
        return 0
    print(describe_datasets(), flush=True)
    return 0


def cmd_config_keys(args) -> int:
    from distnn.train.config import suggest_key
    from distnn.train.config_schema import SCHEMA, TABLES, describe_schema, describe_sections

    if args.all and args.tables:
        raise ValueError("config-keys: give section or key names, or --all (every key), not both")
    if not args.all and not args.tables:  # (every key is a long list: first the overview, to pick from)
        if _one_process_only():
            return 0
        print(describe_sections() + "\n\n'python -m distnn config-keys SECTION...' lists a section's keys, "
              "'--all' every key", flush=True)
        return 0
    lines = describe_schema().splitlines()
    described = []  # model.X / data.X: a model's argument or a dataset's option, which the schema does not list
    if args.tables:
        from distnn.train.open_keys import describe_open_key, open_key_names, open_key_problem

        known = [*TABLES, *SCHEMA]
        for name in args.tables:
            if name in known:
                continue
            text = describe_open_key(name)
            if text is not None:
                described.append(text)
                continue
            problem = open_key_problem(name)
            if problem:
                raise ValueError(problem)
            raise ValueError(f"no config section or key '{name}'{suggest_key(name, known + open_key_names())}; "
                             "sections: "
                             + ", ".join(t for t in TABLES if "." not in t)
                             + " ('python -m distnn config-keys' lists them)")
        lines = [line for line in lines if any(line.split()[0] == t or line.split()[0].startswith(t + ".")
                                               for t in args.tables)]
    if _one_process_only():  # (after the names are checked: a mistake is a usage error on every rank)
        return 0
    print("\n".join(lines + described), flush=True)
    return 0


# ---------------------------------------------------------------- the driver
def _user_errors() -> tuple:
    """Exception types that mean bad input or a failing environment (reported in one line), not a bug:
    any OSError (a missing or unwritable file, a full or read-only disk) names its file and reason."""
    types = [ValueError, OSError]
    for mod, name in (("distnn.train.config", "ConfigError"), ("distnn.data", "DataError"),
                      ("distnn.distributed.replicas", "ReplicaMismatchError")):
        try:
            types.append(getattr(__import__(mod, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(types)


def _launcher_rank() -> int:
    """This process's rank as the MPI launcher announced it (0 when not under a launcher)."""
    from distnn._launcher_env import launcher_rank

    return launcher_rank()


def _running_mpi_comm():
    """This process's communicator if it is an MPI job of several ranks, else None."""
    dist = sys.modules.get("distnn.distributed")
    if dist is None or not dist.is_initialized():
        return None
    comm = dist.init()
    return comm if comm.size > 1 and hasattr(comm, "abort") else None


def one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and msg.startswith("'") and msg.endswith("'"):
        msg = msg[1:-1]
    return msg or type(exc).__name__


def main(argv=None) -> int:
    """The ``distnn`` command. ``argv`` None: this process's command line (``python -m distnn``, the
    ``distnn`` script; the process exits next). A list: a call from Python, e.g. a sweep, which gets its
    signal handlers back when a ``train`` returns (:func:`distnn.train.preemption.caller_signals`)."""
    try:
        return _main(argv)
    except SystemExit as e:
        # (a rank's own SystemExit, e.g. from a user's model code: under MPI the job then ends with its
        # status, not 1; see distnn.distributed.exit_watch; sys.exit() notes its status by itself)
        watch = sys.modules.get("distnn.distributed.exit_watch")
        if watch is not None:
            watch.note_exit_status(e.code)
        raise


def _main(argv=None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    args.embedded = argv is not None
    if args.command != "train":  # (train's start-up takes them over: preemption.start_up)
        from distnn import _early_signals

        _early_signals.release()  # SIGTERM/SIGUSR1 noted while `python -m distnn` imported: their default action
    if args.command is None:
        parser.print_help()
        if _launcher_rank() == 0:
            print("distnn: error: no command given: choose one of train, evaluate, predict, datasets, config-keys",
                  file=sys.stderr, flush=True)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # e.g. `distnn evaluate RUN | head -1`: the reader has gone, which is no error
        if not args.embedded:  # (the process exits next and Python flushes stdout then: into /dev/null)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        return 0  # (called from Python: the caller's stdout is the caller's to deal with)
    except _user_errors() as e:
        # Agreed errors (JobError: every rank raised it together) say whether this rank reports.
        report = getattr(e, "report", None)
        if report is not None:
            # (simulated ranks re-raise whichever rank failed first: in one process, it is ours to print)
            if report or (_running_mpi_comm() is None and _launcher_rank() == 0):
                print(f"distnn: error: {one_line(e)}", file=sys.stderr, flush=True)
            return EXIT_USAGE
        # An error on this rank alone: the other ranks may be waiting in a collective. Say it
        # (with the rank, if there are several) and end the whole job.
        comm = _running_mpi_comm()
        rank = comm.rank if comm is not None else getattr(e, "simulated_rank", None)
        prefix = f"rank {rank}: " if rank is not None else ""
        if comm is not None or _launcher_rank() == 0:
            print(f"distnn: error: {prefix}{one_line(e)}", file=sys.stderr, flush=True)
        if comm is not None:
            record_exit_status(EXIT_USAGE)
            comm.abort(EXIT_USAGE)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("distnn: interrupted", file=sys.stderr, flush=True)
        return 130
    except _preempted() as e:
        from distnn.train.preemption import PreemptedAtStartup

        if isinstance(e, PreemptedAtStartup):
            _end_job_preempted_at_startup(e)
        if _launcher_rank() == 0:  # (otherwise every rank stopped at the same step after the checkpoint: agreed)
            from distnn.train.preemption import EXIT_PREEMPTED, EXIT_PREEMPTED_UNSAVED

            if e.exit_code in (EXIT_PREEMPTED, EXIT_PREEMPTED_UNSAVED):
                from distnn.train.preemption import resume_hint

                print(f"distnn: {one_line(e)}; {resume_hint()}", file=sys.stderr, flush=True)
            else:  # checkpointing off: nothing to resume from (128 + the signal's number)
                print(f"distnn: {one_line(e)}; exit status {e.exit_code}", file=sys.stderr, flush=True)
        return e.exit_code


def _end_job_preempted_at_startup(e) -> None:
    """A start-up signal reaches each rank on its own (there is no step yet to agree on): in a job of
    several ranks, end them all with the exit status now. The others would otherwise wait in their next
    collective until its timeout, or forever inside MPI's start-up. Nothing is saved yet. Returns only
    in a one-process run."""
    from distnn.train.preemption import ignore_further_signals

    ignore_further_signals()  # (a repeated signal during the grace below would kill the rank with 15)
    comm = _running_mpi_comm()
    if comm is not None:
        rank, size, abort = comm.rank, comm.size, comm.abort
    else:  # signalled before the communicator existed: the others may be inside MPI's start-up
        from distnn.distributed.mpi_comm import abort_job, launcher_world_size

        size = launcher_world_size() or 1
        if size <= 1:
            return
        rank, abort = _launcher_rank(), abort_job
    from distnn.train.preemption import resume_hint

    print(f"distnn: rank {rank}: {one_line(e)}; ending all {size} ranks; {resume_hint()}", file=sys.stderr,
          flush=True)
    record_exit_status(e.exit_code, e.signum)
    from distnn.distributed.watchdog import FORWARD_GRACE_S

    time.sleep(FORWARD_GRACE_S)  # MPI_Abort also ends the launcher's forwarding of what we wrote
    abort(e.exit_code)
    sys.exit(e.exit_code)  # (MPI_Abort may return when every rank aborts at once: exit, print nothing more)


#: a directory where each rank of ``python -m distnn`` records the status it exits with, as ``rank-<N>``
#: (slurm/train.sbatch sets it: srun --kill-on-bad-exit reports 137 for all once one rank exits, and a rank
#: killed by a signal before distnn could act on it records nothing)
STATUS_DIR_ENV = "DISTNN_STATUS_DIR"


def record_exit_status(code, signum: int = 0, keep: bool = False) -> None:
    """Write ``STATUS SIGNAL`` into ``$DISTNN_STATUS_DIR/rank-<launcher rank>`` (if set): the status this
    rank exits with, and the signal of a preemption during start-up (0 otherwise): a rank that dies there
    makes srun send SIGTERM to the others, which take it for a preemption. ``keep``: not over a record
    this rank already wrote (the process's exit after a more specific one)."""
    directory = os.environ.get(STATUS_DIR_ENV)
    if not directory:
        return
    from distnn.distributed.exit_watch import exit_status

    path = os.path.join(directory, f"rank-{_launcher_rank()}")
    if keep and os.path.exists(path):
        return
    try:
        with open(path, "w") as f:
            f.write(f"{exit_status(code)} {int(signum)}\n")
    except OSError:
        pass  # (a status nobody can read changes nothing in the job itself)


def _preempted() -> tuple:
    from distnn.train.preemption import Preempted

    return (Preempted,)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
