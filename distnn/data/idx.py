"""MNIST / Fashion-MNIST IDX files: strict reading (plain or gzip) and writing.

IDX layout: a 4-byte magic number ``00 00 TT NN`` (TT = element type code,
NN = number of dimensions), NN big-endian uint32 sizes, then the elements in
big-endian C order. Image files are 3-D (magic 0x00000803 = 2051), label files
1-D (0x00000801 = 2049).

Every problem is a one-line :class:`DataError` naming the file: a wrong magic
number, a header or data section shorter than the header promises, trailing
bytes, broken gzip, image/label counts that differ, labels out of range.
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from .errors import DataError
from .files import check_file, read_error

# type code -> (big-endian numpy dtype, name)
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODE_OF = {np.dtype(v).newbyteorder("=").str: k for k, v in IDX_TYPES.items()}
_CODE_OF.update({np.dtype(v).str: k for k, v in IDX_TYPES.items()})


def _read_bytes(path) -> bytes:
    source = f"IDX file {str(path)!r}"
    check_file(path, source)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise read_error(source, e) from None
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"IDX file {str(path)!r} is a damaged gzip file: {e}") from None
    return raw


def read_idx(path, expect_ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain) into a native-endian numpy array."""
    raw = _read_bytes(path)
    name = repr(str(path))
    if len(raw) < 4:
        raise DataError(f"IDX file {name} is truncated: {len(raw)} bytes, shorter than the 4-byte magic number")
    magic = int.from_bytes(raw[:4], "big")
    code, ndim = raw[2], raw[3]
    if raw[0] != 0 or raw[1] != 0 or code not in IDX_TYPES or ndim == 0:
        raise DataError(f"IDX file {name} has a wrong magic number 0x{magic:08X} (expected 0x0000TTNN with type "
                        f"TT in 08,09,0B,0C,0D,0E and NN dimensions; e.g. 0x00000803 for images)")
    if expect_ndim is not None and ndim != expect_ndim:
        kind = {3: "an image", 1: "a label"}.get(expect_ndim, f"a {expect_ndim}-D")
        raise DataError(f"IDX file {name} has a wrong magic number 0x{magic:08X}: it holds {ndim}-D data, "
                        f"expected {kind} file (0x{0x800 | expect_ndim:08X})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"IDX file {name} is truncated: header needs {header} bytes, file has {len(raw)}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(IDX_TYPES[code])
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    shape_txt = " x ".join(map(str, dims))
    if found < expected:
        raise DataError(f"IDX file {name} is truncated: header says {shape_txt} of {dtype.name} "
                        f"({expected} bytes of data), found {found}")
    if found > expected:
        raise DataError(f"IDX file {name} has {found - expected} unexpected bytes after the {shape_txt} data")
    data = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return data.reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path, array) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``path`` ends in .gz)."""
    array = np.asarray(array)
    code = _CODE_OF.get(array.dtype.str) or _CODE_OF.get(array.dtype.newbyteorder("=").str)
    if code is None:
        raise DataError(f"cannot write dtype {array.dtype} as IDX (use uint8, int8, int16, int32, float32, float64)")
    payload = (bytes([0, 0, code, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
               + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes())
    if str(path).endswith(".gz"):
        payload = gzip.compress(payload)
    with open(path, "wb") as f:
        f.write(payload)


def _find(directory, prefix: str, kind: str):
    """Path of e.g. train-images-idx3-ubyte[.gz] (or the '.idx3' spelling) in ``directory``, or None."""
    ndim = 3 if kind == "images" else 1
    for sep in ("-", "."):
        for ext in ("", ".gz"):
            p = os.path.join(directory, f"{prefix}-{kind}{sep}idx{ndim}-ubyte{ext}")
            if os.path.isfile(p):
                return p
    return None


def find_mnist_files(path) -> dict:
    """Locate IDX image/label pairs under ``path``.

    ``path`` is a directory with ``train-images-idx3-ubyte`` /
    ``train-labels-idx1-ubyte`` (and optionally the ``t10k-`` test pair), plain or
    ``.gz``; or the path of one images file, whose labels file is found by
    replacing ``images``/``idx3`` with ``labels``/``idx1`` in its name.
    Returns ``{"train": (images, labels), "test": (images, labels) or None}``.
    """
    if path is None:
        raise DataError("MNIST-style data needs data.path: a directory with train-images-idx3-ubyte[.gz] "
                        "and train-labels-idx1-ubyte[.gz] (and optionally the t10k-* test files)")
    path = os.path.expanduser(str(path))
    if os.path.isdir(path):
        pairs = {}
        for split, prefix in (("train", "train"), ("test", "t10k")):
            images, labels = _find(path, prefix, "images"), _find(path, prefix, "labels")
            if (images is None) != (labels is None):
                have, missing = (images, "labels") if images else (labels, "images")
                raise DataError(f"IDX directory {path!r} has {os.path.basename(have)} but no {prefix}-{missing} file")
            pairs[split] = (images, labels) if images else None
        if pairs["train"] is None:
            raise DataError(f"IDX directory {path!r} has no train-images-idx3-ubyte[.gz] / "
                            f"train-labels-idx1-ubyte[.gz] files")
        return pairs
    if not os.path.exists(path):
        raise DataError(f"IDX path {path!r} not found")
    base = os.path.basename(path)
    if "images" not in base:
        raise DataError(f"IDX path {path!r} should be a directory or an '*-images-idx3-ubyte' file")
    labels = os.path.join(os.path.dirname(path), base.replace("images", "labels").replace("idx3", "idx1"))
    if not os.path.isfile(labels):
        raise DataError(f"IDX images file {path!r} has no matching labels file {labels!r}")
    return {"train": (path, labels), "test": None}


def load_idx_pair(images_path, labels_path, num_classes: int = 10):
    """(images (N, H, W) uint8, labels (N,) int64) from one IDX pair, cross-checked."""
    images = read_idx(images_path, expect_ndim=3)
    labels = read_idx(labels_path, expect_ndim=1)
    if len(images) != len(labels):
        raise DataError(f"IDX files {str(images_path)!r} and {str(labels_path)!r} disagree: "
                        f"{len(images)} images but {len(labels)} labels")
    labels = labels.astype(np.int64)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(f"IDX file {str(labels_path)!r}: labels must be 0..{num_classes - 1}; "
                        f"offending labels {sorted(set(labels[bad].tolist()))[:10]} (first at item {first})")
    return images, labels
