"""Communicators in one process (simulate): allreduce against numpy, persistent allreduce, rank-ordered
sums, broadcast/gather/split/barrier, mismatched collectives named, many collectives without lost wake-ups,
arrays MPI cannot send refused alike."""
import numpy as np
import pytest

import distnn.distributed as dist
from distnn.distributed import CollectiveError


def _contribution(rank, shape=(3, 4), dtype=np.float64):
    return np.random.default_rng(rank).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_allreduce_matches_numpy_in_place_and_identical_on_all_ranks(op, n):
    def fn(comm):
        a = _contribution(comm.rank)
        out = comm.allreduce(a, op)
        assert out is a  # in place
        return a

    results = dist.simulate(n, fn)
    stack = np.stack([_contribution(r) for r in range(n)])
    expected = {"sum": stack.sum(0), "mean": stack.mean(0), "max": stack.max(0), "min": stack.min(0)}[op]
    for r in results:
        np.testing.assert_allclose(r, expected, rtol=1e-15)
        assert np.array_equal(r.view(np.uint64), results[0].view(np.uint64))  # bitwise equal everywhere


@pytest.mark.parametrize("n", [1, 3])
def test_persistent_allreduce_reduces_its_array_at_every_start(n):
    def fn(comm):
        a = np.zeros(4)
        reduce = comm.allreduce_init(a, "mean")
        seen = []
        for step in range(3):
            a[...] = comm.rank + step
            assert reduce.start().wait() is a
            seen.append(a.copy())
        reduce.free()
        return seen

    for seen in dist.simulate(n, fn):
        for step, a in enumerate(seen):
            np.testing.assert_allclose(a, (n - 1) / 2 + step)


def test_sum_is_in_rank_order_and_reproducible():
    # float32 values whose sum depends on the order of additions
    vals = [np.float32(1e8), np.float32(1.0), np.float32(-1e8)]

    def fn(comm):
        return comm.allreduce(np.array([vals[comm.rank]]), "sum")[0]

    runs = {float(x) for _ in range(5) for x in dist.simulate(3, fn)}
    assert runs == {float((vals[0] + vals[1]) + vals[2])}


def test_collectives_broadcast_gather_objects_split_barrier():
    def fn(comm):
        r = comm.rank
        x = np.full(3, float(r))
        comm.broadcast(x, root=2)
        g = comm.allgather(np.array([r, 10 * r]))
        a2a = comm.ialltoall(np.array([[10 * r + j, 7 * j] for j in range(comm.size)], dtype=np.uint16))
        h = comm.iallreduce(np.array([float(r)]), "max")
        objs = comm.allgather_object({"rank": r})
        o = comm.broadcast_object({"from": r} if r == 1 else None, root=1)
        comm.barrier()
        sub = comm.split(r % 2, key=-r)  # even/odd groups, reversed order inside
        s = sub.allreduce(np.array([r]), "sum")
        none = comm.split(None if r == 0 else 1)
        return x, g, h.wait(), objs, o, (sub.rank, sub.size, int(s[0])), none is None, a2a.wait()

    res = dist.simulate(4, fn)
    for r, (x, g, h, objs, o, sub, none, a2a) in enumerate(res):
        assert x.tolist() == [2.0, 2.0, 2.0]
        assert g.tolist() == [[0, 0], [1, 10], [2, 20], [3, 30]]
        assert a2a.dtype == np.uint16 and a2a.tolist() == [[10 * i + r, 7 * r] for i in range(4)]
        assert h.tolist() == [3.0]
        assert objs == [{"rank": i} for i in range(4)]
        assert o == {"from": 1}
        members = [q for q in range(4) if q % 2 == r % 2]
        assert sub == (sorted(members, reverse=True).index(r), 2, sum(members))
        assert none == (r == 0)


def test_broadcast_object_gives_each_rank_its_own_copy():
    def fn(comm):
        obj = comm.broadcast_object({"a": [1]} if comm.rank == 0 else None)
        obj["a"].append(comm.rank)
        comm.barrier()
        return obj

    res = dist.simulate(3, fn)
    assert res[1] == {"a": [1, 1]} and res[2] == {"a": [1, 2]}


def test_mismatched_collectives_raise_naming_both_calls():
    def fn(comm):
        if comm.rank == 1:
            comm.barrier()
        else:
            comm.allreduce(np.ones(2))

    with pytest.raises(CollectiveError, match=r"rank \d called (barrier|allreduce).*but rank \d called"):
        dist.simulate(2, fn)


def test_simulate_many_collectives_no_lost_wakeups():
    def fn(comm):
        a = np.zeros(1)
        for _ in range(200):
            a += 1
            comm.allreduce(a, "max")
        return a[0]

    assert dist.simulate(3, fn) == [200.0, 200.0, 200.0]


def test_arrays_mpi_cannot_send_are_refused_alike_in_one_process_and_simulated():
    from comm_dtype_checks import check_collective_dtypes

    assert check_collective_dtypes(dist.LocalCommunicator())
    assert dist.simulate(2, check_collective_dtypes) == [True, True]
