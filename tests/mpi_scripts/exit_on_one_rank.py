"""The last rank leaves the script early (sys.exit) while the others go on to a collective: the job must end."""
import sys

import numpy as np

import distnn.distributed as dist

mode = sys.argv[1] if len(sys.argv) > 1 else "exit"
comm = dist.init()
comm.allreduce(np.ones(3))              # collective #1: everyone
if mode == "group":                     # the same inside a group of a split (an ensemble member's ranks)
    comm = comm.split(0)
    comm.allreduce(np.ones(3))
if comm.rank == comm.size - 1:
    sys.exit(3)                         # its MPI_Finalize would block: the launcher sees no failure
comm.barrier()                          # the last rank never calls it
print("[test] returned from a collective the exited rank never joined", flush=True)  # must never run
