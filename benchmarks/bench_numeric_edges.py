"""var_mean (PyTorch's Welford results), float16 prod (PyTorch's order) and cumprod (float32 carried in float64):
distnn vs PyTorch (the peer, one thread: the order distnn copies) vs plain numpy (the floor: ``x.var(), x.mean()``,
``x.prod()``, ``np.cumprod``), each figure the minimum over ``--repeats`` timings of ``--number`` calls.

    python benchmarks/bench_numeric_edges.py                         # this tree's distnn
    python benchmarks/bench_numeric_edges.py --distnn-tree /tmp/old  # another tree's distnn (before/after)

Inputs: 64 x 1024 standard normal values (var_mean, cumprod; every dim and dim 1), 64 x 1024 values near 1
(float16 prod). Forward values only, no graph, but for cumprod's backward with a zero in every row (column 100).
"""
from __future__ import annotations

import sys

import numpy as np
from _row_table import run  # (this folder)

SHAPE = (64, 1024)


def _rows(distnn, torch):
    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.float32, np.float64, np.float16):
        x = rng.standard_normal(SHAPE).astype(dtype)
        xd, xt = distnn.tensor(x), torch.from_numpy(x) if torch else None
        for dim in (None, 1):
            axis = dim if dim is not None else None
            rows.append((f"var_mean {np.dtype(dtype).name} dim={dim}",
                         lambda a=xd, d=dim: distnn.var_mean(a, dim=d),
                         (lambda a=xt, d=dim: torch.var_mean(a, dim=d)) if torch else None,
                         lambda a=x, d=axis: (a.var(axis=d, ddof=1), a.mean(axis=d))))
    near_one = rng.uniform(0.99, 1.01, SHAPE).astype(np.float16)
    xd, xt = distnn.tensor(near_one), torch.from_numpy(near_one) if torch else None
    for dim in (None, 0, 1):
        rows.append((f"prod float16 dim={dim}", lambda a=xd, d=dim: distnn.prod(a) if d is None else distnn.prod(a, d),
                     (lambda a=xt, d=dim: a.prod() if d is None else a.prod(d)) if torch else None,
                     lambda a=near_one, d=dim: a.prod(axis=d)))
    x = rng.uniform(0.5, 2.0, SHAPE).astype(np.float32)
    xd, xt = distnn.tensor(x), torch.from_numpy(x) if torch else None
    rows.append(("cumprod float32 dim=1", lambda: distnn.cumprod(xd, 1),
                 (lambda: torch.cumprod(xt, 1)) if torch else None, lambda: np.cumprod(x, axis=1)))
    # (a zero in every row: the first zero's gradient sums in PyTorch's sum order, replayed; floor: numpy's
    # forward and the backward's reversed cumsum, no zeros handled)
    z = x.copy()
    z[:, 100] = 0
    g = rng.standard_normal(SHAPE).astype(np.float32)
    for dim in (0, 1):
        rows.append((f"cumprod backward zeros dim={dim}", lambda d=dim: _backward(distnn, z, g, d),
                     (lambda d=dim: _backward(torch, z, g, d)) if torch else None,
                     lambda d=dim: np.flip(np.cumsum(np.flip(np.cumprod(z, d) * g, d), d), d)))
    return rows


def _backward(lib, x, g, dim):
    t = lib.tensor(x, requires_grad=True)
    lib.cumprod(t, dim).backward(lib.tensor(g))
    return t.grad


def main(argv=None):
    # (quiet: the old tree's var_mean of float16 may warn of overflow)
    return run(__doc__.splitlines()[0], _rows, "numpy", argv, quiet=True, width=30)


if __name__ == "__main__":
    sys.exit(main())
