"""``checkpoint.async_save`` writes from a separate process (Linux, with a core to spare for it): a process that
dies is a failed write, not a hang; it ignores the signals sent to the whole job and dies with the training
process. Where every core trains, it writes from its background thread.

make_trainer's digits MLP takes 8 steps an epoch: checkpoints at steps 8, 16 and 24.
"""
import logging
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from distnn.distributed import LocalCommunicator
from distnn.train import checkpoint as ck
from distnn.train.callbacks.checkpoint_setup import attach
from distnn.train.checkpoint import writer_process
from checkpoint_runs import digits, make_trainer  # noqa: F401 (digits: a fixture)

pytestmark = [pytest.mark.usefixtures("clean_preemption_flags"),
              pytest.mark.skipif(not writer_process.worth_it(1), reason="async saves write from a thread here")]


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")  # (a zombie no one reaped yet is dead)
    except OSError:
        return True


def _kill_writer_when_paused(marker: str, killed: list) -> threading.Thread:
    """SIGKILL this process's writer process once its write has paused at ``marker`` (a fault hook)."""
    def run():
        deadline = time.monotonic() + 60
        while not os.path.exists(marker) and time.monotonic() < deadline:
            time.sleep(0.01)
        pid = writer_process._WRITER.proc.pid
        os.kill(pid, signal.SIGKILL)
        killed.append((pid, os.path.exists(marker)))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("on_error", ["continue", "stop"])
def test_a_writer_process_killed_mid_write_is_a_failed_write_and_the_next_one_starts_anew(
        digits, tmp_path, monkeypatch, caplog, on_error):
    # the step-16 write pauses after model.npz (in the writer process) until the test kills that process
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.setenv(ck.FAULT_ENV, "pause_after:model.npz@16")
    monkeypatch.setenv("DISTNN_FAULT_MARKER_DIR", str(markers))
    root = tmp_path / "ck"
    t = make_trainer(LocalCommunicator(), digits, epochs=3)
    cb = attach(t, str(root), {"dir": str(root), "async_save": True, "keep_last": 0, "keep_best": False,
                               "on_error": on_error})
    killed = []
    watcher = _kill_writer_when_paused(str(markers / "paused-after-model.npz"), killed)
    with caplog.at_level(logging.WARNING, logger="distnn"):
        if on_error == "stop":
            with pytest.raises(ck.CheckpointError, match=r"checkpoint writer process \(pid \d+\) died \(killed by "
                                                          r"signal 9\) while writing 'step-00000016'.*background"):
                t.fit()
        else:
            t.fit()
    watcher.join(5)
    assert killed and killed[0][1], "the write never paused"
    killed = killed[0][0]
    assert killed != os.getpid()  # the write was in another process
    steps = [c.step for c in ck.list_checkpoints(str(root))]
    if on_error == "stop":
        assert steps == [8] and ck.read_pointer(str(root)) == "step-00000008"
        return
    # the step-24 write started a new writer process, and training went on to the end
    assert len(t.history) == 3 and cb.failures == 1 and cb.saves == 2
    assert steps == [8, 24] and ck.read_pointer(str(root)) == "step-00000024"
    assert ck.verify_checkpoint(str(root / "step-00000024")) == []
    assert writer_process._WRITER.proc.pid != killed
    assert any(f"writer process (pid {killed}) died" in r.getMessage() for r in caplog.records)


def test_the_writer_process_ignores_the_jobs_signals_and_dies_with_the_training_process(tmp_path):
    # A job's signals (a scheduler's SIGTERM to every process of the job, Ctrl-C's SIGINT) are the training
    # process's to act on: its writer process goes on with the write in flight. And once the training
    # process is gone, so is its writer: no write lands after the job died.
    script = (
        "import os, signal, sys, time\n"
        "from distnn.train.checkpoint import writer_process as wp\n"
        "w = wp.writer_process()\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP):\n"
        "    os.kill(w.proc.pid, s)\n"
        "out = w.write(sys.argv[1], 3, {'a.bin': b'x' * 100000}, {}, fsync=False, update_best=False, reuse=None,\n"
        "              keep_last=0, protect=[], spares=[])\n"
        "print(w.proc.pid, out['ok'], flush=True)\n"
        "time.sleep(120)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        os.path.dirname(os.path.dirname(os.path.abspath(ck.__file__ + "/../.."))), os.environ.get("PYTHONPATH")]))}
    job = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, env=env, text=True)
    try:
        pid, ok = job.stdout.readline().split()
        assert ok == "True" and ck.verify_checkpoint(str(tmp_path / "step-00000003")) == []
        assert not _gone(int(pid))  # alive after all four signals
    finally:
        job.kill()
        job.wait()
    deadline = time.monotonic() + 10
    while not _gone(int(pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(int(pid)), "the writer process outlived the training process"


def test_without_a_writer_process_async_saves_are_written_from_the_thread(digits, tmp_path, monkeypatch, caplog):
    def cannot_start():
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(writer_process, "_WRITER", None)
    monkeypatch.setattr(writer_process, "WriterProcess", cannot_start)
    t = make_trainer(LocalCommunicator(), digits, epochs=3)
    cb = attach(t, str(tmp_path), {"dir": str(tmp_path), "async_save": True, "keep_last": 0, "keep_best": False})
    with caplog.at_level(logging.WARNING, logger="distnn"):
        t.fit()
    assert cb.saves == 3 and cb.failures == 0
    assert [c.step for c in ck.list_checkpoints(str(tmp_path))] == [8, 16, 24]
    warnings = [r.getMessage() for r in caplog.records if "writer process" in r.getMessage()]
    assert len(warnings) == 1 and "Resource temporarily unavailable" in warnings[0] and "thread" in warnings[0]



def test_where_every_core_trains_async_saves_are_written_from_the_thread(digits, tmp_path, monkeypatch):
    # as many training processes on this host as cores: a writer process's own CPU would cost more than the
    # interpreter lock it spares (see writer_process's docstring)
    monkeypatch.setattr(writer_process, "_WRITER", None)
    t = make_trainer(LocalCommunicator(), digits, epochs=2)
    t.comm.local_size = len(os.sched_getaffinity(0))
    cb = attach(t, str(tmp_path), {"dir": str(tmp_path), "async_save": True, "keep_last": 0, "keep_best": False})
    t.fit()
    assert cb.saves == 2 and writer_process._WRITER is None
    assert [c.step for c in ck.list_checkpoints(str(tmp_path))] == [8, 16]


def test_a_crash_in_the_writer_process_kills_the_training_process_too(tmp_path):
    # the fault hook's "crash" stands for a node failure: the whole job dies, as when the write ran in its
    # thread, leaving the abandoned write's temporary directory and no latest
    env = {**os.environ, ck.FAULT_ENV: "crash_after:model.npz", "OMP_NUM_THREADS": "1"}
    job = subprocess.run([sys.executable, "-m", "distnn", "train", "--config", "digits_mlp", "--quiet",
                          "--out", str(tmp_path / "run"), "--set", "checkpoint.async_save=true",
                          "--set", "train.epochs=2", "--set", "run.plots=false"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert job.returncode == -signal.SIGKILL, job.stderr[-2000:]
    root = str(tmp_path / "run" / "checkpoints")
    assert ck.read_pointer(root) is None and ck.list_checkpoints(root) == []
    assert any(n.startswith(".tmp-step-") for n in os.listdir(root))


@pytest.mark.mpi(min_size=2)
def test_mpi_a_writer_process_killed_mid_write_is_agreed_on_every_rank(digits, mpi_tmp_path, monkeypatch):
    # cores to spare (as if: more than the ranks here), so rank 0 writes from its writer process; the
    # step-12 write pauses there until rank 0's watcher kills the process. 360 samples, global batch 60:
    # 6 steps an epoch, checkpoints at steps 6, 12 and 18.
    import distnn.distributed as dist

    comm = dist.init()
    monkeypatch.setattr(writer_process, "usable_cores", lambda: list(range(1024)))
    markers = mpi_tmp_path / "markers"
    if comm.rank == 0:
        markers.mkdir()
    comm.barrier()
    monkeypatch.setenv(ck.FAULT_ENV, "pause_after:model.npz@12")
    monkeypatch.setenv("DISTNN_FAULT_MARKER_DIR", str(markers))
    root = mpi_tmp_path / "ck"
    t = make_trainer(comm, digits, epochs=3, subset=360, batch_size=60)
    cb = attach(t, str(root), {"dir": str(root), "async_save": True, "keep_last": 0, "keep_best": False,
                               "on_error": "continue"})
    killed = []
    if comm.rank == 0:
        _kill_writer_when_paused(str(markers / "paused-after-model.npz"), killed)
    t.fit()
    if comm.rank == 0:
        assert killed and killed[0][1], "the write never paused"
        assert [c.step for c in ck.list_checkpoints(str(root))] == [6, 18]
        assert ck.read_pointer(str(root)) == "step-00000018"
    outcomes = comm.allgather_object((cb.saves, cb.failures, t.state.global_step, cb.last_error))
    assert len(set(outcomes)) == 1, outcomes  # agreed: the same outcome on every rank
    assert outcomes[0][:3] == (2, 1, 18) and "writer process" in outcomes[0][3] and "died" in outcomes[0][3]
