"""DataParallel under mpiexec (pytest-mpi): real MPI ranks on shards == 1 process on the global batch."""
import numpy as np
import pytest

from test_data_parallel import (
    assert_rel_close, global_batches, make_mlp, train_rank, train_single,
)

pytestmark = pytest.mark.mpi(min_size=2)


@pytest.fixture(scope="module")
def comm():
    import distnn.distributed as dist

    return dist.init()


def _replicas_equal(comm, state):
    every = comm.allgather_object(state)
    return all(np.array_equal(s[k], every[0][k]) for s in every for k in state)


def _windows(comm):
    """Shared-memory windows alive on comm and on the splits of it DataParallel wrappers talk over."""
    from distnn.distributed.data_parallel import _pools

    return len(comm._arena.segments) + sum(len(e.comm._arena.segments) for e in _pools.get(comm, ()))


@pytest.fixture(scope="module")
def comm_without_shared_memory():
    from distnn.distributed.mpi_comm import MPICommunicator

    return MPICommunicator(shared_memory=False)


@pytest.mark.parametrize("shared_memory", [True, False], ids=["shared-memory", "mpi-allreduce"])
@pytest.mark.parametrize("batch,bucket_mb", [(12, 25.0), (7, 0.001)], ids=["even-one-bucket", "uneven-buckets"])
def test_mpi_ranks_match_one_process(comm, comm_without_shared_memory, batch, bucket_mb, shared_memory):
    c = comm if shared_memory else comm_without_shared_memory
    batches = global_batches(batch)
    state = train_rank(c, batches, bucket_mb=bucket_mb)
    assert_rel_close(state, train_single(batches), 1e-6)
    assert _replicas_equal(c, state)


def test_mpi_no_sync_and_compression(comm):
    batches = global_batches(11)
    ref = train_single(batches)
    state = train_rank(comm, batches, micro=2, bucket_mb=0.001)
    assert_rel_close(state, ref, 1e-6)
    assert _replicas_equal(comm, state)
    for compression, tol in (("fp16", 1e-2), ("bf16", 3e-2)):  # half-precision wire, see test_data_parallel.py
        state = train_rank(comm, batches, bucket_mb=0.001, compression=compression)
        assert_rel_close(state, ref, tol)
        assert _replicas_equal(comm, state)


def test_mpi_check_replicas_reports_the_diverging_rank_on_every_rank(comm):
    import distnn
    import distnn.functional as F
    from distnn.distributed import DataParallel
    from distnn.distributed.data_parallel import ReplicaMismatchError
    from distnn.optim.sgd import SGD
    from test_data_parallel import make_data

    X, Y = make_data()
    model = make_mlp(1)
    dp = DataParallel(model, comm, check_every=2)
    opt = SGD(model.parameters(), lr=0.1)
    others = ", ".join(str(r) for r in range(comm.size) if r != 1)
    with pytest.raises(ReplicaMismatchError, match=rf"after 2 synchronized steps: '2.bias' differs between "
                                                   rf"ranks \[{others}\] vs ranks \[1\]"):
        for step, idx in enumerate(global_batches(12)):
            mine = idx[comm.rank::comm.size]
            opt.zero_grad()
            F.cross_entropy(dp(distnn.Tensor(X[mine])), Y[mine]).backward()
            opt.step()
            if step == 0 and comm.rank == 1:
                model[2].bias.data[0] += 1e-12  # a silent divergence on rank 1


def test_mpi_data_parallels_dropped_without_remove_hooks_free_their_requests(comm):
    import gc

    batches = global_batches(12, steps=3)
    ref = train_single(batches)
    windows = []
    for _ in range(4):  # each train_rank's DataParallel is garbage: its persistent allreduces are freed
        state = train_rank(comm, batches)
        gc.collect()
        windows.append(_windows(comm))
    assert_rel_close(state, ref, 1e-6)
    assert windows[-1] <= windows[1]  # shared-memory windows too: their number does not grow


def test_mpi_gradients_kept_after_the_data_parallel_is_dropped_stay_valid(comm):
    """p.grad is a view of a shared-memory bucket: dropping the wrapper must not free the memory under it."""
    import gc

    import distnn
    import distnn.functional as F
    from distnn.distributed import DataParallel
    from test_data_parallel import make_data

    X, Y = make_data()
    model = make_mlp(3)
    dp = DataParallel(model, comm)
    mine = np.arange(comm.rank, 24, comm.size)
    F.cross_entropy(dp(distnn.Tensor(X[mine])), Y[mine]).backward()
    grads = [p.grad for p in model.parameters()]
    copies = [g.copy() for g in grads]
    del dp
    gc.collect()
    for _ in range(2):  # allocations free released windows that nothing views
        DataParallel(make_mlp(3), comm)
        gc.collect()
    assert all(np.array_equal(g, c) for g, c in zip(grads, copies))


def test_mpi_mismatched_models_raise_on_every_rank(comm):
    from distnn.distributed import DataParallel
    from distnn.distributed.data_parallel import ReplicaMismatchError

    hidden = 16 if comm.rank == 0 else 15
    with pytest.raises(ReplicaMismatchError, match=r"first difference at parameter #0 '0.weight'.*rank 0: "):
        DataParallel(make_mlp(0, hidden=hidden), comm)


def test_mpi_wrapping_the_same_model_again_frees_the_last_wrappers_windows(comm):
    """The model's gradient hooks outlive a dropped DataParallel; its shared-memory window must not."""
    import gc

    import distnn
    import distnn.functional as F
    from distnn.distributed import DataParallel
    from test_data_parallel import make_data

    X, Y = make_data()
    model = make_mlp(4)
    mine = np.arange(comm.rank, 24, comm.size)
    held = []
    for _ in range(5):
        dp = DataParallel(model, comm)
        F.cross_entropy(dp(distnn.Tensor(X[mine])), Y[mine]).backward()
        for p in model.parameters():
            p.grad = None  # zero_grad(set_to_none=True): nothing views the buckets any more
        del dp
        gc.collect()
        held.append(_windows(comm))
    assert held[-1] <= held[1], held


def test_mpi_a_parameter_unused_on_one_rank_beside_sync_batchnorm(comm):
    # The compressed buckets' all-to-alls and SyncBatchNorm's allreduce used to be started in different
    # orders on the ranks over one communicator: MPICH aborted (or decoded garbage).
    from test_data_parallel_edges import _bn_oracle, assert_grads_match, bn_unused_rank

    grads = bn_unused_rank(comm, "fp16")
    assert_grads_match(grads, _bn_oracle(comm.size), 1e-2)
    assert _replicas_equal(comm, grads)


def test_mpi_a_parameter_unused_on_one_rank_with_two_wrapped_models_in_one_backward(comm):
    from test_data_parallel_edges import _gan_oracle, assert_grads_match, gan_unused_rank

    grads = gan_unused_rank(comm, "fp16")
    assert_grads_match(grads, _gan_oracle(comm.size), 1e-2)
    assert _replicas_equal(comm, grads)


class _CommunicatorIdsHeld:
    """All but ``left`` of the MPI communicator ids every rank has free, held, so that a few communicators
    made and never freed run out (MPICH has 2048 a process; a split or a dup takes one).

    Most are taken by dups of MPI_COMM_SELF (local: microseconds each), the last ones by splits of
    MPI_COMM_WORLD until MPI refuses one (collective: ~17 ms each on 3 ranks sharing 2 cores, and the same
    ids on every rank, which refuse together); ``left`` of those are then given back. ``exhausted``: MPI did
    refuse (an MPI with room for more than ``most`` communicators keeps none held)."""

    def __init__(self, left, most=4096):
        from mpi4py import MPI

        self.local, self.world, self.exhausted = [], [], False
        try:
            while len(self.local) < most:
                self.local.append(MPI.COMM_SELF.Dup())
        except MPI.Exception:
            pass
        if len(self.local) == most:
            self.free()
            return
        while len(self.world) < left and self.local:  # (ranks whose free ids differ: give back more, try again)
            _free(self.local, left + 16 - len(self.world))
            try:
                while True:
                    self.world.append(MPI.COMM_WORLD.Split(0, MPI.COMM_WORLD.Get_rank()))
            except MPI.Exception:
                pass
        self.exhausted = len(self.world) >= left
        _free(self.world, left)

    def free(self):
        _free(self.world, len(self.world))
        _free(self.local, len(self.local))


def _free(comms, count):
    for _ in range(min(count, len(comms))):
        comms.pop().Free()


def test_mpi_many_wrappers_reuse_their_communicators(comm):
    """Each wrapper talks over a split of comm; MPI has room for about a thousand, so they are reused."""
    import gc

    import distnn
    import distnn.functional as F
    from distnn.distributed import DataParallel
    from distnn.distributed.data_parallel import _pools
    from test_data_parallel import make_data

    X, Y = make_data()
    mine = np.arange(comm.rank, 24, comm.size)
    # The pool is the process's: it holds as many splits as wrappers were ever alive at once on comm, earlier
    # tests' included (test_save_last's mpi test, with its trainers alive together, leaves three idle). Counted
    # from here.
    gc.collect()  # (wrappers earlier tests dropped in reference cycles hand their splits back)
    before = len(_pools.get(comm, ()))
    busy = sum(e.in_use for e in _pools.get(comm, ()))
    # An unreused wrapper would hold 4 MPI communicator ids (its split's 2, its window's 2), pooled or not, as
    # long as the process lives. With all but 128 ids taken first, 32 such wrappers use up what is left and the
    # next fails in MPI; reused ones never need that many, even if no window were freed meanwhile (windows wait
    # for the garbage collector: 50 x 2 ids, plus a split). 600 wrappers with all the ids free caught the same
    # leak at 100 ms a wrapper on 3 ranks.
    held = _CommunicatorIdsHeld(left=128)
    try:
        for _ in range(50):
            dp = DataParallel(make_mlp(0), comm)
            F.cross_entropy(dp(distnn.Tensor(X[mine])), Y[mine]).backward()
            del dp  # (freed at once: a wrapper is in no reference cycle)
    finally:
        held.free()
    from mpi4py import MPI

    if "MPICH" in MPI.Get_library_version():  # (others may have room for more communicators than were tried)
        assert held.exhausted, "MPICH never refused a communicator: the ids left for the wrappers were not few"
    gc.collect()
    pool = _pools[comm]
    assert len(pool) <= before + 1, (before, len(pool))  # one split served all 50: an idle one, else a new one
    assert sum(e.in_use for e in pool) == busy  # each wrapper handed it back
