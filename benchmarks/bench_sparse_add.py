"""Sparse + sparse of two uncoalesced COO tensors (an embedding gradient accumulated over micro-batches):
distnn vs PyTorch's CPU kernel (the peer, whose entry order distnn reproduces) vs a plain numpy concatenate of
the indices and values (the floor: what distnn did before, no order computed).

    python benchmarks/bench_sparse_add.py                 # 10^5 entries per operand, rows of 16 floats
    python benchmarks/bench_sparse_add.py --nnz 20000 --dim 0
    python benchmarks/bench_sparse_add.py --backward      # the backward of sparse.sum(a + b), a a sparse leaf

``--backward`` times ``sparse.sum(a + b).backward()`` (forward and backward: PyTorch's ``sparse.sum`` coalesces
in its forward what the backward reuses) with ``a`` a sparse leaf: PyTorch gives ``a`` the sum's whole gradient
(its distinct indices, in order), as distnn does (``distnn.sparse.layout_grads``; the last column says whether
the leaf's gradient has PyTorch's indices); the floor is numpy's ``unique`` of both operands' keys (the sum's
distinct indices, which that gradient needs).

Each figure is the minimum over ``--repeats`` timings of one addition (the machine is shared, and load only
ever adds time); the three implementations take turns within each repeat. The key orders: rows drawn from a
vocabulary of V (repeats within and across the operands), an operand added to a copy of itself, and two
sorted operands; and an adversarial order (decreasing runs that differ between the operands) where distnn
falls back to walking the entries one by one.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # (this tree's distnn)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nnz", type=int, default=100_000, help="entries per operand (default 100000)")
    p.add_argument("--dim", type=int, default=16, help="dense size of each entry, 0 for scalars (default 16)")
    p.add_argument("--repeats", type=int, default=15, help="timings per case; the minimum is reported")
    p.add_argument("--backward", action="store_true", help="time the backward of sparse.sum(a + b), a a leaf")
    return p.parse_args(argv)


def cases(nnz, seed=0):
    rng = np.random.default_rng(seed)
    for vocab in (100, 10_000, 1_000_000):
        yield f"vocab {vocab:,}", vocab, rng.integers(0, vocab, nnz), rng.integers(0, vocab, nnz)
    keys = rng.integers(0, 10_000, nnz)
    yield "a + a, vocab 10,000", 10_000, keys, keys.copy()
    yield "both sorted, vocab 10^6", 1_000_000, np.sort(rng.integers(0, 10**6, nnz)), \
        np.sort(rng.integers(0, 10**6, nnz))
    down = np.arange(nnz, 0, -1)  # (adversarial: the levels hand over to the entry-by-entry walk)
    yield "adversarial (walked)", nnz + 1, down, np.stack([down, np.zeros(nnz, np.int64)], 1).ravel()[:nnz]


def timed(fn, out):
    """Time one call of ``fn`` into ``out``."""
    start = time.perf_counter()
    fn()
    out.append(time.perf_counter() - start)


def backward_times(da, db, ta, tb, ka, kb, times):
    """One timing each of ``sparse.sum(a + b).backward()`` (``a`` a fresh sparse leaf) in distnn and torch, and
    of the floor; notes whether the leaves' gradients have the same indices."""
    import torch

    import distnn

    a = distnn.sparse_coo_tensor(da._idx, da._vals.data, da.shape, requires_grad=True)
    ta2 = torch.sparse_coo_tensor(ta._indices(), ta._values(), ta.shape, requires_grad=True)
    timed(lambda: distnn.sparse.sum(a + db).backward(), times["distnn"])
    timed(lambda: torch.sparse.sum(ta2 + tb).backward(), times["torch"])
    timed(lambda: np.unique(np.concatenate([ka, kb]), return_index=True), times["numpy"])
    mine, theirs = a.grad._indices().numpy(), ta2.grad._indices().numpy()
    times["same"] = mine.shape == theirs.shape and bool((mine == theirs).all())


def main(argv=None):
    args = parse_args(argv)
    import torch

    import distnn

    warnings.filterwarnings("ignore", "Sparse invariant checks")
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    shape = (args.nnz,) + ((args.dim,) if args.dim else ())
    what = "backward of sparse.sum(a + b), a a leaf," if args.backward else "sparse + sparse,"
    print(f"{what} two uncoalesced operands of {args.nnz:,} entries, values {shape[1:] or 'scalars'} "
          f"float32; min of {args.repeats}")
    floor = "np.unique" if args.backward else "numpy cat"
    same = f" {'torch layout':>12s}" if args.backward else ""
    print(f"{'keys':26s} {'distnn':>9s} {'torch':>9s} {floor:>10s} {'vs torch':>9s} {'vs floor':>9s}{same}")
    for name, vocab, ka, kb in cases(args.nnz):
        va, vb = rng.standard_normal(shape, dtype=np.float32), rng.standard_normal(shape, dtype=np.float32)
        size = (vocab,) + shape[1:]
        da = distnn.sparse_coo_tensor(ka[None], distnn.tensor(va), size)
        db = distnn.sparse_coo_tensor(kb[None], distnn.tensor(vb), size)
        ta = torch.sparse_coo_tensor(torch.from_numpy(ka[None]), torch.from_numpy(va), size)
        tb = torch.sparse_coo_tensor(torch.from_numpy(kb[None]), torch.from_numpy(vb), size)
        ia, ib = ka[None].astype(np.int64), kb[None].astype(np.int64)
        di, ti = (da + db)._indices().numpy(), (ta + tb)._indices().numpy()
        assert np.array_equal(di, ti), (di.shape, ti.shape, di[:, :8], ti[:, :8])  # (the same result)
        times = {"distnn": [], "torch": [], "numpy": []}
        for _ in range(args.repeats if args.backward else 0):
            backward_times(da, db, ta, tb, ka, kb, times)
        for _ in range(0 if args.backward else args.repeats):
            timed(lambda: da + db, times["distnn"])
            timed(lambda: ta + tb, times["torch"])
            timed(lambda: (np.concatenate([ia, ib], 1), np.concatenate([va, vb])), times["numpy"])
        d, t, f = (min(times[k]) * 1e3 for k in ("distnn", "torch", "numpy"))
        same = f" {'yes' if times['same'] else 'no':>12s}" if args.backward else ""
        print(f"{name:26s} {d:7.2f}ms {t:7.2f}ms {f:8.2f}ms {d / t:8.2f}x {d / f:8.1f}x{same}")


if __name__ == "__main__":
    main()
