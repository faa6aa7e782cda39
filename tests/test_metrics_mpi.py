"""Sharded evaluation under mpiexec (pytest-mpi): loss and accuracy bitwise equal to one process."""
import math

import numpy as np
import pytest

from distnn.data import build_transforms, load_dataset
from distnn.distributed import ExactSum, LocalCommunicator, Mean
from trainer_runs import make_trainer

pytestmark = pytest.mark.mpi(min_size=2)


@pytest.fixture(scope="module")
def comm():
    import distnn.distributed as dist

    return dist.init()


@pytest.fixture(scope="module")
def digits():
    splits = load_dataset("digits")
    return (splits, *build_transforms(splits))


@pytest.mark.parametrize("eval_batch", [41, 60, 512])
def test_mpi_trainer_evaluation_equals_one_process_bitwise(comm, digits, eval_batch):
    val = digits[0].val

    def evaluate(c):
        return make_trainer(c, digits, batch_size=60, epochs=0, eval_batch_size=eval_batch).evaluate(
            val, "val_", confusion=True)

    ours = evaluate(comm)
    one = evaluate(LocalCommunicator())  # the reference: the same model evaluated by this process alone
    assert ours == one
    assert comm.allgather_object(ours) == [ours] * comm.size


def test_mpi_mean_of_per_sample_values_is_exact(comm):
    rng = np.random.default_rng(0)
    values = rng.standard_normal(1001) * 10.0 ** rng.integers(-8, 8, 1001)  # a sum that rounding would perturb
    mine = np.array_split(values, comm.size)[comm.rank]
    m = Mean(comm)
    for part in np.array_split(mine, 3):
        m.update(part)
    assert m.compute() == math.fsum(values) / len(values)
    assert ExactSum().add(mine).allreduce(comm).value() == math.fsum(values)
