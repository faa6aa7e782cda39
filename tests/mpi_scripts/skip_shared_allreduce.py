"""The last rank skips a shared-memory allreduce round: the others must report it and abort."""
import time

import numpy as np

import distnn.distributed as dist
from distnn.distributed.shared_memory import SharedAllreduce

comm = dist.init()
reduce = comm.allreduce_buffer(3, np.float64)  # collective #1 (its agreement): everyone
assert isinstance(reduce, SharedAllreduce), "one host: the buffer must live in shared memory"
reduce.array[...] = 1.0
if comm.rank != comm.size - 1:
    reduce.start().wait()            # collective #2: the last rank never starts it
    print("[test] returned from a timed-out collective", flush=True)  # must never run
time.sleep(120)                      # the last rank "computes" here
