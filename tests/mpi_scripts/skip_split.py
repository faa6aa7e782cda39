"""The last rank never calls split (MPI_Comm_split itself has no deadline): the others must report it."""
import time

import distnn.distributed as dist

comm = dist.init()
if comm.rank != comm.size - 1:
    comm.split(0)                    # collective #1 here: the last rank never calls it
time.sleep(120)                      # the last rank "computes" here
