"""What a job refuses before anything is written, beyond building it (:class:`~distnn.train.job_setup.Job`):
a ``--resume`` path that does not exist, a checkpoint or profile directory that cannot be written.
Importable from :mod:`distnn.train.job` too."""
from __future__ import annotations

import os


def preflight(cfg) -> None:
    """Raise ValueError for what is known wrong before anything is written, but would otherwise only
    fail once the run directory exists (a ``--resume`` path that does not exist) or after the first
    epoch (an absolute ``checkpoint.dir`` that cannot be made: its config and metrics left behind).
    Checks only; nothing is created. Relative checkpoint dirs live in the run directory, checked
    when it is made."""
    ck = cfg.checkpoint
    resume = ck.get("resume")
    if resume and resume != "auto" and not os.path.exists(str(resume)):
        raise ValueError(f"--resume {str(resume)!r}: no such checkpoint or run directory")
    directory = ck.get("dir")
    if ck.enabled and ck.on_error == "stop" and directory and os.path.isabs(directory):
        problem = _cannot_make_files_under(directory)
        if problem:
            raise ValueError(f"checkpoint.dir {directory!r} cannot hold checkpoints: {problem} (checkpoint.on_error "
                             "= \"stop\"; set it to \"continue\" to train on without checkpoints)")


def check_profile_dir(cfg, rank: int = 0) -> None:
    """Raise ValueError when ``run.profile`` names a directory rank ``rank`` cannot write its trace in, before
    anything is written or trained (the profiler would otherwise fail after the profiled steps)."""
    directory = cfg.run.get("profile")
    if not directory:
        return
    problem = _cannot_make_files_under(directory)
    trace = os.path.join(directory, f"rank-{rank}.json")
    if problem is None and os.path.isdir(trace):
        problem = f"{trace!r} is a directory"
    if problem:
        raise ValueError(f"run.profile {directory!r} cannot hold the profile's traces: {problem} (--profile DIR: "
                         "give a directory every rank can write to)")


def _cannot_make_files_under(directory: str) -> str | None:
    """Why files could not be written under ``directory`` (made if missing), or None."""
    p = os.path.abspath(directory)
    while not os.path.lexists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    if not os.path.isdir(p):
        return f"{p!r} is not a directory"
    if not os.access(p, os.W_OK | os.X_OK):
        return f"{p!r} is not writable"
    return None
