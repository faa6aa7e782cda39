"""Write the checkpoints of a short digits_mlp run with the clock stopped, to compare two trees' bytes.

A checkpoint records times (``created`` in the manifest, ``elapsed`` and each epoch's ``time`` in
trainer.json); with ``time.perf_counter`` and ``time.strftime`` frozen here they are constants, so the
same run from two trees must give the same bytes in every file (pointers included) when the two write
the same format. Run it once with each tree, then ``--compare``:

    python benchmarks/compare_checkpoint_bytes.py --out /tmp/a            # this tree
    python /old/tree/benchmarks/compare_checkpoint_bytes.py --out /tmp/b  # (or copy this file there)
    python benchmarks/compare_checkpoint_bytes.py --compare /tmp/a /tmp/b

Under ``mpiexec -n 2`` the ranks write one root (rank 0 writes). ``--async`` saves with ``async_save``
from a thread of this process (the writer process is not used: it has a clock of its own).
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def run(out: str, epochs: int, async_save: bool, every_steps: int, keep_last: int) -> None:
    time.perf_counter = lambda: 1000.0  # (every duration 0: the same bytes from every run)
    time.strftime = lambda fmt, *args: "2000-01-01T00:00:00+0000"
    from distnn.distributed import init
    from distnn.train.callbacks.checkpoint_setup import attach, extra_files_for
    from distnn.train.checkpoint import writer_process
    from distnn.train.config import dump_config
    from distnn.train.job import Job
    from distnn.train.logging_utils import setup_logging

    writer_process.worth_it = lambda local_ranks: False
    setup_logging(level=logging.WARNING)
    comm = init()
    job = Job("digits_mlp", [f"train.epochs={epochs}", "run.plots=false"], comm, quiet=True)
    extra = extra_files_for(job.model_meta(), dump_config(job.cfg))
    attach(job.trainer, out, {"every_epochs": 1, "every_steps": every_steps, "async_save": async_save,
                              "keep_last": keep_last}, extra_files=extra)
    job.trainer.fit()


def tree_digest(root: str) -> dict:
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = fh.read()
    return out


def compare(a: str, b: str) -> int:
    ta, tb = tree_digest(a), tree_digest(b)
    bad = sorted(set(ta) ^ set(tb)) + sorted(k for k in set(ta) & set(tb) if ta[k] != tb[k])
    for k in bad:
        print("DIFFERS:", k)
    total = sum(len(v) for v in ta.values())
    print(f"{len(ta)} files ({total} bytes) in {a}, {len(tb)} in {b}: "
          f"{'identical byte for byte' if not bad else f'{len(bad)} differ'}; "
          f"sha256 of all: {hashlib.sha256(b''.join(ta[k] for k in sorted(ta))).hexdigest()[:16]}")
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--every-steps", type=int, default=7)
    p.add_argument("--keep-last", type=int, default=0, help="2: spare directories recycled (0 keeps all)")
    p.add_argument("--async", dest="async_save", action="store_true")
    p.add_argument("--compare", nargs=2)
    a = p.parse_args()
    if a.compare:
        sys.exit(compare(*a.compare))
    run(a.out, a.epochs, a.async_save, a.every_steps, a.keep_last)


if __name__ == "__main__":
    main()
