"""nn.SyncBatchNorm with PyTorch's API: the torch oracle in one process, repr, arguments and refusals,
convert_sync_batchnorm as PyTorch's, and a converted model on N ranks == the unconverted one in one process."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn.distributed import DataParallel, LocalCommunicator, simulate
from distnn.optim import SGD

torch = pytest.importorskip("torch")

D = np.float64


# ------------------------------------------------------------------- one process: PyTorch's SyncBatchNorm
CONFIGS = [dict(), dict(momentum=None), dict(affine=False), dict(track_running_stats=False),
           dict(eps=1e-3, momentum=0.3, bias=False)]


@pytest.mark.parametrize("shape", [(6, 3), (5, 3, 4), (4, 3, 2, 3), (3, 3, 2, 2, 2), (3, 3, 1, 2, 1, 2)])
@pytest.mark.parametrize("kwargs", CONFIGS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default")
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
def test_one_process_matches_torch_sync_batchnorm(shape, kwargs, dtype, tol):
    rng = np.random.default_rng(0)
    c = shape[1]
    ours = nn.SyncBatchNorm(c, dtype=dtype, **kwargs)
    ref = torch.nn.SyncBatchNorm(c, dtype=getattr(torch, np.dtype(dtype).name), **kwargs)
    if ours.weight is not None:
        w = rng.uniform(0.5, 1.5, c).astype(dtype)
        ours.weight.data[...] = w
        ref.weight.data[...] = torch.tensor(w)
    if ours.bias is not None:
        b = rng.standard_normal(c).astype(dtype)
        ours.bias.data[...] = b
        ref.bias.data[...] = torch.tensor(b)
    for step in range(3):  # two training steps (running statistics), then eval
        if step == 2:
            ours.eval()
            ref.eval()
        x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
        gy = rng.standard_normal(shape).astype(dtype)
        xo, xt = distnn.Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yo, yt = ours(xo), ref(xt)
        (yo * distnn.Tensor(gy)).sum().backward()
        (yt * torch.tensor(gy)).sum().backward()
        np.testing.assert_allclose(yo.numpy(), yt.detach().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(xo.grad, xt.grad.numpy(), rtol=tol, atol=tol)
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value, ref.state_dict()[name].numpy(), rtol=tol, atol=tol, err_msg=name)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, dict(ref.named_parameters())[name].grad.numpy(), rtol=tol,
                                   atol=tol * 10, err_msg=name)
    assert list(ours.state_dict()) == list(ref.state_dict())


@pytest.mark.parametrize("kwargs", CONFIGS, ids=lambda k: ",".join(f"{a}={b}" for a, b in k.items()) or "default")
def test_repr_matches_torch(kwargs):
    assert repr(nn.SyncBatchNorm(4, **kwargs)) == repr(torch.nn.SyncBatchNorm(4, **kwargs))


def test_process_group_is_pytorchs_sixth_argument_and_comm_its_distnn_name():
    comm = LocalCommunicator()
    bn = nn.SyncBatchNorm(3, 1e-5, 0.1, True, True, comm)
    assert bn.process_group is comm and bn.comm is comm
    assert nn.SyncBatchNorm(3, comm=comm).process_group is comm
    assert nn.SyncBatchNorm(3).process_group is None  # (init()'s at the first training forward)
    other = LocalCommunicator()
    with pytest.raises(TypeError, match="both process_group and comm"):
        nn.SyncBatchNorm(3, process_group=comm, comm=other)
    with pytest.raises(TypeError, match="both process_group and comm"):
        nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(3), comm, comm=other)
    assert nn.SyncBatchNorm is distnn.distributed.SyncBatchNorm


def test_refusals_match_torch():
    for ours, theirs, match in [
        (nn.SyncBatchNorm(3), torch.nn.SyncBatchNorm(3), "expected at least 2D input \\(got 1D input\\)"),
        (nn.SyncBatchNorm(0), torch.nn.SyncBatchNorm(0), "SyncBatchNorm number of input channels should be non-zero"),
    ]:
        shape = (4,) if ours.num_features else (4, 0)
        with pytest.raises(ValueError, match=match):
            ours(distnn.Tensor(np.ones(shape)))
        with pytest.raises(ValueError, match=match):
            theirs(torch.ones(shape))
    with pytest.raises(ValueError, match="expected 3 channels"):
        nn.SyncBatchNorm(3)(distnn.Tensor(np.ones((4, 2, 5))))


# ------------------------------------------------------------------- convert_sync_batchnorm
class Mixed(nn.Module):
    """Every BatchNorm kind and option on one path: (N, 2, 2, 3, 3) -> 3 logits.

    bn3: BatchNorm3d, cumulative average (momentum=None); bn1l: BatchNorm1d on (N, C, L) without affine
    parameters; bn2: BatchNorm2d without running statistics; lin1 then bn1: BatchNorm1d on (N, C), put in
    eval mode (frozen statistics, trained weight and bias).
    """

    def __init__(self, seed, torch_module=None):
        super().__init__()
        distnn.manual_seed(seed)
        self.bn3 = nn.BatchNorm3d(2, momentum=None, dtype=D)
        self.bn1l = nn.BatchNorm1d(2, affine=False, momentum=0.2, dtype=D)
        self.bn2 = nn.BatchNorm2d(2, track_running_stats=False, dtype=D)
        self.lin1 = nn.Linear(36, 8, dtype=D)
        self.bn1 = nn.BatchNorm1d(8, dtype=D)
        self.lin2 = nn.Linear(8, 3, dtype=D)
        rng = np.random.default_rng(seed)
        self.bn3.weight.data[...] = rng.uniform(0.5, 1.5, 2)
        self.bn1.running_mean.data[...] = rng.standard_normal(8) * 0.1
        self.bn1.running_var.data[...] = rng.uniform(0.5, 2, 8)
        self.bn1.eval()

    def forward(self, x):
        n = x.shape[0]
        x = self.bn1l(self.bn3(x).tanh().reshape(n, 2, 18)).reshape(n, 2, 3, 6)
        x = self.bn2(x).reshape(n, 36)
        return self.lin2(self.bn1(self.lin1(x)).tanh())


def _mixed_data():
    rng = np.random.default_rng(3)
    return rng.standard_normal((30, 2, 2, 3, 3)) * 2 + 1, rng.integers(0, 3, 30)


BATCHES = [np.arange(a, min(a + 7, 30)) for a in range(0, 30, 7)] * 3  # 7,7,7,7,2: uneven, some ranks empty


def train_mixed(comm=None, steps=12):
    """One process on whole batches (comm None, plain BatchNorm), or this rank's stride shards, converted."""
    X, Y = _mixed_data()
    model = Mixed(1 if comm is None else 1 + comm.rank)  # ranks start apart: DataParallel broadcasts rank 0's
    forward = model
    if comm is not None:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # process_group None: init()'s, this rank's
        forward = DataParallel(model, comm, bucket_mb=0.0001)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    for idx in BATCHES[:steps]:
        mine = idx if comm is None else idx[comm.rank::comm.size]
        opt.zero_grad()
        F.cross_entropy(forward(distnn.Tensor(X[mine])), Y[mine]).backward()
        opt.step()
    return model, model.state_dict()


def _check_against_one_process(state):
    _, ref = train_mixed()
    assert list(state) == list(ref)
    for k in ref:  # parameters, running statistics (bn3's cumulative; bn1's frozen), batch counts
        err = np.abs(state[k] - ref[k]).max() / max(np.abs(ref[k]).max(), 1e-300)
        assert err <= 1e-6, f"{k}: relative error {err:.3g}"
    assert not np.array_equal(ref["bn3.running_mean"], np.zeros(2)) and int(ref["bn3.num_batches_tracked"]) == 12


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # an empty shard's mean loss
@pytest.mark.parametrize("n", [2, 3])
def test_converted_model_on_n_ranks_matches_the_unconverted_one_in_one_process(n):
    results = simulate(n, lambda comm: train_mixed(comm))
    model, state = results[0]
    assert [type(m).__name__ for m in model.children()] == \
        ["SyncBatchNorm", "SyncBatchNorm", "SyncBatchNorm", "Linear", "SyncBatchNorm", "Linear"]
    _check_against_one_process(state)
    assert all(np.array_equal(s[k], state[k]) for _, s in results[1:] for k in state)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.mpi(min_size=2)
def test_converted_model_under_mpi_matches_one_process():
    import distnn.distributed as dist

    comm = dist.init()
    _, state = train_mixed(comm)
    _check_against_one_process(state)
    every = comm.allgather_object(state)
    assert all(np.array_equal(s[k], every[0][k]) for s in every for k in state)


def test_convert_matches_torch_structure_and_shares_state():
    model = Mixed(0)
    before = {n: t for n, t in model.state_dict(keep_vars=True).items()}
    comm = LocalCommunicator()
    out = nn.SyncBatchNorm.convert_sync_batchnorm(model, comm)
    assert out is model
    tmodel = torch.nn.Sequential()
    for name, m in [("bn3", torch.nn.BatchNorm3d(2, momentum=None)),
                    ("bn1l", torch.nn.BatchNorm1d(2, affine=False, momentum=0.2)),
                    ("bn2", torch.nn.BatchNorm2d(2, track_running_stats=False)), ("lin1", torch.nn.Linear(36, 8)),
                    ("bn1", torch.nn.BatchNorm1d(8).eval()), ("lin2", torch.nn.Linear(8, 3))]:
        tmodel.add_module(name, m)
    tmodel = torch.nn.SyncBatchNorm.convert_sync_batchnorm(tmodel)
    assert [repr(m) for m in model.children()] == [repr(m) for m in tmodel.children()]
    assert [(type(m).__name__, m.training) for m in model.children()] == \
        [(type(m).__name__, m.training) for m in tmodel.children()]
    assert list(model.state_dict()) == list(tmodel.state_dict())
    assert all(t is before[n] for n, t in model.state_dict(keep_vars=True).items())  # the same tensors
    assert all(m.process_group is comm for m in model.children() if isinstance(m, nn.SyncBatchNorm))
    lone = nn.BatchNorm2d(4, eps=1e-3, momentum=0.3, dtype=np.float32).eval()
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(lone)
    assert isinstance(sync, nn.SyncBatchNorm) and sync is not lone and not sync.training
    assert sync.weight is lone.weight and sync.running_var is lone.running_var and sync.weight.dtype == np.float32
    assert repr(sync) == repr(torch.nn.SyncBatchNorm.convert_sync_batchnorm(
        torch.nn.BatchNorm2d(4, eps=1e-3, momentum=0.3)))
