"""Max-norm under mpiexec (pytest-mpi): the constraint acts on the averaged weights, so replicas stay identical.

Run with ``mpiexec -n 2 python -m pytest --with-mpi -m mpi tests/test_max_norm_mpi.py``.
"""
import numpy as np
import pytest

from test_max_norm import _fit, _unit_norms

pytestmark = pytest.mark.mpi(min_size=2)


@pytest.fixture(scope="module")
def digits():
    from distnn.data import build_transforms, load_dataset

    splits = load_dataset("digits")
    return splits, *build_transforms(splits)


def test_mpi_replicas_stay_identical_with_max_norm(digits):
    import distnn.distributed as dist
    from distnn.distributed import LocalCommunicator

    comm = dist.init()
    model = _fit(comm, digits, 0.5)
    state = model.state_dict()
    every = comm.allgather_object(state)
    for k in state:
        for other in every[1:]:
            np.testing.assert_array_equal(other[k], every[0][k], err_msg=k)  # bit for bit on every rank
    assert max(n.max() for n in _unit_norms(model)) <= 0.5
    one = _fit(LocalCommunicator(), digits, 0.5).state_dict()  # and the same run on 1 process
    for k in state:
        np.testing.assert_allclose(state[k], one[k], atol=1e-6, err_msg=k)
