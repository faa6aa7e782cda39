"""What an async checkpoint's snapshot costs warm (called in a loop) and cold (as in training, once an epoch).

In training the checkpoint callback runs once an epoch, after milliseconds of training steps have
filled the caches with their own data: the snapshot's objects (the model's modules and parameters, the
optimizer's state, the callback's serializer) and the npz buffers come from memory. This trains the
digits_mlp job (1 process, ``--epochs``) with distnn's async callback whose writer writes nothing, then
times the snapshot's pieces on the training thread (``thread_time``) warm and after touching a buffer
larger than the caches (``--flush-mb``), as an epoch of training does. No MPI needed.

    python benchmarks/profile_snapshot_cold.py [--epochs 40] [--reps 300] [--flush-mb 64]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _this_tree import use_this_tree  # noqa: E402

use_this_tree()
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--reps", type=int, default=300)
    p.add_argument("--flush-mb", type=int, default=64)
    a = p.parse_args()

    import bench_checkpoint as bc
    from distnn import random as dn_random
    from distnn.distributed import init
    from distnn.train import npz_io
    from distnn.train.callbacks.checkpoint_setup import attach, extra_files_for
    from distnn.train.checkpoint import state as ck_state
    from distnn.train.config import dump_config
    from distnn.train.job import Job
    from distnn.train.logging_utils import setup_logging

    setup_logging(level=logging.WARNING)
    job = Job("digits_mlp", [f"train.epochs={a.epochs}", "run.plots=false"], init(), quiet=True)
    extra = extra_files_for(job.model_meta(), dump_config(job.cfg))
    tmp = tempfile.mkdtemp(prefix="snapshot-cold-")
    attach(job.trainer, tmp, {"enabled": False}, extra_files=extra)
    cb = bc._nothing_written_checkpoint()(os.path.join(tmp, "checkpoints"), keep_last=2, async_save=True,
                                          extra_files=extra)
    job.trainer.callbacks.append(cb)
    tr = job.trainer
    tr.fit()  # (the state a save at the last epoch's end sees: the history, the optimizer's buffers)
    mine = {"rng": dn_random.get_state(), "module_rng": dn_random.module_generator_states(tr.model)}
    rng = {"distnn": mine["rng"], "modules": mine["module_rng"]}
    packers = {}
    big = np.ones(a.flush_mb << 20, dtype=np.uint8)

    def pieces():
        c0 = time.thread_time()
        state = tr.state_dict(copy=False, rng=rng)
        c1 = time.thread_time()
        _, arrays = ck_state.encode_state(state)
        c2 = time.thread_time()
        for name, arrs in arrays.items():
            packers.setdefault(name, npz_io.NpzPacker()).pack(arrs, crc=False)
        return np.array([c1 - c0, c2 - c1, time.thread_time() - c2])

    def snapshot():  # the callback's whole snapshot (its serializer: JSON of the history, reused buffers)
        c0 = time.thread_time()
        cb._snapshot(tr, "epoch", None, tr.history[-1], mine)
        return np.array([time.thread_time() - c0])

    pieces()
    snapshot()
    print(f"digits_mlp after {a.epochs} epochs; us of the training thread's CPU, mean of {a.reps}")
    print(f"  {'':34s} {'state_dict':>10s} {'encode_state':>12s} {'npz pack':>9s} {'_snapshot':>10s}")
    for label, flush in (("warm (in a loop)", False), (f"cold ({a.flush_mb} MB touched before)", True)):
        total = np.zeros(4)
        for _ in range(a.reps):
            for what, at in ((pieces, slice(0, 3)), (snapshot, slice(3, 4))):  # (each after its own flush)
                if flush:
                    big += 1  # (every cache line of it: the caches hold this, not the snapshot's objects)
                total[at] += what()
        us = 1e6 * total / a.reps
        print(f"  {label:34s} {us[0]:10.1f} {us[1]:12.1f} {us[2]:9.1f} {us[3]:10.1f}")
    print("  (encode_state here: of the whole state, history included; _snapshot's serializer encodes the\n"
          "  history's new records only)")


if __name__ == "__main__":
    main()
