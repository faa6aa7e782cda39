"""Communicators in one process: the in-process group (simulate), the local one, init() and launcher detection."""
import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

import distnn
import distnn.distributed as dist
from distnn.distributed import CollectiveAbortedError, CollectiveError, CollectiveTimeoutError
from distnn.distributed.local_comm import LocalCommunicator
from distnn.distributed.mpi_comm import launcher_world_size


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


def test_failing_rank_releases_the_others_and_is_reraised_with_its_rank():
    waited = []

    def fn(comm):
        if comm.rank == 2:
            raise KeyError("boom on two")
        try:
            comm.allreduce(np.ones(3))
        except CollectiveAbortedError as e:
            waited.append(str(e))
            raise

    with pytest.raises(KeyError, match="boom on two") as info:
        dist.simulate(3, fn)
    assert any("simulated rank 2" in note for note in info.value.__notes__)
    assert len(waited) == 2 and all("rank 2 failed" in w for w in waited)


def test_rank_returning_early_names_the_missing_rank():
    def fn(comm):
        if comm.rank != 1:
            comm.barrier()

    with pytest.raises(CollectiveError, match=r"rank\(s\) \[1\] returned without calling it"):
        dist.simulate(3, fn)


def test_sys_exit_on_one_rank_stops_every_rank_and_names_it(monkeypatch, capsys):
    monkeypatch.setenv("DISTNN_COLLECTIVE_TIMEOUT", "30")  # a rank left waiting would fail, not hang
    released = []

    def fn(comm):
        comm.barrier()
        if comm.rank == 1:
            sys.exit(3)
        try:
            while True:  # rank 0 would go on forever: only the abort ends it
                comm.allreduce(np.ones(2))
        except CollectiveAbortedError as e:
            released.append(str(e))
            raise

    with pytest.raises(SystemExit) as info:
        dist.simulate(2, fn)
    assert info.value.code == 3  # the process exits with the rank's status
    assert any("simulated rank 1 of 2" in note for note in info.value.__notes__)
    assert len(released) == 1 and "rank 1 failed with SystemExit: 3" in released[0]
    # Python prints nothing for an uncaught SystemExit: simulate says which rank ended the run
    assert "[distnn] simulated rank 1 of 2 called sys.exit(3)" in capsys.readouterr().err


@pytest.mark.parametrize("code", [0, None])
def test_sys_exit_0_on_a_rank_is_that_rank_ending_not_a_failure(code):
    def fn(comm):
        comm.barrier()
        if comm.rank == 1:
            sys.exit(code)
        return comm.rank

    assert dist.simulate(2, fn) == [0, None]  # as if rank 1 had returned None (torchrun: a worker's success)
    assert dist.simulate(2, lambda comm: sys.exit(code)) == [None, None]


@pytest.mark.parametrize("code,status,says", [
    (3, 3, "[distnn] simulated rank 1 of 2 called sys.exit(3)"),
    # status 0 on rank 1 while rank 0 still needs it: rank 0 cannot finish, so the run fails
    (0, 1, "[distnn] simulated rank(s) [1] of 2 called sys.exit(0)"),
])
def test_sys_exit_on_one_simulated_rank_sets_the_process_exit_status(code, status, says):
    script = ("import sys, numpy as np, distnn.distributed as d\n"
              "def fn(comm):\n"
              "    comm.barrier()\n"
              f"    if comm.rank == 1: sys.exit({code})\n"
              "    comm.allreduce(np.ones(2))\n"
              "    print('rank', comm.rank, 'finished')\n"
              "d.simulate(2, fn)\n")
    env = dict(os.environ, DISTNN_COLLECTIVE_TIMEOUT="30")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == status, out.stderr
    assert says in out.stderr and "finished" not in out.stdout, out.stderr
    assert "Traceback" not in out.stderr  # one line, as an MPI job's (it was a traceback for status 0)


def test_timeout_names_the_missing_rank(monkeypatch):
    monkeypatch.setenv("DISTNN_COLLECTIVE_TIMEOUT", "0.3")
    release = threading.Event()

    def fn(comm):
        if comm.rank == 1:
            release.wait(5)  # "stuck in computation"
            return None
        try:
            comm.allreduce(np.ones(2))
        finally:
            release.set()

    with pytest.raises(CollectiveTimeoutError, match=r"missing ranks \[1\]"):
        dist.simulate(2, fn)


def test_a_rank_stuck_outside_any_collective_does_not_keep_simulate_waiting(monkeypatch):
    # Rank 0 times out waiting for rank 1, which never comes back (an endless computation): simulate
    # reports the timeout after a grace instead of joining rank 1's thread forever (MPI aborts it).
    # Rank 1 returns only once released (or after 120 s): simulate must have returned while it was
    # still stuck. (This was a 10 s wall-clock bound on simulate, with rank 1 stuck for 60 s.)
    from distnn.distributed import inprocess_comm

    monkeypatch.setenv("DISTNN_COLLECTIVE_TIMEOUT", "0.5")
    monkeypatch.setattr(inprocess_comm, "FAILED_RANKS_GRACE_S", 1.0)
    release, returned = threading.Event(), threading.Event()

    def fn(comm):
        if comm.rank == 1:
            release.wait(120)  # stuck: never reaches the allreduce, never returns on its own
            returned.set()
            return None
        comm.allreduce(np.ones(2))

    try:
        with pytest.raises(CollectiveTimeoutError, match=r"missing ranks \[1\]") as info:
            dist.simulate(2, fn)
        assert not returned.is_set()  # simulate did not wait for rank 1's thread
        assert any("simulated rank(s) [1] still running" in note for note in info.value.__notes__)
    finally:
        release.set()


def test_bad_arguments_are_clear():
    def fn(comm):
        with pytest.raises(ValueError, match="unknown reduction op 'prod'"):
            comm.allreduce(np.ones(2), "prod")
        with pytest.raises(TypeError, match="floating-point"):
            comm.allreduce(np.ones(2, dtype=np.int64), "mean")
        with pytest.raises(ValueError, match="root 5 is not a rank"):
            comm.broadcast(np.ones(2), root=5)
        return True

    assert dist.simulate(2, fn) == [True, True]


def test_thread_local_state_per_simulated_rank():
    def fn(comm):
        distnn.manual_seed(100 + comm.rank)
        with distnn.no_grad() if comm.rank == 0 else _null():
            comm.barrier()
            grad_on = distnn.is_grad_enabled()
        return distnn.random.default_generator().integers(1 << 30), grad_on, dist.init() is comm

    (a, g0, same0), (b, g1, same1) = dist.simulate(2, fn)
    assert a == np.random.default_rng(100).integers(1 << 30) and b == np.random.default_rng(101).integers(1 << 30)
    assert (g0, g1) == (False, True) and same0 and same1


def test_simulated_ranks_start_from_the_callers_seeded_random_state():
    # Under mpiexec, every process of a script that calls manual_seed(s) (and draws) before starting the
    # ranks' work has that same state: each simulated rank must start from a copy of the caller's.
    saved = distnn.random.get_state()
    try:
        distnn.manual_seed(1234)
        distnn.random.default_generator().random()  # a draw before simulate, as the script's processes make
        expected = np.random.default_rng(1234)
        expected.random()
        want = expected.integers(1 << 30, size=4).tolist()

        def fn(comm):
            return distnn.random.default_generator().integers(1 << 30, size=4).tolist()

        assert dist.simulate(3, fn) == [want, want, want]
        # the caller's stream is its own: the ranks' draws did not advance it
        assert distnn.random.default_generator().integers(1 << 30, size=4).tolist() == want
    finally:
        distnn.random.set_state(saved)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def test_local_communicator_is_identity():
    c = LocalCommunicator()
    a = np.arange(3.0)
    assert c.allreduce(a, "mean") is a and c.iallreduce(a).wait() is a
    assert c.allgather(a).shape == (1, 3) and c.allgather_object({"x": 1}) == [{"x": 1}]
    assert c.ialltoall(a[None]).wait().tolist() == [a.tolist()]
    with pytest.raises(ValueError, match=r"shape \(1, ...\) on 1 rank"):
        c.ialltoall(a)
    assert c.broadcast_object("o") == "o" and c.split(0).size == 1 and c.split(None) is None
    assert (c.rank, c.size, c.local_rank, c.local_size) == (0, 1, 0, 1)


_LAUNCH_VARS = ["OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMI_SIZE", "PMIX_RANK",
                "MV2_COMM_WORLD_RANK", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "HYDRA_CONTROL_FD", "PMI_FD"]


def test_launcher_detection(monkeypatch):
    for v in _LAUNCH_VARS:
        monkeypatch.delenv(v, raising=False)
    if "mpi4py.MPI" in sys.modules:
        pytest.skip("mpi4py already initialized in this process")
    assert launcher_world_size() is None
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "0")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    assert launcher_world_size() == 4
    monkeypatch.delenv("OMPI_COMM_WORLD_RANK")
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "8")
    assert launcher_world_size() == 8


def test_plain_python_run_gets_local_comm_without_importing_mpi4py():
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCH_VARS}
    code = ("import sys, distnn.distributed as d; c = d.init(); assert d.init() is c; "
            "print(type(c).__name__, c.size, 'mpi4py' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["LocalCommunicator", "1", "False"]


@pytest.mark.parametrize("launcher", [
    {"SLURM_PROCID": "{rank}", "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_ID": "0"},  # srun without --mpi=pmi2
    {"OMPI_COMM_WORLD_RANK": "{rank}", "OMPI_COMM_WORLD_SIZE": "2"},                  # another MPI's mpirun
], ids=["srun-unwired", "foreign-mpirun"])
def test_a_launcher_that_mpi_does_not_see_is_refused_before_anything_is_written(tmp_path, launcher):
    """Started by a launcher that mpi4py's MPI is not wired to, each process is rank 0 of 1: it would
    train alone and race the others for the run directory. Every process stops (exit 2); the
    launcher's rank 0 says why; nothing is written."""
    base = {k: v for k, v in os.environ.items() if k not in _LAUNCH_VARS and not k.startswith(("MPI_", "PMI"))}
    for rank in (0, 1):
        env = {**base, **{k: v.format(rank=rank) for k, v in launcher.items()}}
        out = subprocess.run([sys.executable, "-m", "distnn", "train", "--set", "train.epochs=1", "--quiet",
                              "--out", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 2, out.stderr
        if rank == 0:
            assert "the launcher started 2 processes" in out.stderr and "sees only itself" in out.stderr
            assert "srun --mpi=pmi2" in out.stderr
        else:
            assert "launcher started" not in out.stderr
        assert not (tmp_path / "run").exists()
    code = "import distnn.distributed as d\ntry:\n    d.init()\nexcept ValueError as e:\n    print(type(e).__name__)"
    env = {**base, **{k: v.format(rank=0) for k, v in launcher.items()}}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["LauncherMismatchError"], out.stderr
    # independent single-process runs under one launcher (a sweep) say so: each its own LocalCommunicator
    code = "import sys, distnn.distributed as d; c = d.init(); print(type(c).__name__, c.size, 'mpi4py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "DISTNN_BACKEND": "local"}, capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.split() == ["LocalCommunicator", "1", "False"], out.stderr


def test_distnn_backend_sets_what_auto_means_outside_simulate(monkeypatch):
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCH_VARS}
    out = subprocess.run([sys.executable, "-c", "import distnn.distributed as d; d.init()"],
                         env={**env, "DISTNN_BACKEND": "nccl"}, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "DISTNN_BACKEND='nccl': expected one of auto, mpi, local" in out.stderr
    monkeypatch.setenv("DISTNN_BACKEND", "local")
    assert dist.simulate(2, lambda comm: dist.init() is comm) == [True, True]  # a simulated rank's own, still


def test_init_rejects_unknown_backend():
    with pytest.raises(ValueError, match="unknown backend 'nccl'"):
        dist.init("nccl")


def test_init_with_an_explicit_backend_inside_simulate_is_refused():
    def fn(comm):
        with pytest.raises(RuntimeError, match=r"init\('mpi'\) called inside simulate\(\) \(on simulated rank "
                                               rf"{comm.rank} of 2\).*not through MPI"):
            dist.init("mpi")
        with pytest.raises(RuntimeError, match=r"init\('local'\) called inside simulate\(\)"):
            dist.init("local")
        return dist.init() is comm and dist.init("auto") is comm  # the rank's own, as before

    assert dist.simulate(2, fn) == [True, True]


def test_timeout_env_parsing(monkeypatch):
    from distnn.distributed.watchdog import collective_timeout

    monkeypatch.setenv("DISTNN_COLLECTIVE_TIMEOUT", "0")
    assert collective_timeout() is None
    monkeypatch.setenv("DISTNN_COLLECTIVE_TIMEOUT", "12.5")
    assert collective_timeout() == 12.5
    for bad in ("soon", "nan", "-1"):  # (nan turned the timeout off: a missing rank was waited for forever)
        monkeypatch.setenv("DISTNN_COLLECTIVE_TIMEOUT", bad)
        with pytest.raises(ValueError, match="DISTNN_COLLECTIVE_TIMEOUT"):
            collective_timeout()
    monkeypatch.delenv("DISTNN_COLLECTIVE_TIMEOUT")
    assert collective_timeout() == 300.0


def test_simulate_many_collectives_no_lost_wakeups():
    def fn(comm):
        a = np.zeros(1)
        for _ in range(200):
            a += 1
            comm.allreduce(a, "max")
        return a[0]

    assert dist.simulate(3, fn) == [200.0, 200.0, 200.0]


def test_local_rank_follows_the_launchers_variables():
    # Launchers publish the host-local rank they bound devices with; when it differs from the
    # shared-memory split's order (here: swapped on purpose, per rank via MPMD), the launcher wins.
    code = ("import distnn.distributed as d; c = d.init(); "
            "print(f'RANK {c.rank} LOCAL {c.local_rank} OF {c.local_size}', flush=True)")
    try:
        from distnn.distributed.launch import mpiexec_path

        cmd = [mpiexec_path()]
        import mpi4py  # noqa: F401
    except (FileNotFoundError, ImportError) as e:  # pragma: no cover - depends on the install
        pytest.skip(f"needs mpiexec and mpi4py: {e}")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for local in ("1", "0"):
        cmd += ["-n", "1", "-env", "OMPI_COMM_WORLD_LOCAL_RANK", local, "-env", "OMPI_COMM_WORLD_LOCAL_SIZE", "2",
                sys.executable, "-c", code, ":"]
    out = subprocess.run(cmd[:-1], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # (found anywhere: the launcher may forward the two ranks' lines run together)
    assert sorted(re.findall(r"RANK \d+ LOCAL \d+ OF \d+", out.stdout)) == ["RANK 0 LOCAL 1 OF 2", "RANK 1 LOCAL 0 OF 2"]


def test_wait_until_yields_the_core_at_once_without_spinning(monkeypatch):
    """With more ranks than cores a spinning wait starves the peer it waits for: spin_s=0 yields from the first poll."""
    import os

    from distnn.distributed import watchdog

    yields, clock = [], iter(range(10**6))
    monkeypatch.setattr(os, "sched_yield", lambda: yields.append(1))
    monkeypatch.setattr(watchdog.time, "monotonic", lambda: next(clock) * 1e-6)  # a microsecond a reading
    polls = iter([False, False, False, True])
    watchdog.wait_until(lambda: next(polls), None, None, spin_s=0.0)
    assert len(yields) == 2  # after each poll that failed in the loop
    yields.clear()
    polls = iter([False, False, False, True])
    watchdog.wait_until(lambda: next(polls), None, None)  # default: spin first (the peer has its own core)
    assert yields == []


def test_arrays_mpi_cannot_send_are_refused_alike_in_one_process_and_simulated():
    from comm_dtype_checks import check_collective_dtypes

    assert check_collective_dtypes(dist.LocalCommunicator())
    assert dist.simulate(2, check_collective_dtypes) == [True, True]


def test_an_exception_a_signal_handler_raises_in_the_caller_stops_the_simulated_ranks():
    # signals are handled in the main thread: a handler that raises (the CLI's start-up preemption
    # handler does) raises in simulate's wait, and the ranks must be stopped there, not left running
    import signal

    running, release, ended = threading.Event(), threading.Event(), {}

    def handler(signum, frame):
        release.set()
        raise RuntimeError("raised by a signal handler")

    def fn(comm):
        try:
            if comm.rank == 0:
                running.wait(30)
                os.kill(os.getpid(), signal.SIGUSR2)
            else:
                running.set()
                release.wait(30)
            comm.barrier()
            ended[comm.rank] = "completed"
        except BaseException as e:
            ended[comm.rank] = type(e).__name__
            raise

    previous = signal.signal(signal.SIGUSR2, handler)
    try:
        with pytest.raises(RuntimeError, match="raised by a signal handler"):
            dist.simulate(2, fn)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert ended == {0: "CollectiveAbortedError", 1: "CollectiveAbortedError"}


def test_ctrl_c_while_starting_the_ranks_waits_for_those_begun_and_calls_off_the_others(monkeypatch):
    # Ctrl-C in the caller's Thread.start of rank 1: its thread exists but has not begun (gated here, as a
    # thread the OS has not scheduled yet). Rank 0 had begun: it is stopped and waited for. Rank 1 must
    # never run fn (it ran, after simulate had returned, unwaited for: its thread's ident could still be None
    # when the interrupt came); rank 2 was never started.
    rank0_began, gate, threads, ran = threading.Event(), threading.Event(), [], {}

    class Thread(threading.Thread):
        def run(self):
            if self.name != "distnn-rank-0":
                gate.wait(30)
            super().run()

        def start(self):
            super().start()
            threads.append(self)
            if self.name == "distnn-rank-1":
                assert rank0_began.wait(30)
                raise KeyboardInterrupt

    def fn(comm):
        try:
            rank0_began.set()
            comm.barrier()
            ran[comm.rank] = "completed"
        except BaseException as e:
            ran[comm.rank] = type(e).__name__
            raise

    monkeypatch.setattr(threading, "Thread", Thread)
    with pytest.raises(KeyboardInterrupt):
        dist.simulate(3, fn)
    assert ran == {0: "CollectiveAbortedError"}  # (rank 0 waited for: it had ended)
    gate.set()
    for t in threads:
        t.join(30)
        assert not t.is_alive()
    assert ran == {0: "CollectiveAbortedError"}  # (rank 1 called off: fn never ran there)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_exit_watch_tells_a_live_process_from_a_zombie_and_a_gone_one(tmp_path):
    """What a waiting MPI rank checks of a peer on its host: the start time while the process runs,
    None once it has ended (a zombie not yet reaped counts as ended, as does a gone pid)."""
    from distnn.distributed import exit_watch

    # a command name with spaces and parentheses (/proc/PID/stat's second field): read after the last ')'
    odd = tmp_path / "py ) (x"
    os.symlink(sys.executable, odd)
    child = subprocess.Popen([str(odd), "-c", "import time; time.sleep(30)"])
    try:
        start = exit_watch._start_time(child.pid)
        assert isinstance(start, int) and start > 0
        assert exit_watch._start_time(child.pid) == start  # stable: what a peer's identity is checked against
        ident = exit_watch._identity()
        assert ident is not None and ident[2] == os.getpid() and ident[3] == exit_watch._start_time(os.getpid())
    finally:
        child.kill()
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # ended, not reaped: a zombie
    assert exit_watch._start_time(child.pid) is None
    child.wait()
    assert exit_watch._start_time(child.pid) is None


def test_a_failed_simulation_leaves_no_traceback_in_its_groups():
    # the failure's traceback, kept by a sub-group that DataParallel's pool caches (keyed weakly by the base
    # communicator), held the base and the whole failed job for the life of the process
    import gc
    import weakref

    kept = []

    def fn(comm):
        from distnn import nn
        from distnn.distributed import DataParallel

        dp = DataParallel(nn.Linear(2, 1), comm)  # (its communicator comes from the pool)
        kept.append(weakref.ref(comm))
        dp(distnn.Tensor(np.ones((1, 2), np.float32))).sum().backward()
        if comm.rank == 1:
            raise KeyError("boom")
        dp(distnn.Tensor(np.ones((1, 2), np.float32))).sum().backward()

    with pytest.raises(KeyError):
        dist.simulate(2, fn)
    gc.collect()
    assert all(r() is None for r in kept)
