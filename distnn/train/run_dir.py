"""The run directory: where a training run leaves its results, and how they are read back.

Layout (written by rank 0 only)::

    runs/<config>-<timestamp>/
      config.toml     the resolved configuration (every default filled in)
      metrics.jsonl   one JSON object per epoch
      metrics.csv     the same rows as CSV
      curves.png      loss and accuracy vs epoch (train and validation)
      summary.json    final test metrics, best epoch, epochs run, world size, ...
      model.npz       the final weights (``state_dict`` arrays)
      model.json      what is needed to rebuild the model: model name and
                      arguments, input shape, classes, standardization stats,
                      and the global step of model.npz (global_step)
      SHA256SUMS      the SHA-256 of model.npz, model.json and config.toml, which
                      load_model checks (see :mod:`distnn.train.run_checksums`)

:func:`load_model` is the ONE place that turns a run directory back into a
model (evaluate, predict, and later checkpoints and ensembles go through it).
"""
from __future__ import annotations

import io
import json
import math
import os
import shutil
import sys
import threading
import time
import zipfile

import numpy as np

from .regular_file import read_regular

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


def replace_file(path: str, write, suffix: str = ".tmp") -> None:
    """Write ``path`` whole: ``write(temporary path)``, then a rename over ``path``. When that fails
    (a full or read-only disk, Ctrl-C) the previous file stays, the temporary one is removed, and an
    OSError names ``path`` (a full disk's own error names no file)."""
    tmp = path + suffix
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and e.filename is None:
            raise OSError(e.errno, e.strerror or str(e), path) from None
        raise


def json_text(obj) -> str:
    """``obj`` as indented JSON (NaN/inf become null), as the run directory's JSON files hold it."""
    return json.dumps(_clean(obj), indent=2, default=_json_default) + "\n"


def write_json(path: str, obj) -> None:
    """Write ``obj`` as indented JSON through a temporary file (NaN/inf become null)."""
    write_text(path, json_text(obj))


def write_text(path: str, text: str) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    replace_file(path, write)


def write_bytes(path: str, data) -> None:
    """Write ``data`` (bytes-like) as ``path`` whole, through a temporary file (:func:`replace_file`)."""
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    replace_file(path, write)


def write_run_files(directory: str, files: dict) -> None:
    """Write the run's own ``files`` (``{name: str or bytes}``: ``model.npz``, ``model.json``,
    ``config.toml``) in ``directory``, each listed with its SHA-256 in ``SHA256SUMS``
    (:mod:`~distnn.train.run_checksums`), which readers check them against."""
    from . import run_checksums

    run_checksums.write_files(directory, {n: d.encode() if isinstance(d, str) else d for n, d in files.items()},
                              write_bytes)


def save_model(directory: str, model, meta: dict, step: int | None = None) -> None:
    """``model.npz`` (the state dict) and ``model.json`` (``meta``: how to rebuild it), checksummed
    (``model.json`` marked as listed in ``SHA256SUMS``: :func:`~distnn.train.run_checksums.marked`).

    ``step``: the global step the weights are of, recorded as ``model.json``'s
    ``global_step``; :func:`load_model` then knows whether a checkpoint of the
    run is newer (a finished run resumed for more epochs, interrupted).
    """
    from .run_checksums import marked

    weights = io.BytesIO()  # (in memory: SHA256SUMS gets the SHA-256 of these bytes, not of the file read back)
    np.savez(weights, **model.state_dict())
    meta = marked(meta if step is None else {**meta, "global_step": int(step)})
    write_run_files(directory, {MODEL_WEIGHTS: weights.getbuffer(), MODEL_META: json_text(meta)})


def model_step(directory: str, meta: bytes | None = None) -> int | None:
    """The global step of a run directory's ``model.npz``: ``model.json``'s ``global_step``; for a run of an
    older distnn (none there), ``summary.json``'s ``global_steps``, written with it; None when unknown.
    ``meta``: ``model.json``'s bytes, read already (checked against ``SHA256SUMS``)."""
    for name, key in ((MODEL_META, "global_step"), (SUMMARY, "global_steps")):
        try:
            raw = meta if name == MODEL_META and meta is not None else read_regular(os.path.join(directory, name))
            value = json.loads(raw).get(key)
        except (OSError, ValueError, AttributeError, RecursionError):
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def read_summary(directory: str) -> dict:
    return json.loads(read_regular(os.path.join(directory, SUMMARY)))


def load_model(path: str, report=None):
    """Rebuild the trained model of a run: ``(model, meta, eval_transform)``.

    ``path`` is a run directory, its ``model.npz``, a checkpoint directory or
    a ``latest``/``best`` pointer. A run directory gives its newest trained
    state: ``model.npz``, or a valid checkpoint of a later global step when
    the finished run was resumed and that session did not finish (see
    :func:`distnn.train.checkpoint.read.model_source`), or an interrupted
    run's newest valid checkpoint. ``report(message)`` is told which file or
    checkpoint is read (each member's, for an ensemble). ``meta`` is the
    ``model.json`` dict (model name and arguments, ``input_shape``,
    ``num_classes``, ``class_names``, ``standardizer``); ``eval_transform`` is
    the standardization fitted on the run's training split (or None). The
    model is in eval mode. Raises ValueError with a one-line message when the
    directory holds no usable model.
    """
    if report is None:
        return _load_model(path)
    outer, _reporting.fn = getattr(_reporting, "fn", None), report  # (an ensemble's members report too)
    try:
        return _load_model(path)
    finally:
        _reporting.fn = outer


_reporting = threading.local()


def _no_valid_checkpoint(directory: str) -> None:
    """No model.npz, and checkpoints that all fail to verify: a ValueError saying why the newest fails."""
    from .checkpoint.read import checkpoint_root, list_checkpoints, verify_checkpoint

    root = checkpoint_root(directory)
    found = list_checkpoints(root)
    if found:
        why = (verify_checkpoint(found[-1].path) or ["it verifies now (changed while it was read?)"])[0]
        raise ValueError(f"no valid checkpoint in {root!r} and no model.npz in {directory!r} ({len(found)} "
                         f"checkpoint{'s' if len(found) > 1 else ''}, none whole; the newest: {why})")


def _warn(message: str) -> None:
    sys.stderr.write(f"distnn: warning: {message}\n")


def _saved_model_arguments(spec: dict) -> dict:
    """model.json's ``kwargs`` less an argument the model ignores beside another (``Arguments.unused_with``).

    Runs saved before the MLP refused ``hidden_sizes`` beside ``sizes`` recorded the
    default ``hidden_sizes`` next to ``sizes``; their model was built from ``sizes``
    alone, so it is rebuilt from ``sizes`` alone.
    """
    from distnn.models.arguments import arguments_of

    kwargs = dict(spec.get("kwargs", {}))
    table = arguments_of(spec["name"])
    if table is not None:
        table.drop_ignored(kwargs)
    return kwargs


def _load_model(path: str):
    from distnn.models import build_model

    from .checkpoint import follow_pointer
    from .checkpoint.names import STEP_RE

    path = follow_pointer(str(path), _warn)  # (<run>/checkpoints/latest or best: the checkpoint it names)
    named_weights = path.endswith(".npz")  # the run's model.npz itself: that file, not a newer checkpoint
    directory = os.path.dirname(path) if named_weights else path
    weights, meta_path = os.path.join(directory, MODEL_WEIGHTS), os.path.join(directory, MODEL_META)
    if not os.path.isdir(directory):
        if os.path.exists(directory):
            raise ValueError(f"{directory!r} is a file, not a run directory (nor a run's model.npz or a checkpoint)")
        raise ValueError(f"run directory {directory!r} does not exist")
    from .ensemble import is_ensemble_dir, load_ensemble

    if is_ensemble_dir(directory):  # an ensemble run: every member, probabilities averaged
        return load_ensemble(directory)
    if os.path.isdir(os.path.join(directory, MEMBERS_DIR)) and not os.path.isfile(weights) \
            and os.path.isfile(os.path.join(directory, CONFIG)):  # one that did not finish
        from .ensemble import load_unfinished_ensemble

        return load_unfinished_ensemble(directory)
    named = os.path.normpath(directory)
    if os.path.basename(named) in (".", ".."):
        named = os.path.abspath(named)  # ('.' names no parent; otherwise the path stays as the user gave it)
    members = [] if os.path.basename(named) != MEMBERS_DIR else sorted(
        d for d in os.listdir(directory) if d.startswith("member-") and os.path.isdir(os.path.join(directory, d)))
    if members:  # (it said "holds no trained model (model.npz is missing); is it a finished run directory?")
        ensemble = os.path.dirname(named) or "."
        raise ValueError(f"{directory!r} holds an ensemble's members, not one model: give the ensemble's run "
                         f"directory {ensemble!r} (the members' probabilities averaged) or a member's, e.g. "
                         f"{os.path.join(directory, members[0])!r}")
    from . import run_checksums
    from .checkpoint.read import ModelSource, is_checkpoint_dir, model_source

    # The run directory's own files are read once, checked against its SHA256SUMS (when it has one, and
    # lists them: a run of an older distnn has none), and parsed from those bytes. model.json first: its
    # global_step says whether a checkpoint is newer; config.toml says where the checkpoints are.
    own = not (is_checkpoint_dir(directory) or STEP_RE.match(os.path.basename(os.path.normpath(directory))))
    sums = run_checksums.read_sums(directory) if own else None
    meta_raw = None
    if own and os.path.isfile(meta_path):
        try:
            meta_raw = run_checksums.read_verified(directory, MODEL_META, sums)
        except run_checksums.RunFileError:
            if os.path.isfile(weights):  # (without model.npz, the newest checkpoint is read: not model.json)
                raise
        except OSError:
            pass  # (said below, if model.json is needed)
    if sums and CONFIG in sums and os.path.isfile(os.path.join(directory, CONFIG)):
        try:
            run_checksums.read_verified(directory, CONFIG, sums)
        except OSError:
            pass  # (as unreadable as before: the default checkpoint directory is looked in)
    # A checkpoint directory (checksums verified); a run directory's model.npz, or its newest valid
    # checkpoint when that is newer (a resumed session that did not finish) or there is no model.npz.
    if named_weights and own:
        source = ModelSource(directory, model_step(directory, meta_raw))
    else:
        source = model_source(directory, warn=_warn, model_step=model_step(directory, meta_raw) if own else None)
    directory = source.path
    weights, meta_path = os.path.join(directory, MODEL_WEIGHTS), os.path.join(directory, MODEL_META)
    report = getattr(_reporting, "fn", None)
    if report is not None and os.path.isfile(weights):
        what = f"checkpoint {directory}" if source.files is not None else weights
        at = f" (global step {source.step})" if source.step is not None else ""
        report(f"reading {what}{at}" + (f": {source.why}" if source.why else ""))
    if source.files is None and not os.path.isfile(weights):
        _no_valid_checkpoint(directory)
    for p in (weights, meta_path):
        if not os.path.isfile(p):
            raise ValueError(f"{directory!r} holds no trained model ({os.path.basename(p)} is missing); "
                             f"is it a finished run directory?")
        if source.files is not None and os.path.basename(p) not in source.files:
            raise ValueError(f"checkpoint {directory!r}: {os.path.basename(p)} is not listed in its manifest, "
                             "so it cannot be checked (not a checkpoint distnn wrote?)")
    if source.files is not None:  # the verified bytes, not the files read again
        meta_raw, weights_raw = source.files[MODEL_META], source.files[MODEL_WEIGHTS]
    current = MODEL_META  # the file being read, for the error message
    try:
        meta = json.loads(meta_raw if meta_raw is not None else run_checksums.read_verified(directory, MODEL_META,
                                                                                              sums))
        if not isinstance(meta, dict) or not isinstance(meta.get("model"), dict):
            raise ValueError(f"{MODEL_META} does not describe a model (no \"model\" table)")
        model = build_model(meta["model"]["name"], **_saved_model_arguments(meta["model"]))
        if meta.get("dtype") == "float64":
            model.to(np.float64)
        current = MODEL_WEIGHTS
        if source.files is None:  # (an unreadable file raises here, named with its reason)
            weights_raw = run_checksums.read_verified(directory, MODEL_WEIGHTS, sums)
        if not zipfile.is_zipfile(io.BytesIO(weights_raw)):  # (np.load would take it for a pickle and advise
            raise ValueError(f"{weights}: not an npz (zip) archive")  # loading it unsafely)
        with np.load(io.BytesIO(weights_raw), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        # (unchecked files, of an older distnn's run directory: either may be the damaged one)
        current = f"{MODEL_WEIGHTS} does not fit the model {MODEL_META} describes"
        model.load_state_dict(arrays)
        transform = None
        current = MODEL_META
        if meta.get("standardizer"):
            from distnn.data.transforms import Standardizer

            transform = Standardizer.from_state_dict(meta["standardizer"])
    except run_checksums.RunFileError:
        raise
    except (OSError, KeyError, TypeError, ValueError, OverflowError, EOFError, zipfile.BadZipFile) as e:
        # a damaged or foreign file (of a run directory without SHA256SUMS: unchecked, unlike a checkpoint's)
        what = f"{type(e).__name__}: " if isinstance(e, (KeyError, zipfile.BadZipFile, EOFError)) else ""
        detail = (f"{e.filename}: {e.strerror}" if isinstance(e, OSError) and e.strerror and e.filename
                  else " ".join(str(e).split()))
        where = "" if current in detail else f"{current}: "  # (a JSON or zip error does not say which file)
        raise ValueError(f"cannot load the model of {directory!r}: {where}{what}{detail} "
                         f"(its checkpoints, if any, can be evaluated instead)") from None
    model.eval()
    return model, meta, transform
