"""DataParallel and the communicators where users of DDP and Horovod stumble: a backward that raised,
a converted BatchNorm without bias, a model changed after wrapping, and reductions MPI does not have."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn.autograd.function import Function
from distnn.distributed import DataParallel, LocalCommunicator, SyncBatchNorm, simulate
from distnn.optim.sgd import SGD


class _Raising(Function):
    """Identity whose backward raises while ``fail[0]`` is set (a bad batch found deep in backward)."""

    def forward(self, x, fail=None):
        self.fail = fail
        return x

    def backward(self, g):
        if self.fail[0]:
            raise FloatingPointError("bad batch")
        return (g,)


class _Net(nn.Module):
    def __init__(self, fail):
        super().__init__()
        self.fail = fail
        self.fc1, self.fc2 = nn.Linear(4, 8, dtype=np.float64), nn.Linear(8, 3, dtype=np.float64)

    def forward(self, x):
        return self.fc2(_Raising.apply(F.relu(self.fc1(x)), fail=self.fail))


def _data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((40, 4)), rng.integers(0, 3, 40)


def _train(comm, bad_step, recover):
    """8 steps of 8 samples each; at ``bad_step`` backward raises on every rank after fc2's bucket started."""
    X, Y = _data()
    distnn.manual_seed(0)
    fail = [False]
    model = _Net(fail)
    dp = DataParallel(model, comm, bucket_mb=1e-6) if comm.size > 1 else model  # one bucket per parameter
    opt = SGD(model.parameters(), lr=0.1)
    for step in range(5):
        idx = np.arange(step * 8, step * 8 + 8)[comm.rank::comm.size]
        opt.zero_grad()
        fail[0] = step == bad_step
        try:
            F.cross_entropy(dp(distnn.Tensor(X[idx])), Y[idx]).backward()
        except FloatingPointError:
            if recover and comm.size > 1:
                dp.finish_gradient_synchronization()  # completes the started exchange on every rank
            opt.zero_grad()
            continue  # the bad batch is skipped
        opt.step()
    return model.state_dict()


def test_a_backward_that_raised_mid_synchronization_is_not_silently_left_behind():
    # It used to leave DataParallel "in sync" forever: no later step was averaged, and replicas drifted; then it
    # took a finish_gradient_synchronization() on every rank. Now the ranks finish the step's exchange as they
    # raise (distnn.distributed.sync_failures): every rank raises the FloatingPointError, the step is dropped,
    # and the next one trains as usual; a finish call after it is harmless.
    ref = _train(LocalCommunicator(), 2, True)  # one process skipping the same batch
    for recover in (False, True):
        states = simulate(2, _train, 2, recover)
        for k in ref:
            np.testing.assert_allclose(states[0][k], ref[k], rtol=1e-12, atol=1e-14, err_msg=k)
            np.testing.assert_array_equal(states[0][k], states[1][k], err_msg=k)


def test_converting_a_batchnorm_without_bias_keeps_it_without_bias():
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6, bias=False))
    keys = list(model.state_dict())
    converted = SyncBatchNorm.convert_sync_batchnorm(model, comm=LocalCommunicator())
    assert isinstance(converted[1], SyncBatchNorm) and converted[1].bias is None
    assert list(converted.state_dict()) == keys  # no new trainable bias, and the old checkpoint still loads
    assert SyncBatchNorm(6, affine=False).bias is None


def test_a_model_changed_after_wrapping_is_reported():
    def fn(comm):
        model = nn.Sequential(nn.Linear(4, 3))
        dp = DataParallel(model, comm)
        model.to(np.float64)  # after wrapping: the buckets are float32
        F.cross_entropy(dp(distnn.Tensor(np.ones((2, 4)))), np.array([0, 1])).backward()

    with pytest.raises(TypeError, match=r"parameter '0\.(weight|bias)' is float64 on ranks 0, 1 but was float32"):
        simulate(2, fn)

    def frozen(comm):
        model = nn.Linear(4, 3)
        for p in model.parameters():
            p.requires_grad = False
        DataParallel(model, comm)

    with pytest.raises(ValueError, match="no parameter that requires a gradient"):
        simulate(2, frozen)


@pytest.mark.parametrize("backend", ["local", "inprocess"])
def test_reductions_behave_alike_on_every_backend(backend):
    # what runs in one process must also run under mpiexec (tests/test_comm_mpi.py checks MPI alike)
    def fn(comm):
        assert float(comm.allreduce(np.float64(2.5), "sum")) == 2.5 * comm.size  # a numpy scalar
        for array, op in ((np.ones(3, bool), "sum"), (np.ones(3, bool), "max"), (np.ones(2, complex), "max")):
            with pytest.raises(TypeError, match="bool array|complex arrays"):
                comm.allreduce(array, op)
        np.testing.assert_array_equal(comm.allreduce(np.ones(2, complex), "sum"), np.full(2, comm.size + 0j))
        with pytest.raises(TypeError, match="color must be an int or None"):
            comm.split("a")
        return True

    assert fn(LocalCommunicator()) if backend == "local" else all(simulate(2, fn))


def test_the_wrapper_has_a_state_dict_and_buffers_like_pytorchs_ddp():
    # DataParallel kept its list of buffers to broadcast as `_buffers`, Module's own registry: the
    # wrapper's state_dict(), buffers() and load_state_dict() all failed ("'list' object has no attribute 'items'")
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    ddp = DataParallel(model, LocalCommunicator())
    sd = ddp.state_dict()
    assert sorted(sd) == sorted(f"module.{k}" for k in model.state_dict())  # PyTorch's DDP prefix
    assert [b for b in ddp.buffers()] and all(any(b is c for c in model.buffers()) for b in ddp.buffers())
    changed = {k: v + 1 for k, v in sd.items()}
    ddp.load_state_dict(changed)
    np.testing.assert_array_equal(model[0].weight.data, changed["module.0.weight"])
    with pytest.raises(AttributeError, match="'_buffers' is Module's own registry"):
        ddp._buffers = []


class _TimeMajor(nn.Module):
    """LSTM on (L, N, F) input, the last step's output classified: PyTorch's default layout."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 6, batch_first=False, dtype=np.float64)
        self.head = nn.Linear(6, 3, dtype=np.float64)

    def forward(self, x=None):
        out, _ = self.lstm(x)
        return self.head(out[-1])


def _train_time_major(comm, batch_dim, by_keyword=False):
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((5, 21, 4)), rng.integers(0, 3, 21)  # sequence length 5, 3 batches of 7
    distnn.manual_seed(0)
    model = _TimeMajor()
    dp = DataParallel(model, comm, batch_dim=batch_dim) if comm.size > 1 else model
    opt = SGD(model.parameters(), lr=0.2, momentum=0.9)
    for step in range(3):
        idx = np.arange(step * 7, step * 7 + 7)[comm.rank::comm.size]  # 3 ranks: 3 / 2 / 2 samples
        opt.zero_grad()
        x = distnn.Tensor(X[:, idx])
        F.cross_entropy(dp(x=x) if by_keyword else dp(x), Y[idx]).backward()
        opt.step()
    return model.state_dict()


def test_time_major_inputs_are_counted_along_batch_dim_and_keyword_inputs_are_counted():
    # Samples were counted along axis 0 only: an (L, N, F) input weighted each rank by the sequence length L
    # (3 uneven ranks: 5 % off after 3 steps), and a keyword-only forward was not counted at all.
    one = _train_time_major(LocalCommunicator(), None)
    for by_keyword in (False, True):
        for state in simulate(3, _train_time_major, 1, by_keyword):
            for k in one:
                np.testing.assert_allclose(state[k], one[k], rtol=1e-10, atol=1e-12, err_msg=k)


def test_an_unset_batch_dim_with_a_time_major_layer_warns_and_an_uncounted_sync_is_an_error():
    with pytest.warns(UserWarning, match=r"LSTM 'lstm' takes time-major .* pass batch_dim=1"):
        DataParallel(_TimeMajor(), LocalCommunicator())

    def bypass(comm):
        model = nn.Linear(3, 2)
        dp = DataParallel(model, comm)
        with pytest.raises(RuntimeError, match="no sample count is known on ranks 0, 1"):
            dp.module(distnn.Tensor(np.ones((2, 3), np.float32))).sum().backward()  # not through the wrapper
        assert model.weight.grad is None  # the refused step's gradients are dropped
        return True

    assert simulate(2, bypass) == [True, True]


def test_a_graph_that_saved_a_buffer_backwards_after_the_buffer_broadcast():
    # DataParallel broadcasts buffers after every synchronization and bumped their versions even where
    # nothing changed: a retained graph, or a second forward's graph, that saved a buffer then refused
    # to backward on 2 ranks (not on 1)
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 3)
            self.register_buffer("scale", np.full(3, 2.0, np.float32))

        def forward(self, x):
            return self.lin(x) * self.scale

    def run(comm):
        distnn.manual_seed(0)
        dp = DataParallel(Scaled(), comm)
        x = distnn.Tensor(np.ones((4, 4), np.float32))
        first, second = dp(x), dp(x)
        first.sum().backward()  # synchronizes, then broadcasts the buffer
        second.sum().backward()
        out = dp(x)
        out.sum().backward(retain_graph=True)
        (out * out).sum().backward()
        return True

    assert simulate(2, run) == [True, True]


# ------------------------------------- a parameter unused on some rank, beside other collectives
class _BnNet(nn.Module):
    """Linear -> SyncBatchNorm -> two heads; head ``c`` takes part on rank 0 only (``use_c``)."""

    def __init__(self, comm):
        super().__init__()
        self.a = nn.Linear(4, 3, dtype=np.float64)
        self.bn = SyncBatchNorm(3, comm=comm, dtype=np.float64)
        self.b, self.c = nn.Linear(3, 3, dtype=np.float64), nn.Linear(3, 3, dtype=np.float64)

    def forward(self, x, use_c):
        h = F.relu(self.bn(self.a(x)))
        out = self.b(h)
        return out + self.c(h) if use_c else out


_ROWS = 12
_BN_DATA = np.random.default_rng(5).standard_normal((_ROWS, 4)), np.random.default_rng(6).integers(0, 3, _ROWS)


def _bn_oracle(size):
    """One process, the whole batch: gradients of the mean loss where rank 0's rows (of ``size``) use head c."""
    X, Y = _BN_DATA
    distnn.manual_seed(1)
    model = _BnNet(LocalCommunicator())
    on_rank0 = (np.arange(_ROWS) % size == 0).astype(np.float64)[:, None]
    h = F.relu(model.bn(model.a(distnn.Tensor(X))))
    F.cross_entropy(model.b(h) + model.c(h) * distnn.Tensor(on_rank0), Y).backward()
    return {n: p.grad.copy() for n, p in model.named_parameters()}


def bn_unused_rank(comm, compression):
    """One step of _BnNet under DataParallel on ``comm``'s shard; returns the averaged gradients."""
    X, Y = _BN_DATA
    distnn.manual_seed(1)
    model = _BnNet(comm)
    dp = DataParallel(model, comm, bucket_mb=1e-6, compression=compression)  # a bucket per parameter
    mine = np.arange(_ROWS)[comm.rank::comm.size]
    # rank 0's last buckets (c's) start during backward, before SyncBatchNorm's allreduce; the other ranks'
    # only when backward ends, after it
    F.cross_entropy(dp(distnn.Tensor(X[mine]), use_c=comm.rank == 0), Y[mine]).backward()
    return {n: p.grad.copy() for n, p in model.named_parameters()}


def assert_grads_match(grads, ref, tol):
    scale = max(np.abs(g).max() for g in ref.values())  # (a's bias has gradient 0 before a batch norm)
    for n, g in ref.items():
        np.testing.assert_allclose(grads[n], g, rtol=0, atol=tol * scale, err_msg=n)


@pytest.mark.parametrize("compression,tol", [(None, 1e-12), ("fp16", 1e-2), ("bf16", 3e-2)])
def test_a_parameter_unused_on_one_rank_beside_sync_batchnorm(monkeypatch, compression, tol):
    # The buckets and SyncBatchNorm's backward allreduce were issued in different orders on the two ranks
    # (one communicator): a mismatched collective here, an MPI abort or garbage under mpiexec.
    monkeypatch.setenv("DISTNN_COLLECTIVE_TIMEOUT", "20")
    ref = _bn_oracle(3)
    grads = simulate(3, bn_unused_rank, compression)
    assert_grads_match(grads[0], ref, tol)
    for g in grads[1:]:
        for n in ref:
            np.testing.assert_array_equal(g[n], grads[0][n], err_msg=n)


class _Gen(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.extra = nn.Linear(3, 3, dtype=np.float64), nn.Linear(3, 3, dtype=np.float64)

    def forward(self, x, use_extra):
        return self.a(x) + self.extra(x) if use_extra else self.a(x)


_GAN_X = np.random.default_rng(7).standard_normal((_ROWS, 3))


def _gan_models():
    distnn.manual_seed(1)
    return _Gen(), nn.Sequential(nn.Linear(3, 3, dtype=np.float64), nn.ReLU(), nn.Linear(3, 1, dtype=np.float64))


def _gan_oracle(size):
    g, d = _gan_models()
    on_rank0 = (np.arange(_ROWS) % size == 0).astype(np.float64)[:, None]
    x = distnn.Tensor(_GAN_X)
    d(g.a(x) + g.extra(x) * distnn.Tensor(on_rank0)).mean().backward()
    return {f"{k}.{n}": p.grad.copy() for k, m in (("g", g), ("d", d)) for n, p in m.named_parameters()}


def gan_unused_rank(comm, compression):
    """A generator step through two wrapped models (G -> D); G's ``extra`` takes part on rank 0 only."""
    g, d = _gan_models()
    dg = DataParallel(g, comm, bucket_mb=1e-6, compression=compression)
    dd = DataParallel(d, comm, bucket_mb=1e-6, compression=compression)
    mine = np.arange(_ROWS)[comm.rank::comm.size]
    dd(dg(distnn.Tensor(_GAN_X[mine]), use_extra=comm.rank == 0)).mean().backward()
    return {f"{k}.{n}": p.grad.copy() for k, m in (("g", g), ("d", d)) for n, p in m.named_parameters()}


@pytest.mark.parametrize("compression,tol", [(None, 1e-12), ("fp16", 1e-2)])
def test_a_parameter_unused_on_one_rank_with_two_wrapped_models_in_one_backward(monkeypatch, compression, tol):
    # The two wrappers' bucket collectives interleaved differently on the ranks (one communicator):
    # a compressed exchange's all-to-all met the other wrapper's allgather.
    monkeypatch.setenv("DISTNN_COLLECTIVE_TIMEOUT", "20")
    ref = _gan_oracle(2)
    grads = simulate(2, gan_unused_rank, compression)
    assert_grads_match(grads[0], ref, tol)
    for n in ref:
        np.testing.assert_array_equal(grads[1][n], grads[0][n], err_msg=n)


def test_wrappers_dropped_on_every_rank_hand_their_communicator_to_the_next():
    # Each wrapper talks over a split of comm (MPI has room for about a thousand): a split whose wrapper
    # is gone on every rank is reused. Ranks let go at different moments (the garbage collector's):
    # here rank 1 holds the first wrapper one step longer, so the second wrapper must get a new split.
    import gc

    from distnn.distributed import data_parallel

    def run(comm):
        X, Y = _BN_DATA
        late, used = None, []
        for step in range(4):
            dp = DataParallel(nn.Linear(4, 3, dtype=np.float64), comm)
            used.append(data_parallel._pools[comm].index(dp._private))
            F.cross_entropy(dp(distnn.Tensor(X[comm.rank::2])), Y[comm.rank::2]).backward()
            if step == 0 and comm.rank == 1:
                late = dp
            elif step == 1:
                late = None
            del dp
            gc.collect()
        return used, len(data_parallel._pools[comm])

    assert simulate(2, run) == [([0, 1, 0, 0], 2)] * 2


def test_the_initial_broadcast_copies_signed_zeros_and_nan_payloads_bitwise():
    # Replicas must start with rank 0's very bits: -0.0 and +0.0 compare equal, but they differ in what
    # training does with them (1 / w, copysign, sign) and check_replicas compares bits. The broadcast
    # skipped "equal" values, so a rank holding -0.0 where rank 0 holds +0.0 kept it.
    def fn(comm):
        distnn.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 2, dtype=np.float64), nn.BatchNorm1d(2, dtype=np.float64))
        model[0].bias.data[...] = 0.0 if comm.rank == 0 else -0.0
        model[1].running_mean.data[...] = 0.0 if comm.rank == 0 else -0.0
        quiet_nan = np.array([np.nan, np.nan]).view(np.uint64)
        model[1].running_var.data[...] = (quiet_nan | np.uint64(comm.rank)).view(np.float64)  # other payloads
        dp = DataParallel(model, comm)
        dp.check_replicas()  # raises ReplicaMismatchError unless every parameter and buffer is bitwise rank 0's
        return np.signbit(model[0].bias.data).tolist()

    assert simulate(2, fn) == [[False, False], [False, False]]
