"""A training state <-> the files of a checkpoint: npz arrays and a JSON skeleton (no pickle)."""
from __future__ import annotations

import hashlib
import json
import math
import os
from itertools import chain
from operator import is_

import numpy as np

from .. import npz_io
from .names import TRAINER_JSON, CorruptCheckpointError


# top-level keys of the state whose arrays get a file of their own (the rest go to state.npz)
_ARRAY_FILES = {"model": "model.npz", "optimizer": "optimizer.npz"}

#: Records of the training history a chunk file holds (see :func:`to_files`).
HISTORY_CHUNK = 256
_CHUNKS, _TAIL = "__chunks__", "tail"
# json.dumps(obj, separators=(",", ":")) builds this encoder at each call: one, reused (it keeps no state)
_compact = json.JSONEncoder(separators=(",", ":")).encode


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

    def path_key(node, file):  # (in model.npz and optimizer.npz: less the top-level key)
        path = spell(node)
        return "/".join(path[1:] if file in _ARRAY_FILES.values() else path)

    def array(obj, node, file, key=None):  # key: spelled already (a dict's arrays share its spelling)
        key = path_key(node, file) if key is None else key
        bucket = arrays.setdefault(file, {})
        if key in bucket or not key:
            raise TypeError(f"checkpoint state: duplicate array key {key!r} at {'/'.join(spell(node))}")
        if type(obj) is not np.ndarray:  # (a numpy array is its own host array: no call for it)
            from distnn.backend import to_numpy

            obj = np.asarray(to_numpy(obj))
        bucket[key] = obj
        return {"__array__": [file, key]}

    def enc(obj, node, file):
        t = type(obj)
        if t is dict:
            for k in obj:  # all keys first: encoding a value may register an array
                if (type(k) is not str and not isinstance(k, str)) or k[:2] == "__":
                    return {"__dict__": [[k if type(k) is int else enc(k, (node, "key"), file),  # (an int: itself)
                                          enc(v, (node, str(k)), file)] for k, v in obj.items()]}
            out = {}
            prefix = None  # the path of this dict's arrays, up to their own keys: spelled at the first
            for k, v in obj.items():
                tv = type(v)
                if tv is float:
                    out[k] = v if v - v == 0 else {"__float__": repr(v)}
                elif tv is str or tv is int or tv is bool or v is None:
                    out[k] = v
                elif tv is np.ndarray:
                    if prefix is None:
                        prefix = f"{p}/" if (p := path_key(node, file)) else ""
                    out[k] = array(v, (node, k), file, prefix + k)
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
            return array(obj, node, file)
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


def serialize(state: dict, extra_files: dict | None = None, history_chunk: int | None = None) -> dict:
    """``{file name: bytes}`` of a checkpoint's content (everything but the manifest)."""
    return to_files(*encode_state(state), extra_files, history_chunk=history_chunk)


def chunk_name(index: int) -> str:
    return f"history-{index:06d}.json"


def to_files(skeleton: dict, arrays: dict, extra_files: dict | None = None, packers: dict | None = None,
             crc: bool = True, history_chunk: int | None = None, dump=None) -> dict:
    """The second half of :func:`serialize`: npz and JSON bytes from :func:`encode_state`'s output.

    With ``packers`` (a dict kept between saves, see :class:`Serializer`) the
    npz images are packed into buffers reused from the previous call
    (memoryviews, valid until the next call with the same ``packers``);
    ``crc=False`` leaves their CRC-32s to :meth:`Serializer.fill_crc`.
    ``dump`` (the skeleton -> its JSON text; compact JSON by default) makes
    ``trainer.json``'s text.

    The training history (top-level ``history``, a list growing a record an
    epoch) goes in whole chunks of ``history_chunk`` records (default
    :data:`HISTORY_CHUNK`) to files of their own, ``history-000000.json`` on;
    only the records after the last whole chunk stay in ``trainer.json``:
    ``{"__chunks__": [names], "tail": [records]}`` (a list, as in format 1,
    while there is no whole chunk). A chunk never changes once whole, so a
    later checkpoint links it (:class:`Serializer`) and a save writes a bounded
    amount of history however long the run.
    """
    files = {}
    history = skeleton.get("history")
    history_chunk = history_chunk or HISTORY_CHUNK
    if type(history) is list and len(history) >= history_chunk:
        whole = len(history) // history_chunk
        names = [chunk_name(k) for k in range(whole)]
        for k, name in enumerate(names):
            files[name] = _compact(history[k * history_chunk:(k + 1) * history_chunk]).encode()
        skeleton = {**skeleton, "history": {_CHUNKS: names, _TAIL: history[whole * history_chunk:]}}
    for name, arrs in arrays.items():
        if packers is not None and npz_io.packable(arrs):
            files[name] = packers.setdefault(name, npz_io.NpzPacker()).pack(arrs, crc=crc)
        else:
            files[name] = npz_bytes(arrs)
    files[TRAINER_JSON] = (dump or _compact)(skeleton).encode()
    for name, content in (extra_files or {}).items():
        files[name] = content.encode() if isinstance(content, str) else bytes(content)
    return files


def join_history(skeleton: dict, files: dict, where: str) -> list[str]:
    """Put the history chunks (:func:`to_files`) of ``files`` (``{name: bytes}``) back into
    ``skeleton`` (``trainer.json`` parsed) in place; return the chunk files' names.

    ``where`` names the checkpoint in a :class:`CorruptCheckpointError`.
    """
    history = skeleton.get("history") if isinstance(skeleton, dict) else None
    if not (isinstance(history, dict) and _CHUNKS in history):
        return []
    names, records = history[_CHUNKS], []
    if not (isinstance(names, list) and isinstance(history.get(_TAIL), list)):
        raise CorruptCheckpointError(f"checkpoint {where!r}: {TRAINER_JSON}'s history is damaged")
    for name in names:
        if name not in files:
            raise CorruptCheckpointError(f"checkpoint {where!r}: history file {name} is not listed in its manifest")
        try:
            chunk = json.loads(files[name])
        except ValueError as e:
            raise CorruptCheckpointError(f"checkpoint {where!r}: history file {name} is unreadable ({e})") from None
        if not isinstance(chunk, list):
            raise CorruptCheckpointError(f"checkpoint {where!r}: history file {name} is not a list of records")
        records.extend(chunk)
    skeleton["history"] = records + history[_TAIL]
    return names


def _no_text(skeleton) -> str:
    return ""  # (Serializer puts trainer.json's bytes, or its PendingText, in place of this)


class PendingText:
    """``trainer.json``'s bytes still to be made (:class:`Serializer` with ``text=False``): its skeleton,
    with the history's place marked, and the texts of the history's records after its whole chunks."""

    __slots__ = ("skeleton", "marker", "records", "chunks")

    def __init__(self, skeleton: dict, marker: str, records: list, chunks: int):
        self.skeleton, self.marker, self.records, self.chunks = skeleton, marker, records, chunks

    def bytes(self) -> bytes:
        tail = "[" + ",".join(self.records) + "]"
        if self.chunks:
            names = ",".join(f'"{chunk_name(k)}"' for k in range(self.chunks))
            tail = f'{{"{_CHUNKS}":[{names}],"{_TAIL}":{tail}}}'
        return _compact(self.skeleton).replace(f'"{self.marker}"', tail, 1).encode()


def fill_text(files: dict) -> None:
    """Make the bytes of each :class:`PendingText` of ``files`` (what a :class:`Serializer` returned), in place."""
    for name, data in files.items():
        if type(data) is PendingText:
            files[name] = data.bytes()


class Serializer:
    """:func:`serialize` for repeated saves of the same state layout: the npz images (and the
    extra files' bytes) live in buffers reused from one call to the next, so a save allocates
    nothing large and packs each array with one copy. What a call returns is valid until the
    next call (the checkpoint callback writes it before it saves again).

    The training history grows by a record every epoch and its old records do not change:
    the JSON text of each flat record (scalars only) is kept and reused while the record
    holds the same keys and the same value objects (a value replaced, even by an equal one,
    is encoded again), so a save does not re-encode the whole history, nor look at each
    record in Python (which made saving every epoch quadratic in the number of epochs: 12 ms
    a save after 10,000 epochs, measured). Whole chunks of the
    history (:func:`to_files`) keep their bytes and SHA-256 while their records do not
    change, and :attr:`reuse` offers the previous checkpoint's copy of each for a hard link,
    so a save writes and hashes at most a chunk of history. The bytes are the same as
    :func:`serialize` gives.
    """

    _PLAIN = frozenset((float, int, str, bool, type(None)))

    def __init__(self, extra_files: dict | None = None, history_chunk: int | None = None):
        self._packers: dict = {}
        self._extra = {name: content.encode() if isinstance(content, str) else bytes(content)
                       for name, content in (extra_files or {}).items()}
        self._chunk = int(history_chunk or HISTORY_CHUNK)
        # the SHA-256 of each file a call returned that a later checkpoint may link instead of
        # writing (the extra files; the history's whole chunks, while their records stay the same)
        self._sha = {name: hashlib.sha256(data).hexdigest() for name, data in self._extra.items()}
        self._written: dict = {}  # {name: (path, sha256)}: those files as the last checkpoint written holds them
        # the history's records as the last call saw them: each one's JSON text, and (to tell that a
        # record is unchanged without a Python-level look at each) their lengths, keys and value
        # objects laid end to end; values are compared by identity, which they keep: they are held here
        self._texts: list[str] = []
        self._lengths: list[int] = []
        self._keys: list[str] = []
        self._values: list = []
        self._chunks: list[bytes] = []  # the whole chunks' bytes, while their records stay the same
        self._marker = f"history-{os.urandom(8).hex()}"

    @property
    def reuse(self) -> dict:
        """``{name: (path, sha256)}``: files of the last checkpoint written (see :meth:`note_written`)
        that hold what the last call returned under that name: :func:`write_checkpoint`'s ``reuse``."""
        return {name: got for name, got in self._written.items() if self._sha.get(name) == got[1]}

    def __call__(self, state: dict, crc: bool = True, text: bool = True) -> dict:
        """``{file name: bytes-like}`` of ``state``. With ``crc=False`` the npz images are not
        complete until :meth:`fill_crc` has run (a background writer runs it: the training
        thread then only copies the arrays). With ``text=False`` ``trainer.json`` is a
        :class:`PendingText` until :func:`fill_text` makes its bytes: the JSON encoding of a
        skeleton that nothing else holds, which a background writer can do as well."""
        history = state.get("history")
        if type(history) is not list:
            return self._plain(state, crc)
        same = self._unchanged(history)
        if same < len(self._texts):
            self._forget(same)
        for rec in history[same:]:
            if type(rec) is not dict or not self._PLAIN.issuperset(map(type, rec.values())) or any(
                    type(k) is not str or k[:2] == "__" for k in rec):
                return self._plain(state, crc)
            # (encode_state's output for a flat record: only a non-finite float is spelled otherwise)
            self._texts.append(_compact({k: v if type(v) is not float or v - v == 0 else {"__float__": repr(v)}
                                         for k, v in rec.items()}))
            self._lengths.append(len(rec))
            self._keys.extend(rec)
            self._values.extend(rec.values())
        fragments = self._texts
        c = self._chunk
        self._drop_chunks(same // c)
        whole = len(fragments) // c
        while len(self._chunks) < whole:
            k = len(self._chunks)
            data = ("[" + ",".join(fragments[k * c:(k + 1) * c]) + "]").encode()
            self._chunks.append(data)
            self._sha[chunk_name(k)] = hashlib.sha256(data).hexdigest()
        skeleton, arrays = encode_state({**state, "history": self._marker})
        files = {chunk_name(k): data for k, data in enumerate(self._chunks)}
        # (the skeleton is encode_state's own, its leaves immutable, and the records' texts are strings:
        # the text can be made later, in another thread; the slice is the tail's own list of them)
        pending = PendingText(skeleton, self._marker, fragments[whole * c:], whole)
        files.update(to_files(skeleton, arrays, self._extra, self._packers, crc, c, dump=_no_text))
        files[TRAINER_JSON] = pending.bytes() if text else pending
        return files

    def _plain(self, state: dict, crc: bool) -> dict:
        """The whole state encoded afresh (a history that is not flat records): nothing cached."""
        self._forget(0)
        self._drop_chunks(0)
        return to_files(*encode_state(state), self._extra, self._packers, crc, self._chunk)

    def _unchanged(self, history: list) -> int:
        """How many leading records of ``history`` are as the last call saw them (the same keys in the
        same order, holding the same value objects): one pass in C over the whole history when none
        changed (the usual case: records are appended, never edited), record by record otherwise."""
        m = min(len(history), len(self._texts))
        head = history[:m] if m < len(history) else history
        lengths = self._lengths[:m] if m < len(self._lengths) else self._lengths
        try:
            if (list(map(len, head)) == lengths
                    and all(map(is_, chain.from_iterable(map(dict.values, head)), self._values))
                    and list(chain.from_iterable(map(dict.keys, head))) == (
                        self._keys if m == len(self._lengths) else self._keys[:sum(lengths)])):
                return m
        except TypeError:  # a record that is not a dict: found below
            pass
        at = 0
        for i, rec in enumerate(head):
            n = self._lengths[i]
            if not (type(rec) is dict and len(rec) == n and list(rec) == self._keys[at:at + n]
                    and all(map(is_, rec.values(), self._values[at:at + n]))):
                return i
            at += n
        return m

    def _forget(self, keep: int) -> None:
        """Forget the records from ``keep`` on."""
        at = sum(self._lengths[:keep])
        del self._texts[keep:], self._lengths[keep:], self._keys[at:], self._values[at:]

    def _drop_chunks(self, keep: int) -> None:
        """Forget the whole chunks from ``keep`` on (their records changed or went)."""
        for k in range(keep, len(self._chunks)):
            self._sha.pop(chunk_name(k), None)
        del self._chunks[keep:]

    def note_written(self, path: str) -> None:
        """Record that checkpoint ``path`` holds what the last call returned: the next write may link
        the files of it that do not change."""
        self._written = {name: (os.path.join(path, name), sha) for name, sha in self._sha.items()}

    def crc_fillers(self, files: dict) -> dict:
        """``{name: callable}`` completing each npz image of ``files`` (what ``self(state, crc=False)``
        returned): :func:`write_checkpoint`'s ``prepare``."""
        return {name: packer.fill_crc for name, packer in self._packers.items()
                if packer._buf is not None and getattr(files.get(name), "obj", None) is packer._buf}

    def fill_crc(self, files: dict) -> None:
        """Complete the npz images of ``files`` (what ``self(state, crc=False)`` returned)."""
        for fill in self.crc_fillers(files).values():
            fill()
