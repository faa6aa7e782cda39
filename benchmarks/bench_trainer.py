"""Trainer overhead: ``Trainer.fit`` vs a bare step loop doing the same work.

Both train the same model (an MLP on the digits: hidden 128-64 by default,
``--hidden 256 128`` for digits_mlp's shape) on the
same standardized digits data with the same optimizer and batch size, one
process. The bare loop is the floor: permute, slice, standardize, forward,
cross-entropy, backward, step. The trainer adds its bookkeeping (sampler and
loader, padding masks, per-step accuracy, epoch metrics) with no callbacks and
no validation. Blocks of epochs of the two alternate so machine load hits
both alike; the median per-epoch time of each is reported with the ratio.

With ``--dropout P`` both models have dropout: the bare loop draws its masks
from distnn's default generator (one stream per rank, as PyTorch's DDP), the
trainer per sample (counter-based masks that are the same on any number of
ranks), so the overhead includes what world-size invariant masks cost.

    OMP_NUM_THREADS=1 python benchmarks/bench_trainer.py [--epochs 40] [--batch 64] [--dropout 0.1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import distnn
import distnn.functional as F
from distnn.data import build_transforms, load_dataset
from distnn.distributed import LocalCommunicator
from distnn.models import build_model
from distnn.optim import Adam
from distnn.train.trainer import Trainer


def make(splits, hidden, dropout=0.0):
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=hidden, dropout=dropout, input_shape=splits.input_shape,
                        num_classes=splits.num_classes)
    return model, Adam(model.parameters(), lr=1e-3)


def bare_epoch(model, opt, x, y, transform, batch, epoch):
    """The floor: the minimum a training epoch must do."""
    model.train()
    order = np.random.default_rng([0, epoch]).permutation(len(x))
    for s in range(0, len(x), batch):
        idx = order[s:s + batch]
        xb = transform(x[idx], None)
        loss = F.cross_entropy(model(distnn.Tensor(xb)), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=40, help="timed epochs of each (after one warm-up block)")
    ap.add_argument("--block", type=int, default=1, help="epochs per fit() call / timed block")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    ap.add_argument("--dropout", type=float, default=0.0, help="dropout after each hidden layer (both)")
    args = ap.parse_args()
    if args.block < 1 or args.epochs < args.block:
        ap.error(f"--epochs ({args.epochs}) must be at least --block ({args.block}), which must be >= 1: "
                 "one warm-up block, then at least one timed block")
    splits = load_dataset("digits")
    train_tf, _ = build_transforms(splits)
    x, y = splits.train.x, splits.train.y

    bm, bopt = make(splits, args.hidden, args.dropout)
    tm, topt = make(splits, args.hidden, args.dropout)
    trainer = Trainer(tm, topt, splits.train, None, comm=LocalCommunicator(), batch_size=args.batch, epochs=0,
                      transform=train_tf, seed=0)
    bare_times, trainer_times = [], []
    block = args.block  # epochs per timed block; blocks of the two alternate so machine load hits both alike
    done = 0
    for b in range(args.epochs // block + 1):  # the first block of each is warm-up
        t0 = time.perf_counter()
        for e in range(block):
            bare_epoch(bm, bopt, x, y, train_tf, args.batch, done + e)
        t1 = time.perf_counter()
        trainer.epochs = done + block
        trainer.fit()
        t2 = time.perf_counter()
        done += block
        if b:
            bare_times.append((t1 - t0) / block)
            trainer_times.append((t2 - t1) / block)
    bare, tr = statistics.median(bare_times), statistics.median(trainer_times)
    # Load from other processes inflates both at random; the per-pair ratio (neighbouring blocks) and the
    # fastest block of each are steadier than either median alone.
    pair = statistics.median(t / b for t, b in zip(trainer_times, bare_times))
    steps = trainer.steps_per_epoch
    print(f"digits MLP {[64] + args.hidden + [10]}, dropout {args.dropout}, batch {args.batch}, {len(x)} samples, "
          f"{steps} steps/epoch, "
          f"{len(trainer_times) * block} timed epochs in blocks of {block} (after a warm-up block)")
    print(f"bare step loop : median {bare * 1e3:8.2f} ms/epoch  ({bare / steps * 1e6:7.1f} us/step), "
          f"min {min(bare_times) * 1e3:8.2f} ms")
    print(f"Trainer.fit    : median {tr * 1e3:8.2f} ms/epoch  ({tr / steps * 1e6:7.1f} us/step), "
          f"min {min(trainer_times) * 1e3:8.2f} ms")
    print(f"overhead       : {(pair - 1) * 100:+.1f}% (median of paired ratios {pair:.3f}; "
          f"ratio of minima {min(trainer_times) / min(bare_times):.3f})")


if __name__ == "__main__":
    main()
