"""``tensor(data)`` / ``Tensor(data)`` creation cost: distnn (of one or more source trees) vs PyTorch (the peer) vs
``np.array`` (the floor), for Python numbers, lists and numpy arrays.

    python benchmarks/bench_tensor_creation.py                       # this tree's distnn, torch, numpy
    python benchmarks/bench_tensor_creation.py --trees /tmp/old .    # distnn of two trees, interleaved

Each column runs in a child process of its own (``PYTHONPATH`` set to the tree for distnn), the children taking
turns ``--rounds`` times; a figure is the minimum over every timing of ``--number`` calls (load only adds time).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import timeit

CASES = {
    "Tensor(1.5)": ("Tensor", "1.5"),
    "tensor([3 floats])": ("tensor", "[1.5, 2.5, 3.5]"),
    "tensor([1000 floats])": ("tensor", "[i + 0.5 for i in range(1000)]"),
    "tensor(100x10 floats)": ("tensor", "[[i + 0.5 + j for j in range(10)] for i in range(100)]"),
    "tensor([3 ints])": ("tensor", "[1, 2, 3]"),
    "tensor([1000 ints])": ("tensor", "list(range(1000))"),
    "Tensor(float32 array)": ("Tensor", "np.ones((64, 64), np.float32)"),
    "tensor(float32 array)": ("tensor", "np.ones((64, 64), np.float32)"),
}


def worker(kind: str, number: int, repeats: int) -> dict:
    import numpy as np

    if kind == "numpy":
        makers = {"Tensor": np.asarray, "tensor": np.array}
    elif kind == "torch":
        import torch
        makers = {"Tensor": torch.as_tensor, "tensor": torch.tensor}
    else:
        import distnn
        makers = {"Tensor": distnn.Tensor, "tensor": distnn.tensor}
    out = {}
    for name, (maker, source) in CASES.items():
        data = eval(source, {"np": np})  # noqa: S307 - this file's own expressions
        make = makers[maker]
        out[name] = min(timeit.repeat(lambda: make(data), number=number, repeat=repeats)) / number * 1e6
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trees", nargs="+", default=["."], help="source trees whose distnn to time (default: this one)")
    p.add_argument("--number", type=int, default=2000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.number, args.repeats)))
        return
    columns = [(f"distnn {t}", "distnn", os.path.abspath(t)) for t in args.trees] + [("torch", "torch", None),
                                                                                     ("numpy", "numpy", None)]
    best = {label: {} for label, _, _ in columns}
    for _ in range(args.rounds):
        for label, kind, tree in columns:
            env = dict(os.environ, PYTHONPATH=tree) if tree else dict(os.environ)
            result = subprocess.run([sys.executable, __file__, "--worker", kind, "--number", str(args.number),
                                     "--repeats", str(args.repeats)], env=env, capture_output=True, text=True,
                                    check=True, timeout=600)
            for name, us in json.loads(result.stdout).items():
                best[label][name] = min(us, best[label].get(name, us))
    first = columns[0][0]
    print(f"{'case':24}" + "".join(f"{label[:22]:>24}" for label, _, _ in columns) + "   (us; x: / the first tree)")
    for name in CASES:
        cells = "".join(f"{best[label][name]:11.2f} ({best[label][name] / best[first][name]:5.2f}x)    "
                        for label, _, _ in columns)
        print(f"{name:24}{cells}")


if __name__ == "__main__":
    main()
