"""Peak host memory of F.linear_cross_entropy's chunked path against the composition it replaces,
``F.cross_entropy(F.linear(x, W), t)``, over one forward and backward (tracemalloc, which sees numpy's buffers).

The case is a small vocabulary head: N rows of F features projected to C classes. The composition holds the
(N, C) logits and their softmax; the chunked path one (chunk, C) block at a time (its gradients are the
size of the inputs). Wall times are printed for information only.

Usage::

    python benchmarks/bench_linear_cross_entropy.py                 # N=2048, F=64, C=8192, float32
    python benchmarks/bench_linear_cross_entropy.py --n 4096 --chunk 128
"""
from __future__ import annotations

from _this_tree import use_this_tree  # (this folder)

use_this_tree()  # distnn of the tree this script is in, not the installed checkout's

import argparse
import time
import tracemalloc

import numpy as np

import distnn
import distnn.functional as F
from distnn import nn


def measure(fn, x, w, t):
    xd, wd = distnn.tensor(x, requires_grad=True), distnn.tensor(w, requires_grad=True)
    tracemalloc.start()
    t0 = time.perf_counter()
    loss = fn(xd, wd, t)
    loss.backward()
    wall = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return float(loss.data), peak, wall


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2048)
    p.add_argument("--features", type=int, default=64)
    p.add_argument("--classes", type=int, default=8192)
    p.add_argument("--chunk", type=int, default=None, help="rows per chunk (default: the options' 'auto')")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.features)).astype(np.float32)
    w = (rng.standard_normal((args.classes, args.features)) * 0.05).astype(np.float32)
    t = rng.integers(0, args.classes, args.n)
    opts = nn.LinearCrossEntropyOptions(batch_chunk_size=args.chunk)
    chunk = opts._adjust(args.n, args.features, args.classes, np.float32).batch_chunk_size
    print(f"N={args.n} F={args.features} C={args.classes} float32; (N, C) logits: "
          f"{args.n * args.classes * 4 / 2**20:.1f} MiB; chunk: {chunk} rows")
    ref = measure(lambda a, b, c: F.cross_entropy(F.linear(a, b), c), x, w, t)
    chk = measure(lambda a, b, c: F.linear_cross_entropy(a, b, c, options=opts), x, w, t)
    for name, (loss, peak, wall) in (("cross_entropy(linear(...))", ref), ("linear_cross_entropy, chunked", chk)):
        print(f"{name:32s} loss {loss:.6f}  peak {peak / 2**20:8.1f} MiB  ({wall:.2f} s)")
    print(f"peak memory ratio: {ref[1] / chk[1]:.1f}x")


if __name__ == "__main__":
    main()
