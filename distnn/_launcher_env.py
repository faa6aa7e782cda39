"""What MPI launchers tell the processes they start, through the environment (no numpy, no MPI:
read before either loads)."""
from __future__ import annotations

import os
import re

# (rank variable, size variable) of the whole job, as each launcher publishes them
LAUNCHER_VARS = (
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),  # Open MPI
    ("PMI_RANK", "PMI_SIZE"),                          # MPICH/Hydra, Intel MPI, srun --mpi=pmi2
    ("PMIX_RANK", "PMIX_SIZE"),                        # PMIx launchers (size is not always set)
    ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"),    # MVAPICH2
    ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS"),          # inside an srun step
)
# the rank within the host and the ranks on the host
LOCAL_RANK_VARS = ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "MV2_COMM_WORLD_LOCAL_RANK",
                   "PMI_LOCAL_RANK", "PMIX_LOCAL_RANK", "SLURM_LOCALID")
LOCAL_SIZE_VARS = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_LOCAL_SIZE",
                   "PMI_LOCAL_SIZE", "PMIX_LOCAL_SIZE")


def env_int(names, env=None) -> int | None:
    """The first of ``names`` set to a whole number, as an int; None if none is."""
    env = os.environ if env is None else env
    for name in names:
        value = env.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def launcher_env(env=None) -> tuple[int, str, int] | None:
    """``(rank, size variable, size)`` as the first launcher whose variables are set says; None if none."""
    env = os.environ if env is None else env
    for rank_var, size_var in LAUNCHER_VARS:
        if rank_var in env and env.get(size_var, "").isdigit():
            rank = env[rank_var]
            return int(rank) if rank.isdigit() else 0, size_var, int(env[size_var])
    return None


def launcher_rank(env=None) -> int:
    """This process's rank as the launcher announced it (0 when not under a launcher). Not the
    host-local rank (``MPI_LOCALRANKID``): on several hosts more than one process would be 0."""
    env = os.environ if env is None else env
    rank = env_int([rank_var for rank_var, _ in LAUNCHER_VARS], env)
    return 0 if rank is None else rank


def srun_tasks_here(env=None) -> int | None:
    """Tasks of this ``srun`` step on this node: ``SLURM_STEP_TASKS_PER_NODE`` ("2(x3),1") at
    ``SLURM_NODEID``; None outside a step or when unreadable."""
    env = os.environ if env is None else env
    spec = env.get("SLURM_STEP_TASKS_PER_NODE")
    if "SLURM_STEP_ID" not in env or not spec:
        return None
    try:
        node = int(env.get("SLURM_NODEID", "0"))
    except ValueError:
        return None
    counts = []
    for part in spec.split(","):
        m = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", part)
        if not m:
            return None
        counts += [int(m.group(1))] * int(m.group(2) or 1)
    return counts[node] if 0 <= node < len(counts) else None


def ranks_on_this_host(env=None) -> int:
    """How many ranks of this job run on this host, as the launcher's variables tell: its local size,
    an srun step's tasks on this node, else the job's size (an upper bound); 1 when not launched."""
    env = os.environ if env is None else env
    local = env_int(LOCAL_SIZE_VARS, env) or srun_tasks_here(env)
    if local:
        return local
    found = launcher_env(env)
    return found[2] if found is not None and found[2] > 0 else 1
