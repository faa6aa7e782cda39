"""A check shared by tests/test_comm_collectives.py (one process, simulated ranks) and tests/test_comm_mpi.py
(mpiexec)."""
import numpy as np
import pytest


def check_collective_dtypes(comm):
    """Arrays MPI cannot send are refused alike everywhere; a read-only array reduces into a copy."""
    for bad, match in ((np.array([object(), 1], dtype=object), "MPI has no datatype for dtype object"),
                       (np.array(["ab", "c"]), "MPI has no datatype for dtype <U2"),
                       (np.array(["2026-11-22"], dtype="datetime64[D]"), "MPI has no datatype"),
                       (np.ones(3, dtype=">f4"), "byte order; got dtype >f4")):
        with pytest.raises(TypeError, match=match):
            comm.allreduce(bad)
        with pytest.raises(TypeError, match=match):
            comm.broadcast(bad)
    frozen = np.full(3, float(comm.rank + 1))
    frozen.flags.writeable = False
    out = comm.allreduce(frozen)
    np.testing.assert_array_equal(out, np.full(3, comm.size * (comm.size + 1) / 2))
    np.testing.assert_array_equal(frozen, np.full(3, float(comm.rank + 1)))  # untouched
    return True
