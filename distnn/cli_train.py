"""``distnn train``: the command's body (its options are in :mod:`distnn.cli_parser`)."""
from __future__ import annotations

import os
import sys

from distnn.cli_common import _launcher_rank, _running_mpi_comm

DEFAULT_CONFIG = "digits_mlp"  # train's config when neither --config nor a resumed run's saved one names one


def cmd_train(args) -> int:
    if args.check:  # everything refused before training, found without training (see distnn.cli_check)
        from distnn.cli_check import cmd_check

        return cmd_check(args)
    from distnn.train.job import run_training

    if args.log_all_ranks:
        os.environ["DISTNN_LOG_ALL_RANKS"] = "1"
    config, overrides = train_arguments(args)
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


def train_arguments(args) -> tuple[str, list]:
    """The config and overrides ``train`` runs (``train --check`` checks), after refusing the arguments that
    cannot mean anything (the command's own usage errors, agreed by every rank)."""
    from distnn.train.job import JobError

    if args.check_ranks is not None and not args.check:
        raise JobError("--check-ranks is the number of ranks --check checks a job for: it needs --check",
                       report=_launcher_rank() == 0)
    if getattr(args, "check_strict", False) and not args.check:
        raise JobError("--check-strict makes --check refuse what only the job's hosts can check: it needs --check",
                       report=_launcher_rank() == 0)
    if args.simulate_ranks is not None:
        from distnn.distributed.mpi_comm import launcher_world_size

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
                                ("--resume", args.resume, "'auto' or a checkpoint or run directory"),
                                ("--profile", args.profile, "the directory the profile's traces go to")):
        if value is not None and not value.strip():  # (an unset shell variable: not silently ignored)
            raise JobError(f"{option} is empty: give {what}", report=_launcher_rank() == 0)
    from distnn.train.config_overrides import FlagOverride

    config, overrides = _train_config(args)
    # (as typed values: a path needs no TOML quoting; flagged, so that an error about them does not say
    # "(set by --set)")
    if args.profile is not None:
        overrides.append(FlagOverride("run.profile", args.profile, "--profile"))
    if args.profile_steps is not None:
        overrides.append(FlagOverride("run.profile_steps", args.profile_steps, "--profile-steps"))
    if args.resume:  # (resume = auto needs --out: checked with the resolved config, which may set it too)
        overrides.append(FlagOverride("checkpoint.resume", args.resume, "--resume"))
    return config, overrides


def _train_config(args) -> tuple[str, list]:
    """The config ``train`` runs and its overrides: --config and --set; else, resuming a run, the run's own
    saved config.toml (a checkpoint of a ResNet does not resume into the default MLP) with --set on top;
    else the default, digits_mlp."""
    overrides = list(args.overrides)
    if args.config is not None:
        return args.config, overrides
    from distnn.train.config_overrides import FlagOverride
    from distnn.train.resume_config import run_dir_from_overrides, saved_config_for_resume

    saved = saved_config_for_resume(args.resume, args.out or run_dir_from_overrides(overrides))
    if saved is None:
        return DEFAULT_CONFIG, overrides
    if _launcher_rank() == 0:  # (every rank resolves it alike; one says so)
        from distnn.train.logging_utils import get_logger, setup_logging

        setup_logging()
        get_logger("job").info("resuming with the run's config %s", saved)
    # run.quiet records the --quiet of the session that saved it: this session's own --quiet decides
    return saved, [FlagOverride("run.quiet", False, "--resume"), *overrides]


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
                     f"({_epochs(s.get('epochs_run'))}{best}, {_ranks(s.get('world_size'))}, "
                     f"{s.get('wall_time', 0):.1f}s)")
    else:
        lines.append(f"trained {_epochs(s.get('epochs_run'))} in {s.get('wall_time', 0):.1f}s (no test split)")
    lines.append(f"run directory: {where}")
    if os.path.exists(os.path.join(where, "curves.png")):  # (not drawn with run.plots = false)
        lines.append(f"curves:        {os.path.join(where, 'curves.png')}")
    print("\n".join(lines), flush=True)


def _ranks(n) -> str:
    return f"{n} rank" + ("" if n == 1 else "s")


def _epochs(n) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")
