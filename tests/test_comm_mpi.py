"""MPICommunicator under mpiexec (pytest-mpi): run with ``mpiexec -n N python -m pytest --with-mpi -m mpi``."""
import numpy as np
import pytest

pytestmark = pytest.mark.mpi(min_size=2)


@pytest.fixture(scope="module")
def comm():
    import distnn.distributed as dist

    c = dist.init()
    assert c.backend == "mpi", "pytest-mpi runs must get the MPI communicator from init()"
    return c


def _contribution(rank, shape=(5, 3), dtype=np.float64):
    return np.random.default_rng(rank).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_allreduce(comm, op, dtype):
    a = _contribution(comm.rank, dtype=dtype)
    out = comm.allreduce(a, op)
    assert out is a
    stack = np.stack([_contribution(r, dtype=dtype) for r in range(comm.size)])
    expected = {"sum": stack.sum(0), "mean": stack.mean(0), "max": stack.max(0), "min": stack.min(0)}[op]
    np.testing.assert_allclose(a, expected, rtol=1e-6 if dtype == np.float32 else 1e-14)
    every = comm.allgather(a)
    assert all(np.array_equal(every[0], e) for e in every)  # identical bits on every rank


def test_noncontiguous_and_scalar_allreduce(comm):
    a = np.zeros((4, 6))
    a[:, ::2] = comm.rank + 1
    view = a[:, ::2]
    comm.allreduce(view, "sum")
    assert np.all(a[:, ::2] == comm.size * (comm.size + 1) / 2) and np.all(a[:, 1::2] == 0)
    assert comm.allreduce(np.array(2.0), "sum") == 2.0 * comm.size


def test_iallreduce_overlaps_other_calls(comm):
    h1 = comm.iallreduce(np.full(1000, float(comm.rank)), "sum")
    h2 = comm.iallreduce(np.full(10, 1.0), "max")
    assert h2.wait()[0] == 1.0
    assert h1.wait()[0] == sum(range(comm.size))
    assert h1.test()


@pytest.mark.parametrize("persistent", ["1", "0"], ids=["mpi4-persistent", "fallback"])
def test_persistent_allreduce_restarts_and_mixes_with_other_collectives(comm, persistent, monkeypatch):
    from distnn.distributed.mpi_comm import _MPIPersistentAllreduce

    monkeypatch.setenv("DISTNN_MPI_PERSISTENT", persistent)
    big, small = np.zeros(100_000, np.float32), np.zeros(3)
    sums, means = comm.allreduce_init(big, "sum"), comm.allreduce_init(small, "mean")
    assert isinstance(sums, _MPIPersistentAllreduce) == (persistent == "1")
    for step in range(4):
        big[...] = comm.rank + step
        small[...] = 2.0 * comm.rank
        other = comm.iallreduce(np.full(7, 1.0), "sum")  # an ordinary collective between the rounds
        handles = [sums.start(), other, means.start()]
        comm.wait_all(handles)  # (MPICH fails Testall on persistent requests: waited one by one)
        assert (big == sum(range(comm.size)) + comm.size * step).all()
        assert np.allclose(small, comm.size - 1.0) and (other.wait() == comm.size).all()
    sums.free()
    means.free()


def test_broadcast_gather_objects_barrier_split(comm):
    r, n = comm.rank, comm.size
    x = np.full(4, float(r))
    assert comm.broadcast(x, root=n - 1) is x and x.tolist() == [n - 1.0] * 4
    assert comm.allgather(np.array([r, 2 * r])).tolist() == [[i, 2 * i] for i in range(n)]
    sent = np.array([[100 * r + j, j] for j in range(n)], dtype=np.uint16)  # row j goes to rank j
    assert comm.ialltoall(sent).wait().tolist() == [[100 * i + r, r] for i in range(n)]
    with pytest.raises(ValueError, match="alltoall: expected an array of shape"):
        comm.ialltoall(sent[:1] if n > 1 else sent[:0])
    assert comm.allgather_object({"r": r, "s": "x" * r}) == [{"r": i, "s": "x" * i} for i in range(n)]
    assert comm.broadcast_object(("hello", r) if r == 1 else None, root=1) == ("hello", 1)
    comm.barrier()
    sub = comm.split(r % 2, key=-r)
    rest = None
    try:
        members = [q for q in range(n) if q % 2 == r % 2]
        assert sub.size == len(members) and sub.rank == sorted(members, reverse=True).index(r)
        assert sub.allreduce(np.array([float(r)]), "sum")[0] == sum(members)
        rest = comm.split(None if r == 0 else 0)
        assert (rest is None) == (r == 0)
        if rest is not None:
            assert rest.size == n - 1
    finally:  # (collective, on each group's ranks: a pytest process under mpiexec would leak communicator ids)
        if rest is not None:
            rest.free()
        sub.free()


def test_local_rank(comm):
    # All ranks of these tests run on one host.
    assert comm.local_size == comm.size and comm.local_rank == comm.rank


def test_numpy_scalars_and_reductions_mpi_lacks(comm):
    # as on the other backends (tests/test_data_parallel_edges.py): a numpy scalar reduces, and a reduction
    # MPI has no op for is a clear TypeError on every rank, not MPICH's "Invalid MPI_Op"
    assert float(comm.allreduce(np.float64(2.5), "sum")) == 2.5 * comm.size
    with pytest.raises(TypeError, match="bool array"):
        comm.allreduce(np.ones(3, bool), "max")
    with pytest.raises(TypeError, match="complex arrays"):
        comm.allreduce(np.ones(2, complex), "min")
    with pytest.raises(TypeError, match="color must be an int or None"):
        comm.split("a")
    comm.barrier()


@pytest.fixture(scope="module")
def comm_without_shared_memory():
    from distnn.distributed.mpi_comm import MPICommunicator

    return MPICommunicator(shared_memory=False)


@pytest.mark.parametrize("op,dtype", [("sum", np.float32), ("mean", np.float64), ("max", np.float32),
                                      ("min", np.float64), ("sum", np.int64), ("max", np.int32)])
@pytest.mark.parametrize("size", [1, 2, 17, 100_003])
def test_allreduce_buffer_reduces_in_shared_memory_with_identical_bits(comm, op, dtype, size):
    from distnn.distributed.shared_memory import SharedAllreduce

    reduce = comm.allreduce_buffer(size, dtype, op)
    assert isinstance(reduce, SharedAllreduce)  # pytest-mpi's ranks share this host
    assert reduce.array.shape == (size,) and reduce.array.dtype == dtype and not reduce.array.any()

    def mine(rank, step):
        values = np.random.default_rng(1000 * rank + step).standard_normal(size) * 100
        return values.astype(dtype)

    for step in range(3):  # restarted rounds, each with other ranks' new values
        reduce.array[...] = mine(comm.rank, step)
        reduce.start().wait()
        stack = np.stack([mine(r, step) for r in range(comm.size)])
        expected = {"sum": stack.sum(0), "mean": stack.mean(0), "max": stack.max(0), "min": stack.min(0)}[op]
        np.testing.assert_allclose(reduce.array, expected.astype(dtype), rtol=1e-6)
        every = comm.allgather(reduce.array)
        assert all(np.array_equal(every[0], e) for e in every)  # one rank computes each share: same bits
    reduce.free()


def test_shared_memory_buffers_in_flight_together_and_between_other_collectives(comm):
    a, b = comm.allreduce_buffer(1000, np.float32), comm.allreduce_buffer(10, np.float64, "max")
    for step in range(5):
        a.array[...] = comm.rank + step
        b.array[...] = -float(comm.rank)
        handles = [a.start(), comm.iallreduce(np.full(7, 1.0)), b.start()]
        # Wait in the opposite order on alternate ranks: each window's barriers are its own,
        # so no rank can take one buffer's barrier for another's.
        order = handles if comm.rank % 2 else handles[::-1]
        for h in order:
            h.wait()
        assert (a.array == sum(range(comm.size)) + comm.size * step).all()
        assert (b.array == 0.0).all() and (handles[1].wait() == comm.size).all()
    a.free()
    b.free()


def test_allreduce_buffer_without_shared_memory_is_an_mpi_persistent_allreduce(comm_without_shared_memory):
    from distnn.distributed.shared_memory import SharedAllreduce

    c = comm_without_shared_memory
    reduce = c.allreduce_buffer(5, np.float32, "sum")
    assert not isinstance(reduce, SharedAllreduce)
    reduce.array[...] = c.rank + 1
    reduce.start().wait()
    assert (reduce.array == c.size * (c.size + 1) / 2).all()
    reduce.free()


def test_released_windows_are_freed_only_when_no_array_views_them(comm):
    import gc

    arena = comm._arena
    reduce = comm.allreduce_buffer(64, np.float32)
    seg = max(arena.segments)
    kept = reduce.array[:8]  # a view that outlives the allreduce (as a p.grad kept after a step)
    reduce.array[...] = 2.0
    reduce.free()
    del reduce
    gc.collect()
    other = comm.allreduce_buffer(4, np.float32)  # a collective allocation: frees what all ranks released
    assert seg in arena.segments  # still viewed here: kept alive
    assert (kept == 2.0).all()
    del kept
    other.free()
    comm.allreduce_buffer(4, np.float32).free()
    assert seg not in arena.segments


def test_allreduce_buffer_falls_back_to_mpi_on_every_rank_when_dev_shm_is_small_on_one(monkeypatch):
    from distnn.distributed import shared_memory
    from distnn.distributed.mpi_comm import MPICommunicator

    c = MPICommunicator()
    if c.rank == 0:  # a small /dev/shm seen by one rank is enough: the choice is agreed
        monkeypatch.setattr(shared_memory, "shm_free_bytes", lambda: 1 << 20)
    with pytest.warns(RuntimeWarning, match=r"/dev/shm has \d+ MiB free, too little .* reduced with MPI_Allreduce"):
        reduce = c.allreduce_buffer(1_000_000, np.float32)
    assert not isinstance(reduce, shared_memory.SharedAllreduce)
    reduce.array[...] = c.rank + 1
    reduce.start().wait()
    assert (reduce.array == c.size * (c.size + 1) / 2).all()
    reduce.free()


def test_allreduce_buffer_sizes_that_differ_across_ranks_raise_on_every_rank(comm):
    with pytest.raises(ValueError, match=r"every rank must ask for the same size and dtype; got rank 0: 4 x "
                                         r"float32, rank 1: 5 x float32"):
        comm.allreduce_buffer(4 + min(comm.rank, 1), np.float32)


def test_allreduce_buffer_past_the_window_cap_falls_back_to_mpi(monkeypatch):
    from distnn.distributed import shared_memory
    from distnn.distributed.mpi_comm import MPICommunicator

    monkeypatch.setattr(shared_memory, "MAX_WINDOWS", 2)
    c = MPICommunicator()
    kept = [c.allreduce_buffer(10, np.float64) for _ in range(2)]
    assert all(isinstance(r, shared_memory.SharedAllreduce) for r in kept)
    with pytest.warns(RuntimeWarning, match=r"2 shared-memory buffers are alive"):
        third = c.allreduce_buffer(10, np.float64)
    assert not isinstance(third, shared_memory.SharedAllreduce)
    for r in kept + [third]:
        r.array[...] = 1.0
        r.start().wait()
        assert (r.array == c.size).all()
        r.free()


def test_shared_rounds_of_two_communicators_waited_in_opposite_orders(comm):
    from distnn.distributed.mpi_comm import MPICommunicator

    other = MPICommunicator()
    a, b = comm.allreduce_buffer(10, np.float64), other.allreduce_buffer(10, np.float64)
    a.array[...], b.array[...] = 1.0, 2.0
    handles = [a.start(), b.start()]
    for h in (handles if comm.rank % 2 else handles[::-1]):  # legal with MPI's own nonblocking collectives
        h.wait()
    assert (a.array == comm.size).all() and (b.array == 2.0 * comm.size).all()
    a.free()
    b.free()


def test_every_ranks_shared_buffer_starts_on_a_cache_line(comm):
    for size in (3, 1001):
        reduce = comm.allreduce_buffer(size, np.float32)
        assert all(buf.ctypes.data % 64 == 0 for buf in reduce.segment.buffers)
        reduce.free()


@pytest.mark.mpi(min_size=2)
def test_arrays_mpi_cannot_send_are_refused_and_read_only_ones_reduce_into_a_copy(comm):
    # The same on every backend (tests/test_comm_collectives.py runs this check in one process and on simulated
    # ranks): under MPI these gave BufferError, KeyError or an MPICH internal error.
    from comm_dtype_checks import check_collective_dtypes

    check_collective_dtypes(comm)


@pytest.mark.mpi(min_size=2)
def test_check_collectives_names_a_mismatched_call_on_every_rank(monkeypatch):
    # MPI does not compare the ranks' arguments: a different shape, op or root gave silently wrong
    # results. DISTNN_CHECK_COLLECTIVES=1 compares them first (a debugging switch: one allgather more).
    from distnn.distributed import CollectiveError
    from distnn.distributed.mpi_comm import MPICommunicator

    monkeypatch.setenv("DISTNN_CHECK_COLLECTIVES", "1")
    checked = MPICommunicator()
    other = 1 if checked.rank == 0 else 0
    pattern = (rf"rank {checked.rank} called allreduce\(op='sum', shape=\({2 + checked.rank},\), dtype=float64\) "
               rf"but rank {other} called allreduce\(op='sum', shape")
    with pytest.raises(CollectiveError, match=pattern):
        checked.allreduce(np.ones(2 + checked.rank))
    with pytest.raises(CollectiveError, match=r"op='(sum|max)'.* but rank \d called allreduce\(op='(sum|max)'"):
        checked.allreduce(np.ones(2), op="sum" if checked.rank == 0 else "max")
    with pytest.raises(CollectiveError, match=r"broadcast\(root=\d"):
        checked.broadcast(np.ones(2), root=min(checked.rank, 1))
    with pytest.raises(CollectiveError, match=r"allgather\(shape="):
        checked.allgather(np.ones(1 + checked.rank))
    with pytest.raises(CollectiveError, match=r"barrier\(\)|allreduce\(op="):  # another kind of collective
        if checked.rank == 0:
            checked.barrier()
        else:
            checked.allreduce(np.ones(2))
    with pytest.raises(CollectiveError, match=r"allreduce_buffer\(op='sum', size=\d"):  # a bucket's set-up
        checked.allreduce_buffer(4 + checked.rank, np.float32)
    # matching calls still work, and the communicator is still in step
    np.testing.assert_array_equal(checked.allreduce(np.ones(2)), np.full(2, float(checked.size)))
    assert checked.broadcast_object(checked.rank, root=0) == 0


def test_broadcast_from_a_read_only_root_array(comm):
    # the root only sends, but its writeback into its own (read-only) array raised, and the job aborted
    expected = np.arange(12.0).reshape(3, 4)
    if comm.rank == 0:
        sources = [np.frombuffer(expected.tobytes()).reshape(3, 4), np.broadcast_to(expected[0], (3, 4))]
    else:
        sources = [np.zeros((3, 4)), np.zeros((3, 4))]
    for k, a in enumerate(sources):
        out = comm.broadcast(a, root=0)
        np.testing.assert_array_equal(out, expected if k == 0 else np.broadcast_to(expected[0], (3, 4)))
