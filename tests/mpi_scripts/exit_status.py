"""The last rank ends its process early with a status while the others go on to a collective.

argv[1] says how: ``sys-exit`` (``sys.exit(CODE)``), ``builtin-exit`` (``exit(CODE)``), ``raise``
(``raise SystemExit(CODE)``), ``kill`` (SIGKILL to itself: no exit notice); argv[2] is CODE (default 3);
argv[3] ``group`` does it inside a split.
"""
import os
import signal
import sys

import numpy as np

import distnn.distributed as dist

how = sys.argv[1]
code = int(sys.argv[2]) if len(sys.argv) > 2 else 3
comm = dist.init()
comm.allreduce(np.ones(3))              # collective #1: everyone
if len(sys.argv) > 3 and sys.argv[3] == "group":
    comm = comm.split(0)
    comm.allreduce(np.ones(3))
if comm.rank == comm.size - 1:
    if how == "sys-exit":
        sys.exit(code)
    elif how == "builtin-exit":
        exit(code)  # noqa: PLR1722 - the site builtin on purpose
    elif how == "raise":
        raise SystemExit(code)
    elif how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise ValueError(f"unknown mode {how!r}")
comm.barrier()                          # the last rank never calls it
print("[test] returned from a collective the exited rank never joined", flush=True)  # must never run
