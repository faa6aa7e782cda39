"""``set_autocast_dtype`` / ``get_autocast_dtype`` (and PyTorch 2.13's deprecated per-device forms) against torch."""
import threading

import numpy as np
import pytest

import distnn

torch = pytest.importorskip("torch")


@pytest.fixture
def restored():
    """Both frameworks' per-device defaults put back after the test (they are the thread's state)."""
    saved = {d: (distnn.get_autocast_dtype(d), torch.get_autocast_dtype(d)) for d in ("cpu", "cuda")}
    yield
    for d, (ours, theirs) in saved.items():
        distnn.set_autocast_dtype(d, ours)
        torch.set_autocast_dtype(d, theirs)


def _name(dtype):
    return str(dtype).replace("torch.", "")


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_set_then_get_as_torch(device, dtype, restored):
    distnn.set_autocast_dtype(device, np.dtype(dtype))
    torch.set_autocast_dtype(device, getattr(torch, dtype))
    assert _name(distnn.get_autocast_dtype(device)) == _name(torch.get_autocast_dtype(device)) == dtype
    other = "cuda" if device == "cpu" else "cpu"  # (per device)
    assert distnn.get_autocast_dtype(other) == np.float16
    distnn.set_autocast_dtype(device, torch.float16)  # (a torch dtype is taken too)
    assert distnn.get_autocast_dtype(device) == np.float16


def test_a_region_without_a_dtype_uses_the_default(restored):
    a = distnn.ones(2, 2)
    distnn.set_autocast_dtype("cpu", np.float32)
    torch.set_autocast_dtype("cpu", torch.float32)
    with pytest.warns(UserWarning, match="target dtype is not supported. Disabling autocast"):
        region = distnn.autocast("cpu")
    with region:
        assert distnn.get_autocast_dtype("cpu") == np.float32 and distnn.matmul(a, a).dtype == np.float32
    distnn.set_autocast_dtype("cpu", np.float16)
    torch.set_autocast_dtype("cpu", torch.float16)
    with distnn.autocast("cpu"), torch.autocast("cpu"):
        assert distnn.matmul(a, a).dtype == np.float16
        assert torch.get_autocast_dtype("cpu") == torch.float16 and distnn.get_autocast_dtype("cpu") == np.float16


def test_the_default_is_thread_local_as_torch(restored):
    distnn.set_autocast_dtype("cpu", np.float64)
    torch.set_autocast_dtype("cpu", torch.float64)
    seen = []
    thread = threading.Thread(target=lambda: seen.append((distnn.get_autocast_dtype("cpu"),
                                                          torch.get_autocast_dtype("cpu"))))
    thread.start()
    thread.join()
    assert seen == [(np.float16, torch.bfloat16)]  # (each its own default: PyTorch's CPU one is bfloat16)
    assert distnn.get_autocast_dtype("cpu") == np.float64


@pytest.mark.parametrize("old, new, device", [("cpu", "cpu", "cpu"), ("gpu", "cuda", "cuda")])
def test_deprecated_per_device_forms(old, new, device, restored):
    for m in (distnn, torch):
        with pytest.warns(DeprecationWarning, match=rf"set_autocast_{old}_dtype\(dtype\) is deprecated"):
            getattr(m, f"set_autocast_{old}_dtype")(m.float64)
        with pytest.warns(DeprecationWarning, match=rf"get_autocast_{old}_dtype\(\) is deprecated"):
            assert _name(getattr(m, f"get_autocast_{old}_dtype")()) == "float64"
        assert _name(m.get_autocast_dtype(new)) == "float64"


def test_refusals(restored):
    for m in (distnn, torch):
        with pytest.raises(RuntimeError):  # (an unknown device type)
            m.set_autocast_dtype("xyz", m.float16)
        with pytest.raises(RuntimeError):
            m.get_autocast_dtype("xyz")
    with pytest.raises(TypeError, match="bfloat16 is not supported"):
        distnn.set_autocast_dtype("cpu", torch.bfloat16)
    with pytest.raises(TypeError, match="floating dtype, got int32"):
        distnn.set_autocast_dtype("cpu", np.int32)
    assert distnn.get_autocast_dtype("cpu") == np.float16
