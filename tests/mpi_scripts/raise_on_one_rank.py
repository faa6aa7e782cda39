"""Rank 1 raises right away while rank 0 waits in a barrier: the job must end, not hang."""
import time

import distnn.distributed as dist

comm = dist.init()
if comm.rank == 1:
    raise ValueError("deliberate failure on rank 1")
comm.barrier()  # never completes: only the abort ends rank 0
time.sleep(120)
