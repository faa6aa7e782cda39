"""Activation checkpointing under data parallelism on real MPI ranks (pytest-mpi): a model whose block runs
in two checkpointed regions and outside them, trained on 2 ranks' shards, equals 1 process on the whole
batches without checkpointing (each parameter's gradient synchronized once a step, whole)."""
import pytest

from test_activation_checkpoint import assert_states_close, oracle_batches, train_checkpointed

pytestmark = pytest.mark.mpi(min_size=2)


@pytest.fixture(scope="module")
def comm():
    import distnn.distributed as dist

    return dist.init()


@pytest.mark.parametrize("use_reentrant", [False, True])
def test_mpi_ranks_with_checkpointed_regions_match_one_process(comm, use_reentrant):
    batches, data = oracle_batches()
    ref = train_checkpointed(None, batches, None, data)
    state = train_checkpointed(comm, batches, use_reentrant, data)
    assert_states_close(state, ref, 1e-10)
    every = comm.allgather_object(state)
    assert all((s[k] == every[0][k]).all() for s in every for k in state)  # replicas bitwise equal
