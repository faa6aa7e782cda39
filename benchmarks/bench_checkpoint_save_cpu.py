"""CPU time of one checkpoint save of the digits_mlp job (issue 7), in one process, by thread CPU time.

On a 2-core machine where both cores train, every microsecond of CPU a save costs comes out of
training, on the training thread or on the writer's. This times, per save, on rank 0's state after a
short fit (one rank, in this thread, ``--saves`` saves a round, ``--rounds`` rounds; min and median):

* the save point (the training thread's part of an ``async_save`` save): the random states the
  save's gather sends, the trainer's ``state_dict`` and the snapshot into npz images and a skeleton
  (``ModelCheckpoint._snapshot``);
  timed between writes (as in training: the write between evicts its data from the caches) and back to
  back (its own code's cost: steadier on a loaded machine);
* the write (the background writer's part): trainer.json's text, CRC-32s, SHA-256s, the files written
  and fsynced, renames, pointers, retention (``ModelCheckpoint._write``, keep_last 2);

against the floor (plain numpy: the model's and optimizer's arrays copied into preallocated buffers;
their bytes written to one file and fsynced) and the peer (``torch.save`` of the same arrays as
tensors to memory; to a file, fsynced). Thread CPU time is less inflated than wall time on a shared
machine, but still varies with the load: compare trees by alternating runs.

    python benchmarks/bench_checkpoint_save_cpu.py [--saves 300] [--rounds 9]
"""
from __future__ import annotations

import argparse
import inspect
import io
import logging
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402


def cpu_per_call(fn, saves: int, rounds: int) -> tuple[float, float]:
    """(min, median) over ``rounds`` of the thread CPU microseconds of one ``fn()``."""
    per = []
    for _ in range(rounds):
        c0 = time.thread_time()
        for _ in range(saves):
            fn()
        per.append(1e6 * (time.thread_time() - c0) / saves)
    per.sort()
    return per[0], per[len(per) // 2]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--saves", type=int, default=300)
    p.add_argument("--rounds", type=int, default=9)
    a = p.parse_args()

    from distnn import random as dn_random
    from distnn.distributed import init
    from distnn.train.callbacks.checkpoint_setup import attach, extra_files_for
    from distnn.train.checkpoint import writer_process
    from distnn.train.config import dump_config
    from distnn.train.job import Job
    from distnn.train.logging_utils import setup_logging

    setup_logging(level=logging.WARNING)
    writer_process.worth_it = lambda local_ranks: False  # (the write's CPU in this thread, where it is timed)
    job = Job("digits_mlp", ["train.epochs=2", "run.plots=false"], init(), quiet=True)
    tmp = tempfile.mkdtemp(prefix="bench-save-cpu-")
    try:
        cb = attach(job.trainer, tmp, {"every_epochs": 1, "async_save": False, "keep_last": 2},
                    extra_files=extra_files_for(job.model_meta(), dump_config(job.cfg)))
        job.trainer.fit()
        tr = job.trainer
        takes_mine = "mine" in inspect.signature(cb._snapshot).parameters  # (a tree before issue 7's cuts: no)
        jobs = []

        def save_point():
            tr.state.global_step += 1
            mine = {"rng": dn_random.get_state(), "module_rng": dn_random.module_generator_states(tr.model),
                    "epoch_sums": dict(tr.state.epoch_sums), "stop_requested": False}
            jobs.append(cb._snapshot(tr, "epoch", [mine], {"loss": 0.5}, *((mine,) if takes_mine else ())))

        def write():
            result = cb._write(jobs.pop())
            assert result["ok"], result

        rows = {}
        t_save, t_write = [], []
        for _ in range(a.rounds):  # (alternated: each write writes the snapshot before it)
            for _ in range(a.saves):
                c0 = time.thread_time()
                save_point()
                c1 = time.thread_time()
                write()
                t_save.append(c1 - c0)
                t_write.append(time.thread_time() - c1)
        for name, t in (("distnn save point (training thread)", t_save), ("distnn write (writer)", t_write)):
            per = sorted(1e6 * sum(t[i:i + a.saves]) / a.saves for i in range(0, len(t), a.saves))
            rows[name] = (per[0], per[len(per) // 2])


        def save_point_alone():  # (back to back, no write between: what the save point's own code costs)
            save_point()
            jobs.clear()

        rows["distnn save point, back to back"] = cpu_per_call(save_point_alone, a.saves, a.rounds)

        arrays = [np.asarray(v) for v in tr.model.state_dict().values()] + [
            np.asarray(v) for s in tr.optimizer.state_dict()["state"].values() for v in s.values()
            if isinstance(v, np.ndarray)]
        buffers = [np.empty_like(x) for x in arrays]

        def floor_copy():
            for b, x in zip(buffers, arrays):
                np.copyto(b, x)

        path = os.path.join(tmp, "floor.bin")

        def floor_write():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                for b in buffers:
                    os.write(fd, memoryview(b).cast("B"))
                os.fsync(fd)
            finally:
                os.close(fd)

        rows["floor: arrays copied (numpy)"] = cpu_per_call(floor_copy, a.saves, a.rounds)
        rows["floor: bytes written + fsync"] = cpu_per_call(floor_write, a.saves, a.rounds)
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            tensors = {str(i): torch.from_numpy(x) for i, x in enumerate(arrays)}
            tpath = os.path.join(tmp, "peer.pt")

            def peer_memory():
                torch.save(tensors, io.BytesIO())

            def peer_file():
                with open(tpath, "wb") as f:
                    torch.save(tensors, f)
                    f.flush()
                    os.fsync(f.fileno())

            rows["peer: torch.save to memory"] = cpu_per_call(peer_memory, a.saves, a.rounds)
            rows["peer: torch.save to a file + fsync"] = cpu_per_call(peer_file, a.saves, a.rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mb = sum(x.nbytes for x in arrays) / 1e6
    print(f"digits_mlp, {mb:.2f} MB of model + optimizer arrays; thread CPU us a save, {a.rounds} rounds of "
          f"{a.saves} ({os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))})")
    floors = {"save point": rows["floor: arrays copied (numpy)"][1], "write": rows["floor: bytes written + fsync"][1]}
    print(f"  {'':40s} {'min':>8s} {'median':>8s} {'x floor':>8s}")
    for name, (lo, med) in rows.items():
        floor = floors["write"] if ("writ" in name or "file" in name) else floors["save point"]
        print(f"  {name:40s} {lo:8.1f} {med:8.1f} {med / floor:8.2f}")
    print("  x floor: the median over the floor's median (save point: arrays copied; write: bytes written + fsync)")


if __name__ == "__main__":
    main()
