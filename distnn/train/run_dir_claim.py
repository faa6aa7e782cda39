"""Claiming a run directory: rank 0 checks, creates and locks it before a run writes there
(:func:`prepare_run_dir`), or only finds out whether it could (:func:`check_run_dir`, for
``distnn train --check``), with the same refusals. Importable from :mod:`distnn.train.run_dir` too.
"""
from __future__ import annotations

import os
import shutil

class RunDirError(ValueError):
    """The run directory cannot be created or written (one-line message)."""



def check_writable(path: str) -> bool:
    """Create ``path`` (and parents) if needed and check a file can be written in it.

    Returns True when this call created the directory (so a failed setup can
    remove it again). Raises :class:`RunDirError` with a one-line reason.
    """
    path = str(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunDirError(f"output directory {path!r} exists and is not a directory")
    created = not os.path.exists(path)
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".distnn-write-test-{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        if created and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        # (a path under a file: said as check_run_dir says it, not as the OS's "Not a directory")
        raise RunDirError(f"output directory {path!r} is not writable: "
                          f"{_under_a_file(path) or e.strerror or e}") from None
    return created


def _nearest_existing(path: str) -> str:
    """``path`` made absolute, or its nearest parent that exists: where a missing ``path`` would be made."""
    parent = os.path.abspath(path)
    while not os.path.exists(parent) and os.path.dirname(parent) != parent:
        parent = os.path.dirname(parent)
    return parent


def _under_a_file(path: str) -> str | None:
    """Why ``path`` cannot be made, when what it would be made in is not a directory (a file); else None."""
    parent = _nearest_existing(path)
    return None if os.path.isdir(parent) else f"{parent!r} is not a directory"


def checkpoint_not_run(path: str) -> str | None:
    """Why ``path`` cannot be a run directory, or None: it is a checkpoint (``RUN/checkpoints/step-N``),
    or a checkpoint directory (``RUN/checkpoints``: checkpoints and no run of its own). ``--out`` there is
    a mistake for the run directory: a run trained there started from zero among the checkpoints it meant
    to continue (also with ``--resume auto``, which found none of its own) and mixed its own in."""
    from .checkpoint import is_checkpoint_dir, list_checkpoints
    from .run_dir import CONFIG

    path = str(path)
    if not os.path.isdir(path):
        return None
    if is_checkpoint_dir(path):
        what, up = "a checkpoint", 2
    elif list_checkpoints(path) and not os.path.exists(os.path.join(path, CONFIG)):
        what, up = "a checkpoint directory (checkpoints, no run of its own)", 1
    else:
        return None
    run = os.path.normpath(path)
    if os.path.basename(run) in (".", ".."):
        run = os.path.abspath(run)  # ('.' names no parent; otherwise the path stays as the user gave it)
    for _ in range(up):
        run = os.path.dirname(run)
    cont = f"continue its run with --resume auto --out {run or '.'!r}, or " \
        if os.path.isfile(os.path.join(run or ".", CONFIG)) else ""
    return (f"--out {path!r} is {what}, not a run directory: {cont}start a new run from it with --resume "
            f"{path!r} --out NEW_DIR")


def prepare_run_dir(path: str, comm, resuming: bool = False, ensemble: bool = False) -> bool:
    """Rank 0 creates and checks ``path``; the outcome is broadcast so every rank raises (or not) together.

    A directory that already holds a run is refused unless the run is
    ``resuming``: a second run there would overwrite the first one's results and
    mix its checkpoints with the first one's, which ``--resume auto`` then picks from.
    Resuming, the run there must be of the same kind (an ``ensemble``'s or a single
    model's): the other kind would find nothing of its own to resume and overwrite it.
    A directory another job is running in is refused, resuming or not: rank 0 holds the
    directory's lock (``flock``) until :func:`release_run_dir`, which the caller must call.
    """
    result = None
    if comm.rank == 0:
        try:
            result = ("ok", _claim_run_dir(path, resuming, ensemble, create=True))
        except RunDirError as e:
            release_run_dir(path)
            result = ("error", str(e))
    if comm.size > 1:
        result = comm.broadcast_object(result, root=0)
    if result[0] == "error":
        raise RunDirError(result[1])
    return bool(result[1])


def check_run_dir(path: str, resuming: bool = False, ensemble: bool = False) -> bool:
    """What :func:`prepare_run_dir` would refuse about ``path``, found without creating, locking or writing
    anything (``distnn train --check``): raises :class:`RunDirError` with the same message. Returns whether
    a run would create the directory."""
    return _claim_run_dir(path, resuming, ensemble, create=False)


def _claim_run_dir(path: str, resuming: bool, ensemble: bool, create: bool) -> bool:
    """The checks of :func:`prepare_run_dir` on rank 0; ``create``: make the directory and take its lock
    (else only find out whether both would succeed). Returns whether the directory is (would be) new."""
    from .run_dir import MEMBERS_DIR, previous_run_marks

    problem = checkpoint_not_run(path)
    if problem:
        raise RunDirError(problem)
    if create:
        created = check_writable(path)
        _lock(path)  # before looking for marks: two jobs started at once must not both find none
    else:
        created = _would_be_writable(path)
        _probe_lock(path)
    marks = previous_run_marks(path)
    if marks and not resuming:
        raise RunDirError(f"run directory {path!r} already holds a run ({', '.join(marks)}); continue it "
                          f"with --resume auto, or choose another --out")
    if marks:
        holds_ensemble = os.path.isdir(os.path.join(str(path), MEMBERS_DIR))
        if holds_ensemble != bool(ensemble):
            there, here = ("an ensemble run", "a single model") if holds_ensemble else \
                ("a single-model run", "an ensemble")
            raise RunDirError(f"run directory {path!r} holds {there}, and this config trains {here}: "
                              f"resume it with the config it was started with (see its config.toml), "
                              f"or choose another --out")
    return created


def _would_be_writable(path: str) -> bool:
    """:func:`check_writable`'s refusals without creating anything: ``path`` (or, when missing, its nearest
    existing parent, where it would be made) must be a directory this process may write in."""
    path = str(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunDirError(f"output directory {path!r} exists and is not a directory")
    created = not os.path.exists(path)
    if _under_a_file(path):
        raise RunDirError(f"output directory {path!r} is not writable: {_under_a_file(path)}")
    if not os.access(_nearest_existing(path), os.W_OK | os.X_OK):
        raise RunDirError(f"output directory {path!r} is not writable: Permission denied")
    return created


def _probe_lock(path: str) -> None:
    """Raise :class:`RunDirError` as :func:`_lock` would when another job holds ``path``'s lock; takes the
    lock only for the instant of the test (a missing directory has no lock to test)."""
    if not os.path.isdir(str(path)):
        return
    _lock(path)
    release_run_dir(path)


_held: dict = {}  # {real path of a run directory: the descriptor of it this process holds locked}


def _lock(path: str) -> None:
    """Take ``path``'s run lock for this process, or raise :class:`RunDirError` saying another job holds it.

    An advisory ``flock`` on the directory itself: the kernel drops it when the holder exits,
    however it ends (no stale lock outlives a crash), and no lock file is left in the run."""
    try:
        import fcntl
    except ImportError:  # (no flock: no lock, as before)
        return
    key = os.path.realpath(path)
    if key in _held:
        raise RunDirError(f"run directory {path!r} is in use by another job in this process")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # (a directory that cannot be opened for reading: no lock, as before)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # held: EWOULDBLOCK
        os.close(fd)
        raise RunDirError(f"run directory {path!r} is in use by another distnn job: wait for it to end "
                          f"(then --resume auto continues it), or choose another --out") from None
    except OSError:  # a file system without flock (ENOLCK, EOPNOTSUPP: some network mounts): no lock
        os.close(fd)
        return
    _held[key] = fd


def release_run_dir(path: str) -> None:
    """Give back the run lock :func:`prepare_run_dir` took on ``path`` (a no-op if this process holds none)."""
    fd = _held.pop(os.path.realpath(path), None) if path is not None else None
    if fd is not None:
        os.close(fd)  # (closing the descriptor drops the flock)


def remove_run_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
