"""``Communicator.free()`` in one process: the local and simulated communicators, and who calls it.

A freed communicator refuses every collective on every backend alike (a program
that runs here also runs under mpiexec, where a split's MPI communicators are a
scarce resource: see test_comm_free_mpi.py); ``free()`` twice is harmless; the
splits distnn made of a communicator for itself (DataParallel's, SyncBatchNorm's)
are freed with it; an ensemble job frees its group communicators.
"""
import numpy as np
import pytest

import distnn
import distnn.distributed as dist
import distnn.functional as F
from distnn import nn
from distnn.distributed import CollectiveError, CommunicatorFreedError, DataParallel, SyncBatchNorm
from distnn.distributed.local_comm import LocalCommunicator

# every collective, called as a program would (all must refuse a freed communicator)
CALLS = {
    "allreduce": lambda c: c.allreduce(np.ones(3)),
    "iallreduce": lambda c: c.iallreduce(np.ones(3)).wait(),
    "allreduce_init": lambda c: c.allreduce_init(np.ones(3)).start().wait(),
    "allreduce_buffer": lambda c: c.allreduce_buffer(3, np.float64).start().wait(),
    "allgather": lambda c: c.allgather(np.ones(3)),
    "alltoall": lambda c: c.ialltoall(np.ones((c.size, 2))).wait(),
    "broadcast": lambda c: c.broadcast(np.ones(3)),
    "broadcast_object": lambda c: c.broadcast_object("x"),
    "allgather_object": lambda c: c.allgather_object("x"),
    "barrier": lambda c: c.barrier(),
    "split": lambda c: c.split(0),
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_freed_local_communicator_refuses_collectives(call):
    comm = LocalCommunicator().split(0)
    CALLS[call](comm)
    comm.free()
    comm.free()  # idempotent
    with pytest.raises(CommunicatorFreedError, match="was freed"):
        CALLS[call](comm)


@pytest.mark.parametrize("call", sorted(CALLS))
def test_a_freed_simulated_split_refuses_collectives_and_its_parent_lets_go_of_it(call):
    def fn(comm):
        sub = comm.split(comm.rank % 2)
        CALLS[call](sub)
        sub.free()
        sub.free()  # idempotent: no second collective
        with pytest.raises(CommunicatorFreedError, match="was freed"):
            CALLS[call](sub)
        comm.barrier()  # (every group freed)
        assert not comm._group.children  # the parent keeps no freed group (a sweep kept all of them)
        return comm.allreduce(np.ones(2))  # the parent is untouched

    for out in dist.simulate(3, fn):
        assert out.tolist() == [3.0, 3.0]


def test_free_is_collective_a_rank_that_goes_on_using_the_split_is_a_mismatch():
    def fn(comm):
        sub = comm.split(0)
        if comm.rank == 0:
            sub.free()
        else:
            sub.allreduce(np.ones(2))

    with pytest.raises(CollectiveError, match="called barrier.*called allreduce|called allreduce.*called barrier"):
        dist.simulate(2, fn)


def _model_with_sync_batchnorm(comm):
    distnn.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6, dtype=np.float64), SyncBatchNorm(6, comm=comm, dtype=np.float64),
                         nn.ReLU(), nn.Linear(6, 2, dtype=np.float64))


def test_the_splits_data_parallel_and_sync_batchnorm_made_are_freed_with_their_communicator():
    from distnn.distributed.data_parallel import _pools
    from distnn.distributed.sync_batchnorm import _own_comms

    def fn(comm):
        group = comm.split(0)
        dp = DataParallel(_model_with_sync_batchnorm(group), group)
        x, y = np.random.default_rng(comm.rank).standard_normal((5, 4)), np.arange(5) % 2
        F.cross_entropy(dp(distnn.Tensor(x)), y).backward()
        own = [e.comm for e in _pools[group]] + [_own_comms[group]]
        group.free()
        assert all(c._freed for c in own)
        with pytest.raises(CommunicatorFreedError):  # the wrapper can take no more steps
            F.cross_entropy(dp(distnn.Tensor(x)), y).backward()
        return len(own)

    assert dist.simulate(2, fn) == [2, 2]


# ---------------------------------------------------------------- ensemble jobs
TINY = ["train.epochs=1", "run.plots=false"]  # of the xor config: 4 samples, a 2-8-2 MLP


@pytest.fixture
def groups(monkeypatch):
    """The group communicators the ensemble jobs of the test split off, as they were made."""
    from distnn.train import ensemble_run

    made = []

    def recording(comm, plan):
        g = real(comm, plan)
        if g is not comm:
            made.append(g)
        return g

    real = ensemble_run.group_communicator
    monkeypatch.setattr(ensemble_run, "group_communicator", recording)
    return made


def test_an_ensemble_job_frees_its_group_communicators(tmp_path, groups):
    from distnn.distributed.data_parallel import _pools
    from distnn.train.job import run_training

    # 4 ranks, 2 members: two groups of 2 ranks, each member on a DataParallel over its group
    summary = run_training("xor", [*TINY, "ensemble.members=2"], out=str(tmp_path / "run"),
                           simulate_ranks=4, quiet=True)
    assert summary["ensemble"]["groups"] == 2
    assert len(groups) == 4 and all(g._freed for g in groups)
    dp_splits = [e.comm for g in groups for e in _pools.get(g, ())]  # each member's DataParallel's
    assert len(dp_splits) == 4 and all(c._freed for c in dp_splits)


def test_an_agreed_error_after_the_split_frees_the_group_communicators_too(tmp_path, groups):
    from distnn.train.job import JobError, run_training

    # --resume auto without --out: refused on every rank after the world was split into groups
    with pytest.raises(JobError, match="needs --out"):
        run_training("xor", [*TINY, "ensemble.members=2", "checkpoint.resume=auto"], simulate_ranks=2,
                     quiet=True)
    assert len(groups) == 2 and all(g._freed for g in groups)


def test_init_after_the_process_communicator_was_freed_gives_a_new_one(monkeypatch):
    """init() returned the freed communicator for good: every later job of the process failed."""
    monkeypatch.setattr(dist, "_world", None)  # (this process's own is left as it was)
    first = dist.init("local")
    assert dist.init() is first
    first.free()
    second = dist.init()
    assert second is not first and second.allreduce(np.ones(2)).tolist() == [1.0, 1.0]
