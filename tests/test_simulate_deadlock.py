"""simulate(): ranks that wait in different groups' collectives for each other fail at once, not at the timeout.

DataParallel collects over its own split of the communicator, so a rank that
skips a collective of the loop's own (on the communicator itself) waits in
DataParallel's exchange while the others wait in that collective: no single
group sees a mismatch. Every rank waiting is proof that none can go on; the error names
where each rank waits. The groups' timeout is set long (60 s) so that the old
behaviour (waiting until it, then a timeout naming one group) fails these
tests in bounded time, while the new one ends in milliseconds.
"""
import time

import numpy as np
import pytest

import distnn
import distnn.nn as nn
from distnn.distributed import DataParallel, simulate
from distnn.distributed.comm_base import CollectiveError

SAFETY_TIMEOUT_S = 60


def test_a_rank_skipping_a_collective_of_its_own_in_a_step_ends_the_run_naming_both_collectives():
    # (a SyncBatchNorm forward skipped so is no deadlock any more: its rounds are answered, and every rank raises,
    # tests/test_data_parallel_outside_collectives.py; a collective of the user's own is not)
    def fn(comm):
        comm.set_timeout(SAFETY_TIMEOUT_S)
        distnn.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 3, dtype=np.float64))
        dp = DataParallel(model, comm)
        x = distnn.Tensor(np.ones((4, 4)))
        for step in range(2):
            model.zero_grad()
            out = dp(x)
            if not (comm.rank == 1 and step == 1):  # a data-dependent skip of the loop's own allgather (a metric)
                comm.allgather(np.ones(7))
            out.sum().backward()

    with pytest.raises(CollectiveError) as err:
        simulate(2, fn)
    msg = str(err.value)
    assert msg.startswith("deadlock: every simulated rank waits in a collective that another rank never joins")
    # rank 0 in its own allgather, rank 1 in DataParallel's gradient allreduce: each named, with the
    # communicator it waits on and the rank it waits for
    assert "rank 0 waits in collective #" in msg and " allgather((7,), float64) on the simulated world" in msg
    assert "rank 1 waits in collective #" in msg and " allreduce(sum, " in msg and "on split communicator #" in msg
    assert "for rank(s) [0]" in msg and "for rank(s) [1]" in msg and "data-dependent branch" in msg


def test_plain_collectives_on_different_groups_deadlock_is_reported_with_a_rank_that_has_returned():
    # Three ranks; rank 2 returns early (taking part in no later collective), ranks 0 and 1 then wait for
    # each other in different splits: only the ranks still running count.
    def fn(comm):
        comm.set_timeout(SAFETY_TIMEOUT_S)
        a = comm.split(0 if comm.rank < 2 else None)
        b = comm.split(0 if comm.rank < 2 else None)
        if comm.rank == 0:
            a.allreduce(np.ones(3), "sum")
        elif comm.rank == 1:
            b.barrier()

    with pytest.raises(CollectiveError) as err:
        simulate(3, fn)
    msg = str(err.value)
    assert "deadlock" in msg and "allreduce(sum, (3,), float64)" in msg and "barrier()" in msg
    assert "world ranks [0, 1]" in msg and "rank 2 waits" not in msg


def test_ranks_waiting_in_different_groups_while_another_still_runs_is_no_deadlock():
    # Rank 0 waits in a world barrier and rank 1 in a split's, both for rank 2, which is still busy:
    # they must wait for it, not fail.
    def fn(comm):
        comm.set_timeout(SAFETY_TIMEOUT_S)
        pair = comm.split(0 if comm.rank > 0 else None)
        if comm.rank == 1:
            pair.barrier()
        if comm.rank == 2:
            time.sleep(0.3)
            pair.barrier()
        comm.barrier()
        return comm.allreduce(np.array([comm.rank]), "sum")[0]

    assert simulate(3, fn) == [3, 3, 3]
