"""Verifying a checkpoint: its manifest (structure, own SHA-256), every file against its size and SHA-256,
and the verified bytes handed on (never the file read again).

Split out of :mod:`.read`, which still exports every name here.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import wait as wait_futures

from .. import npz_io
from ..regular_file import open_regular, read_regular
from . import hashing
from .listing import _linked_step
from .names import (FORMAT, MANIFEST, MANIFEST_SEAL, STEP_RE, TRAINER_JSON, VERSION, CheckpointError,
                    CorruptCheckpointError, step_name)
from .state import decode_state, join_history


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
