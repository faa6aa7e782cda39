"""Fast uncompressed ``.npz`` files for checkpoints: packed into reused buffers, read without copies.

An uncompressed ``.npz`` (what ``np.savez`` writes) is a ZIP archive whose
members are ``.npy`` files stored as is. :class:`NpzPacker` computes that
layout (ZIP headers, ``.npy`` headers, offsets) once for a set of array names,
dtypes and shapes, and each :meth:`~NpzPacker.pack` only copies the arrays
into their slots of one preallocated buffer and patches the members' CRC-32s:
no zipfile module, no per-save allocation, one buffer to write with one
call. ``np.load`` reads the result like any ``.npz`` (each member's data is
padded to a 64-byte file offset with a ZIP "extra" field, so arrays read in
place are aligned).

:func:`load_npz` reads any ``.npz`` whose bytes are already verified (the
checkpoint's SHA-256): for stored members it parses the ZIP directory and
``.npy`` headers itself and returns arrays that are views of the (writable)
buffer; anything else (compressed members, ZIP64) goes through ``np.load``.
"""
from __future__ import annotations

import ast
import io
import struct
import zipfile
import zlib

import numpy as np

ALIGN = 64
_LOCAL = struct.Struct("<IHHHHHIIIHH")          # local file header, 30 bytes
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")  # central directory entry, 46 bytes
_END = struct.Struct("<IHHHHIIH")               # end of central directory, 22 bytes
_LOCAL_SIG, _CENTRAL_SIG, _END_SIG = 0x04034B50, 0x02014B50, 0x06054B50
_DOS_TIME, _DOS_DATE = 0, (0 << 9) | (1 << 5) | 1  # 1980-01-01 00:00: the same bytes every save
_PAD_ID = 0xD935  # the "alignment" extra field (as zipalign writes it); readers skip unknown ids
_MADE_BY = (3 << 8) | 20  # made on Unix (so the external attributes are rw------- permissions), ZIP 2.0
_LIMIT = 2**32 - 2**20  # larger archives need ZIP64: left to np.savez


def npy_header(dtype: np.dtype, shape: tuple) -> bytes:
    """The ``.npy`` header (magic, version, dict) of a C-ordered array, padded like numpy pads it."""
    d = repr({"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)})
    for version, fmt in ((1, "<H"), (2, "<I")):
        size = 6 + 2 + struct.calcsize(fmt)
        pad = -(size + len(d) + 1) % ALIGN
        body = (d + " " * pad + "\n").encode("latin1")
        if version == 2 or len(body) < 2**16:
            return b"\x93NUMPY" + bytes([version, 0]) + struct.pack(fmt, len(body)) + body
    raise AssertionError


def packable(arrays: dict) -> bool:
    """Whether :class:`NpzPacker` can store ``arrays`` (numpy arrays without Python objects, < 4 GB)."""
    total = 0
    for a in arrays.values():
        if not isinstance(a, np.ndarray) or a.dtype.hasobject or a.dtype.itemsize == 0:
            return False
        total += a.nbytes + 512
    return total < _LIMIT


def _member(name: str, a: np.ndarray, off: int, data=None) -> tuple[bytes, bytes, bytes]:
    """(``.npy`` header, local ZIP header up to it, central directory entry) of a stored member ``name``
    holding ``a`` at file offset ``off``; the member's data is padded (an extra field) to start at a
    multiple of :data:`ALIGN`. The CRC-32 is of ``data`` (``a``'s bytes), or 0 without it."""
    fname = (name + ".npy").encode("utf-8")
    flags = 0 if fname.isascii() else 0x800
    head = npy_header(a.dtype, a.shape)
    crc = 0 if data is None else zlib.crc32(data, zlib.crc32(head))
    size = len(head) + a.nbytes
    pad = -(off + _LOCAL.size + len(fname) + 4 + len(head)) % ALIGN
    extra = struct.pack("<HH", _PAD_ID, pad) + b"\0" * pad
    local = _LOCAL.pack(_LOCAL_SIG, 20, flags, 0, _DOS_TIME, _DOS_DATE, crc, size, size, len(fname), len(extra))
    entry = _CENTRAL.pack(_CENTRAL_SIG, _MADE_BY, 20, flags, 0, _DOS_TIME, _DOS_DATE, crc, size, size, len(fname),
                          0, 0, 0, 0, 0o600 << 16, off) + fname
    return head, local + fname + extra, entry


class NpzPacker:
    """Packs ``{name: array}`` into an uncompressed ``.npz`` image, reusing one buffer between calls.

    The returned memoryview stays valid (and unchanged) until the next
    :meth:`pack`. Check :func:`packable` first (object arrays need pickle,
    which checkpoints never store; huge archives need ZIP64).
    """

    def __init__(self):
        self._key = None
        self._buf = None
        self._slots = []

    def _layout(self, arrays: dict, key) -> None:
        parts, central, slots, off = [], [], [], 0
        for name, a in arrays.items():
            head, local, entry = _member(name, a, off)  # (CRC-32s patched in by fill_crc)
            data_off = off + len(local) + len(head)
            parts.append((off, local + head))
            slots.append((off + 14, data_off - len(head), data_off, zlib.crc32(head), len(central)))
            central.append(bytearray(entry))
            off = data_off + a.nbytes
        cd_off = off
        cd = b"".join(central)
        buf = bytearray(cd_off + len(cd) + _END.size)
        for start, blob in parts:
            buf[start:start + len(blob)] = blob
        pos = cd_off
        self._slots = []
        for (crc_off, member_off, data_off, head_crc, i), entry in zip(slots, central):
            buf[pos:pos + len(entry)] = entry
            self._slots.append((crc_off, pos + 16, member_off, data_off, head_crc))
            pos += len(entry)
        buf[pos:] = _END.pack(_END_SIG, 0, 0, len(central), len(central), len(cd), cd_off, 0)
        self._buf, self._key = buf, key
        self._views = [np.ndarray(a.shape, a.dtype, buffer=buf, offset=s[3]) for a, s in zip(arrays.values(),
                                                                                              self._slots)]

    def pack(self, arrays: dict, crc: bool = True) -> memoryview:
        """The ``.npz`` bytes of ``arrays`` (numpy arrays), in the reused buffer.

        ``crc=False`` only copies the arrays: the members' CRC-32s are stale
        until :meth:`fill_crc` (which a background writer can run: zlib
        releases the GIL while it checksums a large buffer).
        """
        key = tuple((k, a.dtype.str, a.dtype.descr if a.dtype.names else None, a.shape) for k, a in arrays.items())
        if key != self._key:
            self._layout(arrays, key)
        for view, a in zip(self._views, arrays.values()):
            np.copyto(view, a, casting="no")
        if crc:
            self.fill_crc()
        return memoryview(self._buf)

    def fill_crc(self) -> None:
        """Write the CRC-32 of each member's current bytes into its local and central headers."""
        buf = self._buf
        mv = memoryview(buf)
        for view, (crc_off, central_crc_off, member_off, data_off, head_crc) in zip(self._views, self._slots):
            crc = zlib.crc32(mv[data_off:data_off + view.nbytes], head_crc)
            struct.pack_into("<I", buf, crc_off, crc)
            struct.pack_into("<I", buf, central_crc_off, crc)


def refuse_objects(arrays: dict) -> None:
    """ValueError naming the first value that is no array of numbers: it would be pickled, and distnn
    reads its ``.npz`` files without pickle (a file that cannot be loaded is worse than no file)."""
    for name, a in arrays.items():
        if not isinstance(a, np.ndarray) and np.asanyarray(a).dtype.hasobject or \
                isinstance(a, np.ndarray) and a.dtype.hasobject:
            raise ValueError(f"'{name}' is a {type(a).__name__} of Python objects, not an array of numbers: "
                             "distnn's .npz files hold numeric arrays only, never pickled objects (a module's "
                             "get_extra_state must return a numpy array for its model to be saved)")


def write_npz(f, arrays: dict) -> None:
    """Write ``arrays`` as an uncompressed ``.npz`` to the binary stream ``f``, front to back (``f`` is
    only written to, never sought or read), from the arrays' own memory: no image of the archive is
    built, so writing a model costs no second copy of its weights.

    The bytes are what :meth:`NpzPacker.pack` packs (each member's CRC-32 is computed first, in a pass
    over the array, so that its header is final when written); when :func:`packable` says no, what
    ``np.savez`` writes to a stream that cannot seek.
    """
    if not packable(arrays):  # np.savez's own writing (ZIP64), in 16 MiB chunks
        refuse_objects(arrays)
        with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as z:
            for name, a in arrays.items():
                # (a stream without seek: zipfile writes each member's sizes after it, not back in its header)
                with z.open(name + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(a), allow_pickle=False)
        return
    central, off = [], 0
    for name, a in arrays.items():
        data = (a if a.flags.c_contiguous else a.copy(order="C")).reshape(-1).view(np.uint8)
        head, local, entry = _member(name, a, off, data)
        f.write(local + head)
        f.write(data)
        central.append(entry)
        off += len(local) + len(head) + a.nbytes
    cd = b"".join(central)
    f.write(cd + _END.pack(_END_SIG, 0, 0, len(central), len(central), len(cd), off, 0))


def npz_bytes(arrays: dict) -> bytes:
    """A fresh ``.npz`` image of ``arrays`` (uncompressed; ``np.savez`` when :func:`packable` says no)."""
    if packable(arrays):
        return bytes(NpzPacker().pack(arrays))
    refuse_objects(arrays)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def load_npz(data) -> dict:
    """``{name: array}`` of an ``.npz`` image (bytes, or a bytearray whose arrays are then writable views).

    The caller has verified the bytes (SHA-256), so the members' CRC-32s are
    not checked again on the fast path.
    """
    try:
        return _load_stored(data)
    except (ValueError, KeyError, struct.error, SyntaxError, TypeError):
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}


def _load_stored(data) -> dict:
    mv = memoryview(data)
    end = len(mv) - _END.size
    sig, _, _, _, count, cd_size, cd_off, comment = _END.unpack_from(mv, end)
    if sig != _END_SIG or comment or cd_off + cd_size != end or count == 0xFFFF or cd_off == 0xFFFFFFFF:
        raise ValueError("not a plain zip")
    out, pos = {}, cd_off
    for _ in range(count):
        (csig, _, _, flags, method, _, _, _, csize, usize, nlen, xlen, clen, _, _, _,
         loff) = _CENTRAL.unpack_from(mv, pos)
        if csig != _CENTRAL_SIG or method != 0 or flags & 1 or csize != usize or 0xFFFFFFFF in (csize, loff):
            raise ValueError("not a stored member")
        name = bytes(mv[pos + 46:pos + 46 + nlen]).decode("utf-8" if flags & 0x800 else "cp437")
        pos += 46 + nlen + xlen + clen
        lsig, *_, lnlen, lxlen = _LOCAL.unpack_from(mv, loff)
        if lsig != _LOCAL_SIG or not name.endswith(".npy"):
            raise ValueError("unexpected member")
        start = loff + _LOCAL.size + lnlen + lxlen
        out[name[:-4]] = _npy_view(data, start, usize)
    return out


def _npy_view(data, start: int, size: int) -> np.ndarray:
    mv = memoryview(data)
    if bytes(mv[start:start + 6]) != b"\x93NUMPY":
        raise ValueError("not an .npy member")
    major = mv[start + 6]
    fmt = "<H" if major == 1 else "<I"
    hlen = struct.unpack_from(fmt, mv, start + 8)[0]
    hstart = start + 8 + struct.calcsize(fmt)
    header = ast.literal_eval(bytes(mv[hstart:hstart + hlen]).decode("latin1"))
    dtype = np.lib.format.descr_to_dtype(header["descr"])
    if dtype.hasobject:
        raise ValueError("object arrays are not loaded")
    shape = tuple(header["shape"])
    count = int(np.prod(shape, dtype=np.int64))
    offset = hstart + hlen
    if offset + count * dtype.itemsize > start + size:
        raise ValueError("member too short")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return arr.reshape(shape, order="F" if header["fortran_order"] else "C")
