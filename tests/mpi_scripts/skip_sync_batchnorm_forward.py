"""Rank 1 skips its forward in the second step (a data-dependent branch) and only synchronizes the step, while
rank 0 runs SyncBatchNorm's forward: the two wait in collectives of different communicators (SyncBatchNorm's
split and DataParallel's). DataParallel's exchange answers the layer's round (sync_batchnorm_rounds): both ranks
raise at once, naming the mismatch; before, the job waited out the collective timeout."""
import time

import numpy as np

import distnn
import distnn.distributed as dist
import distnn.nn as nn
from distnn.distributed import DataParallel
from distnn.distributed.sync_batchnorm import SyncBatchNorm

comm = dist.init()
distnn.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 3, dtype=np.float64), SyncBatchNorm(3, dtype=np.float64))
dp = DataParallel(model, comm)
x = distnn.Tensor(np.ones((4, 4)))
for step in range(2):
    model.zero_grad()
    if comm.rank == 1 and step == 1:
        dp.finish_gradient_synchronization()
    else:
        dp(x).sum().backward()
    print(f"[test] rank {comm.rank} finished step {step}", flush=True)
time.sleep(120)
