"""Weak scaling of data-parallel training: 1 rank vs 2 ranks, distnn vs PyTorch DDP vs numpy + mpi4py.

MLP 784-512-256-10 (ReLU, cross-entropy, SGD momentum 0.9), float32, batch
128 PER RANK, 1 BLAS thread per rank, synthetic data. Each configuration runs
in fresh processes started from here:

* distnn   ``DataParallel`` + ``distnn.optim.SGD`` under ``mpiexec -n W``
           (1 rank: the plain model, no wrapper);
* numpy    the floor: the same math hand-written in numpy into one flat
           gradient buffer (pre-averaged through the loss gradient), one
           in-place ``MPI.Allreduce`` per step, a flat momentum update;
* numpy-shm the same floor with the flat gradient in an MPI shared-memory
           window, each rank summing its half and storing it in both buffers
           between two barriers: by hand, what distnn's communicator does
           when all ranks share a host (W ranks only; its 1-rank run is numpy's);
* distnn-mpi distnn with ``DISTNN_MPI_SHARED_MEMORY=0``: its gradient
           exchange through ``MPI_Allreduce``, as between hosts (W ranks only);
* torch    ``DistributedDataParallel`` with the gloo backend (W processes,
           MASTER_ADDR=127.0.0.1), when torch is installed (1 rank: plain model).

Configurations alternate over ``--repeats`` rounds so machine load hits them
alike; the table shows the best round (samples/s over all ranks), the weak
scaling efficiency ``throughput(2) / (2 * throughput(1))`` and ratios.

    python benchmarks/bench_scaling.py [--steps 60] [--repeats 2] [--compression fp16]
    python benchmarks/bench_scaling.py --compare-compression [--repeats 3]

``--compare-compression`` runs distnn alone on W ranks with each gradient
compression (none, fp16, powersgd: rank 1, compressing from the first step),
alternating over the rounds, and prints samples/s and the bytes each rank
sends through collectives per step (each allreduce's and allgather's
buffer, an all-to-all's rows for other ranks: what the algorithm hands the
transport; the shared-memory sum of "none" moves its buffer through memory,
not a network, and an allreduce algorithm may move up to twice its buffer).

Targets: distnn efficiency >= 0.90; distnn(2) >= 1.5x torch DDP(2) and >= 0.9x numpy(2)
(the ratio to numpy-shm is printed too: the floor of the algorithm distnn uses).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
SIZES = (784, 512, 256, 10)
HERE = os.path.abspath(__file__)
COMPRESSIONS = ("none", "fp16", "bf16", "powersgd")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch", type=int, default=128, help="samples per rank per step")
    p.add_argument("--repeats", type=int, default=2, help="rounds over all configurations")
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--compression", choices=COMPRESSIONS, default="none",
                   help="distnn's wire compression (the targets are for none; powersgd: rank 1 from the first step)")
    p.add_argument("--compare-compression", action="store_true",
                   help="distnn on --ranks ranks with each compression: samples/s and bytes sent per step")
    p.add_argument("--worker", choices=["distnn", "numpy", "numpy-shm", "torch"], help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- workers
def _data(rank, batch, n_batches=8):
    import numpy as np

    rng = np.random.default_rng(100 + rank)
    xs = rng.standard_normal((n_batches, batch, SIZES[0])).astype(np.float32)
    ys = rng.integers(0, SIZES[-1], (n_batches, batch))
    return xs, ys


def worker_distnn(args):
    import distnn
    import distnn.distributed as dist
    import distnn.functional as F
    import distnn.nn as nn
    from distnn.optim.sgd import SGD

    comm = dist.init()
    distnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    compression = None if args.compression == "none" else args.compression
    if compression == "powersgd":
        compression = dist.PowerSGDState(start_powerSGD_iter=0)
    net = dist.DataParallel(model, comm, compression=compression) if comm.size > 1 else model
    sent = _count_bytes(net) if comm.size > 1 else [0]
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    xs, ys = _data(comm.rank, args.batch)

    def step(i):
        opt.zero_grad()
        F.cross_entropy(net(distnn.Tensor(xs[i % len(xs)])), ys[i % len(ys)]).backward()
        opt.step()

    return _timed(step, args, comm.barrier, comm.rank, comm.size,
                  lambda v: float(comm.allreduce(__import__("numpy").array([v]), "max")[0]),
                  lambda: sent[0])


def _count_bytes(dp):
    """Count the bytes this rank sends through DataParallel's collectives: the buffer of each allreduce
    (its own communicator's, and each start of a bucket's persistent one), of each allgather, and the rows
    of an all-to-all meant for other ranks. Returns the one-element running total."""
    total = [0]
    comm = dp._comm
    others = (comm.size - 1) / comm.size
    for name in ("iallreduce", "ialltoall", "iallgather"):  # (allreduce goes through iallreduce)
        method = getattr(comm, name)

        def counted(array, *rest, _method=method, _share=others if name == "ialltoall" else 1.0, **kw):
            total[0] += array.nbytes * _share
            return _method(array, *rest, **kw)

        setattr(comm, name, counted)
    for b in dp._buckets:
        if b._allreduce is not None:
            start = b._allreduce.start

            def counted_start(_start=start, _n=b._allreduce.array.nbytes):
                total[0] += _n
                return _start()

            b._allreduce.start = counted_start
    return total


def worker_numpy(args):
    import numpy as np
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    rank, size = world.Get_rank(), world.Get_size()
    shapes = []
    for a, b in zip(SIZES[:-1], SIZES[1:]):
        shapes += [(b, a), (b,)]
    total = sum(int(np.prod(s)) for s in shapes)
    rng = np.random.default_rng(0)
    P, G, M = np.empty(total, np.float32), np.empty(total, np.float32), np.zeros(total, np.float32)
    shared = args.worker == "numpy-shm" and size > 1
    if shared:  # G lives in a shared-memory window; each rank reduces its share into every buffer
        node = world.Split_type(MPI.COMM_TYPE_SHARED)
        assert node.Get_size() == size, "numpy-shm needs every rank on one host"
        win = MPI.Win.Allocate_shared(total * 4, 4, comm=node)
        buffers = [np.frombuffer(win.Shared_query(k)[0], dtype=np.float32, count=total) for k in range(size)]
        G = buffers[rank]
        win.Lock_all()
        share = slice(total * rank // size, total * (rank + 1) // size)
        parts = [b[share] for b in buffers]
        mine = parts[rank]
        own = np.empty_like(mine)  # (rank >= 2 overwrites its share before adding it: reads a copy)
        inputs = [own if k == rank and rank >= 2 else parts[k] for k in range(size)]

        def exchange():
            win.Sync()
            node.Barrier()
            win.Sync()
            if rank >= 2:
                own[...] = mine
            np.add(inputs[0], inputs[1], out=mine)
            for x in inputs[2:]:
                np.add(mine, x, out=mine)
            for k in range(size):
                if k != rank:
                    parts[k][...] = mine
            win.Sync()
            node.Barrier()
            win.Sync()

    def views(flat):
        out, o = [], 0
        for s in shapes:
            n = int(np.prod(s))
            out.append(flat[o:o + n].reshape(s))
            o += n
        return out

    pv, gv = views(P), views(G)
    for w in pv[0::2]:
        bound = 1 / np.sqrt(w.shape[1])
        w[...] = rng.uniform(-bound, bound, w.shape)
    for b in pv[1::2]:
        b[...] = 0
    W1, b1, W2, b2, W3, b3 = pv
    gW1, gb1, gW2, gb2, gW3, gb3 = gv
    xs, ys = _data(rank, args.batch)
    B = args.batch
    rows = np.arange(B)

    def step(i):
        x, y = xs[i % len(xs)], ys[i % len(ys)]
        h1 = x @ W1.T
        h1 += b1
        a1 = np.maximum(h1, 0)
        h2 = a1 @ W2.T
        h2 += b2
        a2 = np.maximum(h2, 0)
        z = a2 @ W3.T
        z += b3
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        z[rows, y] -= 1
        z *= 1.0 / (B * size)  # the mean over the global batch, folded into the loss gradient
        np.matmul(z.T, a2, out=gW3)
        np.sum(z, axis=0, out=gb3)
        d2 = z @ W3
        d2 *= h2 > 0
        np.matmul(d2.T, a1, out=gW2)
        np.sum(d2, axis=0, out=gb2)
        d1 = d2 @ W2
        d1 *= h1 > 0
        np.matmul(d1.T, x, out=gW1)
        np.sum(d1, axis=0, out=gb1)
        if shared:
            exchange()
        elif size > 1:
            world.Allreduce(MPI.IN_PLACE, G, MPI.SUM)
        M[...] *= 0.9
        M[...] += G
        P[...] -= 0.01 * M

    return _timed(step, args, world.Barrier, rank, size, lambda v: world.allreduce(v, op=MPI.MAX))


def worker_torch(args):
    import torch

    torch.manual_seed(0)
    nn = torch.nn
    return torch_ddp_timed(args, nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                                               nn.Linear(256, 10)))


def torch_ddp_timed(args, model):
    """PyTorch's peer: SGD with momentum on ``model`` wrapped in DistributedDataParallel (gloo; the bare model on
    one rank), ``args.steps`` timed steps over this rank's share of ``_data`` (also bench_syncbn_step's worker)."""
    import torch
    import torch.distributed as tdist
    import torch.nn.functional as TF

    torch.set_num_threads(1)
    rank, size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if size > 1:
        tdist.init_process_group("gloo", rank=rank, world_size=size)
        net = torch.nn.parallel.DistributedDataParallel(model)
        barrier = tdist.barrier

        def reduce_max(v):
            t = torch.tensor([v])
            tdist.all_reduce(t, op=tdist.ReduceOp.MAX)
            return float(t[0])
    else:
        net, barrier, reduce_max = model, (lambda: None), (lambda v: v)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xs, ys = _data(rank, args.batch)
    xs, ys = torch.from_numpy(xs), torch.from_numpy(ys)

    def step(i):
        opt.zero_grad()
        TF.cross_entropy(net(xs[i % len(xs)]), ys[i % len(ys)]).backward()
        opt.step()

    out = _timed(step, args, barrier, rank, size, reduce_max)
    if size > 1:
        tdist.destroy_process_group()
    return out


def _timed(step, args, barrier, rank, size, reduce_max, sent=lambda: 0):
    for i in range(args.warmup):
        step(i)
    barrier()
    before = sent()
    t0 = time.perf_counter()
    for i in range(args.steps):
        step(i)
    barrier()
    elapsed = reduce_max(time.perf_counter() - t0)
    if rank == 0:
        print("RESULT " + json.dumps({"samples_per_s": args.steps * args.batch * size / elapsed, "ranks": size,
                                      "bytes_per_step": (sent() - before) / args.steps}), flush=True)


# ------------------------------------------------------------------------------ driver
def _env():
    env = dict(os.environ)
    for v in THREAD_VARS:
        env[v] = "1"
    return env


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(framework, ranks, args, full=False):
    worker = "distnn" if framework == "distnn-mpi" else framework
    common = ["--worker", worker, "--steps", str(args.steps), "--warmup", str(args.warmup),
              "--batch", str(args.batch), "--compression", args.compression]
    env = _env()
    env["DISTNN_MPI_SHARED_MEMORY"] = "0" if framework == "distnn-mpi" else "1"
    if framework == "torch":
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE=str(ranks))
        procs = [subprocess.Popen([sys.executable, HERE, *common], env=dict(env, RANK=str(r)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(ranks)]
        outs = [p.communicate(timeout=600) for p in procs]
        text = "".join(o[0] for o in outs)
        errors = "".join(o[1] for o in outs)
        ok = all(p.returncode == 0 for p in procs)
    else:
        sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
        from distnn.distributed.launch import mpiexec_command

        out = subprocess.run(mpiexec_command(ranks, [HERE, *common]), env=env, capture_output=True, text=True,
                             timeout=600)
        text, errors, ok = out.stdout, out.stderr, out.returncode == 0
    for line in text.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
            return result if full else result["samples_per_s"]
    raise RuntimeError(f"{framework} with {ranks} ranks failed (ok={ok}):\n{errors[-3000:]}")


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        {"distnn": worker_distnn, "numpy": worker_numpy, "numpy-shm": worker_numpy,
         "torch": worker_torch}[args.worker](args)
        return 0
    if args.compare_compression:
        return compare_compression(args)
    frameworks = ["distnn", "numpy"]
    if not args.no_torch:
        try:
            import importlib.util

            if importlib.util.find_spec("torch") is not None:
                frameworks.append("torch")
            else:
                print("torch is not installed: PyTorch DDP skipped")
        except Exception:  # noqa: BLE001
            pass
    W = args.ranks
    configs = [(f, r) for f in frameworks for r in (1, W)]
    configs += [("numpy-shm", W), ("distnn-mpi", W)]  # their 1-rank runs are numpy's and distnn's
    best = {c: 0.0 for c in configs}
    for _ in range(args.repeats):
        for c in configs:
            best[c] = max(best[c], _run(c[0], c[1], args))
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {args.batch} per rank, 1 BLAS thread per rank, "
          f"{args.steps} timed steps, best of {args.repeats} rounds"
          + ("" if args.compression == "none" else f"; distnn with {args.compression} wire compression"))
    print(f"{'framework':10s} {'1 rank':>12s} {f'{W} ranks':>12s} {'efficiency':>11s}")
    for f in frameworks[:2] + ["numpy-shm", "distnn-mpi"] + frameworks[2:]:
        one = best[({"numpy-shm": "numpy", "distnn-mpi": "distnn"}.get(f, f), 1)]
        many = best[(f, W)]
        print(f"{f:10s} {one:10.0f}/s {many:10.0f}/s {many / (W * one):11.3f}")
    d = best[("distnn", W)]
    print(f"distnn/numpy floor at {W} ranks: {d / best[('numpy', W)]:.2f}  (target >= 0.90)")
    print(f"distnn/numpy-shm floor at {W} ranks: {d / best[('numpy-shm', W)]:.2f}  (the same exchange by hand)")
    if "torch" in frameworks:
        print(f"distnn/torch DDP gloo at {W} ranks: {d / best[('torch', W)]:.2f}  (target >= 1.50)")
    print(f"distnn weak-scaling efficiency: {d / (W * best[('distnn', 1)]):.3f}  (target >= 0.90)")
    return 0



def compare_compression(args):
    """distnn on ``args.ranks`` ranks with each compression, alternating over the rounds (best round shown)."""
    import copy

    kinds = ("none", "fp16", "powersgd")
    best = {k: {"samples_per_s": 0.0} for k in kinds}
    for _ in range(args.repeats):
        for k in kinds:
            a = copy.copy(args)
            a.compression = k
            r = _run("distnn", args.ranks, a, full=True)
            if r["samples_per_s"] > best[k]["samples_per_s"]:
                best[k] = r
    print(f"MLP {'-'.join(map(str, SIZES))}, float32, batch {args.batch} per rank, {args.ranks} ranks, "
          f"{args.steps} timed steps, best of {args.repeats} rounds")
    print(f"{'compression':12s} {'samples/s':>12s} {'vs none':>8s} {'bytes sent/step/rank':>21s} {'vs none':>8s}")
    for k in kinds:
        r, n = best[k], best["none"]
        print(f"{k:12s} {r['samples_per_s']:12.0f} {r['samples_per_s'] / n['samples_per_s']:8.2f} "
              f"{r['bytes_per_step']:21,.0f} {r['bytes_per_step'] / n['bytes_per_step']:8.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
