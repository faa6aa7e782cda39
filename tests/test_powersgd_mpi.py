"""PowerSGD under mpiexec (pytest-mpi): real MPI ranks == 1 process with PowerSGD on the summed gradients."""
import numpy as np
import pytest

from distnn.distributed import LocalCommunicator
from test_data_parallel import global_batches, train_rank
from test_powersgd import SHAPES, STEPS, coeffs, run_dp

pytestmark = pytest.mark.mpi(min_size=2)


@pytest.fixture(scope="module")
def comm():
    import distnn.distributed as dist

    return dist.init()


@pytest.mark.parametrize("rank_r", [1, 2])
def test_mpi_ranks_match_one_process_step_by_step(comm, rank_r):
    from distnn.distributed import DataParallel, PowerSGDState
    from test_powersgd import Probe

    counts = [1 + r % 3 for r in range(comm.size)]  # uneven: rank r's gradient weighs n_r / N
    kwargs = {"start_powerSGD_iter": 1, "matrix_approximation_rank": rank_r}
    mine, _ = run_dp(comm, kwargs, STEPS, counts)
    dp = DataParallel(Probe(), LocalCommunicator(), compression=PowerSGDState(**kwargs), bucket_mb=1e-3)
    for t in range(STEPS):
        dp.set_num_samples(1, 1)
        for p in dp.parameters():
            p.grad = None
        dp([sum(coeffs(r, t)[i] * counts[r] for r in range(comm.size)) / sum(counts)
            for i in range(len(SHAPES))]).backward()
        for i, p in enumerate(dp.parameters()):
            np.testing.assert_allclose(mine[t][i], p.grad, rtol=1e-9, atol=1e-12, err_msg=f"step {t}, param {i}")
    every = comm.allgather_object([g for step in mine for g in step])
    assert all(np.array_equal(a, b) for other in every for a, b in zip(other, every[0]))


def test_mpi_training_matches_one_process(comm):
    """The MLP oracle of test_data_parallel (SGD with momentum, uneven last batches) with PowerSGD on both."""
    from distnn.distributed import PowerSGDState

    batches = global_batches(12, steps=10)
    state = train_rank(comm, batches, compression=PowerSGDState(start_powerSGD_iter=2))
    one = train_rank(LocalCommunicator(), batches, compression=PowerSGDState(start_powerSGD_iter=2))
    for k in one:
        np.testing.assert_allclose(state[k], one[k], rtol=1e-7, atol=1e-9, err_msg=k)
    every = comm.allgather_object(state)
    assert all(np.array_equal(s[k], every[0][k]) for s in every for k in state)
