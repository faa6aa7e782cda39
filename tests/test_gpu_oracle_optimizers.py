"""The GPU (cupy) against the CPU (numpy) for the optimizers: the same steps from the same weights and
gradients (fused GPU kernels against term-by-term numpy), the GPU state loaded into a CPU optimizer, Muon, the
averaged models (EMA, SWA) and update_bn, max_norm_, and the sparse embedding steps. gpu_oracle.py says how the
devices are compared."""
import numpy as np
import pytest

import distnn as dn
from distnn import backend, nn, optim

from gpu_oracle import DTYPES, NO_GPU, on
from test_torch_reference import RTOL, assert_close

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)


OPTIMIZERS = {
    "sgd-nesterov": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "sgd-dampening-maximize": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.8, dampening=0.3, maximize=True),
    "sgd-plain": lambda ps: optim.SGD(ps, lr=0.1),
    "adam": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=1e-3),
    "adam-amsgrad-maximize": lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True, maximize=True),
    "adamw-amsgrad": lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1, amsgrad=True),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    "rmsprop": lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
    "lars": lambda ps: optim.LARS(ps, lr=0.1, momentum=0.9, weight_decay=1e-4),
    "lamb": lambda ps: optim.LAMB(ps, lr=0.01, weight_decay=0.01),
    "adamax": lambda ps: optim.Adamax(ps, lr=0.01, weight_decay=1e-3),
    "nadam-decoupled": lambda ps: optim.NAdam(ps, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    "radam-maximize": lambda ps: optim.RAdam(ps, lr=0.01, betas=(0.9, 0.6), maximize=True),
    "adadelta": lambda ps: optim.Adadelta(ps, lr=0.5, weight_decay=1e-3),
    "rprop": lambda ps: optim.Rprop(ps, lr=0.01),  # (boolean masks and copyto(where=) on cupy)
    "asgd": lambda ps: optim.ASGD(ps, lr=0.05, t0=1),
    "adafactor": lambda ps: optim.Adafactor(ps, lr=0.05, weight_decay=0.01),  # (factored row/col state)
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_steps_on_the_gpu_match_the_cpu_and_its_state_moves_to_the_host(name, dtype):
    """On a GPU, SGD with momentum and Adam/AdamW run as one fused kernel per parameter (fused_gpu.py):
    the same arithmetic as the CPU's term-by-term numpy kernels."""
    rng = np.random.default_rng(0)
    w0 = [rng.standard_normal(s).astype(dtype) for s in [(5, 4), (4,), (3, 2, 2)]]
    grads = [[rng.standard_normal(w.shape).astype(dtype) for w in w0] for _ in range(4)]
    results = {}
    for device in ("cpu", "cuda"):
        params = [nn.Parameter(on(device, w.copy())) for w in w0]
        opt = OPTIMIZERS[name](params)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = on(device, g)
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        results[device] = ([backend.to_numpy(p.data) for p in params], opt.state_dict())
    for c, g in zip(results["cpu"][0], results["cuda"][0]):
        assert g.dtype == dtype
        assert_close(g, c, RTOL[dtype] / 10, f"{name}: parameters")
    # A GPU optimizer state loads into a CPU optimizer, and the next step is the CPU's own.
    params = [nn.Parameter(w.copy()) for w in results["cuda"][0]]
    opt = OPTIMIZERS[name](params)
    opt.load_state_dict(results["cuda"][1])
    for p, g in zip(params, grads[0]):
        p.grad = g.copy()
    opt.step()
    assert all(isinstance(p.data, np.ndarray) for p in params)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_muon_steps_on_the_gpu_match_the_cpu(dtype):
    """Muon (2-D parameters only, so not in OPTIMIZERS): its Newton-Schulz matmuls and norm on cupy arrays."""
    rng = np.random.default_rng(0)
    w0 = [rng.standard_normal(s).astype(dtype) for s in [(5, 4), (4, 6)]]
    grads = [[rng.standard_normal(w.shape).astype(dtype) for w in w0] for _ in range(3)]
    results = {}
    for device in ("cpu", "cuda"):
        params = [nn.Parameter(on(device, w.copy())) for w in w0]
        opt = optim.Muon(params, lr=0.05)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = on(device, g)
            opt.step()
        results[device] = [backend.to_numpy(p.data) for p in params]
    for c, g in zip(results["cpu"], results["cuda"]):
        assert g.dtype == dtype
        assert_close(g, c, RTOL[dtype], "Muon: parameters")


def _averaged_states(device, xs):
    """An EMA (buffers averaged too) and an SWA average (built on ``device``) of a model with BatchNorm whose
    weights move between updates, then update_bn on the SWA average: both state dicts, on the host."""
    dn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2)).to(device)
    swa_utils = optim.swa_utils
    ema = swa_utils.AveragedModel(model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.5), use_buffers=True)
    swa = swa_utils.AveragedModel(model, device=device)
    for i, x in enumerate(xs):
        with dn.no_grad():
            for p in model.parameters():
                p.data += 0.1 * (i + 1)
            model(dn.Tensor(on(device, x)))  # (training: the running statistics move)
        ema.update_parameters(model)
        swa.update_parameters(model)
    swa_utils.update_bn([(dn.Tensor(on(device, x)), None) for x in xs], swa)
    return ema.state_dict(), swa.state_dict()


def test_averaged_model_and_update_bn_on_the_gpu_match_the_cpu():
    rng = np.random.default_rng(1)
    xs = [rng.standard_normal((6, 4)).astype(np.float32) for _ in range(3)]
    for cpu, gpu in zip(_averaged_states("cpu", xs), _averaged_states("cuda", xs)):
        assert list(cpu) == list(gpu)
        for k in cpu:
            if cpu[k].dtype.kind == "i":
                assert np.array_equal(gpu[k], cpu[k]), k
            else:
                assert_close(gpu[k], cpu[k], RTOL[np.float32], f"averaged {k}")

def test_max_norm_on_the_gpu_matches_the_cpu():
    """max_norm_ rescales in place on the device (float64 norms, xp.where): the same rows clipped, the same values,
    the parameters' dtype and device kept. The rows' norms are far from the bound (the GPU sums in another order)."""
    from distnn.optim import max_norm_

    rng = np.random.default_rng(0)
    shapes = [(6, 4), (3, 2, 3, 3), (5,)]
    w0 = []
    for shape in shapes:
        w = rng.standard_normal(shape)
        norms = np.sqrt((w.reshape(shape[0], -1) ** 2).sum(axis=1)) if len(shape) > 1 else np.abs(w)
        target = np.resize([0.4, 2.5, 0.8, 3.0, 1.7], shape[0])  # (bound 1.0: none within 0.2 of it)
        w0.append((w * (target / norms).reshape((-1,) + (1,) * (len(shape) - 1))).astype(np.float32))
    results = {}
    for device in ("cpu", "cuda"):
        params = [nn.Parameter(on(device, w.copy())) for w in w0]
        versions = [p._vc[0] if p._vc else 0 for p in params]
        count = max_norm_(params, 1.0)
        assert all(backend.device_of(p.data) == backend.device_of(on(device, w0[0])) for p in params)
        assert all(p.data.dtype == np.float32 for p in params)
        assert all((p._vc[0] if p._vc else 0) > v for p, v in zip(params, versions))  # (every one had a row over)
        results[device] = count, [backend.to_numpy(p.data) for p in params]
    assert results["cuda"][0] == results["cpu"][0] == 3 + 1 + 3
    for g, c in zip(results["cuda"][1], results["cpu"][1]):
        assert_close(g, c, 1e-6, "max_norm_")


SPARSE_OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "sgd-momentum": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.01),
    "sparse-adam": lambda ps: optim.SparseAdam(ps, lr=0.05),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(SPARSE_OPTIMIZERS))
def test_sparse_embedding_steps_on_the_gpu_match_the_cpu(name, dtype):
    """nn.Embedding(sparse=True)'s sparse gradients (coalesced on the device) and the optimizers' row updates
    (written without a GPU: fancy-indexed += on cupy arrays, scatter_add)."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((7, 3)).astype(dtype)
    batches = [(rng.integers(0, 7, (4, 2)), rng.standard_normal((4, 2, 3)).astype(dtype)) for _ in range(4)]
    results = {}
    for device in ("cpu", "cuda"):
        # (a copy: _weight is the weight itself, as torch's, and the CPU run's steps would move the GPU run's start)
        emb = nn.Embedding(7, 3, sparse=True, _weight=w0.copy(), dtype=dtype).to(device)
        opt = SPARSE_OPTIMIZERS[name](emb.parameters())
        for idx, y in batches:
            opt.zero_grad()
            ((emb(dn.Tensor(on(device, idx))) - dn.Tensor(on(device, y))) ** 2).sum().backward()
            # (the concrete device, "cuda:0", as torch's sparse .device is: resolve_device, not the bare "cuda")
            assert backend.device_of(emb.weight.grad._values().data) == backend.resolve_device(device)
            opt.step()
        results[device] = backend.to_numpy(emb.weight.data)
    assert_close(results["cuda"], results["cpu"], RTOL[dtype] / 10, f"{name}: parameters")


def test_grad_scaler_takes_a_new_scale_on_the_gpu():
    """``update(new_scale=...)`` with a one-element Tensor on the GPU (PyTorch's takes a CUDA one): np.asarray
    refused the cupy array. The scale (a host float32) and the next scaled loss are the CPU's."""
    scales = {}
    for device in ("cpu", "cuda"):
        scaler = dn.amp.GradScaler(device)
        loss = dn.Tensor(on(device, np.array(3.0, np.float32)), requires_grad=True)
        scaler.scale(loss)
        scaler.update(new_scale=dn.Tensor(on(device, np.array([512.0], np.float32))))
        scaled = scaler.scale(loss)
        assert backend.device_of(scaled.data) == backend.device_of(loss.data)
        scales[device] = (scaler.get_scale(), float(backend.to_numpy(scaled.data)))
    assert scales["cuda"] == scales["cpu"] == (512.0, 1536.0)
