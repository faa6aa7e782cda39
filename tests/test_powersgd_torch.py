"""PowerSGD against PyTorch's own ``powerSGD_hook`` (one-process gloo group, the hook called on a bucket).

torch's hook gets the same per-step gradients in distnn's bucket order and,
through its warm-start memory, the Q's distnn starts from (torch draws its
own from its RNG, which distnn cannot match); from there every step's
synchronized gradient, rank 1 and 2, with error feedback and warm start,
must agree in float64, and PowerSGD-trained weights of a small model too.
"""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn.distributed import DataParallel, LocalCommunicator, PowerSGDState
from distnn.optim.sgd import SGD
from test_data_parallel import global_batches, make_data, make_mlp
from test_powersgd import Probe, coeffs

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
hooks = pytest.importorskip("torch.distributed.algorithms.ddp_comm_hooks.powerSGD_hook")


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    if not dist.is_initialized():
        init = tmp_path_factory.mktemp("gloo") / "init"
        dist.init_process_group("gloo", init_method=f"file://{init}", rank=0, world_size=1)
    yield dist.group.WORLD
    dist.destroy_process_group()


class Bucket:
    """What the hook reads of a DDP GradBucket: one flat buffer and its per-parameter views."""

    def __init__(self, grads):
        self._buffer = torch.cat([torch.as_tensor(g).reshape(-1) for g in grads])
        self._views, at = [], 0
        for g in grads:
            self._views.append(self._buffer[at:at + g.size].view(g.shape))
            at += g.size

    def buffer(self):
        return self._buffer

    def gradients(self):
        return self._views

    def index(self):
        return 0

    def is_last(self):
        return True


def torch_state(group, rank_r, q0, p_size):
    state = hooks.PowerSGDState(group, matrix_approximation_rank=rank_r, start_powerSGD_iter=2)
    state.iter = 2  # (made when distnn's compression starts: steps 0 and 1 were plain allreduces)
    # (present: the hook then takes Q from memory; P's values are computed before use)
    state.p_memory_dict[0] = torch.empty(p_size, dtype=torch.float64)
    state.q_memory_dict[0] = torch.as_tensor(q0.copy())
    return state


def synced(state, grads):
    """torch's averaged gradients of one step: ``grads`` in bucket order."""
    bucket = Bucket(grads)
    return [v.numpy().copy() for v in (hooks.powerSGD_hook(state, bucket).wait(), bucket)[1].gradients()]


@pytest.mark.parametrize("rank_r", [1, 2])
def test_same_gradients_as_torchs_hook_step_by_step(group, rank_r):
    q0 = np.random.default_rng(7).standard_normal((12 + 15) * rank_r)  # bucket order: (10, 12), then (8, 3, 5)
    dp = DataParallel(Probe(), LocalCommunicator(), compression=PowerSGDState(rank_r, start_powerSGD_iter=2))
    ts = None
    for t in range(8):
        if t == 2:  # distnn starts from the same Q's
            dp.powersgd.q_memory_dict[0] = q0.copy()
            ts = torch_state(group, rank_r, q0, (10 + 8) * rank_r)
        g = coeffs(0, t)
        dp.set_num_samples(1, 1)
        for p in dp.parameters():
            p.grad = None
        dp(g).backward()
        if ts is None:
            continue
        theirs = synced(ts, g[::-1])[::-1]
        for i, p in enumerate(dp.parameters()):
            np.testing.assert_allclose(p.grad, theirs[i], rtol=1e-10, atol=1e-12, err_msg=f"step {t}, param {i}")
    assert np.abs(dp.module.ps[0].grad - coeffs(0, 7)[0]).max() > 1e-2  # (compressed, not the plain gradient)


def test_training_follows_torchs_hook(group):
    """An MLP trained 12 SGD steps with PowerSGD: distnn's DataParallel vs torch autograd + torch's hook."""
    X, Y = make_data()
    model = make_mlp(1)
    tmodel = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 12), torch.nn.ReLU(),
                                 torch.nn.Linear(12, 3)).double()
    with torch.no_grad():
        for tp, p in zip(tmodel.parameters(), model.parameters()):
            tp.copy_(torch.as_tensor(p.data))
    dp = DataParallel(model, LocalCommunicator(), compression=PowerSGDState(start_powerSGD_iter=2))
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9)
    # compressed: the weights, 4.weight (3, 12), 2.weight (12, 16) and 0.weight (16, 6) ((n + m) * 2 < n * m)
    q0 = np.random.default_rng(3).standard_normal(12 + 16 + 6)
    ts = None
    for t, idx in enumerate(global_batches(8, steps=12)):
        if t == 2:
            dp.powersgd.q_memory_dict[0] = q0.copy()
            ts = torch_state(group, 1, q0, 3 + 12 + 16)
        opt.zero_grad()
        dp.set_num_samples(len(idx), len(idx))
        F.cross_entropy(dp(distnn.Tensor(X[idx])), Y[idx]).backward()
        opt.step()
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tmodel(torch.as_tensor(X[idx])), torch.as_tensor(Y[idx])).backward()
        if ts is not None:
            params = list(tmodel.parameters())[::-1]  # distnn's bucket order: reverse registration
            out = synced(ts, [p.grad.numpy() for p in params])
            for p, g in zip(params, out):
                p.grad.copy_(torch.as_tensor(g))
        topt.step()
    assert dp.bucket_layout == [["4.bias", "4.weight", "2.bias", "2.weight", "0.bias", "0.weight"]]
    for (name, p), tp in zip(model.named_parameters(), tmodel.parameters()):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-9, atol=1e-11, err_msg=name)
