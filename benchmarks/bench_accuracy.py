"""Test accuracy of the built-in digits configs on 2 MPI ranks, 3 seeds, next to scikit-learn.

For each config (default: digits_mlp, digits_cnn) and each seed (default 0, 1, 2)
the script runs, as a user would::

    mpiexec -n 2 python -m distnn train --config <config> --set run.seed=<seed> --out <tmp> --quiet

and reads the test accuracy from the run's ``summary.json``. The baseline is
scikit-learn's ``MLPClassifier(hidden_layer_sizes=(128, 64), random_state=seed)``
with its other settings at their defaults (adam, 200 iterations), trained on the
same 1257-sample training split (``data.split_seed = 0``) and scored on the same
360-sample test split, with the features as distnn's digits loader gives them
(pixel values 0..16 divided by 16, not standardized).

Targets (median over the seeds): digits_mlp >= 97.5 %, digits_cnn >= 98.5 %.

Usage::

    python benchmarks/bench_accuracy.py                      # the README's table (a few minutes on 2 cores)
    python benchmarks/bench_accuracy.py --configs digits_mlp --seeds 0
    python benchmarks/bench_accuracy.py --ranks 1 --set train.epochs=20

This measures accuracy, not speed: wall times are printed for information only.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

TARGETS = {"digits_mlp": 0.975, "digits_cnn": 0.985}


def train_one(config: str, seed: int, ranks: int, extra: list, out: str) -> tuple[float, float]:
    """Run ``distnn train`` on ``ranks`` MPI ranks; returns (test accuracy, wall seconds)."""
    from distnn.distributed.launch import mpiexec_command

    args = ["-m", "distnn", "train", "--config", config, "--set", f"run.seed={seed}", "--out", out, "--quiet"]
    for kv in extra:
        args += ["--set", kv]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p))
    t0 = time.perf_counter()
    proc = subprocess.run(mpiexec_command(ranks, args), env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"bench_accuracy: {config} seed {seed} failed (exit {proc.returncode})")
    with open(os.path.join(out, "summary.json")) as f:
        return float(json.load(f)["test_accuracy"]), wall


def sklearn_baseline(seeds) -> list[float] | None:
    """MLPClassifier (128, 64) on digits_mlp's split; None when scikit-learn is missing."""
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
    except ImportError:
        return None
    from distnn.data import load_dataset

    s = load_dataset("digits", split_seed=0, standardize="none")
    accs = []
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # (200 iterations, the default, as in the README)
            clf = MLPClassifier(hidden_layer_sizes=(128, 64), random_state=seed).fit(s.train.x, s.train.y)
        accs.append(float(clf.score(s.test.x, s.test.y)))
    return accs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="digits_mlp,digits_cnn")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                   help="extra config override for every run")
    p.add_argument("--out", default=None, help="keep the run directories here (default: a temporary directory)")
    p.add_argument("--no-sklearn", action="store_true", help="skip the scikit-learn baseline")
    args = p.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.abspath(args.out or tmp)
        for config in configs:
            accs, walls = [], []
            for seed in seeds:
                acc, wall = train_one(config, seed, args.ranks, args.extra, os.path.join(root, f"{config}-seed{seed}"))
                print(f"{config} seed {seed}: test accuracy {100 * acc:.2f} % ({wall:.1f} s)", flush=True)
                accs.append(acc)
                walls.append(wall)
            rows.append((config, accs, walls))
    sk = None if args.no_sklearn else sklearn_baseline(seeds)

    seed_txt = "/".join(map(str, seeds))
    print(f"\ntest accuracy (%), {args.ranks} MPI rank(s), seeds {seed_txt}, overrides {args.extra or 'none'}")
    head = f"{'config':<32} | {'per seed':<24} | {'median':>7} | {'target':<12} | {'wall s (mean)':>13}"
    print(head)
    print("-" * len(head))
    for config, accs, walls in rows:
        med = statistics.median(accs)
        target = TARGETS.get(config)
        verdict = "" if target is None else f">= {100 * target:.1f} {'PASS' if med >= target else 'FAIL'}"
        print(f"{config:<32} | {' / '.join(f'{100 * a:.2f}' for a in accs):<24} | {100 * med:>7.2f} | "
              f"{verdict:<12} | {statistics.fmean(walls):>13.1f}")
    if sk is not None:
        print(f"{'sklearn MLPClassifier (128, 64)':<32} | {' / '.join(f'{100 * a:.2f}' for a in sk):<24} | "
              f"{100 * statistics.median(sk):>7.2f} | {'':<12} | {'':>13}")
    elif not args.no_sklearn:
        print("(scikit-learn not installed: no baseline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
