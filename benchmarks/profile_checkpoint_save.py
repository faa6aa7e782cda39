"""Where an ``async_save`` checkpoint's time on the training thread goes (issue 7), rank by rank.

Runs the 2-rank digits_mlp job of bench_checkpoint part 2 with a checkpoint every epoch and
``async_save`` on, and times the pieces of the callback's in-training work with ``perf_counter``:
the whole save (what bench_checkpoint calls 'held up'), and inside it the wait for the previous
write, the random states, the gather, the snapshot (state_dict + packing) and the hand-off; and
the ranks' part of an epoch-end save taken in the trainer's stop agreement
(``_epoch_end_received``: counted as held up, beside ``save``); the agreement on a finished write at a later step (``settle``; since h36 only a failure's), which
'held up' does not count; and rank 0's background writer thread's writes (wall and CPU a write: its
share of the cores and of the interpreter lock). Otherwise only the training (main) thread's calls are timed, by the wall clock and by
the thread's CPU time (``time.thread_time``: what the work itself costs, less inflated than the wall
time when other processes share the cores). ``--cprofile`` also prints rank 0's cProfile of its saves.
Run it with the tree to measure first on the path (it puts its own tree's root there).

    mpiexec -n 2 python benchmarks/profile_checkpoint_save.py [--epochs 40] [--runs 3] [--cprofile]
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import io
import logging
import os
import pstats
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

TIMES: dict = defaultdict(float)
CPU: dict = defaultdict(float)  # the training thread's CPU time (time.thread_time): less sensitive to a busy machine
COUNTS: dict = defaultdict(int)


INSIDE = []  # the labels of the timed calls in progress
MAIN = threading.main_thread()


def timed(owner, name, label, where=False):
    """Wrap ``owner.name`` so its calls add to TIMES[label] (nested labels are counted in both);
    ``where``: labelled by the outermost timed call it is made from too."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        if threading.current_thread() is not MAIN:  # (the writer thread's calls: not the training thread's time)
            return original(*args, **kwargs)
        key = f"{label} in {INSIDE[0]}" if where and INSIDE else label
        INSIDE.append(key)
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            TIMES[key] += time.perf_counter() - t0
            CPU[key] += time.thread_time() - c0
            COUNTS[key] += 1
            INSIDE.pop()

    setattr(owner, name, wrapper)


RECEIVED = "ranks received (in the stop agreement)"
WRITER = {"wall": 0.0, "cpu": 0.0, "calls": 0}  # the background writer thread's writes (rank 0)


def writer_timed(owner, name):
    """Wrap ``owner.name`` so its calls from a thread other than the training one add to WRITER."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        if threading.current_thread() is MAIN:
            return original(*args, **kwargs)
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            WRITER["wall"] += time.perf_counter() - t0
            WRITER["cpu"] += time.thread_time() - c0
            WRITER["calls"] += 1

    setattr(owner, name, wrapper)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--cprofile", action="store_true")
    p.add_argument("--nothing-written", action="store_true", help="the writer writes nothing (bench's floor)")
    a = p.parse_args()

    from distnn import random as dn_random
    from distnn.distributed import init
    from distnn.train.callbacks import background_writer, checkpoint as cb_mod, checkpoint_outcome, checkpoint_write
    from distnn.train.callbacks.checkpoint_setup import attach, extra_files_for
    from distnn.train.config import dump_config
    from distnn.train.job import Job
    from distnn.train.logging_utils import set_rank, setup_logging

    comm = init()
    set_rank(comm.rank)
    setup_logging(level=logging.WARNING)
    MC = cb_mod.ModelCheckpoint
    timed(MC, "save", "save (held up)")
    timed(MC, "on_epoch_end", "on_epoch_end")
    timed(MC, "on_batch_end", "on_batch_end (all steps)")
    timed(checkpoint_outcome.CheckpointOutcome, "settle", "settle (later step)")
    timed(checkpoint_outcome.CheckpointOutcome, "_join_pending", "join previous write")
    timed(checkpoint_outcome.CheckpointOutcome, "_accept", "accept outcome")
    timed(checkpoint_write.CheckpointWriting, "_snapshot", "snapshot")
    from distnn.train.callbacks import checkpoint_epoch_end
    # (an epoch-end save's second half, when the trainer's stop agreement has gathered the ranks' part: held up too)
    timed(checkpoint_epoch_end.EpochEndSave, "_epoch_end_received", RECEIVED)
    timed(background_writer.BackgroundWriter, "submit", "hand-off")
    timed(dn_random, "get_state", "rng get_state")
    timed(dn_random, "module_generator_states", "rng module states")
    timed(type(comm), "allgather_object", "allgather_object", where=True)
    timed(type(comm), "broadcast_object", "broadcast_object", where=True)
    from distnn.train.checkpoint import state as ck_state
    timed(ck_state.Serializer, "__call__", "  serializer")
    timed(ck_state, "encode_state", "    encode_state")
    timed(ck_state, "to_files", "    to_files")
    timed(ck_state, "_compact", "      JSON text")
    from distnn.train import npz_io
    timed(npz_io.NpzPacker, "pack", "      npz pack (array copies)")
    from distnn.train import trainer_state
    timed(trainer_state.TrainerStateMixin, "state_dict", "  trainer.state_dict")
    writer_timed(checkpoint_write.CheckpointWriting, "_write")
    if a.nothing_written:
        MC._write = lambda self, job, elsewhere=False: {"ok": True, "path": self.root, "bytes": 0, "seconds": 0.0,
                                                        "removed": [], "step": job[0]}
    profiler = cProfile.Profile() if a.cprofile and comm.rank == 0 else None
    if profiler is not None:
        inner = MC.save

        def profiled(self, *args, **kwargs):
            profiler.enable()
            try:
                return inner(self, *args, **kwargs)
            finally:
                profiler.disable()

        MC.save = profiled

    fit_seconds, saves, epochs = 0.0, 0, 0
    for run in range(a.runs):
        tmp = comm.broadcast_object(tempfile.mkdtemp(prefix="profile-ckpt-") if comm.rank == 0 else None)
        job = Job("digits_mlp", [f"train.epochs={a.epochs}", "run.plots=false"], comm, quiet=True)
        extra = extra_files_for(job.model_meta(), dump_config(job.cfg))
        cb = attach(job.trainer, tmp, {"every_epochs": 1, "async_save": True, "keep_last": 2}, extra_files=extra)
        if run == 0:
            TIMES.clear()
            CPU.clear()
            COUNTS.clear()
            WRITER.update(wall=0.0, cpu=0.0, calls=0)
        comm.barrier()
        t0 = time.perf_counter()
        job.trainer.fit()
        if run > 0 or a.runs == 1:  # (the first run warms up: imports, buffers, the writer thread)
            fit_seconds += time.perf_counter() - t0
            saves += cb.saves
            epochs += a.epochs
        else:
            TIMES.clear()
            CPU.clear()
            COUNTS.clear()
            WRITER.update(wall=0.0, cpu=0.0, calls=0)
        comm.barrier()
        if comm.rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
    rows = comm.allgather_object((dict(TIMES), dict(COUNTS), dict(CPU)))
    if comm.rank == 0:
        print(f"{comm.size} ranks, digits_mlp, async_save every epoch: {epochs} epochs timed, {saves} saves, "
              f"epoch {1e3 * fit_seconds / epochs:.1f} ms")
        labels = list(TIMES)
        ranks = range(comm.size)
        print(f"  {'us per epoch':44s} " + " ".join(f"{'wall ' + str(r):>8s}" for r in ranks)
              + " " + " ".join(f"{'CPU ' + str(r):>8s}" for r in ranks) + "   calls/epoch (rank 0)")
        for label in labels:
            print(f"  {label:44s} " + " ".join(f"{1e6 * t.get(label, 0.0) / epochs:8.1f}" for t, _, _ in rows)
                  + " " + " ".join(f"{1e6 * c.get(label, 0.0) / epochs:8.1f}" for _, _, c in rows)
                  + f"   {rows[0][1].get(label, 0) / epochs:.2f}")
        held = (TIMES["save (held up)"] + TIMES[RECEIVED]) / fit_seconds
        print(f"  held up (rank 0): {100 * held:.2f}% of fit time; CPU of its saves (rank 0): "
              f"{1e6 * (CPU['save (held up)'] + CPU[RECEIVED]) / epochs:.0f} us an epoch (save, and {RECEIVED})")
        if WRITER["calls"]:
            print(f"  writer thread (rank 0): {WRITER['calls']} writes, {1e6 * WRITER['wall'] / WRITER['calls']:.0f} us "
                  f"wall, {1e6 * WRITER['cpu'] / WRITER['calls']:.0f} us CPU a write (its thread's user + system time)")
        if profiler is not None:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
            print(out.getvalue())


if __name__ == "__main__":
    main()
