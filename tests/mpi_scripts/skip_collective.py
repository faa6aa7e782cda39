"""The last rank skips a collective (takes another code path): the others must report it and abort."""
import time

import numpy as np

import distnn.distributed as dist

comm = dist.init()
a = np.ones(3)
comm.allreduce(a)                    # collective #1: everyone
if comm.rank != comm.size - 1:
    comm.allreduce(a)                # collective #2: the last rank never calls it
    print("[test] returned from a timed-out collective", flush=True)  # must never run
time.sleep(120)                      # the last rank "computes" here
