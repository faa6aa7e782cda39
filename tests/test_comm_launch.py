"""Choosing a communicator: bad arguments, thread-local state per simulated rank, seeded random state, the local
communicator, launcher detection and local ranks, DISTNN_BACKEND, init's refusals, the timeout variable, waiting
without spinning."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import distnn
import distnn.distributed as dist
from distnn.distributed.local_comm import LocalCommunicator
from distnn.distributed.mpi_comm import launcher_world_size
from mpi_child import child_env, require_mpiexec


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


def test_local_rank_follows_the_launchers_variables():
    # Launchers publish the host-local rank they bound devices with; when it differs from the
    # shared-memory split's order (here: swapped on purpose, per rank via MPMD), the launcher wins.
    code = ("import distnn.distributed as d; c = d.init(); "
            "print(f'RANK {c.rank} LOCAL {c.local_rank} OF {c.local_size}', flush=True)")
    from distnn.distributed.launch import mpiexec_path

    require_mpiexec()
    cmd, env = [mpiexec_path()], child_env()
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
