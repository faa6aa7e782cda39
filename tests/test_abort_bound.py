"""An abort that cannot complete still ends the rank (distnn.distributed.mpi_comm._leave_if_abort_hangs).

Found on a real SLURM cluster: a rank killed during start-up makes srun send SIGTERM to the others.
A rank whose communicator did not exist yet ends the job through ``abort_job``, whose MPI_Init waits
for the dead rank forever; SLURM SIGKILLed it after KillWait (30 s), and the job then reported that
rank as killed (137, "kill -9 or the out-of-memory killer") whatever had ended the first one. srun
cannot be run here, so the hang is faked: MPI_Init (or MPI_Abort) blocks in C holding the GIL, as
mpi4py's MPI_Init does (a Python watchdog thread would never run). Before the bound these
processes never ended: the subprocess deadlines below only catch that hang.
"""
import ctypes.util
import os
import subprocess
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)

# Blocks in C with the GIL held (PyDLL does not release it), as MPI_Init waiting for a dead rank.
HANG = "import ctypes, ctypes.util; ctypes.PyDLL(ctypes.util.find_library('c')).pause()"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None,
                                reason="fakes the hang with libc's pause()")


def _python(code, env=None, args=()):
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH"), REPO]))
    return subprocess.run([sys.executable, *args] if args else [sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("where", ["MPI_Abort", "MPI_Init"])
def test_a_rank_whose_abort_hangs_still_exits(where):
    # MPI_Abort: a rank with a communicator (the collective timeout, a dead or exited peer, an uncaught
    # exception); MPI_Init: abort_job, a rank signalled before its communicator existed
    code = textwrap.dedent(f"""
        import distnn.distributed.mpi_comm as mpi_comm
        mpi_comm.ABORT_WAIT_S = 1.0

        class World:
            def Abort(self, code):
                {HANG}

        if {where!r} == "MPI_Abort":
            mpi_comm._abort_world(World(), 75)
        else:
            def hanging_mpi():
                {HANG}
            mpi_comm._mpi = hanging_mpi
            mpi_comm.abort_job(75)
        print("returned")
    """)
    p = _python(code)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)  # (faulthandler's exit status)
    assert "returned" not in p.stdout and "Traceback" not in p.stderr, p.stderr


def test_a_rank_signalled_at_start_up_while_its_peer_is_dead_ends_and_records_75(tmp_path):
    # The srun case end to end, without srun: `distnn train` as rank 1 of 2 gets SIGTERM before its
    # communicator exists; MPI_Init never returns (the fake mpi4py below). It says why it ends, records
    # the start-up preemption for slurm/train.sbatch, and exits within the bound.
    fake = tmp_path / "fake" / "mpi4py"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "MPI.py").write_text(HANG + "\n")
    status = tmp_path / "status"
    status.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISTNN_", "PMI_", "OMPI_", "PMIX_", "SLURM_"))}
    env.update(PMI_RANK="1", PMI_SIZE="2", DISTNN_STATUS_DIR=str(status), PYTHONPATH=str(fake.parent),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    script = os.path.join(HERE, "mpi_scripts", "start_up_signals.py")
    p = _python(None, env, [script, "dead-peer", "train", "--out", str(tmp_path / "r"), "--quiet",
                            "--set", "train.epochs=1", "--set", "run.plots=false"])
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "rank 1: preempted by SIGTERM during start-up" in p.stderr and "ending all 2 ranks" in p.stderr, p.stderr
    assert (status / "rank-1").read_text() == "75 15\n"
