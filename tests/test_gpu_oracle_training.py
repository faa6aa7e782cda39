"""The GPU (cupy) against the CPU (numpy) for training around the model: N simulated data-parallel ranks on
the GPU against one GPU process, weight initialization on a GPU model (the host draws), MC-dropout predictions
and FGSM on device inputs. gpu_oracle.py says how the devices are compared."""
import numpy as np
import pytest

import distnn as dn
from distnn import backend, nn, optim
from distnn import functional as F
from distnn.distributed import DataParallel, simulate

from gpu_oracle import NO_GPU, on
from test_torch_reference import assert_close

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)


@pytest.mark.parametrize("sync_bn", [False, True], ids=["no-bn", "sync-bn"])
def test_two_gpu_ranks_equal_one_gpu_process_on_the_whole_batch(sync_bn):
    """Simulated ranks on the GPU: averaged gradients (bucketed, overlapping backward) and one SGD step
    equal one process on the whole batch (with SyncBatchNorm, batch statistics over every rank too)."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 6)).astype(np.float32), rng.integers(0, 3, 8)

    def build(comm=None):
        dn.manual_seed(0)
        norm = nn.BatchNorm1d(16) if sync_bn else nn.Identity()
        model = nn.Sequential(nn.Linear(6, 16), norm, nn.ReLU(), nn.Linear(16, 3))
        if comm is not None and sync_bn:
            from distnn.distributed import SyncBatchNorm

            model = SyncBatchNorm.convert_sync_batchnorm(model, comm)
        model.to("cuda")
        return model

    def step(model, xb, yb, wrap=None):
        net = wrap(model) if wrap else model
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        loss = dn.functional.cross_entropy(net(dn.Tensor(on("cuda", xb))), on("cuda", yb))
        loss.backward()
        opt.step()
        return [backend.to_numpy(p.data) for p in model.parameters()]

    def rank(comm):
        shard = slice(comm.rank * 4, comm.rank * 4 + 4)
        return step(build(comm), x[shard], y[shard], lambda m: DataParallel(m, comm, bucket_mb=0.0005))

    ranks = simulate(2, rank)
    for a, b in zip(*ranks):
        np.testing.assert_array_equal(a, b)  # replicas identical
    whole = step(build(), x, y)
    for a, b in zip(ranks[0], whole):
        assert_close(a, b, 1e-5, "two GPU ranks against one GPU process")


@pytest.mark.parametrize("scheme", ["kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal"])
def test_init_schemes_on_a_gpu_model_are_the_cpu_draws(scheme):
    """init_model_ on a model already on the GPU: the draws are made on the host (numpy generators) and copied,
    so the seed gives bitwise the CPU's weights (and zero biases), which stay on the GPU."""
    from distnn.nn.init_schemes import init_model_

    def build(device):
        dn.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 4))
        if device != "cpu":
            model.to(device)
        dn.manual_seed(5)
        init_model_(model, scheme)
        gen_model = init_model_(nn.Sequential(nn.Linear(3, 2)).to(device), scheme, np.random.default_rng(9))
        return model, gen_model

    (cpu, cpu_gen), (gpu, gpu_gen) = build("cpu"), build("cuda")
    for a, b in ((cpu, gpu), (cpu_gen, gpu_gen)):
        for (name, p), q in zip(a.named_parameters(), b.parameters()):
            assert backend.device_of(q.data) == backend.device_of(on("cuda", np.zeros(1))), name
            np.testing.assert_array_equal(backend.to_numpy(q.data), p.data, err_msg=name)
            if name.endswith("bias"):
                assert not p.data.any(), name


def _mc_model(device):
    """A float32 MLP with dropout, batch norm (eval: running statistics) and an attention layer's weight dropout."""
    from distnn.models import build_model

    dn.manual_seed(0)
    model = build_model("mlp", sizes=[6, 16, 16, 4], dropout=0.4, norm="batch")
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.data[...] = 0.3
            m.running_var.data[...] = 2.0
    if device != "cpu":
        model.to(device)
    return model.eval()


def test_mc_dropout_predictions_on_a_gpu_model_match_the_cpu():
    """predict_proba(mc_samples=N) on a model on the GPU: batches go to the model's device (they reached it as
    numpy arrays: cupy refuses a host operand), the masks are the host's counter-based ones (the same on both
    devices), and the averaged probabilities are the CPU's, for any batch size."""
    from distnn.train.inference import predict_proba
    from distnn.train.mc_dropout import MCDropout

    x = np.random.default_rng(5).standard_normal((13, 6)).astype(np.float32)
    cpu = predict_proba(_mc_model("cpu"), x, None, batch_size=13, mc_samples=6, mc_seed=3)
    gpu_model = _mc_model("cuda")
    for batch_size in (13, 4):
        gpu = predict_proba(gpu_model, x, None, batch_size=batch_size, mc_samples=6, mc_seed=3)
        assert isinstance(gpu, np.ndarray) and gpu.shape == (13, 4)
        np.testing.assert_allclose(gpu, cpu, rtol=1e-5, atol=1e-6)
    plain = predict_proba(gpu_model, x, None)  # (no MC dropout: dropout off, one pass)
    assert not np.allclose(plain, cpu, atol=1e-4)  # (the masks do change the probabilities)
    wrapped = MCDropout(gpu_model, 6, seed=3)
    with dn.no_grad():
        out = wrapped(dn.Tensor(on("cuda", x)))
    assert backend.device_of(out.data) == backend.device_of(gpu_model[0].weight.data)
    np.testing.assert_allclose(backend.to_numpy(out.softmax(axis=-1).data), cpu, rtol=1e-5, atol=1e-6)


def _fgsm_case():
    rng = np.random.default_rng(2)
    dn.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    x = rng.uniform(0.0, 1.0, (6, 5)).astype(np.float32)
    y = rng.integers(0, 3, 6)
    return model, x, y


def test_fgsm_on_the_gpu_matches_the_cpu():
    """fgsm on device inputs: the input gradient's sign (cupy's sign of NaN is 0, numpy's NaN: a NaN gradient must
    not leave its input unperturbed on the GPU only), clipping with numbers and with host array bounds (per-feature
    ranges, moved to the device), the result an array or a Tensor on the inputs' device, no parameter gradient."""
    from distnn.train.adversarial import fgsm

    def loss_fn(o, t):
        return F.cross_entropy(o, t, reduction="sum")

    model, x, y = _fgsm_case()
    probe = dn.Tensor(x.copy(), requires_grad=True)  # (the case itself: no input gradient near 0 on the CPU)
    loss_fn(model(probe), y).backward()
    assert np.abs(probe.grad).min() > 1e-5
    model.zero_grad()
    lo, hi = np.full(5, 0.05, np.float32), np.linspace(0.8, 1.0, 5).astype(np.float32)
    x_nan = x.copy()
    x_nan[3, 2] = np.nan  # row 3's gradient is NaN (its loss is), the other rows' are not
    outs = {}
    for device in ("cpu", "cuda"):
        if device != "cpu":
            model.to(device)
        xd = on(device, x)
        plain = fgsm(model, loss_fn, xd, y, 0.1)
        clipped = fgsm(model, loss_fn, dn.Tensor(xd), y, 0.1, clamp=(0.0, 1.0))
        bounded = fgsm(model, loss_fn, xd, y, 0.1, clamp=(lo, hi))
        nan = fgsm(model, loss_fn, on(device, x_nan), y, 0.1)
        assert isinstance(clipped, dn.Tensor) and not clipped.requires_grad
        for a in (plain, clipped.data, bounded, nan):
            assert backend.device_of(a) == backend.device_of(xd) and a.dtype == np.float32
        assert all(p.grad is None for p in model.parameters())
        outs[device] = [backend.to_numpy(a) for a in (plain, clipped.data, bounded, nan)]
    for name, g, c in zip(("plain", "clamp numbers", "clamp host arrays", "nan row"), outs["cuda"], outs["cpu"]):
        np.testing.assert_allclose(g, c, rtol=1e-6, atol=1e-6, equal_nan=True, err_msg=name)
    assert np.isnan(outs["cpu"][3][3]).all() and np.isfinite(np.delete(outs["cpu"][3], 3, axis=0)).all()
