"""Reading checkpoints: manifests, checksum verification, and choosing the one to load."""
from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass

from .. import npz_io
from ..regular_file import open_regular, read_regular
from . import hashing
from .commit import check_pointer, read_pointer
from .names import (BEST, DEFAULT_DIRNAME, FORMAT, LATEST, MANIFEST, MANIFEST_SEAL, STEP_RE, TRAINER_JSON, VERSION,
                    CheckpointError, CorruptCheckpointError, step_name)
from .state import decode_state, join_history


@dataclass
class CheckpointInfo:
    path: str
    step: int
    problem: str = ""  # why a step-N entry cannot be a checkpoint (not a directory); '' for a directory

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


def is_checkpoint_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, MANIFEST))


#: the end of a sealed manifest (format 3, see commit.sealed_manifest): its last key, its own SHA-256
_SEAL = re.compile(rb', "' + MANIFEST_SEAL.encode() + rb'": "([0-9a-f]{64})"\}\Z')


def read_manifest(path: str) -> dict:
    linked = _linked_step(path)
    if linked:
        raise CorruptCheckpointError(f"checkpoint {path!r} is {linked}")
    mpath = os.path.join(path, MANIFEST)
    if not os.path.exists(mpath):
        raise CorruptCheckpointError(f"checkpoint {path!r} is incomplete: {MANIFEST} is missing")
    try:
        raw = read_regular(mpath)
        man = json.loads(raw)
    except (OSError, ValueError, RecursionError) as e:  # (RecursionError: JSON nested beyond Python's stack)
        why = e.strerror or e if isinstance(e, OSError) else e
        raise CorruptCheckpointError(f"checkpoint {path!r}: {MANIFEST} is unreadable ({why})") from None
    seal = _SEAL.search(raw)
    if seal and hashlib.sha256(raw[:seal.start()] + b"}").hexdigest() != seal.group(1).decode():
        raise CorruptCheckpointError(f"checkpoint {path!r}: {MANIFEST} is damaged (its own SHA-256 does not "
                                     "match its content)")
    if not isinstance(man, dict) or man.get("format") != FORMAT or not isinstance(man.get("files"), dict):
        raise CorruptCheckpointError(f"checkpoint {path!r}: {MANIFEST} is not a distnn checkpoint manifest")
    if seal:
        del man[MANIFEST_SEAL]  # (a property of the file, not of the checkpoint)
    problem = _manifest_problem(man)
    if problem:  # valid JSON, but not what distnn writes (a flipped bit in a key, a hand edit)
        raise CorruptCheckpointError(f"checkpoint {path!r}: {MANIFEST} is damaged ({problem})")
    named = STEP_RE.match(os.path.basename(os.path.normpath(path)))
    if named and int(named.group(1)) != man["step"]:  # (step-N is another checkpoint's directory, or a link to it)
        raise CorruptCheckpointError(f"checkpoint {path!r}: {MANIFEST} is of {step_name(man['step'])}, not of "
                                     f"{named.group(0)} (a directory renamed, or a symlink to another checkpoint?)")
    if man.get("version", 0) > VERSION:
        raise CheckpointError(f"checkpoint {path!r} has format version {man['version']}; this distnn reads "
                              f"up to {VERSION}")
    if not seal and (man.get("version", 0) >= 3 or MANIFEST_SEAL in man):  # (format 2 and older had none)
        raise CorruptCheckpointError(f"checkpoint {path!r}: {MANIFEST} is damaged (its own SHA-256 is missing)")
    return man


def _is_count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _manifest_problem(man: dict) -> str | None:
    """What is wrong with a parsed manifest's structure, or None."""
    if not _is_count(man.get("version", 0)):
        return f"version {man.get('version')!r} is not a number"
    if not _is_count(man.get("step")):
        return f"step {man.get('step')!r} is not a step number"
    for fname, entry in man["files"].items():
        if not fname or os.path.basename(fname) != fname or fname in (".", ".."):
            return f"file name {fname!r} is not a name in the checkpoint directory"
        if not isinstance(entry, dict) or not _is_count(entry.get("bytes")):
            return f"the entry of {fname} has no byte count"
        sha = entry.get("sha256")
        if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            return f"the entry of {fname} has no SHA-256"
    return None


def _read_verified(path: str, fname: str, entry: dict) -> bytes:
    fpath = os.path.join(path, fname)
    try:
        with open_regular(fpath) as f:
            size = os.fstat(f.fileno()).st_size
            data = bytearray(size)  # writable: the arrays loaded from it are views of it, not copies
            got = f.readinto(data)
            while got < size:
                n = f.readinto(memoryview(data)[got:])
                if not n:
                    break
                got += n
            del data[got:]
    except FileNotFoundError:
        raise CorruptCheckpointError(f"checkpoint {path!r}: file {fname} is missing") from None
    except OSError as e:
        raise CorruptCheckpointError(f"checkpoint {path!r}: file {fname} is unreadable ({e.strerror or e})") from None
    if len(data) != int(entry["bytes"]):
        raise CorruptCheckpointError(f"checkpoint {path!r}: file {fname} has {len(data)} bytes, the manifest "
                                     f"says {entry['bytes']} (truncated or overwritten)")
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise CorruptCheckpointError(f"checkpoint {path!r}: file {fname} fails its SHA-256 check (corrupt)")
    return data


def _read_all_verified(path: str, files: dict) -> dict:
    """``{name: bytes or the CheckpointError it raised}`` for the manifest's ``files``, in its order.

    Large files are read and checked on the hashing threads, side by side
    (reading and SHA-256 both release the GIL), the rest here meanwhile.
    """
    def size(entry):
        try:
            return int(entry.get("bytes", 0))
        except (AttributeError, TypeError, ValueError):
            return 0

    def read(fname, entry):
        try:
            return _read_verified(path, fname, entry)
        except CheckpointError as e:
            return e

    futures = {fname: hashing.hash_pool().submit(read, fname, entry) for fname, entry in files.items()
               if size(entry) >= hashing.PARALLEL_HASH_BYTES}
    try:
        return {fname: futures[fname].result() if fname in futures else read(fname, entry)
                for fname, entry in files.items()}
    finally:
        wait_futures(futures.values())


def verify_checkpoint(path: str, only=None) -> list[str]:
    """Problems found in checkpoint ``path`` (empty when complete and every checksum matches).

    ``only``: the names of the files to check (the manifest too), not all; one the manifest does not
    list is a problem.
    """
    try:
        man = read_manifest(path)
    except CheckpointError as e:
        return [str(e)]
    files = man["files"]
    if only is not None:
        unlisted = [name for name in only if name not in files]
        if unlisted:
            return [f"checkpoint {path!r}: {unlisted[0]} is not listed in its {MANIFEST}"]
        files = {name: files[name] for name in only}
    return [str(got) for got in _read_all_verified(path, files).values() if isinstance(got, CheckpointError)]


def read_files(path: str, names) -> dict:
    """``{name: bytes}`` of the files ``names`` of checkpoint ``path``, each checked against its manifest
    (CorruptCheckpointError naming the first that is not listed there or fails its check). Use these
    bytes, never the file read again: it may have changed since it was checked."""
    man = read_manifest(path)
    unlisted = [name for name in names if name not in man["files"]]
    if unlisted:
        raise CorruptCheckpointError(f"checkpoint {path!r}: {unlisted[0]} is not listed in its {MANIFEST}")
    raw = _read_all_verified(path, {name: man["files"][name] for name in names})
    for got in raw.values():
        if isinstance(got, CheckpointError):
            raise got
    return raw


def read_checkpoint(path: str) -> tuple[dict, dict]:
    """``(state, manifest)`` of checkpoint ``path``, every file checked against its SHA-256.

    Raises :class:`CorruptCheckpointError` naming the first bad file.
    """
    man = read_manifest(path)
    raw = _read_all_verified(path, man["files"])
    for got in raw.values():
        if isinstance(got, CheckpointError):
            raise got  # the first bad file in the manifest's order
    arrays = {}
    for fname, data in raw.items():
        if fname.endswith(".npz"):
            arrays[fname] = npz_io.load_npz(data)  # views of the verified buffer (np.load for other layouts)
    if TRAINER_JSON not in raw:
        raise CorruptCheckpointError(f"checkpoint {path!r}: {TRAINER_JSON} is not listed in its manifest")
    try:
        skeleton = json.loads(raw[TRAINER_JSON])
    except ValueError as e:  # (a checksum-valid file that is not JSON: written by something else)
        raise CorruptCheckpointError(f"checkpoint {path!r}: {TRAINER_JSON} is unreadable ({e})") from None
    chunks = set(join_history(skeleton, raw, path))
    state = decode_state(skeleton, arrays)
    state["_files"] = {k: bytes(v) for k, v in raw.items()
                       if not k.endswith(".npz") and k != TRAINER_JSON and k not in chunks}
    return state, man


def list_checkpoints(root: str) -> list[CheckpointInfo]:
    """The ``step-N`` directories under ``root``, oldest first (valid or not)."""
    return [c for c in _step_entries(root) if not c.problem]


def _step_entries(root: str) -> list[CheckpointInfo]:
    """Every ``step-N`` entry under ``root``, oldest first: the directories, and those that cannot be a
    checkpoint (a file, a dangling symlink, a symlink loop) with their ``problem`` said."""
    out = []
    try:
        with os.scandir(root) as it:
            entries = [(e, STEP_RE.match(e.name)) for e in it]
    except OSError:
        return []
    for e, m in entries:
        if m:  # (one that is no directory stays, with why: a symlink loop there hid all the others)
            out.append(CheckpointInfo(e.path, int(m.group(1)), _linked_step(e.path) or _why_not_a_directory(e.path)))
    return sorted(out, key=lambda c: c.step)


def _linked_step(path: str) -> str:
    """Why ``path``, a ``step-N`` entry that is a symlink, is no checkpoint ('' for any other path).

    distnn writes each checkpoint as a directory of its own (renamed into place), never as a link; a
    link there may name another checkpoint of the same step (a discarded one, another run's), which no
    checksum tells apart, and retention would delete the files of the directory it names."""
    path = os.path.normpath(path)
    if not (STEP_RE.match(os.path.basename(path)) and os.path.islink(path)):
        return ""
    if not os.path.exists(path):
        return "a broken symlink (to nothing, or a loop)"
    try:
        target = f" to {os.readlink(path)!r}"
    except OSError:
        target = ""
    return f"a symlink{target}, not a checkpoint directory of its own (distnn never links one: it may be another)"


def _why_not_a_directory(path: str) -> str:
    """Why ``path`` is no directory ('' when it is one)."""
    if os.path.isdir(path):
        return ""
    if os.path.islink(path) and not os.path.exists(path):
        return "a broken symlink (to nothing, or a loop)"
    return "not a directory" if os.path.lexists(path) else "missing"


def checkpoint_root(path: str) -> str:
    """The checkpoint root for ``path``: a run directory (its ``checkpoint.dir``, as its ``config.toml``
    says; ``checkpoints/`` by default) or a root itself."""
    sub = os.path.join(path, _configured_dirname(path))
    if os.path.isdir(sub) and not list_checkpoints(path):
        return sub
    return path


def _configured_dirname(run_dir: str) -> str:
    """``checkpoint.dir`` of the run in ``run_dir`` (its resolved ``config.toml``), else the default."""
    name = stored_config_value(run_dir, "checkpoint", "dir")
    return name if isinstance(name, str) and name else DEFAULT_DIRNAME


def stored_config_value(directory: str, section: str, key: str):
    """``[section] key`` of the resolved ``config.toml`` a run directory or checkpoint holds; None when
    there is no such file, value, or readable TOML."""
    import tomllib

    try:
        table = tomllib.loads(read_regular(os.path.join(directory, "config.toml")).decode()).get(section)
    except (OSError, ValueError):  # (tomllib's errors are ValueErrors, and so is UnicodeDecodeError)
        return None
    return table.get(key) if isinstance(table, dict) else None


def load_latest_valid(root: str, warn=None) -> tuple[str, dict, dict] | None:
    """``(path, state, manifest)`` of the newest checkpoint under ``root`` that verifies, or None.

    Each newer checkpoint that is incomplete or corrupt (or a ``step-N`` entry
    that is not a directory) is reported through ``warn(message)`` (naming the
    bad file) and skipped; so is the newest checkpoint when it is gone and
    ``latest`` or ``best`` still names it.
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
        found = load_latest_valid(default_root, warn)
        if found is None and _step_entries(default_root):
            raise CheckpointError(f"no valid checkpoint in {default_root!r}: every one is incomplete or corrupt")
        return found
    path = follow_pointer(str(spec), warn)
    if not os.path.exists(path):
        raise CheckpointError(f"--resume {path!r}: no such checkpoint or run directory")
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


def model_directory(directory: str, warn=None, model_step: int | None = None) -> str:
    """Where ``evaluate``/``predict`` find a model for ``directory``: :func:`model_source`'s path."""
    return model_source(directory, warn, model_step).path


@dataclass
class ModelSource:
    """What :func:`model_source` chose: ``path`` (a run directory, meaning its ``model.npz``, or a
    checkpoint directory), its global ``step`` (None when unknown) and ``why`` a checkpoint was
    chosen over the run's ``model.npz`` ('' otherwise)."""
    path: str
    step: int | None
    why: str = ""
    #: a checkpoint's: the bytes of its ``model.npz`` and ``model.json``, as verified (None: a run directory)
    files: dict | None = None


def model_source(directory: str, warn=None, model_step: int | None = None) -> ModelSource:
    """The newest trained state of ``directory`` (see :class:`ModelSource`).

    A checkpoint directory is verified (CheckpointError naming the bad file)
    and used as is. A run directory gives its ``model.npz`` unless a valid
    checkpoint holds a newer state: ``model_step`` is the global step
    ``model.npz`` was saved at (``model.json``'s ``global_step``), and a
    checkpoint of a later step means the finished run was resumed (more
    epochs) and that session did not finish; so does a run whose own
    checkpoint of ``model_step`` a resume from an older checkpoint moved aside
    (``discarded-step-N``: ``model.npz`` is of the abandoned future). Without
    ``model_step`` (a run directory of an older distnn) ``model.npz`` is used as
    before. A run directory without ``model.npz`` (an interrupted run) or a
    checkpoint root gives its newest valid checkpoint. Each newer checkpoint
    that does not verify is reported through ``warn`` and skipped.
    """
    if is_checkpoint_dir(directory) or STEP_RE.match(os.path.basename(os.path.normpath(directory))):
        problems, files = _verify_keeping_model(directory)
        if problems:
            raise CheckpointError(problems[0])
        return ModelSource(directory, checkpoint_step(directory), files=files)
    weights = os.path.join(directory, "model.npz")
    has_model = os.path.isfile(weights)
    if has_model and model_step is None:
        return ModelSource(directory, None)
    root = checkpoint_root(directory)
    found = _step_entries(root)
    abandoned = has_model and _discarded(root, model_step, found)
    for info in reversed(found):
        if has_model and not abandoned and info.step <= model_step:
            break  # model.npz is the newest state: the checkpoints from here on are older (or its own)
        problems, files = ([f"checkpoint {info.path!r} is {info.problem}"], None) if info.problem \
            else _verify_keeping_model(info.path)
        if not problems:
            if not has_model:
                why = "the newest valid checkpoint" + (
                    f"; {directory!r} has no model.npz (the run has not finished)"
                    if os.path.isfile(os.path.join(directory, "config.toml")) else "")
            elif abandoned:
                why = (f"{weights!r} (global step {model_step}) belongs to checkpoints that a run resumed from "
                       f"an earlier one moved aside (discarded-*)")
            else:
                why = (f"newer than {weights!r} (global step {model_step}): the run was resumed and that "
                       f"session has not finished")
            return ModelSource(info.path, info.step, why, files)
        if warn is not None:
            warn(f"{problems[0]}; trying the previous checkpoint" + (" (or model.npz)" if has_model else ""))
    return ModelSource(directory, model_step)


def _verify_keeping_model(path: str) -> tuple[list[str], dict]:
    """:func:`verify_checkpoint`'s problems, and (when none) the verified bytes of the files a model is
    rebuilt from: the model is built from the very bytes whose SHA-256 was checked, never from the
    files read again (which could have changed in between)."""
    try:
        man = read_manifest(path)
    except CheckpointError as e:
        return [str(e)], {}
    raw = _read_all_verified(path, man["files"])
    problems = [str(got) for got in raw.values() if isinstance(got, CheckpointError)]
    return problems, {} if problems else {n: raw[n] for n in ("model.npz", "model.json") if n in raw}


def checkpoint_step(path: str) -> int | None:
    """The global step of the checkpoint directory ``path`` (its name's, else its manifest's); None when unknown."""
    m = STEP_RE.match(os.path.basename(os.path.normpath(path)))
    if m:
        return int(m.group(1))
    try:
        return int(read_manifest(path)["step"])
    except CheckpointError:
        return None


def _discarded(root: str, step: int, found: list[CheckpointInfo]) -> bool:
    """Whether the checkpoint of ``step`` was moved aside by a resume from an older one (and not written again)."""
    if any(c.step == step for c in found):
        return False
    prefix = f"discarded-{step_name(step)}-"
    try:
        return any(name.startswith(prefix) for name in os.listdir(root))
    except OSError:
        return False
