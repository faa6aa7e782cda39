"""``python -m distnn`` / ``distnn``: train, evaluate, predict, list datasets and config keys.

Errors caused by the user's input (a bad config key, an unreadable data file,
a batch size that does not fit) end the program with ONE line on stderr,
``distnn: error: <message>``, and exit status 2. Under MPI every rank exits
with that status; only rank 0 prints. ``evaluate``, ``predict``, ``datasets`` and
``config-keys`` run in one process: started under an MPI launcher, ranks other than 0
do nothing.
"""
from __future__ import annotations

import os
import sys
import time

from distnn.cli_common import EXIT_USAGE, _launcher_rank, _running_mpi_comm, one_line
from distnn.cli_inference import cmd_evaluate, cmd_predict
from distnn.cli_listings import cmd_config_keys, cmd_datasets
from distnn.cli_parser import _TRAIN_EPILOG, _parse, build_parser
from distnn.cli_train import DEFAULT_CONFIG, cmd_train

# The command's parts live in distnn.cli_common (shared), cli_parser, cli_train, cli_inference (evaluate,
# predict) and cli_listings (datasets, config-keys); what was importable from here still is.
__all__ = ["DEFAULT_CONFIG", "EXIT_USAGE", "STATUS_DIR_ENV", "build_parser", "cmd_config_keys", "cmd_datasets",
           "cmd_evaluate", "cmd_predict", "cmd_train", "main", "one_line", "record_exit_status",
           "_TRAIN_EPILOG", "_launcher_rank"]


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


def _plain_config_warnings() -> None:
    """Print a ConfigWarning as ``distnn: warning: <message>`` (the message names the config file and key),
    without Python's location: on the command line that is runpy's, nothing the user wrote. For this
    process's own command line only (it exits next); a call from Python keeps its caller's formatting."""
    import warnings

    from distnn.train.config_object import ConfigWarning

    default = warnings.formatwarning

    def formatwarning(message, category, filename, lineno, line=None):
        if issubclass(category, ConfigWarning):
            return f"distnn: warning: {message}\n"
        return default(message, category, filename, lineno, line)

    warnings.formatwarning = formatwarning


def _main(argv=None) -> int:
    parser = build_parser()
    args = _parse(parser, argv)
    args.embedded = argv is not None
    if not args.embedded:
        _plain_config_warnings()
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

                print(f"distnn: {one_line(e)}; {resume_hint(e.signum)}", file=sys.stderr, flush=True)
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

    print(f"distnn: rank {rank}: {one_line(e)}; ending all {size} ranks; {resume_hint(e.signum)}", file=sys.stderr,
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
