"""The table the op benchmarks print: each row's distnn, peer (PyTorch, one thread) and floor timings and the
ratios, distnn imported from ``--distnn-tree`` (another tree: before/after comparisons).

A benchmark gives :func:`run` its ``rows(distnn, torch)`` function, returning ``(name, ours, peer, floor)``
tuples of zero-argument callables (None where one is missing), and the floor's column name.
"""
from __future__ import annotations

import argparse
import os
import sys
import timeit
import warnings


def parse_args(description, argv=None):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--number", type=int, default=10, help="calls per timing (default 10)")
    p.add_argument("--repeats", type=int, default=7, help="timings per row; the minimum is reported (default 7)")
    p.add_argument("--distnn-tree", default=None, help="import distnn from this source tree (default: this one)")
    return p.parse_args(argv)


def best_ms(fn, number, repeats):
    """Milliseconds a call: the minimum over ``repeats`` timings of ``number`` calls (load only adds time)."""
    fn()  # (warm-up)
    return 1e3 * min(timeit.repeat(fn, number=number, repeat=repeats)) / number


def run(description, rows, floor_name, argv=None, quiet=False, width=34):
    """Parse the arguments, import distnn (and torch, one thread), time ``rows(distnn, torch)`` and print the
    table. ``quiet``: numpy's and distnn's warnings ignored (an old tree may warn where the new one does not)."""
    args = parse_args(description, argv)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.abspath(args.distnn_tree or here))
    import distnn

    if quiet:
        warnings.simplefilter("ignore")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    print(f"distnn from {os.path.dirname(os.path.dirname(distnn.__file__))}; min of {args.repeats} x "
          f"{args.number} calls, ms per call; ratios: distnn / column")
    print(f"{'op':{width}}{'distnn ms':>11}{'torch ms':>11}{floor_name + ' ms':>11}{'/torch':>9}{'/' + floor_name:>9}")
    for name, ours, theirs, floor in rows(distnn, torch):
        vals = [best_ms(f, args.number, args.repeats) if f else None for f in (ours, theirs, floor)]
        cells = "".join(f"{v:11.3f}" if v is not None else f"{'-':>11}" for v in vals)
        ratios = "".join(f"{vals[0] / v:9.2f}" if v else f"{'-':>9}" for v in vals[1:])
        print(f"{name:{width}}{cells}{ratios}")
    return 0
