"""distnn.save / distnn.load without PyTorch: round trips, sharing, file objects, map_location, refusals
of malicious or broken files (the torch oracle is in test_save_load_torch.py)."""
import io
import os
import pickle
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import distnn
import distnn.nn as nn

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_,
          np.complex64, np.complex128]


def _roundtrip(obj, **kwargs):
    buf = io.BytesIO()
    distnn.save(obj, buf)
    buf.seek(0)
    return distnn.load(buf, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_roundtrip_keeps_dtype_shape_strides_values_and_sharing(dtype):
    base = (np.arange(24).reshape(4, 6) % 7 - 3).astype(dtype)
    views = {"base": base, "t": base.T, "stepped": base[1:, ::2], "row": base[2], "scalar": np.asarray(base[1, 1]),
             "empty": np.zeros((0, 3), dtype), "big_endian": base.astype(base.dtype.newbyteorder(">"))}
    out = _roundtrip({k: distnn.Tensor(v) for k, v in views.items()})
    for name, a in views.items():
        d = out[name]
        assert type(d) is distnn.Tensor and d.dtype == a.dtype.newbyteorder("=") and d.shape == a.shape, name
        assert d.stride() == distnn.Tensor(a).stride(), name
        np.testing.assert_array_equal(d.numpy(), a, err_msg=name)
    for name in ("t", "stepped", "row"):  # views of one array: views of one array again
        assert np.shares_memory(out[name].data, out["base"].data), name
    out["base"].data[2] = out["base"].data[0]
    np.testing.assert_array_equal(out["row"].numpy(), base[0])


def test_one_tensor_twice_is_one_object_and_unrelated_arrays_stay_apart():
    a, b = distnn.ones(3), distnn.ones(3)
    out = _roundtrip([a, a, b])
    assert out[0] is out[1] and not np.shares_memory(out[0].data, out[2].data)


def test_numpy_arrays_and_scalars_become_tensors_and_numbers():
    out = _roundtrip({"arr": np.arange(4.0), "f": np.float32(0.5), "i": np.int64(3), "b": np.bool_(True)})
    assert type(out["arr"]) is distnn.Tensor and out["arr"].dtype == np.float64
    assert (out["f"], out["i"], out["b"]) == (0.5, 3, True) and type(out["i"]) is int


def test_negative_strides_are_saved_as_a_copy():
    x = np.arange(6.0)
    out = _roundtrip(distnn.Tensor(x[::-2]))
    np.testing.assert_array_equal(out.numpy(), [5.0, 3.0, 1.0])
    assert out.stride() == (1,)


def test_model_and_optimizer_state_dicts_roundtrip(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    opt = distnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(distnn.randn(8, 3)).sum().backward()
    opt.step()
    distnn.save({"model": model.state_dict(), "opt": opt.state_dict()}, tmp_path / "ckpt.pt")
    state = distnn.load(str(tmp_path / "ckpt.pt"))
    fresh = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    fresh.load_state_dict(state["model"])
    x = distnn.randn(5, 3)
    model.eval(), fresh.eval()
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())
    assert state["opt"]["param_groups"] == opt.state_dict()["param_groups"]
    assert list(state["model"]) == list(model.state_dict())


def test_file_objects_paths_and_archive_layout(tmp_path):
    path = tmp_path / "weights.v1.pt"
    distnn.save({"w": distnn.ones(2)}, path)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert names[0] == "weights/data.pkl" and "weights/data/0" in names and zf.read("weights/version") == b"3\n"
        assert zf.read("weights/byteorder") == b"little"
        member = zf.getinfo("weights/data/0")
    with open(path, "rb") as fh:  # the storage's bytes start 64-byte aligned in the file, as torch's
        fh.seek(member.header_offset + 26)
        name_len, extra_len = np.frombuffer(fh.read(4), "<u2")
        assert (member.header_offset + 30 + name_len + extra_len) % 64 == 0
        fh.seek(0)
        assert distnn.load(fh)["w"].numpy().tolist() == [1.0, 1.0]
    assert distnn.load(os.fspath(path))["w"].shape == (2,)

    class Stream:  # a non-seekable stream is read whole first
        def __init__(self, data):
            self.raw = io.BytesIO(data)

        def read(self, n=-1):
            return self.raw.read(n)

        def seekable(self):
            return False

    assert distnn.load(Stream(path.read_bytes()))["w"].shape == (2,)
    with pytest.raises(TypeError, match="path or a writable binary file"):
        distnn.save(distnn.ones(1), 3)
    with open(path, "r") as text, pytest.raises((TypeError, UnicodeDecodeError)):
        distnn.load(text)


def test_map_location():
    t = distnn.arange(4.0)
    assert _roundtrip(t, map_location="cpu").is_cpu
    assert _roundtrip(t, map_location={"cuda:0": "cpu"}).is_cpu
    calls = []
    out = _roundtrip([t, t[1:]], map_location=lambda a, loc: calls.append((loc, a.shape)))
    assert calls == [("cpu", (4,))] and out[1].numpy().tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="not a device"):
        _roundtrip(t, map_location="tpu")
    if not distnn.backend.gpu_available():
        with pytest.raises(RuntimeError, match="cupy with a CUDA GPU is not available.*map_location='cpu'"):
            _roundtrip(t, map_location="cuda")


def _archive_with_pickle(payload: bytes, storages=None, byteorder=b"little") -> io.BytesIO:
    """A torch.save-shaped archive whose data.pkl is ``payload``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/byteorder", byteorder)
        for key, data in (storages or {}).items():
            zf.writestr(f"archive/data/{key}", data)
        zf.writestr("archive/version", b"3\n")
    buf.seek(0)
    return buf


class _System:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


class _Eval:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


@pytest.mark.parametrize("evil, name", [(_System(), f"{os.system.__module__}.system"), (_Eval(), "GLOBAL eval "),
                                        ({"ok": [1, _System()]}, "system")])
def test_malicious_pickles_are_refused_naming_the_global(evil, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    archive = _archive_with_pickle(pickle.dumps(evil, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=f"Weights only load failed.*{name}.*not an allowed global"):
        distnn.load(archive)
    assert not (tmp_path / "pwned.txt").exists()


def test_out_of_bounds_tensor_geometry_is_refused():
    # _rebuild_tensor_v2 over a 4-element storage asking for 10 elements: must not read past the storage
    good = io.BytesIO()
    distnn.save(distnn.arange(4.0), good)
    with zipfile.ZipFile(good) as zf:
        pkl, storage = zf.read("archive/data.pkl"), zf.read("archive/data/0")
    bad = pkl.replace(b"K\x04\x85", b"K\x0a\x85")  # (the size tuple (4,) -> (10,))
    assert bad != pkl
    with pytest.raises(pickle.UnpicklingError, match="outside its storage"):
        distnn.load(_archive_with_pickle(bad, {"0": storage}))
    with pytest.raises(RuntimeError, match="has 8 bytes, not 4 elements"):
        distnn.load(_archive_with_pickle(pkl, {"0": storage[:8]}))


def test_big_endian_archives_are_read_in_native_order():
    good = io.BytesIO()
    distnn.save([distnn.arange(3.0, dtype=distnn.float64), distnn.tensor([1, -2], dtype=distnn.int16)], good)
    with zipfile.ZipFile(good) as zf:
        pkl = zf.read("archive/data.pkl")
        swapped = {k: np.frombuffer(zf.read(f"archive/data/{k}"), dt).byteswap().tobytes()
                   for k, dt in (("0", np.float64), ("1", np.int16))}
    out = distnn.load(_archive_with_pickle(pkl, swapped, byteorder=b"big"))
    assert out[0].numpy().tolist() == [0.0, 1.0, 2.0] and out[1].numpy().tolist() == [1, -2]


def test_broken_files_give_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        distnn.load(tmp_path / "missing.pt")
    path = tmp_path / "w.pt"
    distnn.save({"w": distnn.randn(100)}, path)
    data = path.read_bytes()
    for cut in (len(data) - 10, len(data) // 2, 100):
        (tmp_path / "cut.pt").write_bytes(data[:cut])
        with pytest.raises(RuntimeError, match="truncated or corrupt"):
            distnn.load(tmp_path / "cut.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(RuntimeError, match="empty"):
        distnn.load(tmp_path / "empty.pt")
    (tmp_path / "legacy.pt").write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(RuntimeError, match="legacy format .* not supported"):
        distnn.load(tmp_path / "legacy.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(RuntimeError, match="not a torch.save file"):
        distnn.load(tmp_path / "text.pt")
    np.savez(tmp_path / "arrays.npz", a=np.ones(2))
    with pytest.raises(RuntimeError, match="without a data.pkl record.*npz"):
        distnn.load(tmp_path / "arrays.npz")


def test_unsupported_dtypes_and_objects():
    with pytest.raises(TypeError, match="dtype <U1 has no PyTorch equivalent"):
        distnn.save(np.array(["a"]), io.BytesIO())
    out = _roundtrip({"obj": {1, 2}, "dtype": distnn.int32}, weights_only=False)
    assert out == {"obj": {1, 2}, "dtype": np.int32}


def test_save_and_load_never_import_torch(tmp_path):
    code = textwrap.dedent("""
        import sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ImportError(f"{name} blocked for this test")

        sys.meta_path.insert(0, Block())
        import distnn
        import distnn.nn as nn
        model = nn.Linear(3, 2)
        distnn.save({"sd": model.state_dict(), "p": model.weight}, sys.argv[1])
        back = distnn.load(sys.argv[1])
        assert isinstance(back["p"], nn.Parameter) and back["sd"]["bias"].shape == (2,)
        assert not any(m.split(".")[0] == "torch" for m in sys.modules)
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m.pt")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(distnn.__file__))})
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
