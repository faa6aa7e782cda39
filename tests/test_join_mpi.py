"""Join under mpiexec (pytest-mpi): real MPI ranks with different numbers of batches == one process on each
step's union of the active ranks' batches; replicas and optimizer state equal on every rank."""
import numpy as np
import pytest

from test_join import assert_close, flat_state, rank_batches, train_joined, train_union

pytestmark = pytest.mark.mpi(min_size=2)


@pytest.fixture(scope="module")
def comm():
    import distnn.distributed as dist

    return dist.init()


def _equal_everywhere(comm, model, opt_state):
    every = comm.allgather_object((model, [v for _, v in flat_state(opt_state)]))
    return all(np.array_equal(m[k], every[0][0][k]) for m, _ in every for k in model) and \
        all(np.array_equal(a, b) for _, o in every for a, b in zip(o, every[0][1]))


@pytest.mark.parametrize("bucket_mb", [25.0, 0.0002], ids=["one-bucket", "buckets"])
def test_mpi_joined_ranks_match_one_process_on_each_steps_union(comm, bucket_mb):
    counts = [2 + 3 * ((r + 1) % comm.size) for r in range(comm.size)]  # e.g. 5, 2 (and 8, 5, 2 on 3 ranks)
    per_rank = rank_batches(counts)
    ref_model, ref_opt = train_union(per_rank)
    model, opt_state, syncs = train_joined(comm, per_rank, bucket_mb=bucket_mb)
    assert_close(model, ref_model)
    for (k, x), (_, y) in zip(flat_state(opt_state), flat_state(ref_opt)):
        assert np.allclose(x, y, rtol=1e-9, atol=1e-12), f"optimizer state {k} differs from the one-process run"
    assert syncs == max(counts)
    assert _equal_everywhere(comm, model, opt_state)


def test_mpi_throw_on_early_termination(comm):
    import distnn
    import distnn.functional as F
    from distnn.distributed import DataParallel
    from distnn.optim.sgd import SGD
    from test_join import make_data, make_model, train_step

    per_rank = rank_batches([2 if r == 0 else 4 for r in range(comm.size)], seed=4)
    X, Y = make_data()
    dp = DataParallel(make_model(1), comm)
    opt = SGD(dp.module.parameters(), lr=0.1)
    steps = 0
    with pytest.raises(RuntimeError, match="exhausted") as info:
        with dp.join(throw_on_early_termination=True):
            for idx in per_rank[comm.rank]:
                train_step(dp, opt, X, Y, idx)
                steps += 1
    assert steps == 2
    if comm.rank == 0:
        assert str(info.value) == "Rank 0 exhausted all inputs."
    # the wrapper still works afterwards: an even step synchronizes on every rank
    opt.zero_grad()
    F.cross_entropy(dp(distnn.Tensor(X[:4])), Y[:4]).backward()
    dp.check_replicas()
