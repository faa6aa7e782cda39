"""Some faults of tests/test_data_parallel_backward_errors.py on rank 1 only, under mpiexec: every rank catches
what it raises, then both train on together. Each rank writes what it saw to OUT_DIR/rank<r>.json."""
import json
import os
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [TESTS, os.path.dirname(TESTS)]  # (tests/, and the checkout's distnn before an installed one)

import distnn.distributed as dist  # noqa: E402
from test_data_parallel_backward_errors import MPI_FAULTS, train  # noqa: E402

comm = dist.init()
seen = {}
for fault in MPI_FAULTS:
    error, grads_none, state = train(comm, fault, (1,))
    seen[fault] = {"error": error, "grads_none": grads_none, "state": {k: v.tolist() for k, v in state.items()}}
with open(os.path.join(sys.argv[1], f"rank{comm.rank}.json"), "w") as f:
    json.dump(seen, f)
