"""Reading checkpoints: choosing the one a resume loads (``--resume SPEC``, the ``latest``/``best`` pointers,
the newest valid one), and the package's reading interface.

What choosing builds on has modules of its own, every name importable from here as before:
:mod:`.listing` (the ``step-N`` entries of a root), :mod:`.verify` (manifests, checksums, reading the
verified bytes) and :mod:`.model_select` (the model ``evaluate``/``predict`` use).
"""
from __future__ import annotations

import os

from . import listing as _listing, model_select as _model_select, verify as _verify
from .commit import check_pointer, read_pointer
from .listing import (CheckpointInfo, _configured_dirname, _step_entries, _why_not_a_directory, checkpoint_root,
                      is_checkpoint_dir, list_checkpoints, stored_config_value)
from .model_select import ModelSource, checkpoint_step, model_directory, model_source
from .names import BEST, LATEST, STEP_RE, CheckpointError, CorruptCheckpointError
from .verify import read_checkpoint, read_files, read_manifest, verify_checkpoint

__all__ = ["CheckpointInfo", "ModelSource", "checkpoint_root", "checkpoint_step", "follow_pointer", "is_checkpoint_dir",
           "list_checkpoints", "load_latest_valid", "model_directory", "model_source", "read_checkpoint", "read_files",
           "read_manifest", "resolve_and_load", "stored_config_value", "verify_checkpoint"]
# (private helpers, importable from here as before; a test that patches one patches it in its own module)
_linked_step, _SEAL, _is_count, _manifest_problem = (_listing._linked_step, _verify._SEAL, _verify._is_count,
                                                     _verify._manifest_problem)
_read_verified, _read_all_verified, _verify_keeping_model = (_verify._read_verified, _verify._read_all_verified,
                                                             _verify._verify_keeping_model)
_discarded = _model_select._discarded


def load_latest_valid(root: str, warn=None, problems: list | None = None) -> tuple[str, dict, dict] | None:
    """``(path, state, manifest)`` of the newest checkpoint under ``root`` that verifies, or None.

    Each newer checkpoint that is incomplete or corrupt (or a ``step-N`` entry
    that is not a directory) is reported through ``warn(message)`` (naming the
    bad file) and skipped, its problem appended to ``problems`` when given; so is
    the newest checkpoint when it is gone and ``latest`` or ``best`` still names it.
    """
    entries = _step_entries(root)
    if warn is not None:
        _warn_missing_newest(root, entries, warn)
    for info in reversed(entries):
        try:
            if info.problem:
                raise CorruptCheckpointError(f"checkpoint {info.path!r} is {info.problem}")
            state, man = read_checkpoint(info.path)
        except CheckpointError as e:
            if warn is not None:
                warn(f"{e}; skipping it and trying the previous checkpoint")
            if problems is not None:
                problems.append(" ".join(str(e).split()))
            continue
        return info.path, state, man
    return None


def _warn_missing_newest(root: str, entries: list[CheckpointInfo], warn) -> None:
    """``latest`` (or ``best``) naming a checkpoint newer than all there are, which is gone (deleted by hand,
    or a file system that lost the directory's rename but kept the pointer's): say so before falling back.
    (Neither names a missing checkpoint otherwise: retention removes ``best`` before its checkpoint, a
    resume from an older checkpoint re-points both.)"""
    for which in (LATEST, BEST):
        name = read_pointer(root, which)
        step = int(STEP_RE.match(name).group(1)) if name else None
        if step is not None and all(c.step < step for c in entries) \
                and not os.path.lexists(os.path.join(root, name)):
            warn(f"{os.path.join(root, which)!r} names {name}, which is not there (deleted?); using the newest "
                 "checkpoint there is")
            return


def follow_pointer(path: str, warn=None) -> str:
    """``<root>/latest`` or ``<root>/best`` (pointer files) as the checkpoint directory they name; any
    other path unchanged. A pointer naming no checkpoint is a CheckpointError.

    A damaged pointer (:func:`~.commit.check_pointer`: its SHA-256 does not match, it holds no name, it is
    a symlink or no regular file) may name another checkpoint than it was written with, so it is never
    followed. ``latest`` then gives
    its root, whose newest valid checkpoint is what ``latest`` names when sound; with ``warn``, that is
    reported through ``warn(message)`` naming the file (without, it is a CheckpointError). ``best`` is a
    CheckpointError saying what to do: which checkpoint is the best cannot be told from the others (the
    newest checkpoint's manifest records the best as of its save, said as a hint).
    """
    path = os.path.normpath(path) if path.rstrip(os.sep) else path  # (a trailing slash)
    name = os.path.basename(path)
    if name not in (LATEST, BEST) or not (os.path.islink(path) or os.path.lexists(path) and not os.path.isdir(path)):
        return path  # (a symlink or a named pipe there is a damaged pointer: check_pointer says so)
    root = os.path.dirname(path)
    target, problem = check_pointer(root, name)
    if target is None and name == LATEST and warn is not None:
        warn(f"{path!r} is damaged or unreadable: {problem or 'it is gone'}; not following it: using the newest "
             f"valid checkpoint in {root or '.'!r} instead")
        return root or "."
    if target is None:
        hint = _best_hint(root) if name == BEST else ""
        raise CheckpointError(f"{path!r} is damaged or unreadable: {problem or 'it is gone'}; not following it; "
                              f"{hint}give a checkpoint directory (step-N), or the run directory to use its newest "
                              "valid checkpoint")
    if not os.path.isdir(os.path.join(root, target)):
        raise CheckpointError(f"{path!r} points at {target!r}, which is not a checkpoint here "
                              "(removed?); give the run directory to use its newest valid checkpoint")
    return os.path.join(root, target)


def _best_hint(root: str) -> str:
    """What the newest readable manifest under ``root`` records as the best checkpoint, as advice ('' if none).

    Only a hint: a best marked after that save (an epoch's end without a save, the final report) is
    recorded by the pointer alone."""
    for info in reversed(list_checkpoints(root)):
        try:
            best = read_manifest(info.path).get("best")
        except CheckpointError:
            continue
        name = best.get("name") if isinstance(best, dict) else None
        if not (isinstance(name, str) and STEP_RE.match(name) and os.path.isdir(os.path.join(root, name))):
            return ""
        value = best.get("value")
        by = f" by {best.get('monitor')} = {value:.6g}" if isinstance(value, (int, float)) else ""
        return f"the newest checkpoint's manifest ({info.name}) records {os.path.join(root, name)!r} as the best{by}; "
    return ""


def resolve_and_load(spec: str, default_root: str | None, warn=None):
    """What ``--resume SPEC`` names: ``(path, state, manifest)`` or None (``auto`` with no checkpoint yet).

    ``spec`` is ``auto`` (the newest valid checkpoint under ``default_root``),
    a checkpoint directory (must verify), or a run directory / checkpoint root
    (its newest valid checkpoint). Raises :class:`CheckpointError`.
    """
    if spec == "auto":
        if default_root is None:
            raise CheckpointError("--resume auto needs the run directory (--out RUN_DIR) to look for checkpoints in")
        if os.path.lexists(default_root) and not os.path.isdir(default_root):  # (not "no checkpoint yet")
            raise CheckpointError(f"checkpoint directory {default_root!r} is "
                                  f"{_why_not_a_directory(default_root)}")
        problems: list = []
        found = load_latest_valid(default_root, warn, problems)
        if found is None and _step_entries(default_root):
            # (the newest one's problem names its file: the line says what to restore, without the warnings)
            newest = f" (the newest: {problems[0]})" if problems else ""
            raise CheckpointError(f"no valid checkpoint in {default_root!r}: every one is incomplete or "
                                  f"corrupt{newest}")
        return found
    path = follow_pointer(str(spec), warn)
    if not os.path.exists(path):
        raise CheckpointError(f"--resume {path!r}: no such checkpoint or run directory")
    if not os.path.isdir(path):  # (e.g. RUN/model.npz: the weights alone, no optimizer state or position to go on from)
        raise CheckpointError(f"--resume {path!r} is a file, not a checkpoint or run directory: give the run "
                              "directory (its newest valid checkpoint), a checkpoint directory "
                              "(RUN/checkpoints/step-N) or RUN/checkpoints/latest")
    if is_checkpoint_dir(path) or STEP_RE.match(os.path.basename(os.path.normpath(path))):
        state, man = read_checkpoint(path)
        return path, state, man
    root = checkpoint_root(path)
    found = load_latest_valid(root, warn)
    if found is None:
        sub = os.path.join(path, _configured_dirname(path))  # (a run directory whose checkpoint root is damaged)
        why = f" ({sub!r} is {_why_not_a_directory(sub)})" if os.path.lexists(sub) and not os.path.isdir(sub) else ""
        raise CheckpointError(f"--resume {path!r}: no valid checkpoint found in {root!r}{why}")
    return found
