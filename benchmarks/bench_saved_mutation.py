"""Memory of ``allow_mutation_on_saved_tensors``: a forward and backward of a small MLP inside the context, against
the same outside it (the floor), and what PyTorch (the peer) copies for it.

distnn's figures are tracemalloc's (numpy allocates through Python's tracked allocator): the memory held once the
forward pass is done (what the graph keeps) and the peak over forward and backward, both above what was allocated
before; and the number of saved arrays copied (the context's ``copies``, absent in trees that copied them all).
Each case runs twice: nothing changed in place, and the input changed in place between forward and backward
(``x.mul_(2)`` under no_grad: the first layer saved it). PyTorch's allocations are not seen by tracemalloc, so its
column is the number and bytes of the tensors its context cloned (``ctx.cloned``), not a peak.

    python benchmarks/bench_saved_mutation.py                          # this tree's distnn and torch
    python benchmarks/bench_saved_mutation.py --trees /tmp/old-main .  # distnn of each tree, then torch

Each tree's distnn runs in a child process (``PYTHONPATH`` set to the tree).
"""
from __future__ import annotations

from _this_tree import use_this_tree  # (this folder)

use_this_tree()  # distnn of the tree this script is in, not the installed checkout's

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np

WIDTH, BATCH, LAYERS = 512, 512, 3
CASES = ("outside (floor)", "inside, nothing changed", "inside, input changed")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trees", nargs="+", default=None, help="distnn of these source trees (default: this one)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _weights():
    rng = np.random.default_rng(0)
    return rng.standard_normal((BATCH, WIDTH)), [rng.standard_normal((WIDTH, WIDTH)) / WIDTH ** 0.5
                                                 for _ in range(LAYERS)]


def _forward(x, ws):
    h = x
    for w in ws:
        h = (h @ w).tanh()
    return (h * h).sum()


def distnn_case(case: str) -> dict:
    """tracemalloc's held-after-forward and peak (MiB, above the start) and the copies, for one case."""
    import distnn
    from distnn.autograd.graph import allow_mutation_on_saved_tensors

    x_np, w_np = _weights()
    x = distnn.Tensor(x_np)
    ws = [distnn.Tensor(w, requires_grad=True) for w in w_np]
    mib = 2.0 ** 20
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        copies = None
        if case == CASES[0]:
            loss = _forward(x, ws)
            held = tracemalloc.get_traced_memory()[0] - start
            loss.backward()
        else:
            with allow_mutation_on_saved_tensors() as ctx:
                loss = _forward(x, ws)
                held = tracemalloc.get_traced_memory()[0] - start
                if case == CASES[2]:
                    with distnn.no_grad():
                        x.mul_(2)
                loss.backward()
                copies = getattr(ctx, "copies", None)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    return {"held": held / mib, "peak": peak / mib, "copies": copies}


def torch_case(case: str) -> dict:
    """The tensors PyTorch's context cloned for one case (count, MiB)."""
    import torch

    x_np, w_np = _weights()
    x = torch.from_numpy(x_np.copy())
    ws = [torch.from_numpy(w.copy()).requires_grad_() for w in w_np]
    if case == CASES[0]:
        _forward(x, ws).backward()
        return {"copies": 0, "mib": 0.0}
    with torch.autograd.graph.allow_mutation_on_saved_tensors() as ctx:
        loss = _forward(x, ws)
        if case == CASES[2]:
            with torch.no_grad():
                x.mul_(2)
        cloned = list(ctx.cloned.values())
        loss.backward()
    return {"copies": len(cloned), "mib": sum(t.numel() * t.element_size() for t in cloned) / 2.0 ** 20}


def _child(tree: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker"], env=env, cwd=tree,
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker for {tree} failed: exit code {proc.returncode}\n{proc.stdout}")
    return json.loads(proc.stdout.splitlines()[-1])


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps({case: distnn_case(case) for case in CASES}))
        return 0
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = args.trees or [here]
    results = {tree: _child(tree) for tree in trees}
    print(f"MLP {LAYERS} x ({WIDTH}x{WIDTH} matmul + tanh), batch {BATCH}, float64; input {BATCH * WIDTH * 8 / 2**20:.1f}"
          " MiB; distnn: tracemalloc MiB above the start (held after forward / peak), saved arrays copied")
    for tree in trees:
        name = os.path.basename(os.path.abspath(tree)) or tree
        floor = results[tree][CASES[0]]
        print(f"distnn [{name}]")
        for case in CASES:
            r = results[tree][case]
            print(f"  {case:26} held {r['held']:7.2f}  peak {r['peak']:7.2f}  peak/floor {r['peak'] / floor['peak']:5.2f}"
                  f"  copies {'-' if r['copies'] is None else r['copies']}")
    if importlib.util.find_spec("torch"):
        print("torch (tensors its context cloned)")
        for case in CASES:
            r = torch_case(case)
            print(f"  {case:26} copies {r['copies']}  {r['mib']:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
