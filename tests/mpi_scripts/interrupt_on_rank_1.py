"""Rank 1's DataParallel forward raises KeyboardInterrupt, uncaught, while rank 0 goes into backward and
waits for it in the step's exchange. The job must end (run by tests/test_data_parallel_uncaught_interrupt.py)."""
import os
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [TESTS, os.path.dirname(TESTS)]  # (tests/, and the checkout's distnn before an installed one)

import distnn.distributed as dist  # noqa: E402
import distnn.functional as F  # noqa: E402
from distnn.distributed import DataParallel  # noqa: E402
from test_data_parallel_forward_errors import _batch, _Net  # noqa: E402

comm = dist.init()
model = _Net()
dp = DataParallel(model, comm)
model.fault = "interrupt-forward" if comm.rank == 1 else None
x, y = _batch(comm, 0)
F.cross_entropy(dp(x), y).backward()
print(f"[test] rank {comm.rank} returned from backward", flush=True)
