"""Trainer overhead: ``Trainer.fit`` vs a bare step loop doing the same work.

Both train the same model (digits MLP, the built-in digits_mlp shape) on the
same standardized digits data with the same optimizer and batch size, one
process. The bare loop is the floor: permute, slice, standardize, forward,
cross-entropy, backward, step. The trainer adds its bookkeeping (sampler and
loader, padding masks, per-step accuracy, epoch metrics) with no callbacks and
no validation. Epochs of the two alternate so machine load hits both alike;
the median epoch time of each is reported with the ratio.

    OMP_NUM_THREADS=1 python benchmarks/bench_trainer.py [--epochs 15] [--batch 64]
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


def make(splits, hidden):
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=hidden, input_shape=splits.input_shape, num_classes=splits.num_classes)
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
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    args = ap.parse_args()
    splits = load_dataset("digits")
    train_tf, _ = build_transforms(splits)
    x, y = splits.train.x, splits.train.y

    bm, bopt = make(splits, args.hidden)
    tm, topt = make(splits, args.hidden)
    trainer = Trainer(tm, topt, splits.train, None, comm=LocalCommunicator(), batch_size=args.batch, epochs=0,
                      transform=train_tf, seed=0)
    bare_times, trainer_times = [], []
    for epoch in range(args.epochs + 2):  # the first 2 epochs of each are warm-up
        t0 = time.perf_counter()
        bare_epoch(bm, bopt, x, y, train_tf, args.batch, epoch)
        t1 = time.perf_counter()
        trainer.epochs = epoch + 1
        trainer.fit()
        t2 = time.perf_counter()
        if epoch >= 2:
            bare_times.append(t1 - t0)
            trainer_times.append(t2 - t1)
    bare, tr = statistics.median(bare_times), statistics.median(trainer_times)
    steps = trainer.steps_per_epoch
    print(f"digits MLP {[64] + args.hidden + [10]}, batch {args.batch}, {len(x)} samples, {steps} steps/epoch, "
          f"{args.epochs} timed epochs (median)")
    print(f"bare step loop : {bare * 1e3:8.2f} ms/epoch  ({bare / steps * 1e6:7.1f} us/step)")
    print(f"Trainer.fit    : {tr * 1e3:8.2f} ms/epoch  ({tr / steps * 1e6:7.1f} us/step)")
    print(f"overhead       : {(tr / bare - 1) * 100:+.1f}% of the bare epoch time (ratio {tr / bare:.3f})")


if __name__ == "__main__":
    main()
