"""Writing a checkpoint: the commit protocol (see the package docstring), checksums and pointers."""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from concurrent.futures import wait as wait_futures

import numpy as np

from ..regular_file import read_regular
from . import fsio, hashing
from .faults import active_faults, fault
from .fsio import (create, fsync_dir, fsync_fd, link, open_for_write, recycle_dir, remove_tree, tmp_suffix,
                   write_all, write_file)
from .names import (BEST, FORMAT, LATEST, MANIFEST, MANIFEST_SEAL, POINTER_SEAL, STEP_RE, VERSION, CheckpointError,
                    step_name)


def write_pointers(root: str, name: str, which=(LATEST,), fsync: bool = True) -> None:
    """Point each of the pointer files ``which`` (``latest``, ``best``) at ``name``, atomically each.

    Each is written to a temporary file and fsynced, then renamed over the
    pointer; one fsync of ``root`` makes all the renames durable.
    """
    done = []
    try:
        for w in which:
            path = os.path.join(root, w)
            tmp = f"{path}.tmp-{os.getpid()}"
            write_file(tmp, pointer_bytes(name), fsync)
            done.append((tmp, path))
        for tmp, path in done:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in done:
            if os.path.lexists(tmp):
                try:
                    os.remove(tmp)
                except OSError:
                    pass
        raise
    if fsync:  # (failed: the renames may not survive a power loss; an old pointer could name a deleted checkpoint)
        fsync_dir(root, strict=True)


def write_pointer(root: str, which: str, name: str, fsync: bool = True) -> None:
    """Replace the pointer file ``root/which`` (``latest``/``best``) atomically with ``name``."""
    write_pointers(root, name, (which,), fsync)


def pointer_bytes(name: str) -> bytes:
    """The content of a pointer file naming checkpoint ``name``: the name, then the SHA-256 of the name.

    ``step-00000420 sha256=<64 hex digits>``: a bit flipped in the name (into another step that exists)
    no longer matches the SHA-256, so the pointer reads as damaged instead of naming another checkpoint
    (:func:`check_pointer`). The SHA-256 is of the name alone, not of that checkpoint's manifest: a
    checkpoint rewritten at the same step (an epoch's end at a step save's step, a resumed run) keeps its
    pointers valid, and whoever re-points one (a resume, :func:`~.retention.discard_newer`) needs no
    manifest to do it; that the directory is the named step's is the manifest's own check (its ``step``).
    """
    return f"{name} {POINTER_SEAL}={hashlib.sha256(name.encode()).hexdigest()}\n".encode()


def check_pointer(root: str, which: str = LATEST) -> tuple[str | None, str | None]:
    """``(name, None)`` for a sound pointer file ``root/which``; ``(None, None)`` when there is none;
    ``(None, why)`` when it is there but damaged or unreadable.

    A pointer is :func:`pointer_bytes`'s line, its SHA-256 checked; or (written by a distnn before the
    SHA-256) a checkpoint name alone, accepted when it is one exactly as distnn writes it (``step-`` and
    at least 8 digits, no leading zero beyond them: a name cut short is no such name). A symlink, a
    named pipe or a directory there is damaged.
    """
    path = os.path.join(root, which)
    # distnn replaces a pointer file by a rename, never with a link: a link may name another checkpoint
    # (a directory, or another run's pointer), so it is damage like any other
    if os.path.islink(path):
        return None, "it is a symlink, not a pointer file distnn wrote"
    try:
        raw = read_regular(path, 4096)
    except FileNotFoundError:
        return None, None
    except OSError as e:
        return None, f"it cannot be read ({e.strerror or e})"
    # (bytes: a damaged pointer's non-UTF-8 bytes raised UnicodeDecodeError; ASCII: \d takes other digits too)
    text = raw.decode("ascii", "replace").strip()
    name, _, seal = text.partition(" ")
    m = STEP_RE.match(name)
    if not m or name != step_name(int(m.group(1))):
        return None, "it holds no checkpoint name (step-N)"
    if not seal:
        return name, None  # (an older distnn's pointer: the name alone)
    if seal != f"{POINTER_SEAL}={hashlib.sha256(name.encode()).hexdigest()}":
        return None, "its SHA-256 does not match the checkpoint name it holds (a flipped bit or an edit)"
    return name, None


def read_pointer(root: str, which: str = LATEST) -> str | None:
    """The checkpoint name the pointer file ``root/which`` holds; None when it is missing, unreadable or
    damaged (see :func:`check_pointer`)."""
    return check_pointer(root, which)[0]


def write_checkpoint(root: str, step: int, files: dict, manifest: dict | None = None, fsync: bool = True,
                     update_latest: bool = True, update_best: bool = False, reuse: dict | None = None,
                     prepare: dict | None = None, recycle: str | None = None) -> str:
    """Write ``files`` (``{name: bytes-like}``) as checkpoint ``root/step-<step>`` atomically; return its path.

    ``manifest`` adds fields to the manifest (epoch, world size, metrics...).
    ``update_best`` also points ``best`` at it (in the same step as ``latest``).
    ``reuse`` (``{name: (path, sha256)}``) names files of an earlier checkpoint
    that hold exactly these bytes (``model.json``, ``config.toml``: the same at
    every save): they are hard-linked instead of written, hashed and fsynced
    again (their data is durable already), and written as usual where a link
    cannot be made. ``prepare`` (``{name: callable}``) completes a file's bytes
    before it is written and hashed (:meth:`Serializer.crc_fillers`: the npz
    CRC-32s); large files are finished and hashed on two threads while this
    one writes. ``recycle`` names a spare directory (see :func:`apply_retention`)
    to become the new checkpoint: its files are overwritten in place.
    Raises :class:`CheckpointError` naming the file when anything fails; then
    no partial directory is left and ``latest`` is unchanged. A failed fsync of
    the new directory, or of ``root`` when the step had a checkpoint already,
    fails the write too: the step's old checkpoint is put back, never deleted
    for a new one that may not survive a power loss. (An fsync a file system
    does not support on directories is no failure: see ``fsio.FSYNC_UNSUPPORTED``.)

    Every file (the manifest and the pointers' temporary files included) is
    written first, its write-back started on all of them (Linux), and only then
    fsynced, all of them before the directory is renamed: the same guarantee as
    an fsync after each file, but a journaling file system commits them
    together instead of once per file. The directory's rename and the
    pointers' replacements are made durable by one fsync of the root, after
    all of them: a journaling file system (ext4, XFS, btrfs) commits metadata
    changes in the order they were made, so after a power loss ``latest``
    names the new checkpoint only if its rename survived too. (Where a file
    system does not order them, ``latest`` could name a checkpoint that is
    not there; distnn loads through ``latest`` only when a user names it, and
    then verifies that checkpoint's checksums: ``--resume auto`` and a run
    directory take the newest checkpoint whose checksums verify.)
    """
    name = step_name(step)
    final = os.path.join(root, name)
    tmp = os.path.join(root, f".tmp-{name}-{os.getpid()}-{tmp_suffix()}")
    faults = active_faults(step)
    pointers = (LATEST,) * bool(update_latest) + (BEST,) * bool(update_best)
    opened: list[tuple[str, int]] = []  # (name for error messages, fd) still to fsync and close
    staged: list[tuple[str, str]] = []  # pointer (temporary file, pointer file)
    root_fd = None
    current = "the checkpoint directory"
    prepare = prepare or {}
    digests = {}  # name: _Digest running on the hashing threads
    trash = None  # the step's old checkpoint, moved aside while the new one is renamed in
    renamed = False  # the new checkpoint is at ``final``
    try:
        for fname, data in files.items():
            if not (reuse and fname in reuse) and memoryview(data).nbytes >= hashing.PARALLEL_HASH_BYTES:
                digests[fname] = hashing.Digest(data, prepare.get(fname))
        current = root
        recycled, kept = None, ()  # kept: the spare's links to the files ``reuse`` names (no unlink and link)
        if recycle:
            links = {n: (same[0], memoryview(files[n]).nbytes) for n, same in (reuse or {}).items() if n in files}
            recycled, kept = recycle_dir(recycle, tmp, links) or (None, ())
        if recycled is None:
            try:
                os.mkdir(tmp)
            except FileNotFoundError:
                os.makedirs(root, exist_ok=True)
                os.mkdir(tmp)
        entries = {}
        for fname, data in files.items():
            current = fname
            if faults:
                fault(step, "enospc", fname, faults)
            nbytes = memoryview(data).nbytes
            same = reuse.get(fname) if reuse else None
            digest = digests.get(fname)
            if same is not None and recycled and recycled.pop(fname, None) is not None:
                os.unlink(os.path.join(tmp, fname))  # a link replaces it
            if fname in kept or same is not None and link(same[0], os.path.join(tmp, fname), nbytes):
                entries[fname] = {"sha256": same[1], "bytes": nbytes}
            else:
                if digest is not None:
                    digest.ready.wait()
                elif fname in prepare:
                    prepare[fname]()
                opened.append((fname, open_for_write(os.path.join(tmp, fname), recycled)))
                write_all(opened[-1][1], data)
                if recycled and recycled.pop(fname, nbytes) > nbytes:
                    os.ftruncate(opened[-1][1], nbytes)
                # the bytes are in memory: hashing them does not read the file back
                sha = digest.future.result() if digest is not None else hashlib.sha256(data).hexdigest()
                entries[fname] = {"sha256": sha, "bytes": nbytes}
            if faults:
                fault(step, "crash_after", fname, faults)
                fault(step, "signal_after", fname, faults)
                fault(step, "pause_after", fname, faults)
        current = MANIFEST
        for old in recycled or ():  # files of the recycled checkpoint that this one does not have
            if old != MANIFEST:
                os.unlink(os.path.join(tmp, old))
        man = {"format": FORMAT, "version": VERSION, "name": name, "step": int(step),
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(manifest or {}), "files": entries}
        if faults:
            fault(step, "enospc", MANIFEST, faults)
        opened.append((MANIFEST, open_for_write(os.path.join(tmp, MANIFEST), recycled)))
        text = sealed_manifest(man)
        write_all(opened[-1][1], text)
        if recycled and recycled.get(MANIFEST, 0) > len(text):
            os.ftruncate(opened[-1][1], len(text))
        for w in pointers:
            current = w
            staged.append((os.path.join(root, f"{w}.tmp-{os.getpid()}"), os.path.join(root, w)))
            opened.append((w, create(staged[-1][0])))
            write_all(opened[-1][1], pointer_bytes(name))
        if fsync and fsio.SYNCFS is not None and opened:
            current = "the checkpoint's files"
            fsio.SYNCFS(opened[0][1])  # all of them and the new directory's entries, in one commit
        if fsync and fsio.SYNCFS is None and fsio.START_WRITEBACK is not None:
            for _, fd in opened:
                fsio.START_WRITEBACK(fd)
        while opened:
            current, fd = opened[-1]
            if fsync and fsio.SYNCFS is None:
                os.fsync(fd)
            opened.pop()
            os.close(fd)
        if fsync and fsio.SYNCFS is None:
            current = "the fsync of the new checkpoint's directory"
            fsync_dir(tmp, strict=True)  # (failed: its files' entries may not survive; the old copy must stay)
        if faults:
            fault(step, "crash_before_rename", "", faults)
        current = name
        if os.path.lexists(final):  # the same step again (a resumed run): move the old one aside first
            trash = os.path.join(root, f".trash-{name}-{tmp_suffix()}")
            os.rename(final, trash)
        os.rename(tmp, final)
        renamed = True
        if faults:
            fault(step, "crash_before_latest", "", faults)
        if pointers:
            current = " and ".join(pointers)
            while staged:
                os.replace(*staged[0])
                staged.pop(0)
        if fsync:  # one fsync of the root commits the directory's rename and the pointers' (see above)
            try:
                root_fd = os.open(root, os.O_RDONLY)
            except OSError:  # some platforms cannot open directories
                root_fd = None
            # A failed fsync (not an unsupported one) may leave the renames not durable: a rewrite then
            # puts its step's old copy back (see the except block) instead of deleting it. A new step has
            # no old copy to lose, and its pointers are replaced already: nothing to roll back to.
            current = f"the fsync of directory {root!r}"
            fsync_fd(root_fd, strict=bool(trash))
        if trash:  # after the fsync: the step's new checkpoint is durable before its old one goes
            remove_tree(trash)
    except BaseException as e:
        # no hashing thread may still touch the caller's buffers once we return (they are reused)
        wait_futures([d.future for d in digests.values()])
        for _, fd in opened:
            os.close(fd)
        if root_fd is not None:
            os.close(root_fd)
            root_fd = None
        for ptmp, _ in staged:
            try:
                os.remove(ptmp)
            except OSError:
                pass
        if trash and renamed:  # the new one is in already (its root's fsync failed): it makes way again
            try:
                os.rename(final, tmp)  # (a .tmp- name: removed below, or by cleanup_temporaries after a crash)
            except OSError:
                pass  # the old copy stays aside, not deleted: recover_interrupted_rewrites finds it
        if trash and not os.path.lexists(final):  # the step's old checkpoint was moved aside: put it back
            try:
                os.rename(trash, final)
            except OSError:
                pass
        if os.path.isdir(tmp):
            remove_tree(tmp)
        if isinstance(e, OSError):
            raise CheckpointError(f"cannot write checkpoint {final!r} ({current}): {e.strerror or e}") from None
        raise
    if root_fd is not None:
        os.close(root_fd)
    return final


def sealed_manifest(man: dict) -> bytes:
    """The bytes of manifest ``man``, its own SHA-256 added as the last key (:data:`MANIFEST_SEAL`).

    The manifest's checksums cover every other file; this one covers the manifest itself (format 3): a
    damaged field outside ``files`` (``step``, ``world_size``, ``epoch_end``...) that is still valid JSON
    would otherwise be loaded as if saved. The SHA-256 is of the text up to the seal, closed by ``}``
    (:func:`~.read.read_manifest` checks it on those very bytes, not on a re-encoding).
    """
    body = json.dumps(json_clean(man))
    seal = hashlib.sha256(body.encode()).hexdigest()
    return f'{body[:-1]}, "{MANIFEST_SEAL}": "{seal}"}}'.encode()


#: types json_clean returns as they are (exact types: a subclass, e.g. an IntEnum, takes the general path)
_JSON_AS_IS = frozenset((str, int, bool, type(None)))


def json_clean(obj):
    """``obj`` for ``json.dumps``: non-finite floats as None, numpy scalars as Python ones, tuples as
    lists, dict keys as ``str(key)``. (The common types are told apart by ``type`` first: a manifest is
    cleaned at every save, by the writer thread, which holds the interpreter lock while it walks.)"""
    kind = type(obj)
    if kind in _JSON_AS_IS:
        return obj
    if kind is float:
        return obj if math.isfinite(obj) else None
    if kind is dict:
        return {k if type(k) is str else str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
