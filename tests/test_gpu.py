"""The cupy (GPU) paths. The first tests run everywhere (the rules that keep device arrays intact); the
rest need cupy with a CUDA device and skip, saying so, on a machine without one (as in CI here).

Found by a static review (no GPU was available): every collective took ``x.data`` of its argument,
which for a cupy array is its memory pointer; "cuda" always meant GPU 0 (every rank on one GPU);
a state_dict on the GPU could not be loaded into a CPU model; a numpy gradient given to backward
on a GPU tensor reached the ops as a host array.
"""
import numpy as np
import pytest

import distnn as dn
from distnn import backend, nn
from distnn.distributed import DataParallel, LocalCommunicator, simulate
from distnn.distributed.comm_base import as_array

GPU = backend.gpu_available()
needs_gpu = pytest.mark.skipif(not GPU, reason="needs cupy and a CUDA device (none here)")


class _DeviceArrayStandIn:
    """Looks like a cupy array to distnn's type checks: its own ``.data`` is a memory pointer, not an array."""

    __module__ = "cupy._core.core"

    def __init__(self):
        self.data = object()  # cupy.cuda.MemoryPointer
        self.shape, self.dtype = (3,), np.dtype(np.float32)


def test_device_arrays_are_not_unwrapped_like_tensors():
    fake = _DeviceArrayStandIn()
    assert backend.unwrap(fake) is fake and as_array(fake) is fake
    t = dn.Tensor(np.ones(3))
    assert backend.unwrap(t) is t.data and as_array(t) is t.data
    assert backend.unwrap(np.float64(2.0)) == 2.0  # a numpy scalar's .data is a memoryview, not its value


def test_device_names_are_checked_and_gpu_means_cuda():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        backend.resolve_device("tpu")
    assert backend.resolve_device("cpu") == "cpu"
    if not GPU:
        for name in ("cuda", "gpu", "cuda:1"):
            with pytest.raises(RuntimeError, match="cupy with a CUDA GPU is not available"):
                backend.resolve_device(name)
        with pytest.raises(RuntimeError, match="'gpu' requested"):
            nn.Linear(2, 2).to("gpu")  # ("gpu" was accepted by Module.to, then an unknown device)


# ------------------------------------------------------------------ on a GPU
@needs_gpu
def test_to_cuda_keeps_the_graph_and_cuda_means_the_current_device():
    import cupy as cp

    x = dn.Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    y = x.to("cuda")
    assert backend.device_of(y.data) == f"cuda:{cp.cuda.Device().id}" and y.to("cuda") is y
    (y * y).sum().backward()
    assert isinstance(x.grad, np.ndarray)
    np.testing.assert_allclose(x.grad, 2 * x.data)


@needs_gpu
def test_a_model_on_the_gpu_matches_the_cpu_and_state_moves_between_devices():
    dn.manual_seed(0)
    cpu = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 3))
    gpu = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 3))
    gpu.load_state_dict(cpu.state_dict())
    gpu.to("cuda")
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    y = np.array([0, 1, 2, 1, 0])
    for model, data in ((cpu, x), (gpu, backend.to_device(x, "cuda"))):
        loss = dn.functional.cross_entropy(model(dn.Tensor(data)), y)
        loss.backward(np.float32(1.0))  # a host gradient for a GPU root (it used to stay on the host)
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters()):
        np.testing.assert_allclose(backend.to_numpy(q.grad), p.grad, rtol=1e-4, atol=1e-6, err_msg=name)
    cpu2 = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.BatchNorm1d(8), nn.Linear(8, 3))
    cpu2.load_state_dict({k: backend.to_device(v, "cuda") for k, v in gpu.state_dict().items()})  # GPU -> CPU


@needs_gpu
def test_collectives_and_data_parallel_on_device_arrays():
    import cupy as cp

    a = cp.arange(4, dtype=cp.float32)
    out = LocalCommunicator().allreduce(a, "sum")
    assert isinstance(out, cp.ndarray) and float(out.sum()) == 6.0

    def fn(comm):
        dn.manual_seed(1)
        model = nn.Linear(3, 2)
        model.to("cuda")
        ddp = DataParallel(model, comm)
        x = cp.full((2, 3), float(comm.rank + 1), dtype=cp.float32)
        (ddp(dn.Tensor(x)) ** 2).sum().backward()
        return backend.to_numpy(model.weight.grad)

    g0, g1 = simulate(2, fn)
    np.testing.assert_array_equal(g0, g1)


def test_threads_asking_at_once_all_see_the_gpu(monkeypatch):
    """Simulated ranks are threads that ask for the GPU at the same moment. The first import of cupy
    used to mark the check done before it finished, so another thread got None and kept its model on
    the host: the ranks' broadcast then mixed numpy and cupy (found on a GPU)."""
    import sys
    import threading
    import time
    import types

    fake = types.ModuleType("cupy")

    def slow_device_count():
        time.sleep(0.2)  # the real first call initialises the CUDA driver: long enough for a race
        return 1

    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=slow_device_count))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_checked", False)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(backend.gpu_available())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [True] * 4


# ------------------------------------------- changed after the last GPU run (c209826): written without a GPU
def _l1_run(device, l1):
    """test_clip_regularization's small MLP, two full-batch SGD steps with ``Trainer(l1=...)`` on ``device``."""
    from distnn.data import Dataset
    from distnn.optim import SGD
    from distnn.train.trainer import Trainer

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((32, 5)).astype(np.float32), rng.integers(0, 3, 32)
    model = nn.Sequential(nn.Linear(5, 4, generator=np.random.default_rng(1)), nn.ReLU(),
                          nn.Linear(4, 3, generator=np.random.default_rng(2)))
    if device != "cpu":
        model.to(device)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), Dataset(x, y, 3), comm=LocalCommunicator(),
                      batch_size=32, epochs=2, shuffle=False, l1=l1)
    trainer.fit()
    state = trainer.state_dict(copy=False)  # (a checkpoint's: host arrays, also on a GPU)
    for part in ("model", "optimizer"):
        arrays = state[part].values() if part == "model" else [
            v for s in state[part]["state"].values() for v in s.values() if hasattr(v, "shape")]
        assert all(isinstance(a, np.ndarray) for a in arrays), part
    return state["model"]


@needs_gpu
def test_l1_regularization_on_the_gpu_matches_the_cpu():
    """Trainer(l1=...) adds l1 * sign(w) into the gradient in place (the trainer's new _add_l1_gradient)."""
    cpu, gpu = _l1_run("cpu", 0.05), _l1_run("cuda", 0.05)
    for name in cpu:
        np.testing.assert_allclose(gpu[name], cpu[name], rtol=1e-5, atol=1e-6, err_msg=name)


def _max_norm_adversarial_run(device):
    """Three full-batch SGD steps with ``Trainer(max_norm=..., adversarial_eps=...)`` on ``device`` (code new since
    cb34e6a, written without a GPU): FGSM inputs from the device batch, max_norm_ after each step."""
    from distnn.data import Dataset
    from distnn.optim import SGD
    from distnn.train.trainer import Trainer

    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((32, 5)).astype(np.float32), rng.integers(0, 3, 32)
    model = nn.Sequential(nn.Linear(5, 6, generator=np.random.default_rng(1)), nn.Tanh(), nn.Dropout(0.2),
                          nn.Linear(6, 3, generator=np.random.default_rng(2)))
    if device != "cpu":
        model.to(device)
    trainer = Trainer(model, SGD(model.parameters(), lr=0.5), Dataset(x, y, 3), comm=LocalCommunicator(),
                      batch_size=32, epochs=3, shuffle=False, max_norm=0.6, adversarial_eps=0.05,
                      adversarial_weight=0.5)
    trainer.fit()
    assert all(backend.device_of(p.data) == backend.device_of(backend.to_device(x, device))
               for p in model.parameters())
    return trainer.state_dict(copy=False)["model"], trainer.history[-1]["train_loss"]


@needs_gpu
def test_max_norm_and_adversarial_training_on_the_gpu_match_the_cpu():
    """The trainer's new step: the adversarial pass (fgsm on the device batch, the same dropout masks as the clean
    pass) and max_norm_ on the stepped weights, on the GPU as on the CPU."""
    (cpu, cpu_loss), (gpu, gpu_loss) = _max_norm_adversarial_run("cpu"), _max_norm_adversarial_run("cuda")
    for name in cpu:
        np.testing.assert_allclose(gpu[name], cpu[name], rtol=1e-5, atol=1e-6, err_msg=name)
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-5)
    w = cpu["0.weight"]
    assert np.sqrt((w.astype(np.float64) ** 2).sum(axis=1)).max() <= 0.6 + 1e-6  # (the case: the bound is reached)
    assert np.isclose(np.sqrt((w.astype(np.float64) ** 2).sum(axis=1)), 0.6, atol=1e-5).any()


@needs_gpu
def test_a_pytorch_optimizer_state_loads_onto_gpu_parameters():
    """torch's state dict holds CPU tensors (and ``step`` as a float tensor): they reached cupy.asarray as they
    were (test_optim's test_a_pytorch_optimizer_state_dict_loads_as_it_is, on a GPU)."""
    torch = pytest.importorskip("torch")
    import distnn.optim as O

    for name in ("Adam", "SGD"):
        kw = {"lr": 0.05, **({"momentum": 0.9} if name == "SGD" else {})}
        tp = torch.nn.Parameter(torch.linspace(-1, 1, 5, dtype=torch.float32))
        theirs = getattr(torch.optim, name)([tp], **kw)
        for t in range(3):
            tp.grad = torch.cos(tp.detach()) + t
            theirs.step()
        p = nn.Parameter(backend.to_device(tp.detach().numpy().copy(), "cuda"))
        ours = getattr(O, name)([p], **kw)
        ours.load_state_dict(theirs.state_dict())
        for t in range(3, 5):
            tp.grad = torch.cos(tp.detach()) + t
            theirs.step()
            p.grad = backend.to_device(np.cos(backend.to_numpy(p.data)) + np.float32(t), "cuda")
            ours.step()
        assert backend.device_of(p.data).startswith("cuda")
        np.testing.assert_allclose(backend.to_numpy(p.data), tp.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


@needs_gpu
def test_casts_copies_and_bce_loss_on_the_gpu():
    import cupy as cp

    a = cp.arange(6, dtype=cp.float32).reshape(2, 3) / 7
    t = dn.tensor(a)  # a copy, as torch.tensor
    a[0, 0] = 5.0
    assert float(t.data[0, 0]) == 0.0 and isinstance(t.data, cp.ndarray)
    x = dn.Tensor(a, requires_grad=True)
    assert x.float() is x and x.to(np.float32) is x
    i = x.astype(np.int64)  # an integer result carries no gradient, and stays on the GPU
    assert not i.requires_grad and isinstance(i.data, cp.ndarray) and i.dtype == np.int64
    # BCELoss with a weight buffer moved along with the module; host targets beside GPU probabilities
    p = np.array([[0.0, 0.3, 1.0], [0.9, 0.5, 0.01]], dtype=np.float32)
    y = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5]], dtype=np.float32)
    losses = {}
    for device in ("cpu", "cuda"):
        loss_fn = nn.BCELoss(weight=np.array([0.5, 2.0, 1.0], dtype=np.float32))
        if device != "cpu":
            loss_fn.to(device)
        pt = dn.Tensor(backend.to_device(p, device), requires_grad=True)
        loss = loss_fn(pt, y)
        loss.backward()
        losses[device] = (float(backend.to_numpy(loss.data)), backend.to_numpy(pt.grad))
    assert losses["cuda"][0] == pytest.approx(losses["cpu"][0], rel=1e-5)
    np.testing.assert_allclose(losses["cuda"][1], losses["cpu"][1], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="probability in"):
        nn.BCELoss()(dn.Tensor(cp.asarray([0.5, 1.5], dtype=cp.float32)), np.array([0.0, 1.0], dtype=np.float32))


@needs_gpu
def test_maximum_and_minimum_take_a_host_array_beside_a_gpu_tensor():
    """As clamp's bounds and where's values: the host operand is copied to the GPU (cupy refuses a mix).
    Written without a GPU (the next session with one runs it)."""
    x = np.array([[-1.0, 2.0, 0.5]], dtype=np.float32)
    host = np.array([0.0, 1.0, 0.5], dtype=np.float32)
    for fn in (dn.maximum, dn.minimum):
        cpu = dn.tensor(x, requires_grad=True)
        gpu = dn.tensor(x, requires_grad=True).to("cuda").detach().requires_grad_()
        ref, out = fn(cpu, host), fn(gpu, host)
        ref.sum().backward()
        out.sum().backward()
        np.testing.assert_array_equal(backend.to_numpy(out.data), ref.data)
        np.testing.assert_array_equal(backend.to_numpy(gpu.grad), cpu.grad)


@needs_gpu
def test_a_host_array_written_into_a_gpu_tensor():
    """``t[i] = numpy_array`` on a GPU tensor: cupy takes a numpy value for a scalar to fill with and refuses one
    that is not 0-d ("non-scalar numpy.ndarray cannot be used for fill"), so the value is copied to the GPU first,
    as PyTorch copies a host value into a CUDA tensor. Outside a graph, under no_grad, and while recording (the
    in-place write of distnn.autograd.inplace). Written without a GPU (the next session with one runs it)."""
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    value, rows = np.array([0.5, -1.0, 2.0]), np.array([0, 2])
    results = {}
    for device in ("cpu", "cuda"):
        t = dn.Tensor(backend.to_device(x, device))
        t[:, 0] = value  # (float64 on the host, cast to the tensor's float32 as numpy does)
        t[rows, 1:3] = np.float32(3.0)
        with dn.no_grad():
            t[1] = np.array([7, 8, 9, 10])  # (an integer array)
        leaf = dn.tensor(x, requires_grad=True)
        if device != "cpu":
            leaf = leaf.to(device).detach().requires_grad_()
        y = leaf * 1.0
        y[rows] = value[:, None][:2] * np.ones((2, 4))  # recording: y takes a CopySlices node
        (y * y).sum().backward()
        assert backend.device_of(t.data) == backend.device_of(y.data) == backend.device_of(leaf.grad)
        assert t.dtype == y.dtype == np.float32
        results[device] = [backend.to_numpy(a) for a in (t.data, y.data, leaf.grad)]
    for g, c in zip(results["cuda"], results["cpu"]):
        np.testing.assert_array_equal(g, c)
