"""The checkpoint's own .npz packing and loading (distnn/train/npz_io.py) against numpy's savez/load."""
import io
import zipfile

import numpy as np
import pytest

from distnn.train import npz_io

ARRAYS = {
    "fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
    "empty": np.zeros((0, 4)),
    "scalar": np.array(2.5),
    "strings": np.array(["ab", "c"]),
    "big_endian/strided": np.arange(10, dtype=">i8")[::2],
    "record": np.array([(1.5, 2), (3.0, -1)], dtype=[("a", "<f4"), ("b", "i1")]),
    "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
    "mask": np.array([True, False, True]),
    "ünïcode": np.ones(3, np.float16),
}


def _np_load(data):
    with np.load(io.BytesIO(bytes(data)), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _same(a, b):
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_packed_npz_is_what_np_load_reads_and_the_buffer_is_reused():
    packer = npz_io.NpzPacker()
    data = packer.pack(ARRAYS)
    _same(_np_load(data), ARRAYS)
    assert zipfile.ZipFile(io.BytesIO(bytes(data))).testzip() is None  # every member's CRC-32 is right
    first = bytes(data)
    changed = dict(ARRAYS, **{"fc.weight": ARRAYS["fc.weight"] + 1})
    again = packer.pack(changed)
    assert again.obj is data.obj  # same buffer, new content and CRCs
    assert bytes(again) != first
    _same(_np_load(again), changed)
    assert zipfile.ZipFile(io.BytesIO(bytes(again))).testzip() is None
    # a new layout (another shape) is laid out afresh
    grown = dict(changed, scalar=np.arange(3.0))
    _same(_np_load(packer.pack(grown)), grown)


@pytest.mark.parametrize("writer", ["packer", "np.savez"])
def test_load_npz_fast_path_gives_writable_aligned_views(writer):
    if writer == "packer":
        data = bytearray(npz_io.NpzPacker().pack(ARRAYS))
    else:
        buf = io.BytesIO()
        np.savez(buf, **ARRAYS)
        data = bytearray(buf.getvalue())
    out = npz_io._load_stored(data)  # the fast path itself (no fallback)
    _same(out, ARRAYS)
    assert all(a.flags.writeable for a in out.values())
    if writer == "packer":
        assert all(a.ctypes.data % 16 == 0 for a in out.values() if a.size)
    out["fc.weight"][0, 0] = 42  # a view of the buffer, owned by the caller now
    assert out["fc.weight"][0, 0] == 42


def test_load_npz_falls_back_to_np_load_for_compressed_archives():
    buf = io.BytesIO()
    np.savez_compressed(buf, **ARRAYS)
    with pytest.raises(ValueError):
        npz_io._load_stored(buf.getvalue())
    _same(npz_io.load_npz(buf.getvalue()), ARRAYS)


def test_object_arrays_are_not_packed():
    objs = {"o": np.array([{"a": 1}], dtype=object)}
    assert not npz_io.packable(objs)
    assert npz_io.packable(ARRAYS)


def test_serializer_reuses_buffers_and_history_text_but_writes_what_serialize_writes():
    from distnn.train import checkpoint as ck

    rec = {"epoch": 0, "train_loss": 2.5, "val_loss": float("nan"), "lr": 0.05, "count": 180, "note": "x"}
    state = {"model": {"w": np.ones(3, np.float32)}, "optimizer": {"state": {0: {"m": np.zeros(3)}}},
             "history": [], "misc": {"t": (1, 2)}}
    ser = ck.Serializer({"model.json": "{}"})

    def check():
        got = {k: bytes(v) for k, v in ser(state).items()}
        assert got == {k: bytes(v) for k, v in ck.serialize(state, {"model.json": "{}"}).items()}

    for epoch in range(4):
        state["history"].append(dict(rec, epoch=epoch))
        state["model"]["w"] += 1
        check()
    state["history"][1]["lr"] = 1           # the same value as another type is encoded again
    check()
    state["history"][1]["lr"] = np.float64(1.0)
    check()
    state["history"][2]["extra"] = [1, 2]   # not flat: the whole state is encoded the plain way
    check()
    del state["history"][2:]
    check()


def test_dict_with_an_array_and_a_non_string_key_round_trips():
    from distnn.train import checkpoint as ck

    state = {"misc": {"a": np.arange(2.0), 1: (3, "x"), "__x": {"y": np.ones(1, np.int8)}}}
    skeleton, arrays = ck.encode_state(state)
    out = ck.decode_state(skeleton, arrays)["misc"]
    assert list(out) == ["a", 1, "__x"] and out[1] == (3, "x")
    np.testing.assert_array_equal(out["a"], [0.0, 1.0])
    assert out["__x"]["y"].dtype == np.int8


def test_deferred_crc_is_stale_until_filled_then_matches_serialize():
    from distnn.train import checkpoint as ck

    state = {"model": {"w": np.arange(4000, dtype=np.float32)}, "optimizer": {"state": {0: {"m": np.ones(5)}}}}
    ser = ck.Serializer()
    ser(state)                                  # a first save: the CRCs in the buffer are those of arange
    state["model"]["w"] = state["model"]["w"] * 2
    files = ser(state, crc=False)               # the arrays are copied, their CRC-32s not yet updated
    want = {k: bytes(v) for k, v in ck.serialize(state).items()}
    assert bytes(files["model.npz"]) != want["model.npz"]
    ser.fill_crc(files)
    assert {k: bytes(v) for k, v in files.items()} == want
    _same(_np_load(bytes(files["model.npz"])), state["model"])
