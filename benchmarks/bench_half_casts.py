"""float64 into float16 (PyTorch's two roundings, through float32): distnn vs PyTorch (the peer, one thread) vs plain
numpy (the floor: its one-rounding cast, assignment or op), each figure the minimum over ``--repeats`` timings of
``--number`` calls.

    python benchmarks/bench_half_casts.py                         # this tree's distnn
    python benchmarks/bench_half_casts.py --distnn-tree /tmp/old  # another tree's distnn (before/after)

Inputs: 64 x 1024 standard normal float64 values (the casts), a float16 tensor of that shape (the Python-float
ops: ``x + 0.1``, ``fill_(0.1)``, ``clamp(min=0.1)``), and 16 values (the per-call cost of the small casts).
"""
from __future__ import annotations

import sys

import numpy as np
from _row_table import run  # (this folder)

SHAPE = (64, 1024)


def _rows(distnn, torch):
    rng = np.random.default_rng(0)
    rows = []
    for shape in (SHAPE, (16,)):
        x = rng.standard_normal(shape)
        xd, xt = distnn.tensor(x), torch.from_numpy(x) if torch else None
        hd = distnn.zeros(*shape, dtype=distnn.float16)
        ht = torch.zeros(*shape, dtype=torch.float16) if torch else None
        h = np.zeros(shape, np.float16)
        size = "x".join(map(str, shape))
        rows.append((f"half() float64 {size}", lambda a=xd: a.half(), (lambda a=xt: a.half()) if torch else None,
                     lambda a=x: a.astype(np.float16)))
        rows.append((f"copy_ float64->16 {size}", lambda d=hd, a=xd: d.copy_(a),
                     (lambda d=ht, a=xt: d.copy_(a)) if torch else None, lambda d=h, a=x: np.copyto(d, a, "unsafe")))
        rows.append((f"tensor(f64, dtype=f16) {size}", lambda a=x: distnn.tensor(a, dtype=distnn.float16),
                     (lambda a=x: torch.tensor(a, dtype=torch.float16)) if torch else None,
                     lambda a=x: np.array(a, dtype=np.float16)))
        rows.append((f"float16 + 0.1 {size}", lambda d=hd: d + 0.1, (lambda d=ht: d + 0.1) if torch else None,
                     lambda d=h: d + 0.1))
        rows.append((f"float16 fill_(0.1) {size}", lambda d=hd: d.fill_(0.1),
                     (lambda d=ht: d.fill_(0.1)) if torch else None, lambda d=h: d.fill(0.1)))
        rows.append((f"float16 clamp(min=0.1) {size}", lambda d=hd: d.clamp(min=0.1),
                     (lambda d=ht: d.clamp(min=0.1)) if torch else None, lambda d=h: np.maximum(d, 0.1)))
    return rows


def main(argv=None):
    return run(__doc__.splitlines()[0], _rows, "numpy", argv, quiet=True, width=32)


if __name__ == "__main__":
    sys.exit(main())
