"""The run directory: where a training run leaves its results, created, claimed and written.

Layout (written by rank 0 only)::

    runs/<config>-<timestamp>/
      config.toml     the resolved configuration (every default filled in), its
                      header marked as model.json is (run_checksums.CONFIG_MARK)
      metrics.jsonl   one JSON object per epoch
      metrics.csv     the same rows as CSV
      curves.png      loss and accuracy vs epoch (train and validation)
      summary.json    final test metrics, best epoch, epochs run, world size, ...
      model.npz       the final weights (``state_dict`` arrays)
      model.json      what is needed to rebuild the model: model name and
                      arguments, input shape, classes, standardization stats,
                      and the global step of model.npz (global_step), and
                      "checksums": "SHA256SUMS" (the run has one)
      SHA256SUMS      the SHA-256 of model.npz, model.json and config.toml, which
                      load_model checks (see :mod:`distnn.train.run_checksums`)

:func:`load_model` (:mod:`distnn.train.run_model`, re-exported here) is the ONE
place that turns a run directory back into a model (evaluate, predict, and
later checkpoints and ensembles go through it).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time

import numpy as np

from .checkpoint.fsio import fsync_dir, fsync_path
from .regular_file import read_regular
from .run_model import load_model, model_step  # noqa: F401 - re-exported (ensemble, inference, callbacks, tests)

MODEL_WEIGHTS = "model.npz"
MODEL_META = "model.json"
SUMMARY = "summary.json"
CONFIG = "config.toml"


class RunDirError(ValueError):
    """The run directory cannot be created or written (one-line message)."""


def default_run_dir(config_name: str, root: str = "runs") -> str:
    """``runs/<config>-<YYYYmmdd-HHMMSS>`` (with ``-2``, ``-3`` ... if that exists)."""
    stem = os.path.join(root, f"{_slug(config_name)}-{time.strftime('%Y%m%d-%H%M%S')}")
    path, k = stem, 1
    while os.path.exists(path):
        k += 1
        path = f"{stem}-{k}"
    return path


def _slug(name: str) -> str:
    base = os.path.splitext(os.path.basename(str(name)))[0] or "run"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in base)


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
        raise RunDirError(f"output directory {path!r} is not writable: {e.strerror or e}") from None
    return created


#: what a run leaves in its directory: one of these means the directory already holds a run
#: an ensemble run directory's members' runs
MEMBERS_DIR = "members"
PREVIOUS_RUN_MARKS = (CONFIG, SUMMARY, MODEL_WEIGHTS, "metrics.csv", "checkpoints", MEMBERS_DIR, MODEL_META,
                      "metrics.jsonl", "curves.png")


def previous_run_marks(path: str) -> list[str]:
    """The names in ``path`` that show a run was already started there (empty if none).

    ``config.toml`` alone is no mark: a run writes it first, and one that never trained (a job
    aborted during start-up, after rank 0 wrote it) has nothing a second run could overwrite.
    """
    marks = [name for name in PREVIOUS_RUN_MARKS if os.path.lexists(os.path.join(str(path), name))]
    return [] if marks == [CONFIG] else marks


def checkpoint_not_run(path: str) -> str | None:
    """Why ``path`` cannot be a run directory, or None: it is a checkpoint (``RUN/checkpoints/step-N``),
    or a checkpoint directory (``RUN/checkpoints``: checkpoints and no run of its own). ``--out`` there is
    a mistake for the run directory: a run trained there started from zero among the checkpoints it meant
    to continue (also with ``--resume auto``, which found none of its own) and mixed its own in."""
    from .checkpoint import is_checkpoint_dir, list_checkpoints

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
            problem = checkpoint_not_run(path)
            if problem:
                raise RunDirError(problem)
            created = check_writable(path)
            _lock(path)  # before looking for marks: two jobs started at once must not both find none
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
            result = ("ok", created)
        except RunDirError as e:
            release_run_dir(path)
            result = ("error", str(e))
    if comm.size > 1:
        result = comm.broadcast_object(result, root=0)
    if result[0] == "error":
        raise RunDirError(result[1])
    return bool(result[1])


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


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _clean(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def replace_file(path: str, write, suffix: str = ".tmp", sync_dir: bool = True, durable: bool = True) -> None:
    """Write ``path`` whole: ``write(temporary path)``, then a rename over ``path``. When that fails
    (a full or read-only disk, Ctrl-C) the previous file stays, the temporary one is removed, and an
    OSError names ``path`` (a full disk's own error names no file).

    Durable as a checkpoint is: the temporary file is fsynced before the rename (a power loss after
    it leaves ``path`` with the old bytes or the new ones, never an empty or partial file: file systems
    that allocate late, ext4's, may commit the rename before the data), and the directory after it
    (the rename itself survives). ``sync_dir`` False leaves the directory's fsync to the caller, who
    replaces several files and fsyncs it once after the last (:func:`sync_directory`): a journaling
    file system commits renames in the order they were made, so one fsync makes them all durable.

    ``durable`` False fsyncs nothing: the file is still replaced whole (a reader never sees a part of
    it), but a power loss may leave it empty. For a file rewritten often whose caller makes the last
    copy durable later (:func:`make_durable`): the run's metrics, rewritten at every epoch."""
    tmp = path + suffix
    try:
        write(tmp)
        if durable:
            fsync_path(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and e.filename is None:
            raise OSError(e.errno, e.strerror or str(e), path) from None
        raise
    if sync_dir and durable:
        sync_directory(os.path.dirname(path))


def make_durable(paths) -> None:
    """fsync each file of ``paths`` (written whole already, :func:`replace_file` with ``durable`` False),
    then each of their directories once, after the last file: their data and their renames survive a
    power loss. An fsync that fails (a write-back error) is an OSError naming the file."""
    directories = []
    for path in paths:
        try:
            fsync_path(path)
        except OSError as e:
            raise OSError(e.errno, e.strerror or str(e), path) from None
        if os.path.dirname(path) not in directories:
            directories.append(os.path.dirname(path))
    for directory in directories:
        sync_directory(directory)


def sync_directory(directory: str) -> None:
    """fsync ``directory`` (``''``: the current one): the renames made in it survive a power loss. An
    fsync that failed (a write-back error, not one the file system does not support) is an OSError
    naming ``directory``: the renames may not survive, as a failed fsync of a file's data."""
    try:
        fsync_dir(directory or ".", strict=True)
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), directory or ".") from None


def json_text(obj) -> str:
    """``obj`` as indented JSON (NaN/inf become null), as the run directory's JSON files hold it."""
    return json.dumps(_clean(obj), indent=2, default=_json_default) + "\n"


def write_json(path: str, obj, sync_dir: bool = True) -> None:
    """Write ``obj`` as indented JSON through a temporary file (NaN/inf become null; :func:`replace_file`)."""
    write_text(path, json_text(obj), sync_dir)


def write_text(path: str, text: str, sync_dir: bool = True) -> None:
    """Write ``text`` as ``path`` whole, through a temporary file (:func:`replace_file`)."""
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    replace_file(path, write, sync_dir=sync_dir)


def write_bytes(path: str, data, sync_dir: bool = True) -> str:
    """Write ``data`` as ``path`` whole, through a temporary file (:func:`replace_file`); return the SHA-256
    (hex) of the bytes written. ``data``: bytes-like, or a function that writes the content to the binary
    stream it is given (so that a large file, ``model.npz``, is never whole in memory)."""
    from .run_checksums import HashingWriter

    digest = []

    def write(tmp):
        with open(tmp, "wb") as f:
            out = HashingWriter(f)
            if callable(data):
                data(out)
            else:
                out.write(data)
        digest.append(out.hexdigest())

    replace_file(path, write, sync_dir=sync_dir)
    return digest[0]


def write_run_files(directory: str, files: dict) -> None:
    """Write the run's own ``files`` (``{name: str, bytes, or a function writing the content to a binary
    stream}``: ``model.npz``, ``model.json``,
    ``config.toml``) in ``directory``, each listed with its SHA-256 in ``SHA256SUMS``
    (:mod:`~distnn.train.run_checksums`), which readers check them against."""
    from . import run_checksums

    run_checksums.write_files(directory, {n: d.encode() if isinstance(d, str) else d for n, d in files.items()},
                              lambda path, data: write_bytes(path, data, sync_dir=False))  # (one fsync, after all)


def save_model(directory: str, model, meta: dict, step: int | None = None) -> None:
    """``model.npz`` (the state dict) and ``model.json`` (``meta``: how to rebuild it), checksummed
    (``model.json`` marked as listed in ``SHA256SUMS``: :func:`~distnn.train.run_checksums.marked`).

    ``step``: the global step the weights are of, recorded as ``model.json``'s
    ``global_step``; :func:`load_model` then knows whether a checkpoint of the
    run is newer (a finished run resumed for more epochs, interrupted).
    """
    from .npz_io import refuse_objects, write_npz
    from .run_checksums import marked

    # Streamed to the file from the weights' own memory, hashed as written (SHA256SUMS gets the SHA-256 of
    # the bytes written, not of the file read back): no second copy of the weights, nor of the archive.
    # (copy=False: nothing trains while this runs.)
    state = model.state_dict(copy=False)
    refuse_objects(state)  # (before any file is written)
    meta = marked(meta if step is None else {**meta, "global_step": int(step)})
    write_run_files(directory, {MODEL_WEIGHTS: lambda f: write_npz(f, state), MODEL_META: json_text(meta)})


def read_summary(directory: str) -> dict:
    return json.loads(read_regular(os.path.join(directory, SUMMARY)))
