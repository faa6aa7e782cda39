"""Checkpoints on disk: format, atomic write, manifest, verification, retention, selection.

A checkpoint is one directory per optimizer step under a checkpoint root
(``<run>/checkpoints`` by default)::

    checkpoints/
      step-00000420/
        model.npz        the model's state_dict (same format as a run's model.npz)
        optimizer.npz    the optimizer's state arrays (Adam moments, momentum buffers)
        state.npz        any other arrays of the trainer state (e.g. early stopping's best weights)
        trainer.json     everything else: epoch, step, position in the epoch, history, LR
                         schedulers, callbacks, and every rank's random generator state
        model.json       how to rebuild the model (evaluate/predict read a checkpoint directly)
        config.toml      the resolved configuration of the run
        manifest.json    written LAST: format, step, world size, global batch, and the
                         SHA-256 and size of every file above
      latest             name of the newest checkpoint (replaced atomically)
      best               name of the best checkpoint by the monitored metric

Commit protocol (what makes a crash at any instant harmless, as in
``torch.distributed.checkpoint``, whose metadata file is its commit point):
files are written into ``.tmp-step-...`` and made durable (one ``syncfs`` of the
file system on Linux >= 5.8, else an fsync of each file and of the directory); the
manifest goes last; the directory is fsynced and renamed to ``step-...``; then
``latest`` is replaced (temporary file, fsynced with the others,
``os.replace``) and the root is fsynced once (see :func:`write_checkpoint`).
A directory without a manifest whose checksums match is never loaded: :func:`load_latest_valid` skips it with a warning naming the
file and falls back to the previous checkpoint.
Files that are the same in every checkpoint of a run (``model.json``,
``config.toml``) are hard links to the previous checkpoint's copy where the
file system allows: deleting an old checkpoint leaves the others intact, and
the manifest checks them like any other file (do not edit them in place).

Arrays are stored as uncompressed ``.npz`` files (``np.load`` reads them;
distnn/train/npz_io.py packs them into buffers reused between saves and
reads them back as views of the verified bytes). Everything else goes to
JSON with a few tags so that it round-trips exactly: ``{"__array__": [file,
key]}``, ``{"__tuple__": [...]}``, ``{"__float__": "nan"}``, numpy scalars with
their dtype, and dicts with non-string keys. No pickle: loading a checkpoint
never executes code from the file.

Fault injection for tests: ``DISTNN_CKPT_FAULT`` holds comma-separated
``ACTION[:FILE][@STEP]`` entries; ``crash_after:FILE`` kills the process (SIGKILL)
after writing FILE, ``crash_before_rename`` and ``crash_before_latest`` kill it
at those points, ``enospc[:FILE]`` makes writing FILE fail with ENOSPC,
``signal_after:FILE`` sends the process SIGTERM after writing FILE (a second
preemption signal in the middle of the preemption checkpoint).
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import signal
import stat
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass

import numpy as np

from . import npz_io

FORMAT = "distnn.checkpoint"
VERSION = 1
MANIFEST = "manifest.json"
TRAINER_JSON = "trainer.json"
LATEST = "latest"
BEST = "best"
DEFAULT_DIRNAME = "checkpoints"
FAULT_ENV = "DISTNN_CKPT_FAULT"
_STEP_RE = re.compile(r"^step-(\d+)$")
# top-level keys of the state whose arrays get a file of their own (the rest go to state.npz)
_ARRAY_FILES = {"model": "model.npz", "optimizer": "optimizer.npz"}


class CheckpointError(ValueError):
    """A checkpoint cannot be written, found or loaded (one-line message naming the path and file)."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint is incomplete or its files do not match the manifest's checksums."""


def step_name(step: int) -> str:
    return f"step-{int(step):08d}"


# ---------------------------------------------------------------- encoding
def encode_state(state: dict) -> tuple[dict, dict]:
    """Split a nested state into a JSON-able skeleton and ``{file: {key: array}}``.

    Arrays under the top-level key ``model`` go to ``model.npz`` keyed by their
    name (so that file is an ordinary state_dict npz), ``optimizer`` arrays to
    ``optimizer.npz``, all others to ``state.npz``, keyed by their path.
    """
    arrays: dict[str, dict] = {}
    # This runs at every save on the training thread, over a history that grows every epoch: plain
    # values are copied without a call, and the path of a value is a chain of (parent, key) tuples
    # spelled out only for an array's key or an error message.

    def spell(node):
        keys = []
        while node is not None:
            node, key = node
            keys.append(key)
        return keys[::-1]

    def enc(obj, node, file):
        t = type(obj)
        if t is dict:
            for k in obj:  # all keys first: encoding a value may register an array
                if (type(k) is not str and not isinstance(k, str)) or k[:2] == "__":
                    return {"__dict__": [[enc(k, (node, "key"), file), enc(v, (node, str(k)), file)]
                                         for k, v in obj.items()]}
            out = {}
            for k, v in obj.items():
                tv = type(v)
                if tv is float:
                    out[k] = v if v - v == 0 else {"__float__": repr(v)}
                elif tv is str or tv is int or tv is bool or v is None:
                    out[k] = v
                else:
                    out[k] = enc(v, (node, k), file)
            return out
        if t is list:
            out = []
            for i, v in enumerate(obj):
                tv = type(v)
                if tv is float:
                    out.append(v if v - v == 0 else {"__float__": repr(v)})
                elif tv is str or tv is int or tv is bool or v is None:
                    out.append(v)
                else:
                    out.append(enc(v, (node, str(i)), file))
            return out
        if t is float:
            return obj if obj - obj == 0 else {"__float__": repr(obj)}
        if t is str or t is int or t is bool or obj is None:
            return obj
        if isinstance(obj, np.ndarray) or _is_device_array(obj):
            from distnn.backend import to_numpy

            path = spell(node)
            key = "/".join(path[1:]) if file in _ARRAY_FILES.values() else "/".join(path)
            bucket = arrays.setdefault(file, {})
            if key in bucket or not key:
                raise TypeError(f"checkpoint state: duplicate array key {key!r} at {'/'.join(path)}")
            bucket[key] = np.asarray(to_numpy(obj))
            return {"__array__": [file, key]}
        if isinstance(obj, np.generic):
            return {"__scalar__": obj.dtype.str, "value": enc(obj.item(), node, file)}
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"__float__": repr(obj)}
        if isinstance(obj, (bool, int, str)):
            return obj
        if isinstance(obj, dict):
            return enc(dict(obj), node, file)
        if isinstance(obj, tuple):
            return {"__tuple__": [enc(v, (node, str(i)), file) for i, v in enumerate(obj)]}
        if isinstance(obj, list):
            return enc(list(obj), node, file)
        raise TypeError(f"checkpoint state: cannot store a {type(obj).__name__} at "
                        f"{'/'.join(spell(node)) or '<root>'}")

    skeleton = {}
    for top, value in state.items():
        skeleton[top] = enc(value, (None, top), _ARRAY_FILES.get(top, "state.npz"))
    return skeleton, arrays


def decode_state(skeleton, arrays: dict):
    """Inverse of :func:`encode_state` (``arrays``: ``{file: {key: array}}``)."""
    def dec(obj):
        if isinstance(obj, list):
            return [dec(v) for v in obj]
        if not isinstance(obj, dict):
            return obj
        if "__array__" in obj:
            file, key = obj["__array__"]
            return arrays[file][key]
        if "__scalar__" in obj:
            return np.dtype(obj["__scalar__"]).type(dec(obj["value"]))
        if "__float__" in obj:
            return float(obj["__float__"])
        if "__tuple__" in obj:
            return tuple(dec(v) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {_hashable(dec(k)): dec(v) for k, v in obj["__dict__"]}
        return {k: dec(v) for k, v in obj.items()}

    return dec(skeleton)


def _hashable(k):
    return tuple(_hashable(v) for v in k) if isinstance(k, (list, tuple)) else k


def _is_device_array(obj) -> bool:
    return type(obj).__module__.startswith("cupy") and hasattr(obj, "shape")


npz_bytes = npz_io.npz_bytes


def serialize(state: dict, extra_files: dict | None = None) -> dict:
    """``{file name: bytes}`` of a checkpoint's content (everything but the manifest)."""
    return to_files(*encode_state(state), extra_files)


def to_files(skeleton: dict, arrays: dict, extra_files: dict | None = None, packers: dict | None = None,
             crc: bool = True) -> dict:
    """The second half of :func:`serialize`: npz and JSON bytes from :func:`encode_state`'s output.

    With ``packers`` (a dict kept between saves, see :class:`Serializer`) the
    npz images are packed into buffers reused from the previous call
    (memoryviews, valid until the next call with the same ``packers``);
    ``crc=False`` leaves their CRC-32s to :meth:`Serializer.fill_crc`.
    """
    files = {}
    for name, arrs in arrays.items():
        if packers is not None and npz_io.packable(arrs):
            files[name] = packers.setdefault(name, npz_io.NpzPacker()).pack(arrs, crc=crc)
        else:
            files[name] = npz_bytes(arrs)
    files[TRAINER_JSON] = json.dumps(skeleton, separators=(",", ":")).encode()
    for name, content in (extra_files or {}).items():
        files[name] = content.encode() if isinstance(content, str) else bytes(content)
    return files


class Serializer:
    """:func:`serialize` for repeated saves of the same state layout: the npz images (and the
    extra files' bytes) live in buffers reused from one call to the next, so a save allocates
    nothing large and packs each array with one copy. What a call returns is valid until the
    next call (the checkpoint callback writes it before it saves again).

    The training history grows by a record every epoch and its old records do not change:
    the JSON text of each flat record (scalars only) is kept and reused while the record is
    equal to it, value types included, so a save does not re-encode the whole history
    (which made saving every epoch quadratic in the number of epochs). The bytes are the
    same as :func:`serialize` gives.
    """

    _PLAIN = frozenset((float, int, str, bool, type(None)))

    def __init__(self, extra_files: dict | None = None):
        self._packers: dict = {}
        self._extra = {name: content.encode() if isinstance(content, str) else bytes(content)
                       for name, content in (extra_files or {}).items()}
        self._extra_sha = {name: hashlib.sha256(data).hexdigest() for name, data in self._extra.items()}
        #: ``{name: (path, sha256)}``: the extra files as last written (see :meth:`note_written`),
        #: for :func:`write_checkpoint`'s ``reuse``
        self.reuse: dict = {}
        self._records: list[tuple[tuple, str]] = []  # (record's items and value types, its JSON)
        self._marker = f"history-{os.urandom(8).hex()}"

    def __call__(self, state: dict, crc: bool = True) -> dict:
        """``{file name: bytes-like}`` of ``state``. With ``crc=False`` the npz images are not
        complete until :meth:`fill_crc` has run (a background writer runs it: the training
        thread then only copies the arrays)."""
        history = state.get("history")
        if type(history) is not list:
            return to_files(*encode_state(state), self._extra, self._packers, crc)
        fragments = []
        for i, rec in enumerate(history):
            if type(rec) is not dict:
                return to_files(*encode_state(state), self._extra, self._packers, crc)
            key = (tuple(rec.items()), tuple(map(type, rec.values())))
            if i < len(self._records) and self._records[i][0] == key:
                fragments.append(self._records[i][1])
                continue
            if not self._PLAIN.issuperset(key[1]) or any(type(k) is not str or k[:2] == "__" for k in rec):
                return to_files(*encode_state(state), self._extra, self._packers, crc)
            text = json.dumps(encode_state({"r": rec})[0]["r"], separators=(",", ":"))
            del self._records[i:]
            self._records.append((key, text))
            fragments.append(text)
        del self._records[len(history):]
        skeleton, arrays = encode_state({**state, "history": self._marker})
        files = to_files(skeleton, arrays, self._extra, self._packers, crc)
        text = files[TRAINER_JSON].decode()
        files[TRAINER_JSON] = text.replace(f'"{self._marker}"', "[" + ",".join(fragments) + "]", 1).encode()
        return files

    def note_written(self, path: str) -> None:
        """Record that checkpoint ``path`` holds this serializer's extra files: the next write may link them."""
        self.reuse = {name: (os.path.join(path, name), sha) for name, sha in self._extra_sha.items()}

    def crc_fillers(self, files: dict) -> dict:
        """``{name: callable}`` completing each npz image of ``files`` (what ``self(state, crc=False)``
        returned): :func:`write_checkpoint`'s ``prepare``."""
        return {name: packer.fill_crc for name, packer in self._packers.items()
                if packer._buf is not None and getattr(files.get(name), "obj", None) is packer._buf}

    def fill_crc(self, files: dict) -> None:
        """Complete the npz images of ``files`` (what ``self(state, crc=False)`` returned)."""
        for fill in self.crc_fillers(files).values():
            fill()


# ---------------------------------------------------------------- fault injection
def _faults(step):
    out = []
    for item in os.environ.get(FAULT_ENV, "").split(","):
        item = item.strip()
        if not item:
            continue
        spec, _, at = item.partition("@")
        if at and int(at) != int(step):
            continue
        action, _, target = spec.partition(":")
        out.append((action, target))
    return out


def _fault(step, action, target="", faults=None):
    for a, t in (_faults(step) if faults is None else faults):
        if a == action and (not t or t == target):
            if action.startswith("crash"):
                os.kill(os.getpid(), signal.SIGKILL)  # as sudden as a node failure
                time.sleep(10)
            if action == "enospc":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), target)
            if action == "signal_after":
                os.kill(os.getpid(), signal.SIGTERM)


# ---------------------------------------------------------------- atomic writing
def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _load_syncfs():
    """``syncfs(fd)`` from the C library where it reports write-back errors (Linux >= 5.8), else None.

    Opt-in (``DISTNN_CKPT_SYNCFS=1``): syncfs also flushes other processes' dirty data on the
    same file system, which on a shared node or a network file system can take far longer
    than fsyncing our own files. The default is one fsync per file.
    """
    if not sys.platform.startswith("linux") or os.environ.get("DISTNN_CKPT_SYNCFS", "0") != "1":
        return None
    try:
        release = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", os.uname().release).groups())
        if release < (5, 8):  # older kernels' syncfs returned 0 even when write-back failed
            return None
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError, ValueError, TypeError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int], ctypes.c_int

    def syncfs(fd: int) -> None:
        if fn(fd) != 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
    return syncfs


#: One ``syncfs`` makes every file of a checkpoint and their directory entries durable with one
#: journal commit; an fsync per file (and of the directory) costs a commit each: about 3 times the
#: time and CPU for a checkpoint's 5-7 files (benchmarks/bench_checkpoint.py). On a 2-core machine
#: the I/O of each commit slows training even when a background thread issues it.
_SYNCFS = _load_syncfs()


def _load_start_writeback():
    """``sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)`` from the C library on Linux, else None.

    It starts the write-back of a file's dirty pages and returns without
    waiting. Started on every file of a checkpoint before the first fsync, the
    write-back (and the block allocation of delayed-allocation file systems)
    of all of them lands in one journal commit: the fsyncs that follow mostly
    find their data on its way. A hint only: the fsyncs still report errors.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    fn.argtypes, fn.restype = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint], ctypes.c_int
    return lambda fd: fn(fd, 0, 0, 2)  # 2: SYNC_FILE_RANGE_WRITE


_START_WRITEBACK = _load_start_writeback()


def _fsync_fd(fd) -> None:
    if fd is not None:
        try:
            os.fsync(fd)
        except OSError:
            pass


def _create(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o666)


def _write_all(fd: int, data) -> None:
    view = memoryview(data)  # unbuffered: no copy of the data
    while view:
        view = view[os.write(fd, view):]


def _write_file(path: str, data, fsync: bool) -> None:
    """Write ``data`` (bytes-like) to ``path``, then fsync it."""
    fd = _create(path)
    try:
        _write_all(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _link(source: str, target: str, nbytes: int) -> bool:
    """Hard-link ``source`` as ``target`` if it is there with ``nbytes`` bytes; False when it cannot be."""
    try:
        if os.stat(source).st_size != nbytes:
            return False
        os.link(source, target)
    except (OSError, NotImplementedError):  # gone, another file system, or links not supported
        return False
    return True


def _remove_tree(path: str) -> None:
    """Remove a checkpoint directory (flat: files only) quietly; ``shutil.rmtree`` for anything else."""
    try:
        for n in os.listdir(path):
            os.unlink(os.path.join(path, n))
        os.rmdir(path)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)


def _recycle_dir(spare: str, tmp: str) -> dict | None:
    """Rename the spare directory ``spare`` to ``tmp``; ``{name: size}`` of its files that may be
    overwritten in place. None when it cannot be used (then ``tmp`` does not exist).

    A file with more than one link (``model.json``, ``config.toml``: shared with other
    checkpoints) is unlinked, never written through.
    """
    try:
        os.rename(spare, tmp)
    except OSError:
        return None
    sizes = {}
    try:
        with os.scandir(tmp) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                    sizes[e.name] = st.st_size
                else:
                    os.unlink(e.path)
    except OSError:
        _remove_tree(tmp)
        return None
    return sizes


def _open_for_write(path: str, recycled: dict | None) -> int:
    """A descriptor to write ``path`` from its start: the recycled file itself (its blocks are
    rewritten, not freed and allocated again) or a new file."""
    if recycled is not None and os.path.basename(path) in recycled:
        return os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    return _create(path)


def _tmp_suffix() -> str:
    return os.urandom(4).hex()


# ---------------------------------------------------------------- hashing on spare cores
#: files at least this large are checksummed on the hashing threads (smaller ones inline)
PARALLEL_HASH_BYTES = 1 << 18
_HASH_POOL: tuple | None = None  # (pid, executor): a forked child must not reuse its parent's (dead) threads


def _hash_pool() -> ThreadPoolExecutor:
    global _HASH_POOL
    if _HASH_POOL is None or _HASH_POOL[0] != os.getpid():
        _HASH_POOL = (os.getpid(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="distnn-ckpt-hash"))
    return _HASH_POOL[1]


class _Digest:
    """``prepare()`` (e.g. the npz CRC-32s), then the SHA-256 of ``data``, on a hashing thread.

    ``ready`` is set once the bytes are final, so the file can be written while
    it is hashed. SHA-256 and CRC-32 are most of a save's CPU (about 0.7 and
    0.25 ms per MB here) and release the GIL, so the large files are checksummed
    side by side while the calling thread writes: on a machine with an idle
    core (the other ranks wait for rank 0 during a synchronous save) a save
    takes about the time of its largest file's checksum instead of the sum.
    """

    def __init__(self, data, prepare=None):
        self.ready = threading.Event()
        self.future = _hash_pool().submit(self._run, data, prepare)

    def _run(self, data, prepare):
        try:
            if prepare is not None:
                prepare()
        finally:
            self.ready.set()
        return hashlib.sha256(data).hexdigest()


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
            _write_file(tmp, (name + "\n").encode(), fsync)
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
    if fsync:
        _fsync_dir(root)


def write_pointer(root: str, which: str, name: str, fsync: bool = True) -> None:
    """Replace the pointer file ``root/which`` (``latest``/``best``) atomically with ``name``."""
    write_pointers(root, name, (which,), fsync)


def read_pointer(root: str, which: str = LATEST) -> str | None:
    try:
        with open(os.path.join(root, which)) as f:
            name = f.read().strip()
    except OSError:
        return None
    return name if _STEP_RE.match(name) else None


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
    no partial directory is left and ``latest`` is unchanged.

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
    not there; distnn never loads through ``latest``: resume, evaluate and
    predict take the newest checkpoint whose checksums verify.)
    """
    name = step_name(step)
    final = os.path.join(root, name)
    tmp = os.path.join(root, f".tmp-{name}-{os.getpid()}-{_tmp_suffix()}")
    faults = _faults(step)
    pointers = (LATEST,) * bool(update_latest) + (BEST,) * bool(update_best)
    opened: list[tuple[str, int]] = []  # (name for error messages, fd) still to fsync and close
    staged: list[tuple[str, str]] = []  # pointer (temporary file, pointer file)
    root_fd = None
    current = "the checkpoint directory"
    prepare = prepare or {}
    digests = {}  # name: _Digest running on the hashing threads
    try:
        for fname, data in files.items():
            if not (reuse and fname in reuse) and memoryview(data).nbytes >= PARALLEL_HASH_BYTES:
                digests[fname] = _Digest(data, prepare.get(fname))
        current = root
        recycled = _recycle_dir(recycle, tmp) if recycle else None
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
                _fault(step, "enospc", fname, faults)
            nbytes = memoryview(data).nbytes
            same = reuse.get(fname) if reuse else None
            digest = digests.get(fname)
            if same is not None and recycled and recycled.pop(fname, None) is not None:
                os.unlink(os.path.join(tmp, fname))  # a link replaces it
            if same is not None and _link(same[0], os.path.join(tmp, fname), nbytes):
                entries[fname] = {"sha256": same[1], "bytes": nbytes}
            else:
                if digest is not None:
                    digest.ready.wait()
                elif fname in prepare:
                    prepare[fname]()
                opened.append((fname, _open_for_write(os.path.join(tmp, fname), recycled)))
                _write_all(opened[-1][1], data)
                if recycled and recycled.pop(fname, nbytes) > nbytes:
                    os.ftruncate(opened[-1][1], nbytes)
                # the bytes are in memory: hashing them does not read the file back
                sha = digest.future.result() if digest is not None else hashlib.sha256(data).hexdigest()
                entries[fname] = {"sha256": sha, "bytes": nbytes}
            if faults:
                _fault(step, "crash_after", fname, faults)
                _fault(step, "signal_after", fname, faults)
        current = MANIFEST
        for old in recycled or ():  # files of the recycled checkpoint that this one does not have
            if old != MANIFEST:
                os.unlink(os.path.join(tmp, old))
        man = {"format": FORMAT, "version": VERSION, "name": name, "step": int(step),
               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **(manifest or {}), "files": entries}
        if faults:
            _fault(step, "enospc", MANIFEST, faults)
        opened.append((MANIFEST, _open_for_write(os.path.join(tmp, MANIFEST), recycled)))
        text = json.dumps(_json_clean(man)).encode()
        _write_all(opened[-1][1], text)
        if recycled and recycled.get(MANIFEST, 0) > len(text):
            os.ftruncate(opened[-1][1], len(text))
        for w in pointers:
            current = w
            staged.append((os.path.join(root, f"{w}.tmp-{os.getpid()}"), os.path.join(root, w)))
            opened.append((w, _create(staged[-1][0])))
            _write_all(opened[-1][1], (name + "\n").encode())
        if fsync and _SYNCFS is not None and opened:
            current = "the checkpoint's files"
            _SYNCFS(opened[0][1])  # all of them and the new directory's entries, in one commit
        if fsync and _SYNCFS is None and _START_WRITEBACK is not None:
            for _, fd in opened:
                _START_WRITEBACK(fd)
        while opened:
            current, fd = opened[-1]
            if fsync and _SYNCFS is None:
                os.fsync(fd)
            opened.pop()
            os.close(fd)
        if fsync and _SYNCFS is None:
            _fsync_dir(tmp)
        if faults:
            _fault(step, "crash_before_rename", "", faults)
        current = name
        trash = None
        if os.path.lexists(final):  # the same step again (a resumed run): move the old one aside first
            trash = os.path.join(root, f".trash-{name}-{_tmp_suffix()}")
            os.rename(final, trash)
        os.rename(tmp, final)
        if faults:
            _fault(step, "crash_before_latest", "", faults)
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
            _fsync_fd(root_fd)
        if trash:  # after the fsync: the step's new checkpoint is durable before its old one goes
            _remove_tree(trash)
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
        if os.path.isdir(tmp):
            _remove_tree(tmp)
        if isinstance(e, OSError):
            raise CheckpointError(f"cannot write checkpoint {final!r} ({current}): {e.strerror or e}") from None
        raise
    if root_fd is not None:
        os.close(root_fd)
    return final


def _json_clean(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# ---------------------------------------------------------------- reading and verification
@dataclass
class CheckpointInfo:
    path: str
    step: int

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


def is_checkpoint_dir(path: str) -> bool:
    return os.path.isfile(os.path.join(path, MANIFEST))


def read_manifest(path: str) -> dict:
    mpath = os.path.join(path, MANIFEST)
    if not os.path.exists(mpath):
        raise CorruptCheckpointError(f"checkpoint {path!r} is incomplete: {MANIFEST} is missing")
    try:
        with open(mpath, "rb") as f:
            man = json.loads(f.read())
    except (OSError, ValueError) as e:
        raise CorruptCheckpointError(f"checkpoint {path!r}: {MANIFEST} is unreadable ({e})") from None
    if not isinstance(man, dict) or man.get("format") != FORMAT or not isinstance(man.get("files"), dict):
        raise CorruptCheckpointError(f"checkpoint {path!r}: {MANIFEST} is not a distnn checkpoint manifest")
    if int(man.get("version", 0)) > VERSION:
        raise CheckpointError(f"checkpoint {path!r} has format version {man['version']}; this distnn reads "
                              f"up to {VERSION}")
    return man


def _read_verified(path: str, fname: str, entry: dict) -> bytes:
    fpath = os.path.join(path, fname)
    try:
        with open(fpath, "rb", buffering=0) as f:
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

    futures = {fname: _hash_pool().submit(read, fname, entry) for fname, entry in files.items()
               if size(entry) >= PARALLEL_HASH_BYTES}
    try:
        return {fname: futures[fname].result() if fname in futures else read(fname, entry)
                for fname, entry in files.items()}
    finally:
        wait_futures(futures.values())


def verify_checkpoint(path: str) -> list[str]:
    """Problems found in checkpoint ``path`` (empty when complete and every checksum matches)."""
    try:
        man = read_manifest(path)
    except CheckpointError as e:
        return [str(e)]
    return [str(got) for got in _read_all_verified(path, man["files"]).values() if isinstance(got, CheckpointError)]


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
    state = decode_state(json.loads(raw[TRAINER_JSON]), arrays)
    state["_files"] = {k: bytes(v) for k, v in raw.items() if not k.endswith(".npz") and k != TRAINER_JSON}
    return state, man


def list_checkpoints(root: str) -> list[CheckpointInfo]:
    """The ``step-N`` directories under ``root``, oldest first (valid or not)."""
    out = []
    try:
        with os.scandir(root) as it:
            for e in it:
                m = _STEP_RE.match(e.name)
                if m and e.is_dir():
                    out.append(CheckpointInfo(e.path, int(m.group(1))))
    except OSError:
        return []
    return sorted(out, key=lambda c: c.step)


def checkpoint_root(path: str) -> str:
    """The checkpoint root for ``path``: a run directory (its ``checkpoints/``) or a root itself."""
    sub = os.path.join(path, DEFAULT_DIRNAME)
    if os.path.isdir(sub) and not list_checkpoints(path):
        return sub
    return path


def load_latest_valid(root: str, warn=None) -> tuple[str, dict, dict] | None:
    """``(path, state, manifest)`` of the newest checkpoint under ``root`` that verifies, or None.

    Each newer checkpoint that is incomplete or corrupt is reported through
    ``warn(message)`` (naming the bad file) and skipped.
    """
    for info in reversed(list_checkpoints(root)):
        try:
            state, man = read_checkpoint(info.path)
        except CheckpointError as e:
            if warn is not None:
                warn(f"{e}; skipping it and trying the previous checkpoint")
            continue
        return info.path, state, man
    return None


def resolve_and_load(spec: str, default_root: str | None, warn=None):
    """What ``--resume SPEC`` names: ``(path, state, manifest)`` or None (``auto`` with no checkpoint yet).

    ``spec`` is ``auto`` (the newest valid checkpoint under ``default_root``),
    a checkpoint directory (must verify), or a run directory / checkpoint root
    (its newest valid checkpoint). Raises :class:`CheckpointError`.
    """
    if spec == "auto":
        if default_root is None:
            raise CheckpointError("--resume auto needs the run directory (--out RUN_DIR) to look for checkpoints in")
        found = load_latest_valid(default_root, warn)
        if found is None and list_checkpoints(default_root):
            raise CheckpointError(f"no valid checkpoint in {default_root!r}: every one is incomplete or corrupt")
        return found
    path = str(spec)
    if not os.path.exists(path):
        raise CheckpointError(f"--resume {path!r}: no such checkpoint or run directory")
    if is_checkpoint_dir(path) or _STEP_RE.match(os.path.basename(os.path.normpath(path))):
        state, man = read_checkpoint(path)
        return path, state, man
    root = checkpoint_root(path)
    found = load_latest_valid(root, warn)
    if found is None:
        raise CheckpointError(f"--resume {path!r}: no valid checkpoint found in {root!r}")
    return found


# ---------------------------------------------------------------- housekeeping
def apply_retention(root: str, keep_last: int, protect=(), latest: str | None = None,
                    spare: list | None = None) -> list[str]:
    """Delete all but the newest ``keep_last`` checkpoints (never those named in ``protect``).

    A directory is renamed to a hidden name before it is removed, so a crash
    mid-delete never leaves a half-deleted ``step-N`` behind. Returns the removed names.
    ``latest``: the name ``latest`` points at when the caller just wrote it (else it is read).

    ``spare``: a list; while it is empty, the first checkpoint retired is not
    deleted but renamed to a hidden ``.spare-step-N-...`` directory (its path
    appended to the list) for the next :func:`write_checkpoint` to ``recycle``:
    rewriting a file's blocks in place costs less than freeing them here and
    allocating new ones there (on the digits job's checkpoints about 1.0 ms
    against 1.6 ms a save, benchmarks/bench_checkpoint.py's machine). The spare
    is no longer a checkpoint (its name says so), so ``keep_last`` valid ones
    remain at every instant, as without it; :func:`cleanup_temporaries` removes
    one left behind.
    """
    if keep_last is None or keep_last <= 0:
        return []
    cps = list_checkpoints(root)
    if len(cps) <= keep_last:
        return []
    protect = {os.path.basename(str(p)) for p in protect if p}
    protect.add(latest or read_pointer(root, LATEST))
    removed = []
    for info in cps[:-keep_last]:
        if info.name in protect:
            continue
        if spare is not None and not spare:
            dest = os.path.join(root, f".spare-{info.name}-{os.getpid()}-{_tmp_suffix()}")
            try:
                os.rename(info.path, dest)
            except OSError:
                continue
            spare.append(dest)
            removed.append(info.name)
            continue
        trash = os.path.join(root, f".trash-{info.name}-{_tmp_suffix()}")
        try:
            os.rename(info.path, trash)
        except OSError:
            continue
        _remove_tree(trash)
        removed.append(info.name)
    return removed


def cleanup_temporaries(root: str) -> list[str]:
    """Remove ``.tmp-*``/``.trash-*``/``.spare-*`` directories left by a crash (call when no write is in flight)."""
    out = []
    try:
        names = os.listdir(root)
    except OSError:
        return out
    for n in names:
        if n.startswith((".tmp-step-", ".trash-step-", ".spare-step-")):
            shutil.rmtree(os.path.join(root, n), ignore_errors=True)
            out.append(n)
        elif n.startswith((f"{LATEST}.tmp-", f"{BEST}.tmp-")):
            try:
                os.remove(os.path.join(root, n))
            except OSError:
                pass
    return out


def remove_spares(spares: list) -> None:
    """Delete the spare directories of :func:`apply_retention` (``spares`` is emptied)."""
    while spares:
        _remove_tree(spares.pop())


def discard_newer(root: str, step: int) -> list[str]:
    """Move checkpoints newer than ``step`` aside (``discarded-step-N``): a run resumed from an older
    checkpoint must not later "resume" into the abandoned future."""
    moved = []
    for info in list_checkpoints(root):
        if info.step > step:
            dest = os.path.join(root, f"discarded-{info.name}-{uuid.uuid4().hex[:6]}")
            os.rename(info.path, dest)
            moved.append(info.name)
    if moved and read_pointer(root, LATEST) in moved:
        remaining = list_checkpoints(root)
        if remaining:
            write_pointer(root, LATEST, remaining[-1].name)
        else:
            try:
                os.remove(os.path.join(root, LATEST))
            except OSError:
                pass
    return moved


def model_directory(directory: str, warn=None) -> str:
    """Where ``evaluate``/``predict`` find a model for ``directory``.

    A checkpoint directory is verified (ValueError naming the bad file) and
    used as is; a run directory without a final ``model.npz`` (an interrupted
    run) or a checkpoint root gives its newest valid checkpoint; anything else
    is returned unchanged.
    """
    if is_checkpoint_dir(directory) or _STEP_RE.match(os.path.basename(os.path.normpath(directory))):
        problems = verify_checkpoint(directory)
        if problems:
            raise CheckpointError(problems[0])
        return directory
    if os.path.isfile(os.path.join(directory, "model.npz")):
        return directory
    root = checkpoint_root(directory)
    for info in reversed(list_checkpoints(root)):
        problems = verify_checkpoint(info.path)
        if not problems:
            return info.path
        if warn is not None:
            warn(f"{problems[0]}; trying the previous checkpoint")
    return directory
