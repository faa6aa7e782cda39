"""PyTorch's global settings, small queries and buffer/DLPack exchange on distnn (torch_settings.py, interop.py)
against torch 2.13: values returned, strides, refusals, warnings, and memory shared where torch shares it."""
import warnings

import numpy as np
import pytest

import distnn
from distnn.amp import is_autocast_enabled

torch = pytest.importorskip("torch")


def _refusal(fn):
    with pytest.raises(Exception) as e:
        fn()
    return type(e.value), str(e.value)


def test_float32_matmul_precision_records_validates_and_warns_as_torch():
    try:
        assert distnn.get_float32_matmul_precision() == torch.get_float32_matmul_precision() == "highest"
        for p in ("high", "medium", "highest", "medium"):
            distnn.set_float32_matmul_precision(p)
            torch.set_float32_matmul_precision(p)
            assert distnn.get_float32_matmul_precision() == torch.get_float32_matmul_precision() == p
        with pytest.warns(UserWarning, match="is not one of 'highest', 'high', or 'medium'"):
            distnn.set_float32_matmul_precision("fast")
        assert distnn.get_float32_matmul_precision() == "medium"  # (unchanged, as torch's)
        ours, theirs = _refusal(lambda: distnn.set_float32_matmul_precision(1)), _refusal(
            lambda: torch.set_float32_matmul_precision(1))
        assert ours == theirs
    finally:
        distnn.set_float32_matmul_precision("highest")
        torch.set_float32_matmul_precision("highest")


def test_warn_always_repeats_a_once_a_process_warning():
    x, w = distnn.tensor(np.ones((2, 3), np.float16)), distnn.tensor(np.ones(3, np.float32))
    assert distnn.is_warn_always_enabled() is torch.is_warn_always_enabled() is False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        distnn.functional.rms_norm(x, (3,), w)  # (the once-a-process warning spent, whichever test ran first)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        distnn.functional.rms_norm(x, (3,), w)
    assert not [s for s in seen if "Mismatch dtype" in str(s.message)]
    distnn.set_warn_always(True)
    try:
        assert distnn.is_warn_always_enabled() is True
        for _ in range(2):
            with pytest.warns(UserWarning, match="Mismatch dtype"):
                distnn.functional.rms_norm(x, (3,), w)
    finally:
        distnn.set_warn_always(False)
    assert _refusal(lambda: distnn.set_warn_always(1)) == _refusal(lambda: torch.set_warn_always(1))


def test_flush_denormal_returns_as_torch_and_checks_its_flag():
    assert distnn.set_flush_denormal(True) == torch.set_flush_denormal(True)
    assert distnn.set_flush_denormal(False) == torch.set_flush_denormal(False)
    assert _refusal(lambda: distnn.set_flush_denormal(1)) == _refusal(lambda: torch.set_flush_denormal(1))
    assert distnn.init_num_threads() is None and torch.init_num_threads() is None


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "int32", "bool", "uint8", "complex64"])
def test_typename_of_tensors_names_torch_s_legacy_types(dtype):
    ours = distnn.typename(distnn.zeros(2, dtype=np.dtype(dtype)))
    theirs = torch.typename(torch.zeros(2, dtype=getattr(torch, dtype)))
    assert ours.replace("distnn.", "torch.") == theirs


def test_typename_of_other_objects_and_is_storage_and_get_device():
    for obj in (3, "a", None, int, 2.5):
        assert distnn.typename(obj) == torch.typename(obj)
    assert distnn.typename(distnn.nn.Linear(1, 1)) == "distnn.nn.linear.Linear"
    x = distnn.zeros(2)
    assert distnn.is_storage(x) is torch.is_storage(torch.zeros(2)) is False
    assert distnn.is_storage(3) is False
    assert distnn.get_device(x) == torch.get_device(torch.zeros(2)) == -1
    ours, theirs = _refusal(lambda: distnn.get_device(3)), _refusal(lambda: torch.get_device(3))
    assert ours[0] is theirs[0] is TypeError and "must be Tensor, not int" in ours[1] and ours[1] == theirs[1]


@pytest.mark.parametrize("size,layout", [((2, 3, 5, 7), (0, 2, 3, 1)), ((2, 3, 5, 7), (0, 1, 2, 3)),
                                         ((4, 3), (1, 0)), ((2, 1, 3), (2, 0, 1)), ((0, 3, 2), (1, 2, 0)), ((), ())])
def test_empty_permuted_strides_as_torch(size, layout):
    ours, theirs = distnn.empty_permuted(size, layout), torch.empty_permuted(size, layout)
    assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype == np.float32
    assert ours.stride() == theirs.stride()
    t = distnn.empty_permuted(size, layout, dtype=np.float64, requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad


@pytest.mark.parametrize("size,layout,gist", [((2, 3), (0, 0), "Duplicate dim"),
                                              ((2, 3), (0,), "does not match the length of the physical_layout"),
                                              ((2, 3), (0, 2), "Dimension out of range"),
                                              ((2, 3), (1, -1), "Dimension out of range")])
def test_empty_permuted_refusals_as_torch(size, layout, gist):
    ours, theirs = _refusal(lambda: distnn.empty_permuted(size, layout)), _refusal(
        lambda: torch.empty_permuted(size, layout))
    assert ours[0] is theirs[0] is RuntimeError and gist in ours[1] and gist in theirs[1]


def test_set_default_tensor_type_warns_sets_the_dtype_and_refuses_integers():
    try:
        for name in ("torch.DoubleTensor", "distnn.HalfTensor", torch.DoubleTensor, "torch.FloatTensor"):
            with pytest.warns(UserWarning, match="set_default_tensor_type\\(\\) is deprecated"):
                distnn.set_default_tensor_type(name)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.set_default_tensor_type(name.replace("distnn.", "torch.") if isinstance(name, str) else name)
            assert distnn.get_default_dtype() == np.dtype(str(torch.get_default_dtype())[6:])
            assert distnn.tensor(1.5).dtype == np.dtype(str(torch.tensor(1.5).dtype)[6:])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for bad in ("torch.LongTensor", torch.LongTensor):
                ours, theirs = _refusal(lambda: distnn.set_default_tensor_type(bad)), _refusal(
                    lambda: torch.set_default_tensor_type(bad))
                assert ours == theirs == (TypeError, "only floating-point types are supported as the default type")
            with pytest.raises(TypeError, match="invalid type 'bogus'"):
                distnn.set_default_tensor_type("bogus")
    finally:
        distnn.set_default_dtype(np.float32)
        torch.set_default_dtype(torch.float32)


def test_autocast_cache_flags_and_nesting_as_torch():
    assert distnn.is_autocast_cache_enabled() is torch.is_autocast_cache_enabled() is True
    try:
        distnn.set_autocast_cache_enabled(False)
        assert distnn.is_autocast_cache_enabled() is False
    finally:
        distnn.set_autocast_cache_enabled(True)
    assert distnn.clear_autocast_cache() is None
    ours = [distnn.autocast_increment_nesting(), distnn.autocast_increment_nesting(),
            distnn.autocast_decrement_nesting(), distnn.autocast_decrement_nesting(), distnn.autocast_decrement_nesting()]
    theirs = [torch.autocast_increment_nesting(), torch.autocast_increment_nesting(),
              torch.autocast_decrement_nesting(), torch.autocast_decrement_nesting(), torch.autocast_decrement_nesting()]
    distnn.autocast_increment_nesting(), torch.autocast_increment_nesting()  # (back to 0)
    assert ours == theirs == [1, 2, 1, 0, -1]
    for fn in (distnn.set_autocast_cache_enabled, torch.set_autocast_cache_enabled):
        assert _refusal(lambda: fn(1)) == (TypeError, "enabled must be a bool (got int)")


def test_set_autocast_cpu_enabled_switches_distnn_s_autocast():
    x = distnn.tensor(np.ones((2, 3), np.float32))
    w = distnn.tensor(np.ones((4, 3), np.float32))
    with pytest.warns(DeprecationWarning, match="is_autocast_cpu_enabled\\(\\) is deprecated"):
        assert distnn.is_autocast_cpu_enabled() is False
    try:
        with pytest.warns(DeprecationWarning, match="set_autocast_cpu_enabled\\(enabled\\) is deprecated"):
            distnn.set_autocast_cpu_enabled(True)
        assert is_autocast_enabled("cpu")
        assert distnn.functional.linear(x, w).dtype == np.float16  # (the matmul family lowers, as in a region)
        with pytest.warns(DeprecationWarning):
            assert distnn.is_autocast_cpu_enabled() is True
        with distnn.autocast("cpu", enabled=False):
            assert not is_autocast_enabled("cpu")
        assert is_autocast_enabled("cpu")  # (the region restored what was set)
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            distnn.set_autocast_cpu_enabled(False)
    assert not is_autocast_enabled("cpu") and distnn.functional.linear(x, w).dtype == np.float32
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with distnn.autocast("cpu"):
            assert distnn.is_autocast_cpu_enabled() is True
        assert _refusal(lambda: distnn.set_autocast_cpu_enabled(1)) == _refusal(
            lambda: torch.set_autocast_cpu_enabled(1))


# ------------------------------------------------------------------ buffers and DLPack
@pytest.mark.parametrize("kw", [dict(dtype="int32"), dict(dtype="int16", count=2, offset=2),
                                dict(dtype="float64", offset=8), dict(dtype="uint8", count=3, offset=5)])
def test_frombuffer_values_and_memory_as_torch(kw):
    raw = np.arange(16, dtype=np.uint8).tobytes()
    b1, b2 = bytearray(raw), bytearray(raw)
    ours = distnn.frombuffer(b1, **kw)
    theirs = torch.frombuffer(b2, **{**kw, "dtype": getattr(torch, kw["dtype"])})
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    assert ours.dtype == np.dtype(kw["dtype"]) and ours.shape == tuple(theirs.shape)
    ours.data[0] = 99
    theirs[0] = 99
    assert b1 == b2 != bytearray(raw)  # (writes reach the buffer, the same bytes)


@pytest.mark.parametrize("kw", [dict(offset=3), dict(count=5), dict(offset=16), dict(count=0), dict(offset=-1)])
def test_frombuffer_refusals_as_torch(kw):
    ours = _refusal(lambda: distnn.frombuffer(bytearray(16), dtype="int32", **kw))
    theirs = _refusal(lambda: torch.frombuffer(bytearray(16), dtype=torch.int32, **kw))
    assert ours == theirs


def test_frombuffer_grad_and_non_buffers():
    t = distnn.frombuffer(bytearray(8), dtype=np.float32, requires_grad=True)
    assert t.requires_grad and t.shape == (2,)
    assert _refusal(lambda: distnn.frombuffer(bytearray(8), dtype=np.int32, requires_grad=True)) == _refusal(
        lambda: torch.frombuffer(bytearray(8), dtype=torch.int32, requires_grad=True))
    assert _refusal(lambda: distnn.frombuffer(3, dtype=np.int8)) == _refusal(
        lambda: torch.frombuffer(3, dtype=torch.int8))
    assert _refusal(lambda: distnn.frombuffer(bytearray(0), dtype=np.float32)) == _refusal(
        lambda: torch.frombuffer(bytearray(0), dtype=torch.float32))


def test_dlpack_both_ways_with_torch_shares_memory():
    x = distnn.tensor(np.arange(6.0).reshape(2, 3))
    seen = torch.from_dlpack(x)  # (distnn's __dlpack__ / __dlpack_device__)
    assert seen.dtype == torch.float64 and tuple(seen.shape) == (2, 3) and x.__dlpack_device__()[0] == 1
    seen[0, 1] = -5.0
    assert x.numpy()[0, 1] == -5.0
    from_capsule = torch.from_dlpack(distnn.to_dlpack(x))
    from_capsule[1, 2] = 42.0
    assert x.numpy()[1, 2] == 42.0
    t = torch.arange(4.0)
    for ours in (distnn.from_dlpack(t), distnn.from_dlpack(torch.to_dlpack(t))):
        assert isinstance(ours, distnn.Tensor) and ours.dtype == np.float32 and not ours.requires_grad
        ours.data[1] += 10
    assert t.tolist() == [0.0, 21.0, 2.0, 3.0]
    a = np.arange(3)
    distnn.from_dlpack(a).data[2] = 7
    assert a.tolist() == [0, 1, 7]
    strided = torch.arange(12.0).reshape(3, 4).t()  # (a non-contiguous producer keeps its strides)
    np.testing.assert_array_equal(distnn.from_dlpack(strided).numpy(), strided.numpy())


def test_dlpack_refusals():
    capsule = torch.to_dlpack(torch.arange(2.0))
    distnn.from_dlpack(capsule)
    ours, theirs = _refusal(lambda: distnn.from_dlpack(capsule)), _refusal(lambda: torch.from_dlpack(capsule))
    assert ours == theirs and "consumed only once" in ours[1]
    with pytest.raises(TypeError, match="expected a DLPack producer"):
        distnn.from_dlpack(3)
    g = distnn.tensor([1.0, 2.0], requires_grad=True)
    tg = torch.tensor([1.0, 2.0], requires_grad=True)
    assert _refusal(lambda: torch.from_dlpack(g)) == _refusal(lambda: torch.from_dlpack(tg))
    assert _refusal(lambda: g.__dlpack__())[0] is BufferError
    assert torch.from_dlpack(distnn.to_dlpack(g)).tolist() == [1.0, 2.0]  # (to_dlpack exports it, as torch's)
    assert torch.from_dlpack(g.detach()).tolist() == [1.0, 2.0]
    assert _refusal(lambda: distnn.to_dlpack(3))[0] is TypeError


def test_from_file_reads_maps_and_extends_as_torch(tmp_path):
    path = str(tmp_path / "values.bin")
    np.arange(6, dtype=np.float32).tofile(path)
    for kw in (dict(size=6, dtype=np.float32), dict(size=4), dict(size=3, dtype=np.float64), dict()):
        ours = distnn.from_file(path, **kw)
        theirs = torch.from_file(path, **{**kw, **({"dtype": getattr(torch, np.dtype(kw["dtype"]).name)}
                                                   if "dtype" in kw else {})})
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        assert ours.dtype == np.dtype(str(theirs.dtype)[6:])
    private = distnn.from_file(path, shared=False, size=6)
    private.data[1] = 100
    assert np.fromfile(path, dtype=np.float32)[1] == 1  # (a copy: the file unchanged)
    shared = distnn.from_file(path, shared=True, size=6)
    shared.data[0] = 100
    assert np.fromfile(path, dtype=np.float32)[0] == 100  # (a mapping: the write reached the file)
    grown = str(tmp_path / "grown.bin")
    assert tuple(distnn.from_file(grown, shared=True, size=5).shape) == (5,)
    assert (tmp_path / "grown.bin").stat().st_size == 20
    assert distnn.from_file(path, size=2, requires_grad=True).requires_grad


def test_from_file_refusals_as_torch(tmp_path):
    path = str(tmp_path / "short.bin")
    np.arange(6, dtype=np.float32).tofile(path)
    ours, theirs = _refusal(lambda: distnn.from_file(path, size=100)), _refusal(
        lambda: torch.from_file(path, size=100))
    assert ours == theirs and "is smaller than the required mapping size" in ours[1]
    missing = str(tmp_path / "missing" / "x")
    ours, theirs = _refusal(lambda: distnn.from_file(missing, size=3)), _refusal(
        lambda: torch.from_file(missing, size=3))
    assert ours == theirs and "unable to open file" in ours[1]
