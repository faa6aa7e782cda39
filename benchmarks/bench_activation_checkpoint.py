"""Activation checkpointing's early stop: backward of a checkpointed region whose tail is expensive but saves nothing.

The region is ``h = tanh(x @ W)`` followed by a tail of ``--tail`` pairs ``h = h * 0.5 + 0.25`` (ops that keep
nothing for backward, in distnn and PyTorch), summed. With early stop the backward recomputes the matmul and the
tanh only; without it, the whole region. Timed: the backward alone (the forward is rebuilt before each, untimed),
for distnn and PyTorch with early stop on and off, next to each one's backward without checkpointing and the
floor, the same gradients hand-written in numpy (no recomputation at all). Median of ``--reps``, frameworks and
variants taking turns (round robin) so machine load hits them alike; float64, one BLAS thread.

    python benchmarks/bench_activation_checkpoint.py [--batch 512] [--dim 256] [--tail 30] [--reps 15]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # (before numpy is imported)
    os.environ.setdefault(_v, "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--tail", type=int, default=30, help="pairs of scalar ops (* then +) in the region's tail")
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--no-torch", action="store_true")
    args = p.parse_args(argv)
    if min(args.batch, args.dim, args.reps) < 1 or args.tail < 0:
        p.error("--batch, --dim and --reps must be >= 1, --tail >= 0")
    return args


def region(lib, tail):
    def f(x, w):
        h = lib.tanh(x @ w)
        for _ in range(tail):
            h = h * 0.5 + 0.25
        return h.sum()
    return f


def cases(args, torch):
    """{name: make() -> run()}: make builds a fresh forward (untimed), run is the backward timed."""
    import distnn
    from distnn.utils.checkpoint import checkpoint

    rng = np.random.default_rng(0)
    xs, ws = rng.standard_normal((args.batch, args.dim)), rng.standard_normal((args.dim, args.dim)) / args.dim ** 0.5
    out = {}

    def framework(name, tensor, cp, lib):
        f = region(lib, args.tail)
        x, w = tensor(xs, requires_grad=True), tensor(ws, requires_grad=True)

        def make(**kw):
            def build():
                x.grad = w.grad = None
                y = cp(f, x, w, use_reentrant=False, **kw) if kw else f(x, w)
                return y.backward
            return build

        out[f"{name} checkpoint, early stop on"] = make(early_stop=True)
        out[f"{name} checkpoint, early stop off"] = make(early_stop=False)
        out[f"{name} no checkpoint"] = make()

    framework("distnn", distnn.tensor, checkpoint, distnn)
    if torch is not None:
        framework("torch", torch.tensor, torch.utils.checkpoint.checkpoint, torch)

    def floor():
        h = np.tanh(xs @ ws)  # (the forward's activation, kept: the backward below only reads it)

        def backward():
            g = np.full_like(h, 0.5 ** args.tail) * (1.0 - h * h)
            return g @ ws.T, xs.T @ g
        return backward

    out["floor: numpy backward"] = floor
    return out


def check_gradients(args, torch):
    """The timed variants give the same gradients (so the rows time the same work)."""
    import distnn
    from distnn.utils.checkpoint import checkpoint

    rng = np.random.default_rng(1)
    xs, ws = rng.standard_normal((8, 16)), rng.standard_normal((16, 16)) / 4
    grads = []
    for kw in ({"early_stop": True}, {"early_stop": False}, None):
        x, w = distnn.tensor(xs, requires_grad=True), distnn.tensor(ws, requires_grad=True)
        f = region(distnn, args.tail)
        (checkpoint(f, x, w, use_reentrant=False, **kw) if kw else f(x, w)).backward()
        grads.append((x.grad, w.grad))
    assert all(np.array_equal(a, b) for g in grads[1:] for a, b in zip(g, grads[0])), "gradients differ"


def main(argv=None):
    args = parse_args(argv)
    torch = None
    if not args.no_torch:
        try:
            import torch
            import torch.utils.checkpoint  # noqa: F401
            torch.set_num_threads(1)
        except ImportError:
            print("(PyTorch not installed: its rows are left out)")
    check_gradients(args, torch)
    runs = cases(args, torch)
    times = {name: [] for name in runs}
    for name, make in runs.items():  # warm-up
        make()()
    for _ in range(args.reps):
        for name, make in runs.items():
            backward = make()
            t0 = time.perf_counter()
            backward()
            times[name].append(time.perf_counter() - t0)
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    if hasattr(os, "getloadavg"):
        print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"backward of sum(tail(tanh(x @ W))), x {args.batch}x{args.dim}, W {args.dim}x{args.dim}, tail of "
          f"{2 * args.tail} scalar ops, float64, 1 thread, median of {args.reps}")
    floor = ms["floor: numpy backward"]
    print(f"{'variant':<40} {'ms':>9} {'vs floor':>9} {'vs own no-ckpt':>15} {'vs torch':>9}")
    for name, t in ms.items():
        lib = name.split()[0]
        own = ms.get(f"{lib} no checkpoint")
        peer = ms.get("torch" + name[len(lib):]) if lib == "distnn" else None
        print(f"{name:<40} {t:9.2f} {t / floor:9.2f} {'' if own is None else f'{t / own:15.2f}':>15} "
              f"{'' if peer is None else f'{t / peer:9.2f}':>9}")
    for lib in ("distnn", "torch"):
        on, off = ms.get(f"{lib} checkpoint, early stop on"), ms.get(f"{lib} checkpoint, early stop off")
        if on is not None:
            print(f"{lib}: early stop on / off = {on / off:.3f}")
    print("(ratios are time ratios: the row's time / the reference's)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
