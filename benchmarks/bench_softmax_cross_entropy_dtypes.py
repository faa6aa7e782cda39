"""softmax and weighted cross-entropy in float32 and float16: distnn vs PyTorch (the peer, one thread) vs plain
numpy (the floor: the same formula in float32 arrays), each figure the minimum over ``--repeats`` timings of
``--number`` calls. Guards the float32 paths while the float16 ones copy PyTorch's roundings.

    python benchmarks/bench_softmax_cross_entropy_dtypes.py                         # this tree's distnn
    python benchmarks/bench_softmax_cross_entropy_dtypes.py --distnn-tree /tmp/old  # another tree's (before/after)

Inputs: logits 512 x 100 (softmax over dim 1 and dim 0; a 16 x 10 one for the per-call cost), weighted
'mean' cross-entropy forward and backward on 2048 x 100 with 10 % of targets ignored.
"""
from __future__ import annotations

import importlib
import sys

import numpy as np
from _row_table import run  # (this folder)


def _numpy_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _numpy_weighted_ce(x, y, w):
    """Forward and backward of the weighted 'mean' loss, float32 (the arithmetic either library must do)."""
    kept = y != -100
    t = np.where(kept, y, 0)
    p = _numpy_softmax(x, 1)
    w_t = w[t] * kept
    total = w_t.sum()
    loss = -(np.log(p[np.arange(len(t)), t]) * w_t).sum() / total
    p[np.arange(len(t)), t] -= 1
    return loss, p * (w_t / total)[:, None]


def _rows(distnn, torch):
    F = importlib.import_module("distnn.functional")
    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.float32, np.float16):
        name = np.dtype(dtype).name
        for shape, dim in (((512, 100), 1), ((512, 100), 0), ((16, 10), 1)):
            x = (rng.standard_normal(shape) * 3).astype(dtype)
            xd, xt, x32 = distnn.tensor(x), torch.from_numpy(x) if torch else None, x.astype(np.float32)
            rows.append((f"softmax {name} {shape[0]}x{shape[1]} dim={dim}",
                         lambda a=xd, d=dim: F.softmax(a, dim=d),
                         (lambda a=xt, d=dim: torch.softmax(a, d)) if torch else None,
                         lambda a=x32, d=dim: _numpy_softmax(a, d)))
        x = (rng.standard_normal((2048, 100)) * 3).astype(dtype)
        y = np.where(rng.random(2048) < 0.1, -100, rng.integers(0, 100, 2048))
        w = rng.uniform(0.2, 3, 100).astype(dtype)

        def ours(x=x, y=y, w=w):
            xd = distnn.tensor(x, requires_grad=True)
            F.cross_entropy(xd, distnn.tensor(y), weight=distnn.tensor(w)).backward()

        def theirs(x=x, y=y, w=w):
            xt = torch.from_numpy(x).requires_grad_()
            torch.nn.functional.cross_entropy(xt, torch.from_numpy(y), weight=torch.from_numpy(w)).backward()

        rows.append((f"weighted CE fwd+bwd {name}", ours, theirs if torch else None,
                     lambda a=x.astype(np.float32), b=y, c=w.astype(np.float32): _numpy_weighted_ce(a, b, c)))
    return rows


def main(argv=None):
    return run(__doc__.splitlines()[0], _rows, "numpy", argv, quiet=True, width=34)


if __name__ == "__main__":
    sys.exit(main())
