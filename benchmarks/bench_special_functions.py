"""lgamma and digamma on 10^5 float64 elements: distnn vs PyTorch (the peer) vs scipy.special (the floor, the
same arithmetic in compiled loops), each figure the minimum over ``--repeats`` timings of ``--number`` calls
(the minimum: the machine is shared, and load only ever adds time).

    python benchmarks/bench_special_functions.py                         # this tree's distnn
    python benchmarks/bench_special_functions.py --distnn-tree /tmp/old  # another tree's distnn (before/after)

Inputs: ``x > 0`` (uniform on [0.1, 20], the common case: concentrations, counts) and ``x`` of either sign
(uniform on [-20, 20], the reflection taken for half of them). Forward values only, no graph (no grad).
"""
from __future__ import annotations

import argparse
import os
import sys
import timeit

import numpy as np

SIZE = 10**5


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--number", type=int, default=10, help="calls per timing (default 10)")
    p.add_argument("--repeats", type=int, default=7, help="timings per row; the minimum is reported (default 7)")
    p.add_argument("--distnn-tree", default=None, help="import distnn from this source tree (default: this one)")
    return p.parse_args(argv)


def _inputs():
    rng = np.random.default_rng(0)
    return {"x > 0": rng.uniform(0.1, 20.0, SIZE), "x of either sign": rng.uniform(-20.0, 20.0, SIZE)}


def _rows(distnn, torch, special):
    rows = []
    for label, x in _inputs().items():
        xd, xt = distnn.tensor(x), torch.from_numpy(x) if torch else None
        for name, ours, theirs, floor in (("lgamma", distnn.lgamma, "lgamma", special and special.gammaln),
                                          ("digamma", distnn.digamma, "digamma", special and special.psi)):
            rows.append((f"{name} 1e5 ({label})", lambda f=ours, a=xd: f(a),
                         (lambda f=getattr(torch, theirs), a=xt: f(a)) if torch else None,
                         (lambda f=floor, a=x: f(a)) if floor else None))
    return rows


def _best(fn, number, repeats):
    fn()  # (warm-up)
    return 1e3 * min(timeit.repeat(fn, number=number, repeat=repeats)) / number


def main(argv=None):
    args = parse_args(argv)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.abspath(args.distnn_tree or here))
    import distnn

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    try:
        from scipy import special
    except ImportError:
        special = None
    print(f"distnn from {os.path.dirname(os.path.dirname(distnn.__file__))}; min of {args.repeats} x "
          f"{args.number} calls, ms per call; ratios: distnn / column")
    print(f"{'op':34}{'distnn ms':>11}{'torch ms':>11}{'scipy ms':>11}{'/torch':>9}{'/scipy':>9}")
    for name, ours, theirs, floor in _rows(distnn, torch, special):
        vals = [_best(f, args.number, args.repeats) if f else None for f in (ours, theirs, floor)]
        cells = "".join(f"{v:11.3f}" if v is not None else f"{'-':>11}" for v in vals)
        ratios = "".join(f"{vals[0] / v:9.2f}" if v else f"{'-':>9}" for v in vals[1:])
        print(f"{name:34}{cells}{ratios}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
