"""A training state <-> the files of a checkpoint: npz arrays and a JSON skeleton (no pickle)."""
from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np

from .. import npz_io
from .names import TRAINER_JSON


# top-level keys of the state whose arrays get a file of their own (the rest go to state.npz)
_ARRAY_FILES = {"model": "model.npz", "optimizer": "optimizer.npz"}


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
