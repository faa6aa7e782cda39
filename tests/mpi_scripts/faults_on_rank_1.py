"""Each fault of a DataParallel test module on rank 1 only, under mpiexec: every rank catches what it raises,
then the ranks train on together. Each rank writes what it saw to OUT_DIR/rank<r>.json.

    faults_on_rank_1.py MODULE FUNCTION FAULTS OUT_DIR

MODULE (a test module under tests/) defines FUNCTION(comm, fault, faulty_ranks) -> (error, grads_none, state)
and the list FAULTS names. Run by tests/mpi_child.py."""
import importlib
import json
import os
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [TESTS, os.path.dirname(TESTS)]  # (tests/, and the checkout's distnn before an installed one)

import distnn.distributed as dist  # noqa: E402

module_name, function_name, faults_name, out_dir = sys.argv[1:5]
module = importlib.import_module(module_name)
run, faults = getattr(module, function_name), getattr(module, faults_name)
comm = dist.init()
seen = {}
for fault in faults:
    error, grads_none, state = run(comm, fault, (1,))
    seen[fault] = {"error": error, "grads_none": grads_none, "state": {k: v.tolist() for k, v in state.items()}}
with open(os.path.join(out_dir, f"rank{comm.rank}.json"), "w") as f:
    json.dump(seen, f)
