"""``save_model`` streams ``model.npz`` to its file, hashed as it is written.

It built the whole archive in memory first (a BytesIO of ``np.savez``, from a copied state dict): two
extra copies of the weights at the end of a run, which a large model may not have room for. Now the
weights go from their own memory to the file, and ``SHA256SUMS`` lists the SHA-256 of the bytes written.
"""
from __future__ import annotations

import hashlib
import io
import tracemalloc
import zipfile

import numpy as np
import pytest

from distnn import nn
from distnn.train import npz_io
from distnn.train import run_checksums
from distnn.train import run_dir as rd


def _model():
    # 4 layers of 1 MiB each: a copy of any one layer stays far below a copy of the whole
    layers = [nn.Linear(512, 512) for _ in range(4)]
    for k, layer in enumerate(layers):
        layer.weight.data[...] = np.random.default_rng(k).standard_normal((512, 512)).astype(np.float32)
    return nn.Sequential(*layers)


def test_save_model_lists_the_sha256_of_the_file_and_copies_no_weights(tmp_path):
    model = _model()
    state = model.state_dict()
    weights = sum(a.nbytes for a in state.values())
    assert weights > 4 * 2**20
    tracemalloc.start()
    try:
        rd.save_model(str(tmp_path), model, {"model": "test"}, step=7)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < weights / 4, (peak, weights)  # (was above 2x: a copied state dict, then the archive)

    data = (tmp_path / "model.npz").read_bytes()
    sums = run_checksums.read_sums(str(tmp_path))
    assert sums["model.npz"] == hashlib.sha256(data).hexdigest()
    assert sums["model.json"] == hashlib.sha256((tmp_path / "model.json").read_bytes()).hexdigest()
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None  # every member's CRC-32 is right
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        assert list(z.files) == list(state)
        for k in state:
            np.testing.assert_array_equal(z[k], state[k], err_msg=k)
    assert list(npz_io.load_npz(bytearray(data))) == list(state)


class _Stream:  # a write-only stream, as save_model's (no tell, no seek)
    def __init__(self):
        self.data = bytearray()

    def write(self, b):
        self.data += bytes(b)
        return len(b)

    def flush(self):
        pass


def test_write_npz_writes_front_to_back_what_the_packer_packs():
    from test_checkpoint_npz import ARRAYS, _np_load, _same

    out = _Stream()
    npz_io.write_npz(out, ARRAYS)
    assert bytes(out.data) == bytes(npz_io.NpzPacker().pack(ARRAYS))
    _same(_np_load(out.data), ARRAYS)


def test_write_npz_of_arrays_the_packer_cannot_store_is_what_np_savez_writes():
    arrays = {"a": np.arange(3.0), "empty_items": np.zeros(3, dtype="V0")}  # (itemsize 0: not packable)
    assert not npz_io.packable(arrays)
    out = _Stream()
    npz_io.write_npz(out, arrays)
    assert zipfile.ZipFile(io.BytesIO(bytes(out.data))).testzip() is None
    with np.load(io.BytesIO(bytes(out.data)), allow_pickle=False) as z:
        np.testing.assert_array_equal(z["a"], arrays["a"])
        assert z["empty_items"].dtype == np.dtype("V0") and z["empty_items"].shape == (3,)
    # Python objects would be pickled, and distnn reads without pickle: refused, nothing written
    out = _Stream()
    with pytest.raises(ValueError, match="'objects' is a ndarray of Python objects"):
        npz_io.write_npz(out, {"a": np.arange(3.0), "objects": np.array([{"x": 1}, None], dtype=object)})
    assert not out.data
