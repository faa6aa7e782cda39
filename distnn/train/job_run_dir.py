"""The run directory of a job: where it goes (``--out``, ``run.out_dir``/``run.run_name`` or a new timestamped
one), what of the config is recorded relative to it, and whether it holds checkpoints or a finished run that
``--resume auto`` must not train over. Importable from :mod:`distnn.train.job` too."""
from __future__ import annotations

import os

from . import run_dir as rd
from .config_origins import DEFAULT, UNSET
from .job_agreement import JobError
from .job_setup import _as_dict


def _default_path(job) -> str:
    run = job.cfg.run
    if run.get("run_name"):
        return os.path.join(run.out_dir, run.run_name)
    return rd.default_run_dir(job.config_name, root=run.out_dir)


def run_dir_for(cfg, out, comm, default) -> str:
    """The run directory, the same on every rank: ``out``, or rank 0's ``default()`` (a new timestamped one).

    ``checkpoint.resume = "auto"`` continues the run in a known directory, so it needs ``out`` (or
    ``run.run_name``, which names the directory): a fresh default directory has nothing to continue.
    """
    if dict(cfg.checkpoint).get("resume") == "auto" and not out and not cfg.run.get("run_name"):
        tag = cfg.origins_tag(["checkpoint.resume"]) if hasattr(cfg, "origins_tag") else ""
        raise JobError("--resume auto (checkpoint.resume = \"auto\") needs --out RUN_DIR: the run directory "
                       f"whose checkpoints to continue (or --set run.run_name=NAME: run.out_dir/NAME){tag}",
                       report=comm.rank == 0)
    path = out or (default() if comm.rank == 0 else None)
    return comm.broadcast_object(path, root=0) if comm.size > 1 else path


def run_dir_keys(cfg, out) -> list:
    """The config keys that named the run directory: none when ``out`` (``--out``) did; else ``run.out_dir``
    and, when set, ``run.run_name``, those of them the config file or ``--set`` gave (a default says nothing
    of where the user's path came from)."""
    if out:
        return []
    origins = getattr(cfg, "origins", {})
    keys = ["run.out_dir", *(["run.run_name"] if cfg.run.get("run_name") else [])]
    return [k for k in keys if origins.get(k, UNSET) not in (DEFAULT, UNSET)]


def run_dir_error(error, cfg, out, about=()) -> str:
    """The one line of a problem of the run directory (``error``: a RunDirError or a message) with where its
    path came from when ``--set`` gave it (``... (set by --set)``, as the config's own errors say it;
    ``about``: other keys the problem is about, e.g. ``checkpoint.resume``)."""
    tag = cfg.origins_tag([*run_dir_keys(cfg, out), *about]) if hasattr(cfg, "origins_tag") else ""
    return str(error) + tag


def _record_checkpoint_dir_in_run(cfg, path) -> None:
    """An absolute ``checkpoint.dir`` inside the run directory ``path`` becomes relative to it (in the run's
    config.toml and its checkpoints' copies): a copy of the run directory then resumes from and writes to its
    own checkpoints, not the original's. One outside the run stays as given (see ``attach``'s warning)."""
    directory = _as_dict(cfg.checkpoint).get("dir")
    if not directory or not os.path.isabs(str(directory)):
        return
    inside = os.path.relpath(os.path.realpath(str(directory)), os.path.realpath(str(path)))
    if inside != os.pardir and not inside.startswith(os.pardir + os.sep):
        cfg.checkpoint["dir"] = inside


def _finished_without_checkpoint(path, cfg, out=None) -> str | None:
    """Why ``--resume auto`` must not go on in ``path``: it holds a finished run's results and no checkpoint
    (checkpointing was off, or they were deleted), so "a fresh start" would train it again and overwrite
    them. None when it may. ``out``: ``--out``, if it named ``path`` (else the config's run keys did, which
    the line's ``(set by --set)`` tag is about, with ``checkpoint.resume``)."""
    if _as_dict(cfg.checkpoint).get("resume") != "auto":
        return None
    results = [n for n in (rd.MODEL_WEIGHTS, rd.SUMMARY) if os.path.exists(os.path.join(str(path), n))]
    if not results or has_checkpoint(path, cfg, valid=True):
        return None  # (a run stopped before its first checkpoint: nothing finished to lose, it starts over)
    from .callbacks.checkpoint_setup import checkpoint_dir
    from .checkpoint import list_checkpoints, verify_checkpoint

    found = list_checkpoints(checkpoint_dir(path, _as_dict(cfg.checkpoint)))
    # (checkpoints that are all damaged: say how, else the user looks for checkpoints that are not there)
    why = (f" ({len(found)} there, none whole; the newest: {verify_checkpoint(found[-1].path)[0]})" if found
           else "")
    return run_dir_error(f"--resume auto: run directory {str(path)!r} holds a finished run ({', '.join(results)}) "
                         f"and no valid checkpoint to continue from{why}; training it again from the start would "
                         f"overwrite its results (choose another --out, or name a checkpoint with --resume PATH)",
                         cfg, out, about=("checkpoint.resume",))


def has_checkpoint(path, cfg, valid: bool = False) -> bool:
    """Whether the run in ``path`` (config ``cfg``) has left a checkpoint (in its ``checkpoint.dir``);
    ``valid``: one whose checksums verify (newest first, until one does)."""
    from .callbacks.checkpoint_setup import checkpoint_dir
    from .checkpoint import list_checkpoints, verify_checkpoint

    found = list_checkpoints(checkpoint_dir(path, _as_dict(cfg.checkpoint)))
    return any(not verify_checkpoint(c.path) for c in reversed(found)) if valid else bool(found)
