"""Optimizer-step benchmark: distnn.optim vs PyTorch CPU vs a hand-written numpy floor, 1 thread.

One ``step()`` on a model of ``--numel`` float32 parameters (default 10 million,
split into a few large tensors plus a bias-sized one, like the layers of a real
network), gradients already in place. For each optimizer, in the same process:

* distnn        ``distnn.optim.<Opt>(...).step()``
* torch         ``torch.optim.<Opt>(..., foreach=False)`` (the default on CPU tensors)
* torch-foreach the same with ``foreach=True`` (multi-tensor kernels; default on GPU)
* floor         the update written by hand in numpy, whole arrays, in-place ufuncs with
                ``out=`` and one preallocated temporary (SGD-momentum and Adam only)

The contenders take turns step by step (round robin), so machine load hits
them alike; the table shows the median step time and distnn's ratio to each.
LARS and LAMB have no PyTorch peer; their ratio column compares them with
distnn's SGD-momentum / Adam.

    python benchmarks/bench_optim.py                 # 10M params, 15 rounds
    python benchmarks/bench_optim.py --numel 2000000 --rounds 5 --only SGD-momentum Adam

Target: distnn/torch <= 1.3 for SGD-momentum and Adam at 1 thread.
"""
from __future__ import annotations

from _this_tree import use_this_tree  # (this folder)

use_this_tree()  # distnn of the tree this script is in, not the installed checkout's

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
             "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy (and torch) are imported

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import distnn  # noqa: E402
from distnn.nn import Parameter  # noqa: E402

CONFIGS = {
    # name: (distnn kwargs, torch class name, torch kwargs)
    "SGD-momentum": ("SGD", dict(lr=0.01, momentum=0.9), "SGD", dict(lr=0.01, momentum=0.9)),
    "SGD-nesterov-wd": ("SGD", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4), "SGD",
                        dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4)),
    "Adam": ("Adam", dict(lr=1e-3), "Adam", dict(lr=1e-3)),
    "AdamW": ("AdamW", dict(lr=1e-3), "AdamW", dict(lr=1e-3)),
    "Adagrad": ("Adagrad", dict(lr=1e-2), "Adagrad", dict(lr=1e-2)),
    "RMSprop": ("RMSprop", dict(lr=1e-2), "RMSprop", dict(lr=1e-2)),
    "LARS": ("LARS", dict(lr=0.1, momentum=0.9, weight_decay=1e-4), None, None),
    "LAMB": ("LAMB", dict(lr=1e-3, weight_decay=0.01), None, None),
}
BASELINE = {"LARS": "SGD-momentum", "LAMB": "Adam"}


def shapes_for(numel: int):
    """A few large tensors (40/30/20/10 % of the total) and a small bias-like one."""
    bias = 1000
    rest = numel - bias
    sizes = [rest * 4 // 10, rest * 3 // 10, rest * 2 // 10]
    sizes.append(rest - sum(sizes))
    return [(s,) for s in sizes] + [(bias,)]


class Floor:
    """The update by hand in numpy: whole arrays, in place, one preallocated temporary."""

    def __init__(self, kind, params, grads):
        self.kind, self.params, self.grads = kind, params, grads
        self.tmp = [np.empty_like(p) for p in params]
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self):
        self.t += 1
        if self.kind == "SGD-momentum":
            lr, mu = 0.01, 0.9
            for p, g, buf, tmp in zip(self.params, self.grads, self.m, self.tmp):
                buf *= mu
                buf += g
                np.multiply(buf, -lr, out=tmp)
                p += tmp
        else:  # Adam
            lr, b1, b2, eps, t = 1e-3, 0.9, 0.999, 1e-8, self.t
            step_size, bc2 = lr / (1 - b1 ** t), (1 - b2 ** t) ** 0.5
            for p, g, m, v, tmp in zip(self.params, self.grads, self.m, self.v, self.tmp):
                m *= b1
                np.multiply(g, 1 - b1, out=tmp)
                m += tmp
                v *= b2
                np.multiply(g, g, out=tmp)
                tmp *= 1 - b2
                v += tmp
                np.sqrt(v, out=tmp)
                tmp /= bc2
                tmp += eps
                np.divide(m, tmp, out=tmp)
                tmp *= -step_size
                p += tmp


def build(name, shapes, torch, seed=0):
    """{contender: step function} for one optimizer config, each on its own copy of params and grads."""
    dname, dkw, tname, tkw = CONFIGS[name]
    rng = np.random.default_rng(seed)
    p0 = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    g0 = [(rng.standard_normal(s) * 0.01).astype(np.float32) for s in shapes]
    steps = {}
    params = [Parameter(p.copy()) for p in p0]
    for p, g in zip(params, g0):
        p.grad = g.copy()
    steps["distnn"] = getattr(distnn.optim, dname)(params, **dkw).step
    if torch is not None and tname is not None:
        for label, foreach in (("torch", False), ("torch-foreach", True)):
            tparams = [torch.nn.Parameter(torch.from_numpy(p.copy())) for p in p0]
            for tp, g in zip(tparams, g0):
                tp.grad = torch.from_numpy(g.copy())
            steps[label] = getattr(torch.optim, tname)(tparams, foreach=foreach, **tkw).step
    if name in ("SGD-momentum", "Adam"):
        steps["floor"] = Floor(name, [p.copy() for p in p0], [g.copy() for g in g0]).step
    return steps


def time_round_robin(steps, rounds, warmup):
    for _ in range(warmup):
        for f in steps.values():
            f()
    times = {k: [] for k in steps}
    for _ in range(rounds):
        for k, f in steps.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--numel", type=int, default=10_000_000, help="total float32 parameters (default 10M)")
    ap.add_argument("--rounds", type=int, default=15, help="timed steps per contender")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--only", nargs="+", choices=sorted(CONFIGS), default=None)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.numel < 2000:
        ap.error(f"--rounds must be >= 1 and --numel >= 2000 (a 1000-element bias beside four large tensors); "
                 f"got {args.rounds}, {args.numel}")

    torch = None
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(1)
        except ImportError:
            print("torch not installed: PyTorch columns skipped")
    shapes = shapes_for(args.numel)
    print(f"optimizer step, {args.numel / 1e6:g}M float32 params in {len(shapes)} tensors, 1 thread, "
          f"median of {args.rounds} round-robin steps (ms)")
    header = f"{'optimizer':<17}{'distnn':>9}{'torch':>9}{'foreach':>9}{'floor':>9}" \
             f"{'d/torch':>9}{'d/foreach':>10}{'d/floor':>9}"
    print(header)
    print("-" * len(header))
    results = {}
    for name in (args.only or list(CONFIGS)):
        r = results[name] = time_round_robin(build(name, shapes, torch), args.rounds, args.warmup)

        def cell(key, width=9):
            return f"{r[key]:>{width}.2f}" if key in r else f"{'-':>{width}}"

        def ratio(key, width=9):
            return f"{r['distnn'] / r[key]:>{width}.2f}" if key in r else f"{'-':>{width}}"

        line = f"{name:<17}{cell('distnn')}{cell('torch')}{cell('torch-foreach')}{cell('floor')}" \
               f"{ratio('torch')}{ratio('torch-foreach', 10)}{ratio('floor')}"
        if name in BASELINE and BASELINE[name] in results:
            line += f"   ({r['distnn'] / results[BASELINE[name]]['distnn']:.2f}x distnn {BASELINE[name]})"
        print(line, flush=True)
    print("d/torch: distnn time / torch.optim (foreach=False, the CPU default); target <= 1.3 for "
          "SGD-momentum and Adam")


if __name__ == "__main__":
    main()
