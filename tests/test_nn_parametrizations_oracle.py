"""nn.utils.parametrizations (orthogonal, weight_norm, spectral_norm) and the older hook-based weight_norm /
spectral_norm against PyTorch's with copied weights and buffers (the random buffers, spectral norm's u and v
and orthogonal's base, copied from PyTorch's state dict): outputs, gradients, buffers, state dict keys,
refusals; and a parametrized model under DataParallel on 2 simulated ranks gives one process's training."""
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn.distributed import DataParallel, LocalCommunicator, simulate
from distnn.nn.utils import parametrizations as PZ
from torch_twins import copy_torch_weights

TIGHT = dict(rtol=1e-11, atol=1e-12)


def _assert_state_equal(t_mod, d_mod, **tol):
    t_sd = t_mod.state_dict()
    assert list(d_mod.state_dict()) == list(t_sd)
    for k, v in t_sd.items():
        np.testing.assert_allclose(d_mod.state_dict()[k], v.numpy(), **(tol or TIGHT), err_msg=k)


def _grads_equal(t_mod, d_mod, **tol):
    tp, dp = dict(t_mod.named_parameters()), dict(d_mod.named_parameters())
    assert list(tp) == list(dp)
    for k in tp:
        np.testing.assert_allclose(dp[k].grad, tp[k].grad.numpy(), **(tol or TIGHT), err_msg=k)


def _linear_pair(torch, out_f, in_f, dtype=np.float64, seed=0):
    t = torch.nn.Linear(in_f, out_f).to(torch.float64 if dtype == np.float64 else torch.float32)
    d = nn.Linear(in_f, out_f, dtype=dtype)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(rng.standard_normal((out_f, in_f)).astype(dtype)))
    copy_torch_weights(t, d)
    return t, d


def _forward_backward(torch, t, d, x, steps=1):
    for _ in range(steps):
        (t(torch.from_numpy(x)) ** 2).sum().backward()
        (d(distnn.Tensor(x)) ** 2).sum().backward()


# -------------------------------------------------------------------------------------------- orthogonal
@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
@pytest.mark.parametrize("omap,triv", [("matrix_exp", True), ("cayley", True), ("householder", True),
                                       ("householder", False)])
def test_orthogonal_matches_torch(torch, shape, omap, triv):
    t, d = _linear_pair(torch, *shape)
    torch.nn.utils.parametrizations.orthogonal(t, orthogonal_map=omap, use_trivialization=triv)
    PZ.orthogonal(d, orthogonal_map=omap, use_trivialization=triv)
    assert list(d.state_dict()) == list(t.state_dict())
    w = d.weight.data
    np.testing.assert_allclose(w @ w.T if shape[0] <= shape[1] else w.T @ w, np.eye(min(shape)), atol=1e-12)
    # move the original off its start (off the diagonal, which householder reads as signs) and copy
    # PyTorch's state, its random base included
    rng = np.random.default_rng(1)
    with torch.no_grad():
        orig = t.parametrizations.weight.original
        orig.add_(torch.from_numpy(0.3 * rng.standard_normal(shape) * (1 - np.eye(*shape))))
    copy_torch_weights(t, d)
    x = rng.standard_normal((2, shape[1]))
    _forward_backward(torch, t, d, x)
    np.testing.assert_allclose(d.weight.data, t.weight.detach().numpy(), **TIGHT)
    w = d.weight.data
    np.testing.assert_allclose(w @ w.T if shape[0] <= shape[1] else w.T @ w, np.eye(min(shape)), atol=1e-12)
    _grads_equal(t, d)


@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5)])
def test_orthogonal_assignment_as_torch(torch, shape):
    t, d = _linear_pair(torch, *shape)
    torch.nn.utils.parametrizations.orthogonal(t)
    PZ.orthogonal(d)
    q = np.linalg.qr(np.random.default_rng(2).standard_normal((max(shape), min(shape))))[0]
    q = q if shape[0] >= shape[1] else q.T
    t.weight = torch.from_numpy(q.copy())
    d.weight = distnn.Tensor(q.copy())
    np.testing.assert_allclose(d.weight.data, q, atol=1e-12)
    np.testing.assert_allclose(d.weight.data, t.weight.detach().numpy(), atol=1e-12)
    if shape[0] == shape[1]:  # (non-square: base's completion is random)
        _assert_state_equal(t, d)


def test_orthogonal_refusals_as_torch(torch):
    with pytest.raises(ValueError, match='orthogonal_map has to be one of "matrix_exp", "cayley", "householder"'):
        PZ.orthogonal(nn.Linear(3, 3), orthogonal_map="qr")
    with pytest.raises(ValueError, match="Expected a matrix or batch of matrices. Got a tensor of 1 dimensions."):
        PZ.orthogonal(nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match="has no parameter or buffer with name 'nope'"):
        PZ.orthogonal(nn.Linear(3, 3), name="nope")
    d = nn.Linear(3, 3)
    PZ.orthogonal(d, orthogonal_map="cayley", use_trivialization=False)
    with pytest.raises(NotImplementedError, match="use_trivialization=False"):
        d.weight = distnn.Tensor(np.eye(3, dtype=np.float32))


# ------------------------------------------------------------------------------------------- weight_norm
@pytest.mark.parametrize("dim", [0, 1, 2, -1, None])
def test_weight_norm_matches_torch(torch, dim):
    t = torch.nn.Conv2d(3, 4, 3).double()
    d = nn.Conv2d(3, 4, 3, dtype=np.float64)
    copy_torch_weights(t, d)
    torch.nn.utils.parametrizations.weight_norm(t, dim=dim)
    PZ.weight_norm(d, dim=dim)
    _assert_state_equal(t, d)
    assert "parametrizations.weight.original0" in d.state_dict()  # g, then v
    x = np.random.default_rng(3).standard_normal((2, 3, 5, 5))
    _forward_backward(torch, t, d, x)
    _grads_equal(t, d)


def test_weight_norm_float32_loosely(torch):
    t, d = _linear_pair(torch, 5, 4, dtype=np.float32)
    torch.nn.utils.parametrizations.weight_norm(t)
    PZ.weight_norm(d)
    _forward_backward(torch, t, d, np.random.default_rng(4).standard_normal((3, 4)).astype(np.float32))
    _grads_equal(t, d, rtol=1e-4, atol=1e-5)


def test_weight_norm_loads_an_old_weight_norm_state_dict(torch):
    t, d = _linear_pair(torch, 5, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.nn.utils.weight_norm(t)
    PZ.weight_norm(d)
    copy_torch_weights(t, d)  # weight_g, weight_v
    np.testing.assert_allclose(d.weight.data, t.weight.detach().numpy(), **TIGHT)


# ----------------------------------------------------------------------------------------- spectral_norm
@pytest.mark.parametrize("kind,dim", [("conv", None), ("conv", 1), ("convT", None), ("convT", 0), ("linear", None)])
def test_spectral_norm_matches_torch_with_copied_buffers(torch, kind, dim):
    if kind == "linear":
        t, d = _linear_pair(torch, 5, 4)
        x = np.random.default_rng(5).standard_normal((3, 4))
    else:
        tcls, dcls = (torch.nn.Conv2d, nn.Conv2d) if kind == "conv" else (torch.nn.ConvTranspose2d, nn.ConvTranspose2d)
        t, d = tcls(3, 4, 3).double(), dcls(3, 4, 3, dtype=np.float64)
        copy_torch_weights(t, d)
        x = np.random.default_rng(5).standard_normal((2, 3 if kind == "conv" else 3, 5, 5))
    torch.nn.utils.parametrizations.spectral_norm(t, dim=dim, n_power_iterations=2)
    PZ.spectral_norm(d, dim=dim, n_power_iterations=2)
    assert list(d.state_dict()) == list(t.state_dict())  # parametrizations.weight.0._u / ._v
    u = d.parametrizations.weight[0]._u.data
    assert abs(np.linalg.norm(u) - 1) < 1e-12
    copy_torch_weights(t, d)
    _forward_backward(torch, t, d, x, steps=3)  # training mode: u and v move at each access
    _assert_state_equal(t, d)
    _grads_equal(t, d, rtol=1e-10, atol=1e-11)
    t.eval()
    d.eval()
    u = d.parametrizations.weight[0]._u.data.copy()
    _forward_backward(torch, t, d, x)
    np.testing.assert_array_equal(d.parametrizations.weight[0]._u.data, u)  # eval mode: frozen
    np.testing.assert_allclose(d.weight.data, t.weight.detach().numpy(), **TIGHT)


def test_spectral_norm_divides_by_the_largest_singular_value():
    d = nn.Linear(6, 5, dtype=np.float64)
    PZ.spectral_norm(d, n_power_iterations=1)
    for _ in range(30):
        w = d.weight  # each training-mode access iterates
    assert np.linalg.svd(w.data, compute_uv=False)[0] == pytest.approx(1.0, abs=1e-8)


def test_spectral_norm_refusals_as_torch():
    with pytest.raises(ValueError, match="Expected n_power_iterations to be positive, but got n_power_iterations=0"):
        PZ.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range of \[-2, 1\] but got 3\)"):
        PZ.spectral_norm(nn.Linear(2, 2), dim=3)


# ------------------------------------------------------------------------------- the hook-based, older API
def test_old_weight_norm_matches_torch(torch):
    t, d = _linear_pair(torch, 5, 4)
    with pytest.warns(FutureWarning, match="`torch.nn.utils.weight_norm` is deprecated"):
        torch.nn.utils.weight_norm(t, dim=1)
    with pytest.warns(FutureWarning, match="`torch.nn.utils.weight_norm` is deprecated"):
        nn.utils.weight_norm(d, dim=1)
    _assert_state_equal(t, d)  # bias, weight_g, weight_v
    _forward_backward(torch, t, d, np.random.default_rng(6).standard_normal((3, 4)))
    _grads_equal(t, d)
    with pytest.raises(RuntimeError, match="Cannot register two weight_norm hooks on the same parameter weight"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            nn.utils.weight_norm(d)
    torch.nn.utils.remove_weight_norm(t)
    nn.utils.remove_weight_norm(d)
    _assert_state_equal(t, d)
    with pytest.raises(ValueError, match="weight_norm of 'weight' not found in"):
        nn.utils.remove_weight_norm(d)


def test_old_spectral_norm_matches_torch(torch):
    t = torch.nn.Conv2d(3, 4, 3).double()
    d = nn.Conv2d(3, 4, 3, dtype=np.float64)
    copy_torch_weights(t, d)
    torch.nn.utils.spectral_norm(t, n_power_iterations=2)
    nn.utils.spectral_norm(d, n_power_iterations=2)
    assert list(d.state_dict()) == list(t.state_dict())  # bias, weight_orig, weight_u, weight_v
    copy_torch_weights(t, d)
    _forward_backward(torch, t, d, np.random.default_rng(7).standard_normal((2, 3, 5, 5)), steps=3)
    _assert_state_equal(t, d)
    _grads_equal(t, d, rtol=1e-10, atol=1e-11)
    with pytest.raises(RuntimeError, match="Cannot register two spectral_norm hooks on the same parameter weight"):
        nn.utils.spectral_norm(d)
    t.eval()
    d.eval()
    torch.nn.utils.remove_spectral_norm(t)
    nn.utils.remove_spectral_norm(d)
    _assert_state_equal(t, d)
    with pytest.raises(ValueError, match="spectral_norm of 'weight' not found in"):
        nn.utils.remove_spectral_norm(d)


# ------------------------------------------------------------------------------ N ranks == one process
class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = PZ.orthogonal(nn.Linear(4, 6, dtype=np.float64))
        self.fc2 = PZ.weight_norm(nn.Linear(6, 6, dtype=np.float64))
        self.fc3 = PZ.spectral_norm(nn.Linear(6, 3, dtype=np.float64))

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


def _train(comm):
    distnn.manual_seed(0)
    model = _Net()
    dp = DataParallel(model, comm) if comm.size > 1 else model
    opt = distnn.optim.SGD(model.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x, y = rng.standard_normal((8, 4)), rng.integers(0, 3, 8)
        idx = np.arange(8)[comm.rank::comm.size]
        opt.zero_grad()
        F.cross_entropy(dp(distnn.Tensor(x[idx])), y[idx]).backward()
        opt.step()
    return model.state_dict()


def test_parametrized_model_under_data_parallel_equals_one_process():
    ref = _train(LocalCommunicator())
    states = simulate(2, _train)
    for k in ref:
        np.testing.assert_allclose(states[0][k], ref[k], rtol=1e-10, atol=1e-12, err_msg=k)
        np.testing.assert_array_equal(states[0][k], states[1][k], err_msg=k)
