"""Trainer overhead: ``Trainer.fit`` vs a bare step loop doing the same work, with PyTorch's loop as the peer.

All three train the same model (an MLP on the digits: hidden 128-64 by default, ``--hidden 256 128`` for
digits_mlp's shape) from the same initial weights on the same standardized digits batches with Adam and the
same batch size, one process, one thread:

* the bare loop (the floor): permute, slice, standardize, forward, cross-entropy, backward, step, and the
  epoch's mean loss and accuracy that the trainer reports (each step's loss as a float, an argmax and a
  count: a loop that reports them must do that much; ``--floor-without-metrics`` leaves them out, the
  floor of this benchmark's earlier figures);
* ``Trainer.fit``: the same plus its bookkeeping (sampler and loader, padding masks, per-sample random
  generators, step counters and times), no callbacks and no validation;
* PyTorch's plain loop (the peer): the bare loop in torch (``torch.nn``, ``torch.optim.Adam``), with the same
  loss and accuracy sums (``loss.item()``, an argmax) unless ``--floor-without-metrics``.

The floor's order is the trainer's sampler's (the same seed), so without dropout the two train the same
batches with the same math: the run checks that their final weights are bit for bit equal and their epoch
losses and accuracies the same, and prints whether they were ("same work").

Made for a loaded, shared machine: the three run in rounds, one block of epochs each per round, in an order
that rotates every round, so load from other processes lands on all alike. Each is timed by the wall clock
and by the process's CPU time (``time.process_time``: time spent waiting for a core is not in it, so other
jobs disturb it far less). The overhead is the median over rounds of the paired ratio Trainer / bare loop
(neighbouring blocks of the same round), with its interquartile range, and the median paired difference
in microseconds a step. ``os.getloadavg()`` is printed before and after.

``--trees OLD NEW``: the same, for the distnn of each source tree (``PYTHONPATH`` set to it, this script
unchanged), in child processes that take turns ``--runs`` times; their rounds are pooled per tree.

With ``--dropout P`` the models have dropout: the bare loop draws its masks from distnn's default generator
(one stream per rank, as PyTorch's DDP), the trainer per sample (counter-based masks that are the same on any
number of ranks), so the overhead includes what world-size invariant masks cost.

    OMP_NUM_THREADS=1 python benchmarks/bench_trainer.py [--rounds 60] [--batch 64] [--dropout 0.1]
    OMP_NUM_THREADS=1 python benchmarks/bench_trainer.py --trees /tmp/old-main . --runs 4
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tree_first():
    """Import distnn from ``--tree`` (a child of ``--trees``) or from the tree this script is in, not from
    whichever tree the environment's editable install points at."""
    tree = sys.argv[sys.argv.index("--tree") + 1] if "--tree" in sys.argv else HERE
    sys.path.insert(0, os.path.abspath(tree))


_tree_first()

import numpy as np  # noqa: E402

import distnn  # noqa: E402
import distnn.functional as F  # noqa: E402
from distnn.data import build_transforms, load_dataset  # noqa: E402
from distnn.distributed import LocalCommunicator  # noqa: E402
from distnn.models import build_model  # noqa: E402
from distnn.optim import Adam  # noqa: E402
from distnn.train.trainer import Trainer  # noqa: E402


def make(splits, hidden, dropout=0.0):
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=hidden, dropout=dropout, input_shape=splits.input_shape,
                        num_classes=splits.num_classes)
    return model, Adam(model.parameters(), lr=1e-3)


def bare_epoch(model, opt, x, y, transform, batch, epoch, metrics=True):
    """The floor: the minimum a training epoch must do, and with ``metrics`` (the default) the epoch's mean
    loss and accuracy that ``Trainer.fit`` reports (a float of each step's loss, an argmax and a count);
    returns them (None without ``metrics``)."""
    model.train()
    order = np.random.default_rng([0, epoch]).permutation(len(x))
    loss_sum, correct, count = 0.0, 0, 0
    for s in range(0, len(x), batch):
        idx = order[s:s + batch]
        xb, yb = transform(x[idx], None), y[idx]
        out = model(distnn.Tensor(xb))
        loss = F.cross_entropy(out, yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if metrics:
            loss_sum += float(loss.data) * len(yb)
            correct += int(np.count_nonzero(out.data.argmax(-1) == yb))
            count += len(yb)
    return (loss_sum / count, correct / count) if metrics else None


class TorchLoop:
    """The peer: PyTorch's plain loop over the same batches, from the distnn model's initial weights."""

    def __init__(self, torch, model, hidden, dropout, x, y, transform, batch):
        self.torch, self.x, self.y, self.transform, self.batch = torch, x, y, transform, batch
        nn, layers, width = torch.nn, [], x.shape[1]
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
            width = h
        self.model = nn.Sequential(*layers, nn.Linear(width, int(y.max()) + 1))
        ours = [p for _, p in model.named_parameters()]
        with torch.no_grad():
            for p, q in zip(self.model.parameters(), ours, strict=True):
                p.copy_(torch.from_numpy(np.asarray(q.data)))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.y_t = torch.from_numpy(y)

    def epoch(self, epoch, metrics=True):
        F_t, model, opt = self.torch.nn.functional, self.model, self.opt
        model.train()
        order = np.random.default_rng([0, epoch]).permutation(len(self.x))
        loss_sum, correct, count = 0.0, 0, 0
        for s in range(0, len(self.x), self.batch):
            idx = order[s:s + self.batch]
            xb, yb = self.torch.from_numpy(self.transform(self.x[idx], None)), self.y_t[idx]
            out = model(xb)
            loss = F_t.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if metrics:  # (as the floor: what a loop that reports its epoch's loss and accuracy does)
                loss_sum += loss.item() * len(yb)
                correct += int((out.argmax(-1) == yb).sum())
                count += len(yb)
        return (loss_sum / count, correct / count) if metrics else None


def measure(args) -> dict:
    """Rounds of the three, rotating; per round and implementation: (wall, cpu) seconds a epoch."""
    splits = load_dataset("digits")
    train_tf, _ = build_transforms(splits)
    x, y = splits.train.x, splits.train.y
    bm, bopt = make(splits, args.hidden, args.dropout)
    tm, topt = make(splits, args.hidden, args.dropout)
    trainer = Trainer(tm, topt, splits.train, None, comm=LocalCommunicator(), batch_size=args.batch, epochs=0,
                      transform=train_tf, seed=0)
    block, done = args.block, {"bare": 0, "trainer": 0, "torch": 0}
    metrics = not args.floor_without_metrics
    bare_logs = []

    def run_bare():
        for e in range(block):
            bare_logs.append(bare_epoch(bm, bopt, x, y, train_tf, args.batch, done["bare"] + e, metrics))

    def run_trainer():
        trainer.epochs = done["trainer"] + block
        trainer.fit()

    impls = {"bare": run_bare, "trainer": run_trainer}
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            torch = None
        if torch is not None:
            torch.set_num_threads(1)
            pm, _ = make(splits, args.hidden, args.dropout)
            peer = TorchLoop(torch, pm, args.hidden, args.dropout, x, y, train_tf, args.batch)

            def run_torch():
                for e in range(block):
                    peer.epoch(done["torch"] + e, metrics)

            impls["torch"] = run_torch
    names = list(impls)
    times = {k: [] for k in names}
    for r in range(args.rounds + 1):  # round 0 is warm-up
        order = names[r % len(names):] + names[:r % len(names)]
        for k in (order if r % 2 == 0 else order[::-1]):
            w0, c0 = time.perf_counter(), time.process_time()
            impls[k]()
            w1, c1 = time.perf_counter(), time.process_time()
            done[k] += block
            if r:
                times[k].append(((w1 - w0) / block, (c1 - c0) / block))
    return {"times": times, "steps": trainer.steps_per_epoch, "samples": len(x), "distnn": distnn.__file__,
            "same_work": same_work(bm, tm, bare_logs, trainer.history, args.dropout, metrics)}


def same_work(bare_model, trainer_model, bare_logs, history, dropout, metrics) -> str:
    """Whether the floor did the trainer's work: the same batches (its permutation is the sampler's, seed 0)
    and the same math give the same weights bit for bit, and the same epoch losses and accuracies."""
    if dropout:
        return "not checked (dropout: the floor draws per-rank masks, the trainer per-sample ones)"
    ours = [p.data for p in trainer_model.parameters()]
    if not all(np.array_equal(a, b.data) for a, b in zip(ours, bare_model.parameters(), strict=True)):
        return "NO: the final weights differ"
    if metrics and [(h["train_loss"], h["train_accuracy"]) for h in history] != bare_logs:
        return "NO: the weights agree but the epoch losses or accuracies differ"
    return "yes: final weights bit for bit equal" + (", and every epoch's loss and accuracy" if metrics else
                                                      " (the floor computes no metrics: --floor-without-metrics)")


def quartiles(values):
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], q[1], q[2]


def report(label, result, args):
    """Print one tree's (or the run's) figures: medians, paired ratios, differences a step."""
    times, steps = result["times"], result["steps"]
    print(f"{label}: distnn from {os.path.dirname(os.path.dirname(result['distnn']))}, "
          f"{len(times['bare'])} rounds of {args.block} epoch(s) each")
    checks = result["same_work"] if isinstance(result["same_work"], list) else [result["same_work"]]
    print(f"  same work in the floor as in Trainer.fit: {'; '.join(sorted(set(checks)))}")
    for col, i in (("wall", 0), ("cpu", 1)):
        med = {k: statistics.median(t[i] for t in v) for k, v in times.items()}
        for k in times:
            print(f"  {col:4} {k:8}: median {med[k] * 1e3:8.3f} ms/epoch ({med[k] / steps * 1e6:7.1f} us/step)")
        ratios = [t[i] / b[i] for t, b in zip(times["trainer"], times["bare"])]
        lo, mid, hi = quartiles(ratios)
        diff = statistics.median((t[i] - b[i]) / steps for t, b in zip(times["trainer"], times["bare"]))
        line = (f"  {col:4} trainer overhead: {(mid - 1) * 100:+.1f}% (median paired ratio {mid:.3f}, "
                f"quartiles {lo:.3f}-{hi:.3f}; {diff * 1e6:+.1f} us/step)")
        if "torch" in times:
            pt = statistics.median(t[i] / p[i] for t, p in zip(times["trainer"], times["torch"]))
            pb = statistics.median(b[i] / p[i] for b, p in zip(times["bare"], times["torch"]))
            line += f"; vs PyTorch: trainer {pt:.3f}x, bare {pb:.3f}x"
        print(line)


def pooled(results):
    """Rounds of several runs of one tree, together."""
    times = {k: [t for r in results for t in r["times"][k]] for k in results[0]["times"]}
    return {**results[0], "times": times, "same_work": [r["same_work"] for r in results]}


def child(args, tree) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--json", "--tree", tree, "--rounds", str(args.rounds),
           "--block", str(args.block), "--batch", str(args.batch), "--dropout", str(args.dropout),
           "--hidden", *map(str, args.hidden)] + (["--no-torch"] if args.no_torch else []) + (
        ["--floor-without-metrics"] if args.floor_without_metrics else [])
    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=60, help="timed rounds (after one warm-up round)")
    ap.add_argument("--epochs", type=int, default=None, help=argparse.SUPPRESS)  # (the old name of --rounds)
    ap.add_argument("--block", type=int, default=1, help="epochs per fit() call / timed block")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--hidden", type=int, nargs="+", default=[128, 64])
    ap.add_argument("--dropout", type=float, default=0.0, help="dropout after each hidden layer (all three)")
    ap.add_argument("--no-torch", action="store_true", help="leave out the PyTorch peer")
    ap.add_argument("--floor-without-metrics", action="store_true",
                    help="the floor and the peer without the epoch loss and accuracy the trainer reports "
                         "(this benchmark's floor before session 39, for comparison with earlier figures)")
    ap.add_argument("--trees", nargs="+", default=None, help="compare distnn of these source trees, alternating")
    ap.add_argument("--runs", type=int, default=3, help="with --trees: child processes per tree, taking turns")
    ap.add_argument("--tree", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.epochs is not None:
        args.rounds = max(1, args.epochs // args.block)
    if args.block < 1 or args.rounds < 1:
        ap.error(f"--block ({args.block}) and --rounds ({args.rounds}) must be >= 1")
    if args.json:
        print(json.dumps(measure(args)))
        return
    load0 = os.getloadavg()
    print(f"digits MLP {[64] + args.hidden + [10]}, dropout {args.dropout}, batch {args.batch}, one thread; "
          f"load average before: {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    if args.trees:
        runs = {t: [] for t in args.trees}
        for r in range(args.runs):
            for t in (args.trees if r % 2 == 0 else args.trees[::-1]):  # (each tree first half the time)
                runs[t].append(child(args, t))
        for t in args.trees:
            report(t, pooled(runs[t]), args)
    else:
        result = measure(args)
        print(f"{result['samples']} samples, {result['steps']} steps/epoch")
        report("this run", result, args)
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")


if __name__ == "__main__":
    main()
