"""lgamma and digamma on 10^5 float64 elements: distnn vs PyTorch (the peer) vs scipy.special (the floor, the
same arithmetic in compiled loops), each figure the minimum over ``--repeats`` timings of ``--number`` calls
(the minimum: the machine is shared, and load only ever adds time).

    python benchmarks/bench_special_functions.py                         # this tree's distnn
    python benchmarks/bench_special_functions.py --distnn-tree /tmp/old  # another tree's distnn (before/after)

Inputs: ``x > 0`` (uniform on [0.1, 20], the common case: concentrations, counts) and ``x`` of either sign
(uniform on [-20, 20], the reflection taken for half of them). Forward values only, no graph (no grad).
"""
from __future__ import annotations

import sys

import numpy as np
from _row_table import run  # (this folder)

SIZE = 10**5


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


def main(argv=None):
    try:
        from scipy import special
    except ImportError:
        special = None
    return run(__doc__.splitlines()[0], lambda distnn, torch: _rows(distnn, torch, special), "scipy", argv)


if __name__ == "__main__":
    sys.exit(main())
