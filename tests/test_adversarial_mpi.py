"""Adversarial training under mpiexec (pytest-mpi): each rank perturbs its own shard, gradients are averaged,
so the replicas stay identical and equal to one process on the whole batch.

Run with ``mpiexec -n 2 python -m pytest --with-mpi -m mpi tests/test_adversarial_mpi.py``.
"""
import numpy as np
import pytest

from test_adversarial import _fit_state

pytestmark = pytest.mark.mpi(min_size=2)


@pytest.fixture(scope="module")
def digits():
    from distnn.data import build_transforms, load_dataset

    splits = load_dataset("digits")
    return splits, build_transforms(splits, {"noise": 0.1}), build_transforms(splits)


@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_mpi_ranks_match_one_process_with_adversarial_training(digits, accumulation_steps):
    import distnn.distributed as dist
    from distnn.distributed import LocalCommunicator

    comm = dist.init()
    state = _fit_state(comm, digits, accumulation_steps=accumulation_steps)
    every = comm.allgather_object(state)
    for k in state:
        for other in every[1:]:
            np.testing.assert_array_equal(other[k], every[0][k], err_msg=k)  # bit for bit on every rank
    one = _fit_state(LocalCommunicator(), digits)  # the same run in one process, on whole batches
    for k in state:
        np.testing.assert_allclose(state[k], one[k], rtol=0, atol=1e-6, err_msg=k)
