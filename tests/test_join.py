"""Join / DataParallel.join: ranks with different numbers of batches (simulated ranks).

The oracle: N ranks, each with its own number of batches, train inside a join;
every step's gradient must be that of one process on the union of the batches
of the ranks still active at that step, so the final weights equal one
process stepping on those unions (float64, tight), replicas end bitwise equal,
and with the optimizer in the join its state is equal on every rank. The
helpers are shared with test_join_mpi.py.
"""
import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn.distributed import DataParallel, Join, Joinable, JoinHook, LocalCommunicator, simulate
from distnn.optim.adam import Adam
from distnn.optim.sgd import SGD

N_SAMPLES = 40


def make_model(seed, batchnorm=False):
    distnn.manual_seed(seed)
    layers = [nn.Linear(5, 8, dtype=np.float64)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(8, dtype=np.float64))
    layers += [nn.Tanh(), nn.Linear(8, 3, dtype=np.float64)]
    return nn.Sequential(*layers)


def make_data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N_SAMPLES, 5)), rng.integers(0, 3, N_SAMPLES)


def rank_batches(counts, seed=0):
    """Per rank r, ``counts[r]`` batches of 2 to 4 sample indices (ranks' batch sizes differ too)."""
    rng = np.random.default_rng(seed)
    return [[rng.choice(N_SAMPLES, size=int(rng.integers(2, 5)), replace=False) for _ in range(c)] for c in counts]


def make_optimizer(name, params):
    return Adam(params, lr=0.02) if name == "adam" else SGD(params, lr=0.1, momentum=0.9)


def train_union(per_rank, optimizer="adam", divide=None):
    """One process: step t uses the union of the batches of the ranks that have a t-th batch.

    ``divide``: None = mean over the union's samples; otherwise the loss is the
    sum of the active ranks' mean losses divided by ``divide`` (a number, or
    "active" for the number of active ranks): DataParallel(weight_by_samples=False).
    """
    X, Y = make_data()
    model = make_model(1)
    opt = make_optimizer(optimizer, model.parameters())
    for t in range(max(len(b) for b in per_rank)):
        active = [b[t] for b in per_rank if len(b) > t]
        opt.zero_grad()
        if divide is None:
            idx = np.concatenate(active)
            loss = F.cross_entropy(model(distnn.Tensor(X[idx])), Y[idx])
        else:
            d = len(active) if divide == "active" else divide
            loss = sum(F.cross_entropy(model(distnn.Tensor(X[i])), Y[i]) for i in active) * (1.0 / d)
        loss.backward()
        opt.step()
    return model.state_dict(), opt.state_dict()


def train_step(dp, opt, X, Y, idx):
    """One optimizer step of ``dp`` on the samples ``idx``."""
    opt.zero_grad()
    F.cross_entropy(dp(distnn.Tensor(X[idx])), Y[idx]).backward()
    opt.step()


def train_joined(comm, per_rank, optimizer="adam", join_optimizer=True, batchnorm=False, join_kwargs=None,
                 **dp_kwargs):
    """Rank ``comm.rank`` trains on its own batches inside a join; models start different (rank 0's is broadcast)."""
    X, Y = make_data()
    model = make_model(1 + comm.rank, batchnorm)
    dp = DataParallel(model, comm, **dp_kwargs)
    opt = make_optimizer(optimizer, model.parameters())
    join_kwargs = join_kwargs or {}
    ctx = Join([dp, opt], **join_kwargs) if join_optimizer else dp.join(**join_kwargs)
    with ctx:
        for idx in per_rank[comm.rank]:
            train_step(dp, opt, X, Y, idx)
    return model.state_dict(), opt.state_dict(), dp.num_syncs


def flat_state(opt_state):
    """An optimizer state_dict's arrays and numbers, as (key, value) pairs in a fixed order."""
    return [((i, k), np.asarray(v)) for i in sorted(opt_state["state"]) for k, v in sorted(opt_state["state"][i].items())]


def assert_close(state, ref, tol=1e-10):
    for k in ref:
        err = np.abs(state[k] - ref[k]).max() / max(np.abs(ref[k]).max(), 1e-300)
        assert err <= tol, f"{k}: relative error {err:.3g} > {tol}"


def assert_same(results):
    """Replicas bitwise equal; optimizer states equal; every rank made the same number of synchronizations."""
    model0, opt0, syncs0 = results[0]
    for model, opt, syncs in results[1:]:
        for k in model0:
            assert np.array_equal(model[k], model0[k]), f"replicas differ in {k}"
        a, b = flat_state(opt), flat_state(opt0)
        assert [k for k, _ in a] == [k for k, _ in b]
        for (k, x), (_, y) in zip(a, b):
            assert np.array_equal(x, y), f"optimizer state differs in {k}"
        assert syncs == syncs0


# ------------------------------------------------------------------------------- the oracle
@pytest.mark.parametrize("counts,bucket_mb", [((5, 2), 25.0), ((2, 6, 4), 0.0002)], ids=["2-ranks", "3-ranks-buckets"])
def test_joined_ranks_match_one_process_on_each_steps_union(counts, bucket_mb):
    per_rank = rank_batches(counts)
    ref_model, ref_opt = train_union(per_rank)
    # (find_unused_parameters=False: a joined rank's missing gradients are no error, only the active ranks count)
    results = simulate(len(counts), train_joined, per_rank, bucket_mb=bucket_mb, find_unused_parameters=False)
    assert_close(results[0][0], ref_model)
    assert_same(results)
    for (k, x), (_, y) in zip(flat_state(results[0][1]), flat_state(ref_opt)):
        assert np.allclose(x, y, rtol=1e-9, atol=1e-12), f"optimizer state {k} differs from the one-process run"
    assert results[0][2] == max(counts)  # one synchronization per step of the longest rank, on every rank


def test_model_join_alone_leaves_equal_replicas_with_the_union_weights():
    """Without the optimizer in the join, the joined rank's weights lag until all joined; then they are
    broadcast from the last joiner (PyTorch's DDP): final weights still the oracle's, on every rank."""
    per_rank = rank_batches((1, 4, 3), seed=1)
    ref_model, _ = train_union(per_rank, optimizer="sgd")
    results = simulate(3, train_joined, per_rank, optimizer="sgd", join_optimizer=False)
    for model, _, _ in results:
        assert_close(model, ref_model)
        for k in model:
            assert np.array_equal(model[k], results[0][0][k])


@pytest.mark.parametrize("divide,rule", [(None, 3), (True, 3), (False, "active")])
def test_unweighted_mean_divides_by_initial_world_size_or_active_ranks(divide, rule):
    per_rank = rank_batches((3, 1, 2), seed=2)
    ref_model, _ = train_union(per_rank, divide=rule)
    results = simulate(3, train_joined, per_rank, weight_by_samples=False,
                       join_kwargs={"divide_by_initial_world_size": divide})
    assert_close(results[0][0], ref_model)
    assert_same(results)


def test_joined_rank_shadows_compressed_buckets_and_buffer_broadcasts():
    """fp16 buckets (two collectives each) and BatchNorm buffers: all ranks finish with equal replicas and
    buffers, and the buffers are the last active rank's (3 batches tracked), not the joined rank 0's (1)."""
    per_rank = rank_batches((1, 3), seed=3)
    results = simulate(2, train_joined, per_rank, batchnorm=True, compression="fp16", bucket_mb=0.0002)
    assert_same(results)
    for model, _, _ in results:
        assert int(model["1.num_batches_tracked"]) == 3


def test_joined_rank_shadows_powersgd():
    """PowerSGD (its own collectives per bucket, error feedback, warm start): a joined rank sends nothing and
    keeps pace; replicas, optimizer state and synchronization counts end equal."""
    from distnn.distributed.powersgd import PowerSGDState

    per_rank = rank_batches((4, 1, 2), seed=8)

    def fn(comm):
        state = PowerSGDState(start_powerSGD_iter=0, min_compression_rate=0.5)
        return train_joined(comm, per_rank, compression=state, bucket_mb=0.0002)

    results = simulate(3, fn)
    assert_same(results)
    assert results[0][2] == 4


# ------------------------------------------------------------------------ throw / enable / failure
def test_throw_on_early_termination_raises_on_every_rank_when_the_first_rank_joins():
    per_rank = rank_batches((2, 5), seed=4)

    def fn(comm):
        X, Y = make_data()
        dp = DataParallel(make_model(1), comm)
        opt = SGD(dp.module.parameters(), lr=0.1)
        steps = 0
        try:
            with dp.join(throw_on_early_termination=True):
                for idx in per_rank[comm.rank]:
                    train_step(dp, opt, X, Y, idx)
                    steps += 1
        except RuntimeError as e:
            return str(e), steps
        return None, steps

    (msg0, steps0), (msg1, steps1) = simulate(2, fn)
    assert msg0 == "Rank 0 exhausted all inputs." and steps0 == 2
    assert msg1 is not None and "exhausted inputs" in msg1 and steps1 == 2


def test_enable_false_is_a_no_op_so_uneven_ranks_are_not_shadowed():
    per_rank = rank_batches((1, 2), seed=5)
    with pytest.raises(Exception, match="rank|Rank"):
        simulate(2, train_joined, per_rank, join_kwargs={"enable": False})
    # with even inputs it trains exactly as without a join
    per_rank = rank_batches((2, 2), seed=5)
    results = simulate(2, train_joined, per_rank, join_kwargs={"enable": False})
    assert_close(results[0][0], train_union(per_rank)[0])
    assert_same(results)


def test_a_rank_that_fails_inside_join_ends_the_run_instead_of_hanging():
    per_rank = rank_batches((1, 4), seed=6)

    def fn(comm):
        X, Y = make_data()
        dp = DataParallel(make_model(1), comm)
        with dp.join():
            for step, idx in enumerate(per_rank[comm.rank]):
                if comm.rank == 1 and step == 2:
                    raise ValueError("bad batch on rank 1")
                F.cross_entropy(dp(distnn.Tensor(X[idx])), Y[idx]).backward()

    with pytest.raises(ValueError, match="bad batch on rank 1"):
        simulate(2, fn)


# ----------------------------------------------------------------------- a custom Joinable
class Counter(Joinable):
    """PyTorch's documented pattern: each iteration allreduces a one; a joined rank shadows with a zero."""

    def __init__(self, comm):
        super().__init__()
        self.comm = comm
        self.count = 0.0
        self.is_last_joiner = None

    def __call__(self):
        Join.notify_join_context(self)
        self.count += float(self.comm.allreduce(np.ones(1))[0])

    def join_hook(self, **kwargs):
        return CounterJoinHook(self)

    @property
    def join_device(self):
        return None

    @property
    def join_process_group(self):
        return self.comm


class CounterJoinHook(JoinHook):
    def __init__(self, counter):
        self.counter = counter

    def main_hook(self):
        self.counter.comm.allreduce(np.zeros(1))

    def post_hook(self, is_last_joiner):
        self.counter.is_last_joiner = is_last_joiner


def test_custom_joinable_counter():
    iterations = (2, 5, 3)

    def fn(comm):
        counter = Counter(comm)
        with Join([counter]):
            for _ in range(iterations[comm.rank]):
                counter()
        return counter.count, counter.is_last_joiner

    results = simulate(3, fn)
    # each rank counts, per iteration of its own, the ranks active then
    assert [c for c, _ in results] == [6.0, 10.0, 8.0]
    assert [last for _, last in results] == [False, True, False]


# ------------------------------------------------------------------------------- refusals
def test_join_refuses_what_cannot_join():
    model = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="Linear is not joinable.*DataParallel"):
        Join([model])
    with pytest.raises(ValueError, match="at least one joinable"):
        Join([])
    with pytest.raises(ValueError, match="no participant has a communicator"):
        Join([SGD(model.parameters(), lr=0.1)])
    dp = DataParallel(nn.Linear(2, 2), LocalCommunicator())
    with pytest.raises(RuntimeError, match="already in an active join context; joins do not nest"):
        with dp.join():
            with dp.join():
                pass
    with dp.join():  # the refusal left no join behind
        pass
    with pytest.raises(ValueError, match="divide_by_initial_world_size=True needs weight_by_samples=False"):
        dp.join(divide_by_initial_world_size=True)
    with pytest.raises(ValueError, match="the model has a SyncBatchNorm layer"):
        DataParallel(nn.Sequential(nn.Linear(2, 2), distnn.distributed.SyncBatchNorm(2)), LocalCommunicator()).join()


def test_join_on_one_rank_trains_as_without_it():
    per_rank = rank_batches((3,), seed=7)
    model, opt, syncs = train_joined(LocalCommunicator(), per_rank)
    assert_close(model, train_union(per_rank)[0])
    assert syncs == 3
