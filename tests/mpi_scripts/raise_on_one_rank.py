"""Rank 1 raises right away while rank 0 waits in a barrier: the job must end, not hang."""
import time

from mpi4py import MPI  # (MPI_Init: MPICH maps its start-up shared-memory file here)

import distnn.distributed as dist

if MPI.COMM_WORLD.Get_rank() == 0:  # the test checks that the aborted job leaves no such file behind
    with open("/proc/self/maps") as maps:
        files = sorted({line.split(None, 5)[5].strip() for line in maps if "/dev/shm/mpich_shm_" in line})
    print(f"[test] start-up shared-memory files: {files}", flush=True)
comm = dist.init()
if comm.rank == 1:
    raise ValueError("deliberate failure on rank 1")
comm.barrier()  # never completes: only the abort ends rank 0
time.sleep(120)
