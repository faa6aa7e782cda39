"""Turning a run directory (or a checkpoint of it) back into a model: :func:`load_model`.

The ONE place that does it: evaluate, predict and an ensemble's members go through it. The run
directory's layout, and the writing of its files, are :mod:`distnn.train.run_dir`'s, which re-exports
:func:`load_model` and :func:`model_step` (so the functions here take run_dir's names when called, not
when this module is imported).
"""
from __future__ import annotations

import io
import json
import os
import sys
import threading
import zipfile

import numpy as np

from .regular_file import read_regular


def model_step(directory: str, meta: bytes | None = None) -> int | None:
    """The global step of a run directory's ``model.npz``: ``model.json``'s ``global_step``; for a run of an
    older distnn (none there), ``summary.json``'s ``global_steps``, written with it; None when unknown.
    ``meta``: ``model.json``'s bytes, read already (checked against ``SHA256SUMS``)."""
    from .run_dir import MODEL_META, SUMMARY

    for name, key in ((MODEL_META, "global_step"), (SUMMARY, "global_steps")):
        try:
            raw = meta if name == MODEL_META and meta is not None else read_regular(os.path.join(directory, name))
            value = json.loads(raw).get(key)
        except (OSError, ValueError, AttributeError, RecursionError):
            continue
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


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


def _no_valid_checkpoint(directory: str, config: bytes | None) -> None:
    """No model.npz, and checkpoints that all fail to verify: a ValueError saying why the newest fails.
    ``config``: the run's config.toml as read (and checked) already."""
    from .checkpoint.read import checkpoint_root, list_checkpoints, verify_checkpoint

    root = checkpoint_root(directory, config)
    found = list_checkpoints(root)
    if found:
        why = (verify_checkpoint(found[-1].path) or ["it verifies now (changed while it was read?)"])[0]
        raise ValueError(f"no valid checkpoint in {root!r} and no model.npz in {directory!r} ({len(found)} "
                         f"checkpoint{'s' if len(found) > 1 else ''}, none whole; the newest: {why})")


def _warn(message: str) -> None:
    sys.stderr.write(f"distnn: warning: {message}\n")


def _saved_model_arguments(spec: dict) -> dict:
    """model.json's ``kwargs`` less an argument the model ignores beside the others (``Arguments.only_with``).

    Runs saved before the MLP refused ``hidden_sizes`` beside ``sizes`` recorded the
    default ``hidden_sizes`` next to ``sizes``; their model was built from ``sizes``
    alone, so it is rebuilt from ``sizes`` alone.
    """
    from distnn.models import registry
    from distnn.models.arguments import arguments_of, signature_defaults

    kwargs = dict(spec.get("kwargs", {}))
    table = arguments_of(spec["name"])
    if table is not None:  # (the class's defaults stand for what the kwargs leave out: CharLM's arch)
        table.drop_ignored(kwargs, signature_defaults(registry._MODELS[str(spec["name"]).lower()]))
    return kwargs


def _load_model(path: str):
    from distnn.models import build_model

    from .run_dir import CONFIG, MEMBERS_DIR, MODEL_META, MODEL_WEIGHTS

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

    finished = is_ensemble_dir(directory)
    unfinished = not finished and os.path.isdir(os.path.join(directory, MEMBERS_DIR)) \
        and not os.path.isfile(weights) and os.path.isfile(os.path.join(directory, CONFIG))
    if (finished or unfinished) and named_weights and not os.path.isfile(path):  # (not the ensemble in its place)
        raise ValueError(f"{path!r} does not exist: an ensemble run has no model file of its own; give its run "
                         f"directory {directory!r} (the members' probabilities averaged) or a member's directory")
    if finished:  # an ensemble run: every member, probabilities averaged
        return load_ensemble(directory)
    if unfinished:  # one that did not finish
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
    if own:  # (isfile below would take a pipe or a directory there for a file not written yet)
        _refuse_irregular(directory, (MODEL_WEIGHTS, MODEL_META))
    meta_raw = None
    if own and os.path.isfile(meta_path):
        try:
            meta_raw = run_checksums.read_verified(directory, MODEL_META, sums)
        except run_checksums.RunFileError:
            if os.path.isfile(weights):  # (without model.npz, the newest checkpoint is read: not model.json)
                raise
        except OSError:
            pass  # (said below, if model.json is needed)
    # (read once: these bytes, checked, say where the checkpoints are; b"": none there, the default place)
    config_raw = b"" if own else None
    if own and os.path.isfile(os.path.join(directory, CONFIG)):
        try:
            config_raw = run_checksums.read_verified(directory, CONFIG, sums)
        except OSError:
            pass  # (unreadable: the default checkpoint directory is looked in)
    # A checkpoint directory (checksums verified); a run directory's model.npz, or its newest valid
    # checkpoint when that is newer (a resumed session that did not finish) or there is no model.npz.
    if named_weights and own:
        source = ModelSource(directory, model_step(directory, meta_raw))
    else:
        source = model_source(directory, warn=_warn, model_step=model_step(directory, meta_raw) if own else None,
                              config=config_raw)
    directory = source.path
    weights, meta_path = os.path.join(directory, MODEL_WEIGHTS), os.path.join(directory, MODEL_META)
    report = getattr(_reporting, "fn", None)
    if report is not None and os.path.isfile(weights):
        what = f"checkpoint {directory}" if source.files is not None else weights
        at = f" (global step {source.step})" if source.step is not None else ""
        report(f"reading {what}{at}" + (f": {source.why}" if source.why else ""))
    if source.files is None and not os.path.isfile(weights):
        _no_valid_checkpoint(directory, config_raw)
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


def _refuse_irregular(directory: str, names) -> None:
    """A ValueError naming the first of ``names`` in ``directory`` that is there but not a regular file
    (a named pipe, a directory, a device): damage, not a file still to be written."""
    from .regular_file import open_regular

    for name in names:
        path = os.path.join(directory, name)
        if os.path.exists(path) and not os.path.isfile(path):
            try:
                open_regular(path).close()
            except OSError as e:
                raise ValueError(f"{path}: unreadable ({e.strerror})") from None
