"""The normal end: ranks leave at different times after their last collective on each communicator.
Run with 3 ranks: rank 0 leaves first; ranks 1 and 2 still meet in their own group (rank 1 waits 2 s
there for rank 2), which rank 0's exit must not disturb."""
import time

import numpy as np

import distnn.distributed as dist

comm = dist.init()
group = comm.split(int(comm.rank > 0))
total = comm.allreduce(np.ones(3))      # the last collective on the world communicator
if comm.rank == 2:
    time.sleep(2)
if comm.rank > 0:
    group.allreduce(np.ones(3))
print(f"[test] rank {comm.rank} done {total[0]:.0f}", flush=True)
