"""The cost of SyncBatchNorm's rounds (distnn/distributed/sync_batchnorm_rounds.py) in a data-parallel step:
distnn with and without them, the numpy + mpi4py floor, and PyTorch DDP, on 2 ranks.

MLP 784-512-256-10 with a batch norm after each hidden Linear (Linear, BN, ReLU), cross-entropy, SGD
momentum 0.9, float32, batch ``--batch`` PER RANK, 1 BLAS thread per rank, synthetic data, fresh
processes per run:

* distnn        ``DataParallel`` + ``SyncBatchNorm``: each layer's forward and backward is a round (a
                3-number header allgathered alongside its statistics), and each exchange begins with a
                closing header;
* distnn-plain  the same with the rounds replaced by the bare collectives they wrap (the allgather, the
                allreduce; no closing header): distnn before the rounds;
* A/B           both in ONE job, alternating blocks of ``--block`` steps (ABBA order), so the load of a
                shared machine hits them alike: the rounds' cost is read from this (median per step);
* numpy         the floor: the same math by hand, one ``MPI.Allreduce`` of (sum, sum of squares) per
                batch norm forward, one of the two gradient sums per batch norm backward, one of the
                flat gradient per step;
* torch         ``DistributedDataParallel`` (gloo) with ``BatchNorm1d``: torch's SyncBatchNorm runs on a
                GPU only, so its statistics are per rank (it makes no batch-norm collective: it is the
                peer's step, not the same math).

Configurations alternate over ``--repeats`` rounds so machine load hits them alike; the table shows each
one's best round and median round (samples/s over both ranks) and the ratios.

    python benchmarks/bench_syncbn_step.py [--steps 100] [--repeats 5] [--batch 32] [--blocks 40 --block 10]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench_scaling import _data, _free_port, _timed, torch_ddp_timed  # (this folder: its data, timing, port, peer)

HERE = os.path.abspath(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
SIZES = (784, 512, 256, 10)  # (bench_scaling's: its _data and _timed serve here too)
FRAMEWORKS = ("distnn", "distnn-plain", "numpy", "torch", "ab")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--batch", type=int, default=32, help="samples per rank per step")
    p.add_argument("--repeats", type=int, default=5, help="rounds over all configurations")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--blocks", type=int, default=40, help="A/B: blocks of each kind")
    p.add_argument("--block", type=int, default=10, help="A/B: steps per block")
    p.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def worker_distnn(args):
    sys.path.insert(0, ROOT)
    import numpy as np

    import distnn
    import distnn.distributed as dist
    import distnn.functional as F
    import distnn.nn as nn
    from distnn.distributed import sync_batchnorm, sync_batchnorm_rounds as rounds
    from distnn.optim.sgd import SGD

    import distnn.distributed.grad_sync as grad_sync

    with_rounds = (sync_batchnorm.forward_exchange, sync_batchnorm.backward_exchange, grad_sync.close_for_exchange)
    plain = (lambda comm, local: comm.allgather(local), lambda comm, sums: comm.allreduce(sums, "sum"),
             lambda dp: None)  # (the bare collectives the rounds wrap, no closing header)

    def use(fns):
        sync_batchnorm.forward_exchange, sync_batchnorm.backward_exchange, grad_sync.close_for_exchange = fns

    if args.worker == "distnn-plain":
        use(plain)
    comm = dist.init()
    distnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 512), nn.SyncBatchNorm(512), nn.ReLU(), nn.Linear(512, 256),
                          nn.SyncBatchNorm(256), nn.ReLU(), nn.Linear(256, 10))
    net = dist.DataParallel(model, comm)
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    xs, ys = _data(comm.rank, args.batch)

    def step(i):
        opt.zero_grad()
        F.cross_entropy(net(distnn.Tensor(xs[i % len(xs)])), ys[i % len(ys)]).backward()
        opt.step()

    reduce_max = lambda v: float(comm.allreduce(np.array([v]), "max")[0])  # noqa: E731
    if args.worker != "ab":
        _timed(step, args, comm.barrier, comm.rank, comm.size, reduce_max)
        return
    for i in range(args.warmup):
        step(i)
    per_step = {"rounds": [], "plain": []}
    for b in range(2 * args.blocks):
        kind = "rounds" if b % 4 in (0, 3) else "plain"  # ABBA: a drift in the load hits both alike
        use(with_rounds if kind == "rounds" else plain)
        comm.barrier()
        t0 = time.perf_counter()
        for i in range(args.block):
            step(i)
        comm.barrier()
        per_step[kind].append(reduce_max(time.perf_counter() - t0) / args.block)
    # the collectives alone, 512 channels (the first layer's): a round against the bare collective it wraps
    local, sums = np.zeros(1 + 2 * 512), np.zeros(2 * 512)
    calls = {"forward round": lambda: rounds.forward_exchange(comm, local), "allgather": lambda: comm.allgather(local),
             "backward round": lambda: rounds.backward_exchange(comm, sums),
             "allreduce": lambda: comm.allreduce(sums, "sum")}
    if hasattr(rounds, "history"):  # (a round no rank predicts: its header waited for before its payload starts)
        def unpredicted():
            rounds.history(comm).followed.clear()
            rounds.forward_exchange(comm, local)

        calls["forward round, unpredicted"] = unpredicted
    for name in calls:
        per_step[name] = []
    for b in range(args.blocks):
        for name, call in (calls.items() if b % 2 else reversed(calls.items())):
            comm.barrier()
            t0 = time.perf_counter()
            for _ in range(50):
                call()
            per_step[name].append(reduce_max(time.perf_counter() - t0) / 50)
    if comm.rank == 0:
        print("RESULT " + json.dumps({k: sorted(v) for k, v in per_step.items()}), flush=True)


def worker_numpy(args):
    import numpy as np
    from mpi4py import MPI

    world = MPI.COMM_WORLD
    rank, size = world.Get_rank(), world.Get_size()
    shapes = []
    for k, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        shapes += [(b, a), (b,)] + ([(b,), (b,)] if k < 2 else [])  # (W, b, then gamma and beta of the BN)
    total = sum(int(np.prod(s)) for s in shapes)
    P, G, M = np.zeros(total, np.float32), np.zeros(total, np.float32), np.zeros(total, np.float32)
    views, o = [], 0
    for s in shapes:
        n = int(np.prod(s))
        views.append((P[o:o + n].reshape(s), G[o:o + n].reshape(s)))
        o += n
    rng = np.random.default_rng(0)
    for (p, _), s in zip(views, shapes):
        if len(s) == 2:
            p[...] = rng.uniform(-1, 1, s) / np.sqrt(s[1])
    views[2][0][...] = 1
    views[6][0][...] = 1
    (W1, gW1), (b1, gb1), (g1, gg1), (be1, gbe1), (W2, gW2), (b2, gb2), (g2, gg2), (be2, gbe2), (W3, gW3), \
        (b3, gb3) = views
    xs, ys = _data(rank, args.batch)
    B, N, rows = args.batch, args.batch * size, np.arange(args.batch)

    def bn_forward(h, gamma, beta):
        stats = np.concatenate([h.sum(0), (h * h).sum(0)]).astype(np.float64)
        world.Allreduce(MPI.IN_PLACE, stats, MPI.SUM)
        c = h.shape[1]
        mean = stats[:c] / N
        inv = 1.0 / np.sqrt(stats[c:] / N - mean * mean + 1e-5)
        xhat = ((h - mean) * inv).astype(np.float32)
        return xhat * gamma + beta, xhat, inv.astype(np.float32)

    def bn_backward(dy, xhat, inv, gamma, ggamma, gbeta):
        np.sum(dy * xhat, axis=0, out=ggamma)
        np.sum(dy, axis=0, out=gbeta)
        sums = np.concatenate([gbeta, ggamma]).astype(np.float64)
        world.Allreduce(MPI.IN_PLACE, sums, MPI.SUM)
        c = dy.shape[1]
        return (gamma * inv) * (dy - (sums[:c] / N).astype(np.float32) - xhat * (sums[c:] / N).astype(np.float32))

    def step(i):
        x, y = xs[i % len(xs)], ys[i % len(ys)]
        h1 = x @ W1.T + b1
        y1, xh1, inv1 = bn_forward(h1, g1, be1)
        a1 = np.maximum(y1, 0)
        h2 = a1 @ W2.T + b2
        y2, xh2, inv2 = bn_forward(h2, g2, be2)
        a2 = np.maximum(y2, 0)
        z = a2 @ W3.T + b3
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        z[rows, y] -= 1
        z *= 1.0 / N  # the mean over the global batch, folded into the loss gradient
        np.matmul(z.T, a2, out=gW3)
        np.sum(z, axis=0, out=gb3)
        d = (z @ W3) * (y2 > 0)
        d = bn_backward(d, xh2, inv2, g2, gg2, gbe2)
        np.matmul(d.T, a1, out=gW2)
        np.sum(d, axis=0, out=gb2)
        d = (d @ W2) * (y1 > 0)
        d = bn_backward(d, xh1, inv1, g1, gg1, gbe1)
        np.matmul(d.T, x, out=gW1)
        np.sum(d, axis=0, out=gb1)
        world.Allreduce(MPI.IN_PLACE, G, MPI.SUM)
        M[...] *= 0.9
        M[...] += G
        P[...] -= 0.01 * M

    _timed(step, args, world.Barrier, rank, size, lambda v: world.allreduce(v, op=MPI.MAX))


def worker_torch(args):
    import torch

    torch.manual_seed(0)
    nn = torch.nn
    torch_ddp_timed(args, nn.Sequential(nn.Linear(784, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, 256),
                                        nn.BatchNorm1d(256), nn.ReLU(), nn.Linear(256, 10)))


def _run(framework, args):
    common = ["--worker", framework, "--steps", str(args.steps), "--warmup", str(args.warmup),
              "--batch", str(args.batch)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if framework == "torch":
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE="2")
        procs = [subprocess.Popen([sys.executable, HERE, *common], env=dict(env, RANK=str(r)),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
        outs = [p.communicate(timeout=600) for p in procs]
        text, errors = "".join(o[0] for o in outs), "".join(o[1] for o in outs)
    else:
        sys.path.insert(0, ROOT)
        from distnn.distributed.launch import mpiexec_command

        out = subprocess.run(mpiexec_command(2, [HERE, *common]), env=env, capture_output=True, text=True,
                             timeout=600)
        text, errors = out.stdout, out.stderr
    for line in text.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
            return result if framework == "ab" else result["samples_per_s"]
    raise RuntimeError(f"{framework} failed:\n{errors[-3000:]}")


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        (worker_numpy if args.worker == "numpy" else worker_torch if args.worker == "torch" else worker_distnn)(args)
        return 0
    ab = _run("ab", args)
    frameworks = [f for f in FRAMEWORKS[:-1] if f != "torch" or not args.no_torch]
    runs = {f: [] for f in frameworks}
    for _ in range(args.repeats):
        for f in frameworks:
            runs[f].append(_run(f, args))
    print(f"MLP 784-512(BN)-256(BN)-10, batch {args.batch} per rank, 2 ranks, 1 BLAS thread each, "
          f"{args.steps} timed steps, {args.repeats} rounds")
    print(f"{'framework':13s} {'best':>11s} {'median':>11s} {'spread':>8s}")
    for f in frameworks:
        r = runs[f]
        print(f"{f:13s} {max(r):9.0f}/s {statistics.median(r):9.0f}/s {(max(r) - min(r)) / max(r):8.1%}")
    best = {f: max(r) for f, r in runs.items()}
    med = {f: statistics.median(r) for f, r in runs.items()}
    print(f"distnn/distnn-plain in separate jobs: best {best['distnn'] / best['distnn-plain']:.3f}, "
          f"median {med['distnn'] / med['distnn-plain']:.3f}")
    r, p = (statistics.median(ab[k]) * 1e3 for k in ("rounds", "plain"))
    q = {k: [statistics.quantiles(ab[k], n=4)[i] * 1e3 for i in (0, 2)] for k in ("rounds", "plain")}
    print(f"A/B in one job, {args.blocks} blocks of {args.block} steps each: ms per step, median (quartiles): "
          f"rounds {r:.3f} ({q['rounds'][0]:.3f}-{q['rounds'][1]:.3f}), plain {p:.3f} ({q['plain'][0]:.3f}-"
          f"{q['plain'][1]:.3f}); the rounds' cost {r - p:+.3f} ms a step ({r / p - 1:+.1%})")
    print("the collectives alone (512 channels), us per call, min / median over the blocks: " + ", ".join(
        f"{k} {min(ab[k]) * 1e6:.1f} / {statistics.median(ab[k]) * 1e6:.1f}"
        for k in ("forward round", "allgather", "backward round", "allreduce", "forward round, unpredicted") if k in ab))
    print(f"distnn/numpy floor: best {best['distnn'] / best['numpy']:.2f}")
    if "torch" in best:
        print(f"distnn/torch DDP gloo (unsynced BatchNorm1d): best {best['distnn'] / best['torch']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
