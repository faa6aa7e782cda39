"""SyncBatchNorm: global statistics (Chan's combination), weighted backward, conversion; CNN oracle."""
import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn.distributed import DataParallel, SyncBatchNorm, simulate
from distnn.distributed.sync_batchnorm import combine_stats
from distnn.optim.sgd import SGD

D = np.float64


def test_chan_combination_keeps_precision_where_naive_formula_fails():
    rng = np.random.default_rng(0)
    x = 1e8 + rng.standard_normal(1000)  # huge mean, unit spread
    parts = np.split(x, [1, 300, 301, 700])  # uneven, including single samples
    counts = [len(p) for p in parts]
    means = [np.array([p.mean()]) for p in parts]
    m2s = [np.array([((p - p.mean()) ** 2).sum()]) for p in parts]
    n, mean, m2 = combine_stats(counts, means, m2s)
    assert n == 1000
    assert mean[0] == pytest.approx(x.mean(), rel=1e-15)
    assert m2[0] / n == pytest.approx(x.var(), rel=1e-9)
    naive = (x * x).mean() - x.mean() ** 2  # what the pitfall list warns about
    assert abs(naive - x.var()) > 1e-3


def _global_and_shards(sizes, shape, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((sum(sizes),) + shape) * 2 + 3
    bounds = np.cumsum([0] + list(sizes))
    return x, [x[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


@pytest.mark.parametrize("sizes,shape", [((3, 5, 0), (4,)), ((2, 1, 4), (3, 2, 3)), ((4, 4), (2, 3))])
def test_forward_backward_and_running_stats_match_batchnorm_on_the_global_batch(sizes, shape):
    x, shards = _global_and_shards(sizes, shape)
    c = shape[0]
    n_total = sum(sizes)
    gy = np.random.default_rng(1).standard_normal(x.shape)

    def make(cls):
        bn = cls(c, momentum=0.3, dtype=D)
        bn.weight.data[...] = np.linspace(0.5, 1.5, c)
        bn.bias.data[...] = np.linspace(-1, 1, c)
        return bn

    ref = make(nn.BatchNorm1d if len(shape) < 3 else nn.BatchNorm2d)
    xt = distnn.Tensor(x, requires_grad=True)
    out = ref(xt)
    (out * distnn.Tensor(gy / n_total)).sum().backward()  # the mean loss over the global batch

    def fn(comm):
        bn = make(SyncBatchNorm)
        bn.comm = comm
        mine = shards[comm.rank]
        xr = distnn.Tensor(mine, requires_grad=True)
        o = bn(xr)
        k = len(mine)
        lo = sum(sizes[:comm.rank])
        # this rank's loss: the mean over its own samples (0 when it has none)
        (o * distnn.Tensor(gy[lo:lo + k] / max(k, 1))).sum().backward()
        return o.numpy(), xr.grad, bn.weight.grad, bn.bias.grad, bn.running_mean.numpy(), bn.running_var.numpy()

    res = simulate(len(sizes), fn)
    lo = 0
    gw = np.zeros(c)
    gb = np.zeros(c)
    for k, (o, gx, gwr, gbr, rm, rv) in zip(sizes, res):
        w = k / n_total  # DataParallel's weight for this rank
        np.testing.assert_allclose(o, out.numpy()[lo:lo + k], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(w * gx, xt.grad[lo:lo + k], rtol=1e-10, atol=1e-14)
        gw += w * gwr
        gb += w * gbr
        np.testing.assert_allclose(rm, ref.running_mean.numpy(), rtol=1e-13)
        np.testing.assert_allclose(rv, ref.running_var.numpy(), rtol=1e-13)
        lo += k
    np.testing.assert_allclose(gw, ref.weight.grad, rtol=1e-10)
    np.testing.assert_allclose(gb, ref.bias.grad, rtol=1e-10)


@pytest.mark.parametrize("sizes,pads", [((4, 4, 3), (0, 1, 2)), ((3, 2), (0, 2))],
                         ids=["some-padded", "one-rank-all-padding"])
def test_padded_rows_are_left_out_of_statistics_and_gradients(sizes, pads):
    # Rank r holds sizes[r] rows of which the last pads[r] repeat other samples (sampler padding); the
    # trainer masks them out of the loss, and valid_rows() out of the statistics: equal to BatchNorm on
    # the real rows alone.
    from distnn.distributed import valid_rows

    c, shape = 3, (3, 2, 2)
    rng = np.random.default_rng(5)
    shards = [rng.standard_normal((k,) + shape) * 2 + 1 for k in sizes]
    real = [x[:k - p] for x, k, p in zip(shards, sizes, pads)]
    n_real = sum(len(x) for x in real)
    gy = [rng.standard_normal(x.shape) for x in shards]

    ref = nn.BatchNorm2d(c, momentum=0.3, dtype=D)
    xt = distnn.Tensor(np.concatenate(real), requires_grad=True)
    out = ref(xt)
    (out * distnn.Tensor(np.concatenate([g[:len(x)] for g, x in zip(gy, real)]) / n_real)).sum().backward()

    def fn(comm):
        bn = SyncBatchNorm(c, momentum=0.3, comm=comm, dtype=D)
        x, k, p = shards[comm.rank], sizes[comm.rank], pads[comm.rank]
        mask = np.arange(k) < k - p
        xr = distnn.Tensor(x, requires_grad=True)
        with valid_rows(mask):
            o = bn(xr)
        g = gy[comm.rank] * mask[:, None, None, None] / max(k - p, 1)  # the loss ignores padded rows
        (o * distnn.Tensor(g)).sum().backward()
        return o.numpy(), xr.grad, bn.weight.grad, bn.bias.grad, bn.running_mean.numpy(), bn.running_var.numpy()

    lo, gw, gb = 0, np.zeros(c), np.zeros(c)
    for r, (o, gx, gwr, gbr, rm, rv) in enumerate(simulate(len(sizes), fn)):
        k = sizes[r] - pads[r]
        w = k / n_real
        np.testing.assert_allclose(o[:k], out.numpy()[lo:lo + k], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(w * gx[:k], xt.grad[lo:lo + k], rtol=1e-10, atol=1e-14)
        assert not gx[k:].any()  # padded rows pass nothing back
        gw += w * gwr
        gb += w * gbr
        np.testing.assert_allclose(rm, ref.running_mean.numpy(), rtol=1e-13)
        np.testing.assert_allclose(rv, ref.running_var.numpy(), rtol=1e-13)
        lo += k
    np.testing.assert_allclose(gw, ref.weight.grad, rtol=1e-10)
    np.testing.assert_allclose(gb, ref.bias.grad, rtol=1e-10)


def _cnn(seed):
    distnn.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, dtype=D), nn.BatchNorm2d(4, dtype=D), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 5 * 5, 3, dtype=D))


def _cnn_data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((30, 2, 5, 5)) * 3 + 1, rng.integers(0, 3, 30)


BATCHES = [np.arange(a, min(a + 7, 30)) for a in range(0, 30, 7)] * 4  # 7,7,7,7,2 per pass: uneven


def _train_cnn_single(steps=20):
    X, Y = _cnn_data()
    model = _cnn(1)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    for idx in BATCHES[:steps]:
        opt.zero_grad()
        F.cross_entropy(model(distnn.Tensor(X[idx])), Y[idx]).backward()
        opt.step()
    return model.state_dict()


def train_cnn_rank(comm, steps=20):
    X, Y = _cnn_data()
    model = SyncBatchNorm.convert_sync_batchnorm(_cnn(1 + comm.rank), comm)
    dp = DataParallel(model, comm, bucket_mb=0.001)
    opt = SGD(model.parameters(), lr=0.05, momentum=0.9)
    for idx in BATCHES[:steps]:
        mine = idx[comm.rank::comm.size]
        opt.zero_grad()
        F.cross_entropy(dp(distnn.Tensor(X[mine])), Y[mine]).backward()
        opt.step()
    return model.state_dict()


def _check_oracle(state, ref):
    for k in ref:  # includes running_mean / running_var / num_batches_tracked
        err = np.abs(state[k] - ref[k]).max() / max(np.abs(ref[k]).max(), 1e-300)
        assert err <= 1e-6, f"{k}: relative error {err:.3g}"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the empty shard's loss
@pytest.mark.parametrize("n", [2, 3])
def test_cnn_with_syncbn_on_n_ranks_matches_one_process(n):
    ref = _train_cnn_single()
    states = simulate(n, train_cnn_rank)
    _check_oracle(states[0], ref)
    for s in states[1:]:
        assert all(np.array_equal(s[k], states[0][k]) for k in ref)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.mpi(min_size=2)
def test_cnn_with_syncbn_under_mpi_matches_one_process():
    import distnn.distributed as dist

    comm = dist.init()
    state = train_cnn_rank(comm)
    _check_oracle(state, _train_cnn_single())
    every = comm.allgather_object(state)
    assert all(np.array_equal(s[k], every[0][k]) for s in every for k in state)


def test_convert_keeps_order_names_and_shares_parameters():
    model = _cnn(0)
    bn = model[1]
    weight, rm = bn.weight, bn.running_mean
    model.eval()
    converted = SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model
    assert [type(m).__name__ for m in model] == ["Conv2d", "SyncBatchNorm", "ReLU", "Flatten", "Linear"]
    assert model[1].weight is weight and model[1].running_mean is rm and not model[1].training
    assert list(model.state_dict()) == list(_cnn(0).state_dict())
    assert model[1].where() == "SyncBatchNorm '1'"
    single = SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(3))
    assert isinstance(single, SyncBatchNorm) and single.num_features == 3


class _NoComm:
    size = 2

    def __getattr__(self, name):
        raise AssertionError(f"eval mode must not communicate (called {name})")


def test_eval_mode_uses_running_stats_without_communication():
    bn = SyncBatchNorm(3, comm=_NoComm(), dtype=D)
    bn.running_mean.data[...] = [1.0, 2.0, 3.0]
    bn.eval()
    x = np.random.default_rng(0).standard_normal((4, 3))
    ref = nn.BatchNorm1d(3, dtype=D)
    ref.running_mean.data[...] = [1.0, 2.0, 3.0]
    ref.eval()
    np.testing.assert_allclose(bn(distnn.Tensor(x)).numpy(), ref(distnn.Tensor(x)).numpy())


def test_too_few_values_is_a_clear_error():
    def fn(comm):
        bn = SyncBatchNorm(2, comm=comm, dtype=D)
        x = np.ones((1, 2)) if comm.rank == 0 else np.ones((0, 2))
        with pytest.raises(ValueError, match="expected more than 1 value per channel over all ranks"):
            bn(distnn.Tensor(x))
        # a refused batch is not counted (as BatchNorm1d); with momentum=None the count is the average's weight
        return int(bn.num_batches_tracked.data)

    assert simulate(2, fn) == [0, 0]
    bn = nn.BatchNorm1d(2, dtype=D)
    with pytest.raises(ValueError, match="expected more than 1 value per channel"):
        bn(distnn.Tensor(np.ones((1, 2))))
    assert int(bn.num_batches_tracked.data) == 0
