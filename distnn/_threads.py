"""Share the cores between the ranks on a host: cap numpy's BLAS threads before numpy loads.

numpy's BLAS starts a thread pool as large as the machine in every process. With N ranks
on a host that is N pools on the same cores, and OpenBLAS's threads spin while they wait:
`mpiexec -n 2 python -m distnn train` (digits_mlp, 20 epochs) trained in 27.4 s on a
2-core machine, against 0.7 s with one BLAS thread a rank (measured). torchrun sets
``OMP_NUM_THREADS=1`` for the same reason. The launch scripts and ``slurm/train.sbatch``
set these variables themselves; this covers a bare launcher (``mpiexec``, ``mpirun``,
``srun``) and ``import distnn`` in a user's script under one. A variable the user set is
left alone, and so is a process that imported numpy first (its pool exists already).
"""
import os
import re
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
# what MPI launchers say about the ranks on this host (MPICH/Intel MPI's hydra, Open MPI, MVAPICH2)
_LOCAL_SIZE = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")
# the whole job's size, an upper bound for the ranks on this host when nothing says more
_WORLD_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def _count(text) -> int | None:
    try:
        n = int(str(text).strip())
    except ValueError:
        return None
    return n if n > 0 else None


def _slurm_tasks_here(env) -> int | None:
    """Tasks of this ``srun`` step on this node: ``SLURM_STEP_TASKS_PER_NODE`` ("2(x3),1") at ``SLURM_NODEID``."""
    spec = env.get("SLURM_STEP_TASKS_PER_NODE")
    try:
        node = int(env.get("SLURM_NODEID", "0"))
    except ValueError:
        return None
    if not spec:
        return None
    counts = []
    for part in spec.split(","):
        m = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if not m:
            return None
        counts += [int(m.group(1))] * int(m.group(2) or 1)
    return counts[node] if 0 <= node < len(counts) else None


def local_ranks(env) -> int:
    """How many ranks of this job run on this host, as the launcher's variables tell (1: none does)."""
    for name in _LOCAL_SIZE:
        n = _count(env.get(name, ""))
        if n:
            return n
    n = _slurm_tasks_here(env) if "SLURM_STEP_ID" in env else None
    if n:
        return n
    for name in _WORLD_SIZE:
        n = _count(env.get(name, ""))
        if n:
            return n
    return 1


def blas_threads(env, usable: int, total: int) -> int | None:
    """BLAS threads for one rank, or None to leave the defaults: ``usable`` CPUs in this process's
    affinity mask of ``total``. A mask narrower than the machine is the launcher's binding of this
    rank (``srun``'s default, ``mpiexec -bind-to``): its CPUs are this rank's own."""
    ranks = local_ranks(env)
    if ranks <= 1:
        return None
    cpus = _count(env.get("SLURM_CPUS_PER_TASK", ""))
    if cpus:
        return cpus
    if usable < total:
        return max(1, usable)
    return max(1, total // ranks)


def limit_blas_threads(env=None) -> int | None:
    """Set the BLAS thread variables (see the module docstring) if none is set, numpy is not
    loaded yet and several ranks share this host; returns the number set, or None."""
    env = os.environ if env is None else env
    if "numpy" in sys.modules or any(name in env for name in THREAD_VARIABLES):
        return None
    total = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = total
    n = blas_threads(env, usable, total)
    if n is not None:
        for name in THREAD_VARIABLES:
            env[name] = str(n)
    return n
