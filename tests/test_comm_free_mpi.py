"""``free()`` gives a split's MPI communicators back (pytest-mpi: ``mpiexec -n N python -m pytest --with-mpi -m mpi``).

MPICH has room for about 2000 communicators in a process (its context ids).
Each split held two (its collectives', its timeout reports') for good: a loop of
splits, or a sweep of ensemble jobs (each splits the world into groups), failed
with "Too many communicators" after about a thousand. The tests count the room
left by making communicators until MPI refuses (:func:`room_for_communicators`).
"""
import warnings

import numpy as np
import pytest

# (clean_preemption_flags: these tests run a job without run_training, which would put the handlers back)
pytestmark = [pytest.mark.mpi(min_size=2), pytest.mark.usefixtures("clean_preemption_flags")]


@pytest.fixture(scope="module")
def comm():
    import distnn.distributed as dist

    return dist.init()


def room_for_communicators() -> int:
    """How many more MPI communicators this process can make: duplicates of COMM_SELF until MPI refuses,
    then all freed again. Every communicator of the process, its world's splits included, takes its id from
    the same room; duplicates of COMM_SELF need no other rank, so each rank counts its own, at once.
    (Duplicates of COMM_WORLD agree on each id with every rank: about 2000 collectives, 6 s a count on
    2 ranks of a busy 2-core machine, 40 s on 3 oversubscribed ranks.)"""
    from mpi4py import MPI

    made = []
    try:
        while True:
            made.append(MPI.COMM_SELF.Dup())
    except MPI.Exception:
        pass
    finally:
        for c in made:
            c.Free()
    return len(made)


def test_split_and_free_cycles_give_every_communicator_back(comm):
    room = room_for_communicators()
    # A communicator kept by any cycle shows in the count: splits that each kept their two would leave
    # 128 fewer. (It made room // 2 + 1 cycles, about 1000, until MPI refused: 8 s on 2 idle ranks, 100 s
    # on a busy machine, each cycle's split, barrier and free being collectives; the count needs 64.)
    for _ in range(64):
        sub = comm.split(0)
        sub.barrier()
        sub.free()
    assert room_for_communicators() == room


def test_a_freed_split_refuses_collectives(comm):
    from distnn.distributed import CommunicatorFreedError

    sub = comm.split(comm.rank % 2, key=-comm.rank)
    sub.free()
    sub.free()  # idempotent
    for call in (lambda: sub.allreduce(np.ones(2)), lambda: sub.allgather_object(1), lambda: sub.split(0),
                 lambda: sub.allreduce_buffer(8, np.float32)):
        with pytest.raises(CommunicatorFreedError, match="was freed"):
            call()
    assert comm.allreduce(np.ones(1))[0] == comm.size  # the parent is untouched


def _step(dp, comm):
    import distnn
    import distnn.functional as F

    x = np.random.default_rng(comm.rank).standard_normal((4, 6))
    F.cross_entropy(dp(distnn.Tensor(x)), np.arange(4) % 3).backward()


def test_data_parallel_on_a_split_is_freed_with_it_shared_memory_windows_included(comm):
    from distnn.distributed import DataParallel
    from distnn.distributed.data_parallel import _pools
    from test_data_parallel import make_mlp

    room = room_for_communicators()
    for _ in range(3):
        group = comm.split(0)
        model = make_mlp(0)
        dp = DataParallel(model, group, bucket_mb=0.001)  # several buckets: several windows
        _step(dp, group)
        shared = group._arena is not None  # (the ranks share a host: buffers live in shared-memory windows)
        windows = sum(len(e.comm._arena.segments) for e in _pools[group] if e.comm._arena is not None)
        dp.remove_hooks()  # (what an ensemble job does for its members before freeing the group)
        for p in model.parameters():
            p.grad = None  # (gradients are views of the windows)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no window is left allocated
            group.free()
    assert windows > 1 or not shared
    assert room_for_communicators() == room


def test_a_window_still_in_use_is_kept_with_a_warning_and_its_wrapper_refuses_steps(comm):
    from distnn.distributed import CommunicatorFreedError, DataParallel
    from test_data_parallel import make_mlp

    group = comm.split(0)
    dp = DataParallel(make_mlp(0), group)
    _step(dp, group)
    if group._arena is None:
        pytest.skip("the ranks do not share a host: no shared-memory windows")
    with pytest.warns(RuntimeWarning, match="still in use"):
        group.free()  # the gradients still view the window: freeing it would crash their next read
    # (so this process keeps that window's two communicators: the other tests count relative to before)
    assert np.isfinite(next(dp.module.parameters()).grad).all()
    with pytest.raises(CommunicatorFreedError):
        _step(dp, group)


def test_a_sweep_of_ensemble_jobs_frees_its_group_communicators(comm, mpi_tmp_path):
    from distnn.train.job import JobError, train_rank

    ov = ["train.epochs=1", "run.plots=false", f"ensemble.members={comm.size}"]  # a group of one rank per member
    room = room_for_communicators()
    for k in range(2):
        train_rank(comm, "xor", ov, out=str(mpi_tmp_path / f"run{k}"), quiet=True)
    with pytest.raises(JobError, match="needs --out"):  # an error every rank agrees on, after the split
        train_rank(comm, "xor", [*ov, "checkpoint.resume=auto"], quiet=True)
    assert room_for_communicators() == room
