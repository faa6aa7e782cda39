"""Rank 0 waits in an allgather on a communicator split from the world's while rank 1 waits in an allreduce on
the world's (a data-dependent branch): no rank sees a mismatch on its own communicator, so the collective
timeout ends the job, with a report naming where each rank waits."""
import time

import numpy as np

import distnn.distributed as dist

comm = dist.init()
group = comm.split(0)
group.allgather(np.zeros(7))  # (both ranks: a collective completed on the group)
print(f"[test] rank {comm.rank} finished step 0", flush=True)
if comm.rank == 0:
    group.allgather(np.zeros(7))
else:
    comm.allreduce(np.zeros(31), "sum")
print(f"[test] rank {comm.rank} finished step 1", flush=True)
time.sleep(120)
