"""distnn.save / distnn.load against PyTorch's torch.save / torch.load (the oracle): one file format both ways.

What distnn.save writes, torch.load(weights_only=True) reads with the same dtype, shape, strides, values
and storage sharing; what torch.save writes, distnn.load reads; a torch model's state_dict loads into the
same distnn architecture and gives the same outputs (the pretrained-weights use case).
"""
import collections
import io

import numpy as np
import pytest

import distnn
import distnn.nn as nn
import distnn.optim as optim

torch = pytest.importorskip("torch")

DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_,
          np.complex64, np.complex128]


def _values(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 50
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return (x > 0) if dtype == np.bool_ else x.astype(dtype)


def _layouts(dtype):
    """name -> array: contiguous, 0-d, empty, transposed, sliced with steps, a broadcast (stride 0) view."""
    base = _values((4, 6), dtype)
    return {"plain": base, "scalar": _values((), dtype), "empty": _values((0, 3), dtype),
            "transposed": base.T, "stepped": base[1:, ::2], "column": base[:, 3], "expanded": np.broadcast_to(
                base[0], (3, 6)), "3d": _values((2, 3, 4), dtype).transpose(2, 0, 1)}


def _roundtrip_to_torch(obj, tmp_path):
    path = tmp_path / "x.pt"
    distnn.save(obj, path)
    return torch.load(path, weights_only=True)


def _torch_to_distnn(obj, **kwargs):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return distnn.load(buf, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_distnn_save_torch_load_every_dtype_and_layout(dtype, tmp_path):
    arrays = _layouts(dtype)
    loaded = _roundtrip_to_torch({k: distnn.Tensor(v) for k, v in arrays.items()}, tmp_path)
    for name, a in arrays.items():
        t = loaded[name]
        assert isinstance(t, torch.Tensor) and str(t.dtype) == "torch." + np.dtype(dtype).name.replace("bool_", "bool")
        assert tuple(t.shape) == a.shape, name
        assert t.stride() == distnn.Tensor(a).stride(), name
        np.testing.assert_array_equal(t.numpy(), a, err_msg=name)
    # torch sees the views of one array as views of one storage (saved once)
    assert loaded["transposed"].untyped_storage().data_ptr() == loaded["plain"].untyped_storage().data_ptr()
    assert loaded["stepped"].storage_offset() == 6 and loaded["column"].storage_offset() == 3


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_torch_save_distnn_load_every_dtype_and_layout(dtype):
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in _layouts(dtype).items()}
    tensors["transposed"] = tensors["plain"].t()
    tensors["stepped"] = tensors["plain"][1:, ::2]
    tensors["expanded"] = tensors["plain"][0].expand(3, 6)
    tensors["empty"] = torch.empty(0, 3, dtype=tensors["plain"].dtype)  # (from_numpy's has strides (0, 0))
    loaded = _torch_to_distnn(tensors)
    for name, t in tensors.items():
        d = loaded[name]
        assert type(d) is distnn.Tensor and d.dtype == np.dtype(dtype), name
        assert d.shape == tuple(t.shape) and d.stride() == t.stride(), name
        np.testing.assert_array_equal(d.numpy(), t.numpy(), err_msg=name)
    assert np.shares_memory(loaded["transposed"].data, loaded["plain"].data)
    assert np.shares_memory(loaded["expanded"].data, loaded["plain"].data)
    loaded["plain"].data[0, 0] = loaded["plain"].data[1, 1]  # writable, and the views see it
    assert loaded["transposed"].data[0, 0] == loaded["plain"].data[1, 1]


def test_parameters_requires_grad_and_containers_both_ways(tmp_path):
    p = nn.Parameter(distnn.randn(3, 2))
    frozen = nn.Parameter(distnn.ones(2), requires_grad=False)
    obj = {"p": p, "frozen": frozen, "leaf": distnn.ones(2, requires_grad=True), "nested": [(1, 2.5, "s"), None,
           {"deep": [distnn.arange(3)]}], "true": True, "complex": 1 + 2j, "bytes": b"\x00\xff", "set": {1, 2},
           "od": collections.OrderedDict(b=1, a=2), "dtype": distnn.float16}
    t = _roundtrip_to_torch(obj, tmp_path)
    assert isinstance(t["p"], torch.nn.Parameter) and t["p"].requires_grad
    assert isinstance(t["frozen"], torch.nn.Parameter) and not t["frozen"].requires_grad
    assert t["leaf"].requires_grad and not isinstance(t["leaf"], torch.nn.Parameter)
    np.testing.assert_array_equal(t["p"].detach().numpy(), p.data)
    assert t["nested"][0] == (1, 2.5, "s") and t["nested"][1] is None
    assert t["nested"][2]["deep"][0].dtype == torch.int64
    assert (t["true"], t["complex"], t["bytes"], t["set"]) == (True, 1 + 2j, b"\x00\xff", {1, 2})
    assert type(t["od"]) is collections.OrderedDict and list(t["od"]) == ["b", "a"]
    assert t["dtype"] is torch.float16
    back = _torch_to_distnn(t)  # and what torch then saves, distnn reads
    assert isinstance(back["p"], nn.Parameter) and back["p"].requires_grad
    assert isinstance(back["frozen"], nn.Parameter) and not back["frozen"].requires_grad
    assert back["leaf"].requires_grad and back["dtype"] is np.float16
    assert back["nested"][0] == (1, 2.5, "s") and back["set"] == {1, 2} and back["bytes"] == b"\x00\xff"
    np.testing.assert_array_equal(back["p"].data, p.data)


def test_torch_sizes_devices_and_dtypes_load_as_names():
    loaded = _torch_to_distnn({"size": torch.Size([2, 3]), "cpu": torch.device("cpu"),
                               "cuda": torch.device("cuda", 1), "dtypes": [torch.float32, torch.int64, torch.bool],
                               "bf16": torch.bfloat16})
    assert loaded["size"] == (2, 3) and loaded["cpu"] == "cpu" and loaded["cuda"] == "cuda:1"
    assert loaded["dtypes"] == [np.float32, np.int64, np.bool_] and repr(loaded["bf16"]) == "torch.bfloat16"


def test_dtypes_without_numpy_equivalent_are_refused_naming_them():
    with pytest.raises(TypeError, match="bfloat16"):
        _torch_to_distnn({"w": torch.ones(2, dtype=torch.bfloat16)})
    assert _torch_to_distnn(torch.zeros(3, dtype=torch.uint16)).dtype == np.uint16  # (torch's "new" storages)


def _pair(seed=0):
    """The same architecture in torch and distnn: a small conv net with batch norm."""
    tm = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                             torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 3))
    dm = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                       nn.Linear(4 * 5 * 5, 3))
    torch.manual_seed(seed)
    for p in tm.parameters():
        torch.nn.init.normal_(p)
    tm[1].running_mean.normal_()
    tm[1].running_var.uniform_(0.5, 2)
    tm[1].num_batches_tracked += 7
    return tm.double().eval(), dm.to(distnn.float64).eval()


def test_pretrained_torch_state_dict_loads_into_the_same_distnn_model(tmp_path):
    tm, dm = _pair()
    path = tmp_path / "pretrained.pt"
    torch.save(tm.state_dict(), path)
    sd = distnn.load(path)
    assert type(sd) is collections.OrderedDict and list(sd) == list(tm.state_dict())
    dm.load_state_dict(sd)
    x = np.random.default_rng(1).standard_normal((5, 2, 5, 5))
    with torch.no_grad():
        expected = tm(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(dm(distnn.Tensor(x)).numpy(), expected, rtol=1e-10, atol=1e-10)
    assert int(dm.state_dict()["1.num_batches_tracked"]) == 7


def _sequence_model(lib):
    """Embedding -> 2-layer LSTM -> transformer encoder layer -> Linear, in ``lib`` (torch.nn or distnn.nn)."""

    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.emb = lib.Embedding(11, 8)
            self.lstm = lib.LSTM(8, 8, num_layers=2, batch_first=True)
            self.enc = lib.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
            self.head = lib.Linear(8, 3)

        def forward(self, tokens):
            return self.head(self.enc(self.lstm(self.emb(tokens))[0]))

    return Net()


def test_pretrained_sequence_model_loads_through_a_file_object():
    torch.manual_seed(4)
    tm, dm = _sequence_model(torch.nn).double().eval(), _sequence_model(nn).to(distnn.float64).eval()
    dm.load_state_dict(_torch_to_distnn(tm.state_dict(), map_location="cpu"))
    tokens = np.random.default_rng(5).integers(0, 11, size=(2, 6))
    with torch.no_grad():
        expected = tm(torch.from_numpy(tokens)).numpy()
    np.testing.assert_allclose(dm(distnn.Tensor(tokens)).numpy(), expected, rtol=1e-9, atol=1e-12)


def test_distnn_state_dicts_load_into_torch(tmp_path):
    tm, dm = _pair(seed=3)
    dm.load_state_dict(_torch_to_distnn(tm.state_dict()))  # (distnn's weights: torch's, so the outputs match)
    for p in dm.parameters():
        p.data *= 1.5  # then changed in distnn, and sent back
    path = tmp_path / "distnn.pt"
    distnn.save(dm.state_dict(), path)
    tm.load_state_dict(torch.load(path, weights_only=True))
    x = np.random.default_rng(2).standard_normal((4, 2, 5, 5))
    with torch.no_grad():
        np.testing.assert_allclose(tm(torch.from_numpy(x)).numpy(), dm(distnn.Tensor(x)).numpy(), rtol=1e-10)


def test_optimizer_state_dicts_keep_their_containers(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    opt = optim.Adam(model.parameters(), lr=0.01)
    for _ in range(2):
        opt.zero_grad()
        model(distnn.randn(5, 3)).sum().backward()
        opt.step()
    state = opt.state_dict()
    t = _roundtrip_to_torch(state, tmp_path)
    assert t["param_groups"] == state["param_groups"]
    assert set(t["state"]) == set(state["state"]) and t["state"][0]["step"] == state["state"][0]["step"]
    np.testing.assert_array_equal(t["state"][0]["exp_avg"].numpy(), state["state"][0]["exp_avg"])
    fresh = optim.Adam(model.parameters(), lr=0.01)
    fresh.load_state_dict(distnn.load(tmp_path / "x.pt"))  # distnn -> distnn: the optimizer resumes
    for a, b in zip(fresh.state_dict()["state"].values(), state["state"].values()):
        np.testing.assert_array_equal(np.asarray(a["exp_avg_sq"]), b["exp_avg_sq"])
    topt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)
    topt.zero_grad()
    loaded = _torch_to_distnn(topt.state_dict())
    assert loaded["param_groups"][0]["momentum"] == 0.9 and loaded["param_groups"][0]["params"] == [0, 1]


def test_torch_pickled_numpy_arrays_are_refused_as_torch_refuses_them(tmp_path):
    torch.save({"n": np.arange(3)}, tmp_path / "np.pt")
    with pytest.raises(Exception, match="numpy._core.multiarray._reconstruct"):
        torch.load(tmp_path / "np.pt", weights_only=True)
    import pickle

    with pytest.raises(pickle.UnpicklingError, match="GLOBAL numpy._core.multiarray._reconstruct was not an allowed"):
        distnn.load(tmp_path / "np.pt")
    np.testing.assert_array_equal(distnn.load(tmp_path / "np.pt", weights_only=False)["n"], np.arange(3))


def test_whole_torch_modules_are_refused_clearly(tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "m.pt")
    import pickle

    with pytest.raises(pickle.UnpicklingError, match="torch.nn.modules.linear.Linear was not an allowed global"):
        distnn.load(tmp_path / "m.pt")
    with pytest.raises(pickle.UnpicklingError, match="distnn cannot rebuild"):
        distnn.load(tmp_path / "m.pt", weights_only=False)


def test_legacy_torch_format_is_refused(tmp_path):
    torch.save(torch.ones(2), tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(RuntimeError, match="legacy format .* not supported"):
        distnn.load(tmp_path / "old.pt")


def test_map_location_with_torch_devices_and_callables():
    t = torch.arange(4.0)
    assert _torch_to_distnn(t, map_location=torch.device("cpu")).is_cpu
    seen = []
    out = _torch_to_distnn([t, t[1:]], map_location=lambda a, loc: seen.append(loc) or a * 1)
    assert seen == ["cpu"]  # (once per storage)
    np.testing.assert_array_equal(out[1].numpy(), [1, 2, 3])
