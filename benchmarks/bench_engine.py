"""Autograd-engine benchmark: distnn vs the numpy floor vs PyTorch CPU, same thread count.

Two measurements, each run in a fresh child process per thread count (the BLAS
thread count must be fixed by environment variables before numpy is imported):

1. MLP 784-512-256-10 (ReLU, cross-entropy, SGD momentum 0.9 written inline on
   arrays), batch 128, float32, one epoch of synthetic 60,000 x 784 data:
   * floor    the same math hand-written in numpy, no graph (what distnn can at best reach)
   * distnn   F.linear + F.relu + F.cross_entropy, loss.backward()
   * distnn-ops  the same with ``x @ W.T + b`` (unfused ops), for comparison
   * torch    torch.nn.functional, loss.backward() (when torch is installed)
   The frameworks take turns section by section (round robin), so machine load
   hits them alike; the table shows the median section throughput.
2. Per-op overhead: forward + backward of a chain of ``--chain`` tiny ops on a (4,)
   tensor (alternating *, +, tanh), distnn vs torch, median over repeats.

    python benchmarks/bench_engine.py                       # threads 1 and 2, full epoch
    python benchmarks/bench_engine.py --threads 1 --samples 12800

Targets at 1 thread: distnn/floor <= 1.10, distnn/torch <= 1.15, chain distnn/torch <= 1.5.
"""
from __future__ import annotations

from _this_tree import use_this_tree  # (this folder)

use_this_tree()  # distnn of the tree this script is in, not the installed checkout's

import argparse
import json
import os
import subprocess
import sys
import time

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
SIZES = (784, 512, 256, 10)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to run (default: 1 2)")
    p.add_argument("--samples", type=int, default=60000, help="samples in the epoch (default 60000)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--warmup", type=int, default=10, help="untimed warm-up steps per framework")
    p.add_argument("--sections", type=int, default=20, help="timed sections the epoch is split into")
    p.add_argument("--chain", type=int, default=1000, help="ops in the per-op-overhead chain")
    p.add_argument("--chain-repeats", type=int, default=30)
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is installed")
    p.add_argument("--profile", type=int, default=0, metavar="STEPS",
                   help="also cProfile this many distnn MLP steps and print the top functions")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)  # internal: child at N threads
    args = p.parse_args(argv)
    if args.batch < 1 or args.sections < 1 or args.samples < args.batch * args.sections:
        p.error(f"--samples ({args.samples}) must hold --sections ({args.sections}) x --batch ({args.batch}) "
                "samples at least (each timed section is one or more whole batches), both >= 1")
    return args


# ------------------------------------------------------------------ the parent
def main(argv=None):
    args = parse_args(argv)
    if args.worker is not None:
        print("RESULT " + json.dumps(worker(args)))
        return 0
    results = []
    for n in args.threads:
        env = dict(os.environ, **{v: str(n) for v in THREAD_VARS})
        # The frameworks share one process: idle OpenMP workers must sleep, not spin,
        # or torch's pool steals the cores numpy's BLAS is about to use (and vice versa).
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(n)] + _passthrough(argv)
        print(f"[bench_engine] running at {n} thread(s) ...", flush=True)
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
        if proc.returncode != 0:
            print(proc.stdout)
            raise SystemExit(f"worker at {n} threads failed with exit code {proc.returncode}")
        lines = proc.stdout.splitlines()
        for ln in lines:  # anything else the worker printed (e.g. a profile)
            if not ln.startswith("RESULT "):
                print(ln)
        line = [ln for ln in lines if ln.startswith("RESULT ")][-1]
        results.append(json.loads(line[len("RESULT "):]))
    print_table(results, args)
    return 0


def _passthrough(argv):
    argv = list(sys.argv[1:] if argv is None else argv)
    out, skip = [], False
    for a in argv:  # drop --threads and its values; the parent picks one per child
        if a == "--threads":
            skip = True
            continue
        if skip and not a.startswith("--"):
            continue
        skip = False
        out.append(a)
    return out


def print_table(results, args):
    print()
    if hasattr(os, "getloadavg"):  # a shared machine makes every figure noisy: say how busy it was
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"MLP {'-'.join(map(str, SIZES))}, batch {args.batch}, float32, {args.samples} samples "
          f"(median of {args.sections} sections, frameworks interleaved)")
    print(f"{'threads':>7} {'impl':>11} {'samples/s':>11} {'final loss':>10} {'vs floor':>9} {'vs torch':>9}")
    for r in results:
        floor = r["mlp"]["floor"]["samples_per_s"]
        torch_sps = r["mlp"].get("torch", {}).get("samples_per_s")
        for name, m in r["mlp"].items():
            sps = m["samples_per_s"]
            vs_floor = floor / sps  # time ratio: >1 means slower than the floor
            vs_torch = f"{torch_sps / sps:9.3f}" if torch_sps else f"{'-':>9}"
            print(f"{r['threads']:>7} {name:>11} {sps:11.0f} {m['final_loss']:10.4f} {vs_floor:9.3f} {vs_torch}")
    print("(ratios are time ratios: implementation time / reference time; targets at 1 thread: "
          "distnn vs floor <= 1.10, vs torch <= 1.15)")
    print()
    print(f"Chain of {args.chain} tiny ops on a (4,) tensor, forward + backward (median of {args.chain_repeats})")
    print(f"{'threads':>7} {'impl':>11} {'ms/chain':>10} {'us/op':>8} {'vs torch':>9}")
    for r in results:
        c = r["chain"]
        for name, ms in c.items():
            ratio = f"{ms / c['torch']:9.3f}" if "torch" in c else f"{'-':>9}"
            print(f"{r['threads']:>7} {name:>11} {ms:10.3f} {1000 * ms / args.chain:8.2f} {ratio}")
    print("(target: distnn vs torch <= 1.5)")
    for r in results:
        print(f"threads={r['threads']}: numpy BLAS pools {r['blas']}")


# ------------------------------------------------------------------ the child
def worker(args):
    import numpy as np

    torch = None
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(args.worker)
        except ImportError:
            torch = None
    try:
        from threadpoolctl import threadpool_info

        blas = sorted({f"{i['internal_api']}:{i['num_threads']}" for i in threadpool_info()})
    except ImportError:
        blas = ["threadpoolctl not installed"]

    rng = np.random.default_rng(0)
    n = args.samples - args.samples % args.batch
    X = rng.standard_normal((n, SIZES[0]), dtype=np.float32)
    teacher = rng.standard_normal((SIZES[0], SIZES[-1]), dtype=np.float32)
    Y = (X @ teacher).argmax(axis=1).astype(np.int64)  # a learnable synthetic task
    init = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        init.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        init.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))

    impls = {"floor": NumpyMLP(init, args.lr), "distnn": DistnnMLP(init, args.lr, fused=True),
             "distnn-ops": DistnnMLP(init, args.lr, fused=False)}
    if torch is not None:
        impls["torch"] = TorchMLP(torch, init, args.lr)

    # Correctness first: one step on the same batch must give the same loss everywhere.
    xb, yb = X[: args.batch], Y[: args.batch]
    losses = {name: m.loss_only(xb, yb) for name, m in impls.items()}
    ref = losses["floor"]
    for name, value in losses.items():
        if abs(value - ref) > 1e-4 * max(1.0, abs(ref)):
            raise SystemExit(f"{name} loss {value} differs from the floor's {ref}: benchmark would compare different math")

    steps = n // args.batch
    batches = [(X[i * args.batch:(i + 1) * args.batch], Y[i * args.batch:(i + 1) * args.batch]) for i in range(steps)]
    for m in impls.values():
        for xb, yb in batches[: args.warmup]:
            m.step(xb, yb)
        m.reset(init)
    bounds = np.linspace(0, steps, min(args.sections, steps) + 1).astype(int)
    times = {name: [] for name in impls}
    last = {}
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        for name, m in impls.items():
            t0 = time.perf_counter()
            for xb, yb in batches[lo:hi]:
                loss = m.step(xb, yb)
            times[name].append((hi - lo) * args.batch / (time.perf_counter() - t0))
            last[name] = loss
    mlp = {name: {"samples_per_s": float(np.median(times[name])), "final_loss": float(last[name])} for name in impls}
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for xb, yb in batches[: args.profile]:
            impls["distnn"].step(xb, yb)
        prof.disable()
        print(f"cProfile of {args.profile} distnn MLP steps at {args.worker} thread(s), by own time:")
        pstats.Stats(prof, stream=sys.stdout).sort_stats("tottime").print_stats(15)
    del X, batches
    return {"threads": args.worker, "mlp": mlp, "chain": chain_bench(args, torch), "blas": blas}


def sgd_momentum(params, grads, bufs, lr, momentum=0.9):
    """In-place SGD with momentum on raw arrays (numpy or torch tensors): the same for everyone."""
    for p, g, b in zip(params, grads, bufs):
        b *= momentum
        b += g
        p -= lr * b


class NumpyMLP:
    """The floor: forward, backward and update hand-written on numpy arrays, no graph."""

    def __init__(self, init, lr):
        self.lr = lr
        self.reset(init)

    def reset(self, init):
        import numpy as np

        self.params = [a.copy() for a in init]
        self.bufs = [np.zeros_like(a) for a in init]

    def forward(self, x, y):
        import numpy as np

        W1, b1, W2, b2, W3, b3 = self.params
        z1 = x @ W1.T
        z1 += b1
        h1 = np.maximum(z1, 0)
        z2 = h1 @ W2.T
        z2 += b2
        h2 = np.maximum(z2, 0)
        z3 = h2 @ W3.T
        z3 += b3
        s = z3 - z3.max(axis=1, keepdims=True)
        e = np.exp(s)
        se = e.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = -(s[rows, y] - np.log(se[:, 0])).mean()
        return loss, (h1, h2, e, se, rows)

    def loss_only(self, x, y):
        return float(self.forward(x, y)[0])

    def step(self, x, y):
        W1, b1, W2, b2, W3, b3 = self.params
        loss, (h1, h2, e, se, rows) = self.forward(x, y)
        d3 = e / se
        d3[rows, y] -= 1.0
        d3 /= len(y)
        gW3, gb3 = d3.T @ h2, d3.sum(axis=0)
        d2 = (d3 @ W3) * (h2 > 0)
        gW2, gb2 = d2.T @ h1, d2.sum(axis=0)
        d1 = (d2 @ W2) * (h1 > 0)
        gW1, gb1 = d1.T @ x, d1.sum(axis=0)
        sgd_momentum(self.params, [gW1, gb1, gW2, gb2, gW3, gb3], self.bufs, self.lr)
        return loss


class DistnnMLP:
    def __init__(self, init, lr, fused=True):
        import distnn
        import distnn.functional as F

        self.distnn, self.F, self.lr, self.fused = distnn, F, lr, fused
        self.reset(init)

    def reset(self, init):
        import numpy as np

        self.params = [self.distnn.Tensor(a.copy(), requires_grad=True) for a in init]
        self.bufs = [np.zeros_like(a) for a in init]

    def forward(self, x, y):
        F = self.F
        W1, b1, W2, b2, W3, b3 = self.params
        h = self.distnn.Tensor(x)
        if self.fused:
            h = F.relu(F.linear(h, W1, b1))
            h = F.relu(F.linear(h, W2, b2))
            logits = F.linear(h, W3, b3)
        else:
            h = F.relu(h @ W1.T + b1)
            h = F.relu(h @ W2.T + b2)
            logits = h @ W3.T + b3
        return F.cross_entropy(logits, y)

    def loss_only(self, x, y):
        with self.distnn.no_grad():
            return self.forward(x, y).item()

    def step(self, x, y):
        loss = self.forward(x, y)
        for p in self.params:
            p.grad = None
        loss.backward()
        sgd_momentum([p.data for p in self.params], [p.grad for p in self.params], self.bufs, self.lr)
        return loss.item()


class TorchMLP:
    def __init__(self, torch, init, lr):
        self.torch, self.lr = torch, lr
        self.reset(init)

    def reset(self, init):
        t = self.torch
        self.params = [t.tensor(a, requires_grad=True) for a in init]
        self.bufs = [t.zeros_like(p) for p in self.params]

    def forward(self, x, y):
        t = self.torch
        F = t.nn.functional
        W1, b1, W2, b2, W3, b3 = self.params
        h = F.relu(F.linear(t.from_numpy(x), W1, b1))
        h = F.relu(F.linear(h, W2, b2))
        return F.cross_entropy(F.linear(h, W3, b3), t.from_numpy(y))

    def loss_only(self, x, y):
        with self.torch.no_grad():
            return self.forward(x, y).item()

    def step(self, x, y):
        loss = self.forward(x, y)
        for p in self.params:
            p.grad = None
        loss.backward()
        with self.torch.no_grad():
            sgd_momentum(self.params, [p.grad for p in self.params], self.bufs, self.lr)
        return loss.item()


def chain_bench(args, torch):
    import numpy as np

    import distnn

    def run_distnn():
        x = distnn.Tensor(np.ones(4, dtype=np.float32), requires_grad=True)
        y = x
        for i in range(args.chain):
            k = i % 3
            y = y * 1.0001 if k == 0 else (y + 0.001 if k == 1 else y.tanh())
        y.sum().backward()
        return x.grad

    def run_torch():
        x = torch.ones(4, requires_grad=True)
        y = x
        for i in range(args.chain):
            k = i % 3
            y = y * 1.0001 if k == 0 else (y + 0.001 if k == 1 else y.tanh())
        y.sum().backward()
        return x.grad

    runs = {"distnn": run_distnn}
    if torch is not None:
        runs["torch"] = run_torch
    times = {name: [] for name in runs}
    for name, f in runs.items():  # warm-up
        for _ in range(3):
            f()
    for _ in range(args.chain_repeats):
        for name, f in runs.items():
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return {name: 1000 * float(np.median(ts)) for name, ts in times.items()}


if __name__ == "__main__":
    sys.exit(main())
