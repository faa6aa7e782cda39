"""The last rank catches a ``sys.exit(5)`` and goes on, then ends its process another way while the others
go on to a collective: the job must end with the status that process really exits with, not the caught 5.

argv[1] says how it ends after the caught exit: ``raise`` (an uncaught ValueError: status 1), ``collective``
(a collective with every rank first, then a bare ``raise SystemExit(3)``, whose status distnn cannot see: 1),
``exit`` (``sys.exit(4)``: 4).
"""
import sys

import numpy as np

import distnn.distributed as dist

how = sys.argv[1]
comm = dist.init()
comm.allreduce(np.ones(3))
if comm.rank == comm.size - 1:
    try:
        sys.exit(5)  # e.g. argparse's error exit inside user code, caught there
    except SystemExit:
        pass
if how == "collective":
    comm.allreduce(np.ones(3))          # every rank: the caught exit was no exit
if comm.rank == comm.size - 1:
    if how == "raise":
        raise ValueError("a failure after the caught exit")
    if how == "collective":
        raise SystemExit(3)
    if how == "exit":
        sys.exit(4)
    raise ValueError(f"unknown mode {how!r}")
comm.barrier()                          # the last rank never calls it
print("[test] returned from a collective the exited rank never joined", flush=True)  # must never run
