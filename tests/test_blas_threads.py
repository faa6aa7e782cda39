"""Ranks sharing a host share its cores: numpy's BLAS pool is capped, before numpy loads or after.

Without the cap, `mpiexec -n 2 python -m distnn train` (digits_mlp, 20 epochs) trained in
27.4 s on a 2-core machine instead of 0.7 s: each rank's OpenBLAS ran a pool as large as the
machine, and their threads spin while they wait.
"""
import os
import shutil
import subprocess
import sys

import pytest

from distnn import _threads

VARS = _threads.THREAD_VARIABLES
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("env,usable,total,want", [
    ({}, 8, 8, None),                                            # no launcher: numpy's defaults
    ({"MPI_LOCALNRANKS": "1", "PMI_SIZE": "4"}, 8, 8, None),     # one rank on this host of four
    ({"MPI_LOCALNRANKS": "2"}, 2, 2, 1),                         # mpiexec -n 2 on 2 cores
    ({"MPI_LOCALNRANKS": "4"}, 64, 64, 16),
    ({"OMPI_COMM_WORLD_LOCAL_SIZE": "3"}, 8, 8, 2),              # Open MPI
    ({"PMI_RANK": "0", "PMI_SIZE": "4"}, 8, 8, 2),               # only the job's size: all of it here, at most
    ({"MPI_LOCALNRANKS": "8"}, 2, 2, 1),                         # more ranks than cores: one each
    ({"MPI_LOCALNRANKS": "2"}, 3, 16, 3),                        # bound to 3 cores by the launcher: its own
    ({"SLURM_STEP_ID": "0", "SLURM_STEP_TASKS_PER_NODE": "2(x3),1", "SLURM_NODEID": "3"}, 16, 16, None),
    ({"SLURM_STEP_ID": "0", "SLURM_STEP_TASKS_PER_NODE": "2(x3),1", "SLURM_NODEID": "1"}, 16, 16, 8),
    ({"SLURM_STEP_ID": "0", "SLURM_STEP_TASKS_PER_NODE": "4", "SLURM_CPUS_PER_TASK": "3"}, 16, 16, 3),
    ({"MPI_LOCALNRANKS": "two"}, 8, 8, None),                    # unreadable: left alone
])
def test_threads_per_rank(env, usable, total, want):
    assert _threads.blas_threads(env, usable, total) == want


def _threads_of(env, code="import distnn, os; print(os.environ.get('OPENBLAS_NUM_THREADS'))", launcher=()):
    out = subprocess.run([*launcher, sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def _usable():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _clean_env(**extra):
    """This environment without the thread variables and any launcher's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in VARS and not k.startswith(("MPI_", "PMI_", "OMPI_", "SLURM_"))}
    return {**env, **extra}


def _want():
    """The cap two ranks on this host get: half its cores, or the cores this process is bound to."""
    cpus = _usable()
    return max(1, (os.cpu_count() or 1) // 2) if cpus == (os.cpu_count() or 1) else cpus


def test_import_under_a_launcher_sets_every_variable_and_numpy_runs_that_many_threads():
    base = _clean_env()
    code = ("import distnn, os, numpy as np; np.ones((256, 256)) @ np.ones((256, 256)); "
            f"print(*[os.environ.get(v) for v in {VARS!r}], len(os.listdir('/proc/self/task')))")
    want = _want()
    *values, threads = _threads_of({**base, "MPI_LOCALNRANKS": "2"}, code)
    assert values == [str(want)] * 3
    if want == 1 and os.path.isdir("/proc/self/task"):
        assert int(threads) == 1  # (numpy's BLAS started no pool)
    assert _threads_of(base, code)[:3] == ["None"] * 3  # not under a launcher: numpy's defaults
    # what a user sets wins
    assert _threads_of({**base, "MPI_LOCALNRANKS": "2", "OMP_NUM_THREADS": "2"},
                       "import distnn, os; print(os.environ.get('OMP_NUM_THREADS'), "
                       "os.environ.get('OPENBLAS_NUM_THREADS'))") == ["2", "None"]


def test_under_mpiexec_each_rank_gets_its_share():
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("no mpiexec")
    env = {k: v for k, v in os.environ.items() if k not in VARS}
    got = _threads_of(env, "import distnn, os, sys; sys.stdout.write(os.environ.get('OPENBLAS_NUM_THREADS') + '\\n')",
                      launcher=(mpiexec, "-n", "2"))
    want = _want()
    assert got == [str(want)] * 2


# Asks numpy's bundled OpenBLAS itself how many threads it runs (its own lookup, not distnn's):
# prints the count before `import distnn` and after, then OPENBLAS_NUM_THREADS. "-1" before: no
# bundled OpenBLAS found (a numpy built against another BLAS).
ASK_BLAS = """
import ctypes, glob, os, sys
import numpy
libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__), os.pardir, "numpy.libs", "*openblas*.so"))
lib = ctypes.CDLL(libs[0]) if libs else None
get = (getattr(lib, "scipy_openblas_get_num_threads64_", None) or getattr(lib, "openblas_get_num_threads64_", None)
       or getattr(lib, "openblas_get_num_threads", None)) if lib else None
before = get() if get else -1
import distnn
sys.stdout.write(f"{before} {get() if get else -1} {os.environ.get('OPENBLAS_NUM_THREADS')}\\n")
"""


def _ask_blas(env, launcher=()):
    got = _threads_of(env, ASK_BLAS, launcher)
    if got[0] == "-1":
        pytest.skip("numpy bundles no OpenBLAS here")
    return got


def test_numpy_imported_first_has_its_loaded_blas_capped():
    before, after, var = _ask_blas(_clean_env(MPI_LOCALNRANKS="2"))
    assert (after, var) == (str(_want()), str(_want()))
    if before == after:
        pytest.skip(f"OpenBLAS runs {before} thread(s) uncapped here too: capped and uncapped look the same")


def test_numpy_imported_first_keeps_what_the_user_set_and_its_defaults_off_a_launcher():
    before, after, var = _ask_blas(_clean_env(MPI_LOCALNRANKS="2", OPENBLAS_NUM_THREADS="2"))
    assert after == before and var == "2"
    before, after, var = _ask_blas(_clean_env())  # not under a launcher
    assert after == before and var == "None"


def test_numpy_imported_after_distnn_runs_the_capped_threads():
    code = ASK_BLAS.replace("import numpy\n", "import distnn, numpy\n", 1)
    before, after, var = _threads_of(_clean_env(MPI_LOCALNRANKS="2"), code)
    if before == "-1":
        pytest.skip("numpy bundles no OpenBLAS here")
    assert before == after == var == str(_want())


def test_under_mpiexec_numpy_imported_first_is_capped_too():
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("no mpiexec")
    got = _ask_blas({k: v for k, v in os.environ.items() if k not in VARS}, launcher=(mpiexec, "-n", "2"))
    assert got[1::3] == [str(_want())] * 2 and got[2::3] == [str(_want())] * 2


def test_a_library_without_known_functions_is_left_alone_with_a_debug_log(monkeypatch, caplog):
    from distnn import _blas_threads
    with open("/proc/self/maps") if os.path.exists("/proc/self/maps") else open(os.devnull) as maps:
        libc = next((line.split()[-1] for line in maps if "/libc." in line or "/libc-" in line), None)
    if libc is None:
        pytest.skip("no libc among this process's mappings")
    # a library that is loaded but is no BLAS, and one that is not loaded (never loaded by this)
    monkeypatch.setattr(_blas_threads, "loaded_blas_libraries", lambda: [libc, "/nonexistent/libopenblas.so"])
    with caplog.at_level("DEBUG", logger="distnn.blas"):
        assert _blas_threads.set_loaded_blas_threads(1) == 0
    assert caplog.text.count("not capped") == 2


# simulate(n, fn): the rank threads share this process's cores as n processes share a host's. Prints
# the BLAS's threads before, inside simulate(2) (each rank), after it, and inside simulate(1).
ASK_SIMULATE = """
import sys
import distnn
from distnn._blas_threads import loaded_blas_thread_controls
from distnn.distributed import simulate
controls = loaded_blas_thread_controls()
if not controls:
    print("none"); sys.exit()
get = controls[0][2]
before = get()
inside = simulate(2, lambda comm: get())
after = get()
alone = simulate(1, lambda comm: get())
print(before, *inside, after, *alone)
"""


def test_simulated_ranks_share_the_cores_and_give_the_threads_back():
    got = _threads_of(_clean_env(), ASK_SIMULATE)
    if got == ["none"]:
        pytest.skip("no loaded BLAS whose threads distnn can set")
    before, in0, in1, after, alone = map(int, got)
    want = max(1, _usable() // 2)
    if before <= want:
        pytest.skip(f"the BLAS runs {before} thread(s) uncapped here: capped and uncapped look the same")
    assert (in0, in1) == (want, want)
    assert after == before and alone == before  # (given back; one rank has the process to itself)
    # what the user set wins, as under a launcher
    before, in0, in1, after, alone = map(int, _threads_of(_clean_env(OPENBLAS_NUM_THREADS="2"), ASK_SIMULATE))
    assert before == in0 == in1 == after == alone == 2
