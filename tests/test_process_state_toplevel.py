"""distnn's top-level process-state functions against PyTorch's: threads, print options (the Tensor repr),
determinism flags, the default device, is_inference, anomaly mode and autocast switches."""
import re

import numpy as np
import pytest
import torch

import distnn
from distnn import printing
from distnn.backend import gpu_available


def test_num_threads_set_the_blas_threads_and_refuse_as_torch():
    from distnn._blas_threads import loaded_blas_thread_controls

    before = distnn.get_num_threads()
    try:
        for n in (2, 1):
            distnn.set_num_threads(n)
            assert distnn.get_num_threads() == n
            for _path, _set, get in loaded_blas_thread_controls():  # what it controls: the BLAS libraries
                assert get() == n
    finally:
        distnn.set_num_threads(before)
    for module in (torch, distnn):
        for name in ("set_num_threads", "set_num_interop_threads"):
            with pytest.raises(RuntimeError, match=f"{name} expects a positive integer"):
                getattr(module, name)(0)
    with pytest.raises(TypeError):
        distnn.set_num_threads(1.5)


def test_interop_threads_are_recorded():
    before = distnn.get_num_interop_threads()
    assert before >= 1
    try:
        distnn.set_num_interop_threads(3)
        assert distnn.get_num_interop_threads() == 3
    finally:
        distnn.set_num_interop_threads(before)


@pytest.fixture
def printoptions():
    yield
    distnn.set_printoptions(profile="default", sci_mode=None)  # (PyTorch's defaults, as at the start)
    torch.set_printoptions(profile="default", sci_mode=None)


def _values(text):
    """The value tokens of a repr (numbers, nan/inf, the summary's ...), without brackets and spacing."""
    body = text.split("tensor(", 1)[1].split("dtype")[0].split("requires_grad")[0]
    return re.findall(r"-?inf|nan|\.\.\.|[-+0-9.e]+", body)


ARRAYS = [np.array([1.123456, 2.0, -3.5]), np.array([1.0, 2.0, 300.0]), np.array([1e-5, 1.0]),
          np.array([[1e9, 2.5], [np.nan, -np.inf]]), np.arange(2000.0).reshape(40, 50) / 7, np.zeros(2),
          np.array([1.0, 2e5]), np.array([[0.5, -0.25], [7.0, 8.125]]), np.arange(12).reshape(3, 4),
          np.arange(1500.0).reshape(5, 6, 50) - 700]


@pytest.mark.parametrize("options", [
    dict(profile="default"), dict(precision=2), dict(sci_mode=True), dict(sci_mode=False), dict(precision=6),
    dict(threshold=5, edgeitems=1), dict(threshold=10, edgeitems=2), dict(profile="short"),
    dict(profile="full", linewidth=200),
], ids=str)
def test_repr_values_are_torchs_under_set_printoptions(options, printoptions):
    torch.set_printoptions(**options)
    distnn.set_printoptions(**options)
    for a in ARRAYS:
        ours, theirs = repr(distnn.tensor(a)), repr(torch.tensor(a))
        assert _values(ours) == _values(theirs), (ours, theirs)
        assert ours == theirs.replace("torch.", "distnn."), (ours, theirs)  # (the layout too)


def test_linewidth_and_options_persist(printoptions):
    a = distnn.tensor(np.arange(60.0) / 3)
    distnn.set_printoptions(linewidth=40)
    assert max(len(line) for line in repr(a).splitlines()[:-1]) <= 40
    distnn.set_printoptions(precision=1)  # an option left None keeps its value
    assert max(len(line) for line in repr(a).splitlines()[:-1]) <= 40 and "0.3," in repr(a)
    distnn.set_printoptions(profile="full")
    assert "..." not in repr(distnn.tensor(np.arange(5000.0)))
    with pytest.raises(ValueError, match="unknown profile"):
        distnn.set_printoptions(profile="long")


def test_repr_before_set_printoptions_is_torchs():
    if printing._options != dict(printing._PROFILES["default"], sci_mode=None):
        pytest.skip("another test left print options set")
    assert repr(distnn.tensor(np.array([1.123456789, 2.0]))) == "tensor([1.1235, 2.0000], dtype=distnn.float64)"


def test_deterministic_flags_behave_as_torchs():
    calls = [lambda m: m.use_deterministic_algorithms(True), lambda m: m.use_deterministic_algorithms(True, warn_only=True),
             lambda m: m.set_deterministic_debug_mode("error"), lambda m: m.set_deterministic_debug_mode(1),
             lambda m: m.set_deterministic_debug_mode("default"), lambda m: m.use_deterministic_algorithms(False)]
    try:
        for call in calls:
            for m in (torch, distnn):
                call(m)
            assert (distnn.are_deterministic_algorithms_enabled(), distnn.is_deterministic_algorithms_warn_only_enabled(),
                    distnn.get_deterministic_debug_mode()) == (torch.are_deterministic_algorithms_enabled(),
                                                              torch.is_deterministic_algorithms_warn_only_enabled(),
                                                              torch.get_deterministic_debug_mode())
        for bad, gist in (("bad", "expected one of `default`, `warn`, `error`"), (5, "expected 0, 1, or 2")):
            for m in (torch, distnn):
                with pytest.raises(RuntimeError, match=gist):
                    m.set_deterministic_debug_mode(bad)
    finally:
        torch.use_deterministic_algorithms(False)
        distnn.use_deterministic_algorithms(False)


def test_default_device():
    assert distnn.get_default_device() == "cpu"
    distnn.set_default_device("cpu")
    distnn.set_default_device(None)
    assert distnn.zeros(2).device == "cpu" and distnn.hann_window(4).device == "cpu"
    for m in (torch, distnn):
        with pytest.raises(RuntimeError, match="device string: tpu"):
            m.set_default_device("tpu")
    assert distnn.get_default_device() == "cpu"
    if not gpu_available():
        with pytest.raises(RuntimeError, match="cupy with a CUDA GPU is not available"):
            distnn.set_default_device("cuda")
        assert distnn.get_default_device() == "cpu"


@pytest.mark.skipif(not gpu_available(), reason="needs cupy and a CUDA GPU")
def test_creation_functions_honour_a_cuda_default_device():
    distnn.set_default_device("cuda")
    try:
        made = [distnn.zeros(2), distnn.ones(2, 3), distnn.full((2,), 1.5), distnn.randn(3), distnn.rand(3),
                distnn.arange(4), distnn.tensor([1.0, 2.0]), distnn.eye(3), distnn.linspace(0, 1, 5),
                distnn.empty(2), distnn.randint(0, 5, (3,)), distnn.randperm(4), distnn.kaiser_window(5),
                distnn.normal(0.0, 1.0, (3,)), distnn.logspace(0, 1, 3)]
        assert all(t.device.startswith("cuda") for t in made)
        assert distnn.zeros_like(distnn.from_numpy(np.zeros(2))).device == "cpu"  # a *_like follows its input
        x = distnn.ones(3, requires_grad=True)
        (x * 2).sum().backward()
        assert x.grad is not None
    finally:
        distnn.set_default_device("cpu")


def test_is_inference_as_torch():
    with distnn.inference_mode():
        t = distnn.ones(2)
    assert distnn.is_inference(t) is True and distnn.is_inference(distnn.ones(2)) is False  # (as torch's)
    for m in (torch, distnn):
        with pytest.raises(TypeError, match="must be Tensor, not int"):
            m.is_inference(3)


def test_anomaly_switches_turn_the_mode_on_and_off():
    assert not distnn.is_anomaly_enabled() and distnn.is_anomaly_check_nan_enabled()
    x = distnn.tensor(np.array([0.0, 1.0]), requires_grad=True)
    try:
        distnn.set_anomaly_enabled(True)
        assert distnn.is_anomaly_enabled() and distnn.is_anomaly_check_nan_enabled()
        with pytest.raises(RuntimeError, match="returned nan values"), pytest.warns(UserWarning, match="Error detected"):
            distnn.sqrt(x * 0.0).sum().backward()  # d sqrt(0) = inf, times 0: nan
        distnn.set_anomaly_enabled(True, check_nan=False)
        assert not distnn.is_anomaly_check_nan_enabled()
        distnn.sqrt(x * 0.0).sum().backward()
    finally:
        distnn.set_anomaly_enabled(False)
    assert not distnn.is_anomaly_enabled()
    distnn.sqrt(x * 0.0).sum().backward()  # off: no check


def test_autocast_switches():
    a = distnn.ones(2, 2)
    assert not distnn.is_autocast_enabled("cpu") and distnn.get_autocast_dtype("cpu") == np.float16
    try:
        distnn.set_autocast_enabled("cpu", True)
        assert distnn.is_autocast_enabled("cpu") and not distnn.is_autocast_enabled("cuda")
        assert distnn.matmul(a, a).dtype == np.float16
        distnn.set_autocast_enabled(True)  # PyTorch's older form: CUDA
        assert distnn.is_autocast_enabled("cuda")
    finally:
        distnn.set_autocast_enabled("cpu", False)
        distnn.set_autocast_enabled("cuda", False)
    assert distnn.matmul(a, a).dtype == np.float32 and not distnn.is_autocast_enabled("cpu")
    with pytest.raises(RuntimeError, match="unsupported device type"):
        distnn.set_autocast_enabled("xla", True)


def test_exported_and_listed():
    names = ["normal", "poisson", "binomial", "get_rng_state", "set_rng_state", "initial_seed", "seed",
             "set_num_threads", "get_num_threads", "get_num_interop_threads", "set_num_interop_threads",
             "set_printoptions", "is_inference", "is_anomaly_enabled", "set_anomaly_enabled",
             "is_anomaly_check_nan_enabled", "are_deterministic_algorithms_enabled", "use_deterministic_algorithms",
             "is_deterministic_algorithms_warn_only_enabled", "get_deterministic_debug_mode",
             "set_deterministic_debug_mode", "get_default_device", "set_default_device", "is_autocast_enabled",
             "get_autocast_dtype", "set_autocast_enabled", "complex", "real", "imag", "angle", "conj",
             "conj_physical", "resolve_conj", "resolve_neg", "is_conj", "is_neg", "polar", "view_as_real",
             "view_as_complex", "hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window"]
    for name in names:
        assert name in distnn.__all__ and hasattr(torch, name), name
