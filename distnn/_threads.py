"""Share the cores between the ranks on a host: cap numpy's BLAS threads.

numpy's BLAS starts a thread pool as large as the machine in every process. With N ranks
on a host that is N pools on the same cores, and OpenBLAS's threads spin while they wait:
`mpiexec -n 2 python -m distnn train` (digits_mlp, 20 epochs) trained in 27.4 s on a
2-core machine, against 0.7 s with one BLAS thread a rank (measured). torchrun sets
``OMP_NUM_THREADS=1`` for the same reason. ``slurm/train.sbatch`` sets these variables
from ``SLURM_CPUS_PER_TASK``; this covers the launch scripts, a bare launcher (``mpiexec``, ``mpirun``,
``srun``) and ``import distnn`` in a user's script under one. A variable the user set is
left alone. The variables work only before numpy loads its BLAS, which reads them once; a
script that imported numpy first has its BLAS capped through the library itself
(``_blas_threads``: OpenBLAS and MKL on Linux).
"""
import os
import sys
import threading

from ._launcher_env import ranks_on_this_host

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def blas_threads(env, usable: int, total: int) -> int | None:
    """BLAS threads for one rank, or None to leave the defaults: ``usable`` CPUs in this process's
    affinity mask of ``total``. A mask narrower than the machine is the launcher's binding of this
    rank (``srun``'s default, ``mpiexec -bind-to``): its CPUs are this rank's own."""
    ranks = ranks_on_this_host(env)
    if ranks <= 1:
        return None
    cpus = env.get("SLURM_CPUS_PER_TASK", "")
    if cpus.isdigit() and int(cpus) > 0:
        return int(cpus)
    if usable < total:
        return max(1, usable)
    return max(1, total // ranks)


def usable_cores() -> list:
    """The CPUs this process may run on (its affinity mask; every CPU where the OS cannot tell)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def mapped_files() -> list:
    """The paths of the files mapped into this process (``/proc/self/maps``), each once, in map
    order; [] where there is none (not Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return []
    paths = {}  # (a dict: ordered and without repeats; a file is mapped in several pieces)
    for line in lines:
        fields = line.split(None, 5)
        if len(fields) == 6:
            paths[fields[5]] = None
    return list(paths)


def limit_blas_threads(env=None) -> int | None:
    """Cap the BLAS threads (see the module docstring) if none of the variables is set and
    several ranks share this host: set the variables, and if numpy is loaded already, its BLAS
    too (the variables still reach the processes this one starts). Returns the cap, or None."""
    env = os.environ if env is None else env
    if any(name in env for name in THREAD_VARIABLES):
        return None
    n = blas_threads(env, len(usable_cores()), os.cpu_count() or 1)
    if n is None:
        return None
    for name in THREAD_VARIABLES:
        env[name] = str(n)
    if "numpy" in sys.modules:
        from ._blas_threads import set_loaded_blas_threads  # (here: ctypes and logging only when needed)
        set_loaded_blas_threads(n)
    return n


# The cap of the simulated ranks (cap_blas_threads_for_ranks), shared by the groups running at once
_ranks_cap_lock = threading.Lock()
_ranks_cap_users = 0
_ranks_cap_undo = {}  # path: (set_num_threads, its threads before the first cap) of each library capped


def cap_blas_threads_for_ranks(n: int, env=None):
    """Cap the loaded BLAS for ``n`` ranks run as threads of this process (``simulate``); returns the
    function that gives the BLAS its threads back.

    The ranks share this process's cores as ``n`` processes on a host share its cores, and numpy's
    OpenBLAS pool is as large as the machine: every rank thread calling it, with the pool's threads
    spinning while they wait, oversubscribed the cores (``--simulate-ranks 2``, digits_mlp, 20
    epochs: 6.8 s, and up to 20 s, against 0.7 s for ``mpiexec -n 2``, whose ranks are capped at
    import). So each rank gets its share, ``usable cores // n`` BLAS threads (at least one), as a
    launcher's ranks do, unless a thread variable is set (what the user set wins; under a launcher
    distnn set them already) or the BLAS runs no more than that already. A BLAS has one pool for
    the process: groups running at once share the smallest cap, and the last one to end gives the
    libraries their threads back.
    """
    global _ranks_cap_users
    env = os.environ if env is None else env
    with _ranks_cap_lock:
        _ranks_cap_users += 1
        if n > 1 and not any(name in env for name in THREAD_VARIABLES):
            from ._blas_threads import loaded_blas_thread_controls

            cap = max(1, len(usable_cores()) // n)
            for path, set_threads, get_threads in loaded_blas_thread_controls():
                threads = get_threads()
                if threads > cap:
                    _ranks_cap_undo.setdefault(path, (set_threads, threads))
                    set_threads(cap)
    done = []

    def give_back() -> None:
        global _ranks_cap_users
        with _ranks_cap_lock:
            if done:  # (once)
                return
            done.append(True)
            _ranks_cap_users -= 1
            if _ranks_cap_users == 0:
                for set_threads, threads in _ranks_cap_undo.values():
                    set_threads(threads)
                _ranks_cap_undo.clear()

    return give_back
