"""Rank 1 reaches a different collective than rank 0, 1.5 s late: rank 0's report must show it waiting there."""
import time

import numpy as np

import distnn.distributed as dist

comm = dist.init()
if comm.rank == 1:
    comm.timeout = 600  # rank 1 never reports by itself: only its answer to rank 0 can name where it waits
a = np.ones(3)
comm.allreduce(a)                    # collective #1: everyone
if comm.rank == 0:
    comm.allreduce(a)                # collective #2 on rank 0 ...
else:
    time.sleep(1.5)
    comm.broadcast_object("x")       # ... and another collective #2 on rank 1, later
time.sleep(120)
