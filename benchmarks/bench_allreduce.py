"""Gradient exchange: DataParallel (bucketed) vs one raw ``MPI.Allreduce`` of the same bytes.

Run under MPI (2 ranks)::

    OMP_NUM_THREADS=1 mpiexec -n 2 python benchmarks/bench_allreduce.py

The gradients are those of the MLP 784-512-256-10 (float32, 535,818 values,
2.1 MB). One "exchange" is what a training step pays for averaging them:

* raw       ``COMM_WORLD.Allreduce(IN_PLACE, flat, SUM)`` on one preallocated
            flat float32 buffer (the floor: no packing, no averaging);
* raw shm   the same sum by hand in an MPI shared-memory window: barrier, each
            rank adds its share of all buffers and stores it in every buffer,
            barrier (what distnn's communicator does when all ranks share a
            host, without its bookkeeping; the floor of that algorithm);
* distnn    ``DataParallel``'s exchange as a training step pays it, driven
            through ``finish_gradient_synchronization()`` after what backward
            leaves: each gradient already in its bucket view (Linear writes
            its GEMM and sum there, see ``engine.set_grad_destination``), so
            the exchange is the bookkeeping, the flags and sample count, one
            persistent allreduce per bucket and installing the views; with the
            default 25 MiB buckets (one bucket) and 1 MiB (two); "distnn MPI"
            is the same with ``shared_memory=False`` (the exchange through
            ``MPI_Allreduce``, as between hosts). Before that
            it calls the engine hook that ``loss.backward()`` calls, so the
            gradients count as weighted by the seed, as in training;
* copied    the same when backward left fresh gradient arrays (ops that
            cannot write into a destination): the packing copy is paid;
* unseeded  the same when backward could not pre-weight (gradient
            accumulation under ``no_sync``): one weighting pass more.

The methods take turns block by block (round robin), so machine load hits
them alike; the table shows the median block time per exchange and the
throughput relative to raw, then the best block of each and its ratio. Target: distnn >= 0.9 of raw
(``MPI.Allreduce``); the ratio to raw shm is printed too.
"""
from __future__ import annotations

from _this_tree import use_this_tree  # (this folder)

use_this_tree()  # distnn of the tree this script is in, not the installed checkout's

import argparse
import os
import statistics
import sys
import time

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

SIZES = (784, 512, 256, 10)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=15, help="timed blocks per method (round robin)")
    p.add_argument("--reps", type=int, default=40, help="exchanges per block")
    p.add_argument("--warmup", type=int, default=20)
    return p.parse_args(argv)


def make_model():
    import distnn
    import distnn.nn as nn

    distnn.manual_seed(0)
    layers = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(SIZES) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def main(argv=None):
    args = parse_args(argv)
    from mpi4py import MPI  # the raw floor talks to MPI directly

    import distnn.distributed as dist
    from distnn.autograd.engine import get_grad_destination

    comm = dist.init()
    world = MPI.COMM_WORLD
    if comm.size < 2:
        print("run under mpiexec with 2 or more ranks: mpiexec -n 2 python benchmarks/bench_allreduce.py")
        return 1
    model = make_model()
    params = list(model.parameters())
    numel = sum(p.data.size for p in params)
    rng = np.random.default_rng(comm.rank)
    grads = [rng.standard_normal(p.data.shape).astype(np.float32) for p in params]
    flat = rng.standard_normal(numel).astype(np.float32)

    def raw_exchange():
        world.Allreduce(MPI.IN_PLACE, flat, MPI.SUM)

    node = world.Split_type(MPI.COMM_TYPE_SHARED)
    one_host = node.Get_size() == world.Get_size()
    if one_host:
        win = MPI.Win.Allocate_shared(numel * 4, 4, comm=node)
        buffers = [np.frombuffer(win.Shared_query(k)[0], dtype=np.float32, count=numel) for k in range(comm.size)]
        win.Lock_all()
        share = slice(numel * comm.rank // comm.size, numel * (comm.rank + 1) // comm.size)
        parts = [b[share] for b in buffers]
        mine, own = parts[comm.rank], np.empty(share.stop - share.start, np.float32)
        inputs = [own if k == comm.rank and k >= 2 else parts[k] for k in range(comm.size)]
        buffers[comm.rank][...] = flat

        def raw_shm_exchange():
            win.Sync()
            node.Barrier()
            win.Sync()
            if comm.rank >= 2:
                own[...] = mine
            np.add(inputs[0], inputs[1], out=mine)
            for x in inputs[2:]:
                np.add(mine, x, out=mine)
            for k, part in enumerate(parts):
                if k != comm.rank:
                    part[...] = mine
            win.Sync()
            node.Barrier()
            win.Sync()

    from distnn.distributed.mpi_comm import MPICommunicator

    dps = {
        "distnn 25MiB": dist.DataParallel(model, comm, bucket_mb=25),
        "distnn 1MiB": dist.DataParallel(make_model(), comm, bucket_mb=1),
        "distnn MPI 25MiB": dist.DataParallel(make_model(), MPICommunicator(shared_memory=False), bucket_mb=25),
        "copied 25MiB": dist.DataParallel(make_model(), comm, bucket_mb=25),
        "unseeded 25MiB": dist.DataParallel(make_model(), comm, bucket_mb=25),
    }
    for dp in dps.values():  # the exchange is driven by finish_gradient_synchronization() here
        for h in dp._hooks:
            h.remove()

    def dp_exchange(dp, seeded, in_place):
        ps = list(dp.module.parameters())
        leaves = dict.fromkeys(ps, 1)
        dests = [get_grad_destination(p) for p in ps]
        for d, g in zip(dests, grads):
            d[...] = g  # what Linear's backward wrote there (the GEMMs' and sums' out=)

        def run():
            for p in ps:
                p.grad = None  # optimizer.zero_grad()
            dp.set_num_samples(128)  # what the forward counts (no forward runs here)
            if seeded:  # what loss.backward() does first: the seed factor (gradients come out weighted)
                dp._on_backward_begin(None, leaves)
            for p, d, g in zip(ps, dests, grads):
                p.grad = d if in_place else g  # what backward leaves: the bucket view, or a fresh array
            dp.finish_gradient_synchronization()

        return run

    methods = {"raw MPI.Allreduce": raw_exchange}
    if one_host:
        methods["raw shm"] = raw_shm_exchange
    for name, dp in dps.items():
        methods[name] = dp_exchange(dp, not name.startswith("unseeded"), name.startswith("distnn"))

    for fn in methods.values():
        for _ in range(args.warmup):
            fn()
    times = {name: [] for name in methods}
    for _ in range(args.blocks):
        for name, fn in methods.items():
            world.Barrier()
            t0 = time.perf_counter()
            for _ in range(args.reps):
                fn()
            dt = (time.perf_counter() - t0) / args.reps
            times[name].append(world.allreduce(dt, op=MPI.MAX))
        flat[...] = 1.0  # sums grow by x size per call: reset between blocks (outside the timing)
        if one_host:
            buffers[comm.rank][...] = 1.0
        for g in grads:
            g[...] = 1.0
        for dp in dps.values():
            for p in dp.module.parameters():
                get_grad_destination(p)[...] = 1.0
    if comm.rank == 0:
        nbytes = numel * 4
        base = statistics.median(times["raw MPI.Allreduce"])
        print(f"gradient exchange, MLP {'-'.join(map(str, SIZES))}: {numel} float32 = {nbytes / 1e6:.2f} MB, "
              f"{comm.size} ranks (median of {args.blocks} blocks x {args.reps})")
        print(f"{'method':20s} {'buckets':>7s} {'ms/exchange':>12s} {'GB/s':>7s} {'vs raw':>7s} "
              f"{'best ms':>9s} {'vs raw':>7s}" + (f" {'vs shm':>7s}" if one_host else ""))
        for name, ts in times.items():
            med = statistics.median(ts)
            nb = 1 if name.startswith("raw") else len(dps[name].bucket_layout)
            shm = f" {statistics.median(times['raw shm']) / med:7.2f}" if one_host else ""
            print(f"{name:20s} {nb:7d} {med * 1e3:12.3f} {nbytes / med / 1e9:7.2f} {base / med:7.2f}"
                  f" {min(ts) * 1e3:9.3f} {min(times['raw MPI.Allreduce']) / min(ts):7.2f}{shm}")
        print("target: distnn >= 0.90 of raw throughput" + ("; last column: median vs raw shm" if one_host else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
