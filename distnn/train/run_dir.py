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
import time

import numpy as np

from .checkpoint.fsio import fsync_dir, fsync_path
from .regular_file import read_regular
from .run_model import load_model, model_step  # noqa: F401 - re-exported (ensemble, inference, callbacks, tests)
# (claiming the directory before a run: re-exported for the callers of this module)
from .run_dir_claim import (RunDirError, check_run_dir, check_writable, checkpoint_not_run,  # noqa: F401
                            prepare_run_dir, release_run_dir, remove_run_dir)

MODEL_WEIGHTS = "model.npz"
MODEL_META = "model.json"
SUMMARY = "summary.json"
CONFIG = "config.toml"


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
