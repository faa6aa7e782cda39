"""Quality of a K-member ensemble vs its members on digits_mlp (issue 8's quality bar).

For each base seed the script trains one ensemble (members use seeds base..base+K-1,
one after another in this process, exactly as ``distnn train --set ensemble.members=K``
does on one rank) and prints every member's and the ensemble's test accuracy and
negative log-likelihood. The bar, checked per seed and reported at the end:

* the ensemble's test NLL is below the mean of its members' NLLs;
* the ensemble's test accuracy is at least the median member's;
* target: ensemble test accuracy >= 98.3 % (median over the seeds).

Usage::

    python benchmarks/bench_ensemble.py                        # digits_mlp, 4 members, seeds 0 10 20
    python benchmarks/bench_ensemble.py --vary seed,bootstrap --set train.epochs=40
    python benchmarks/bench_ensemble.py --members 8 --seeds 0

This measures accuracy, not speed: wall times are printed for information only.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TARGET = 0.983


def run_one(config, members, seed, vary, extra, root, quiet=True):
    from distnn.train.job import run_training

    overrides = [f"ensemble.members={members}", f"run.seed={seed}", f"ensemble.vary={vary}", *extra]
    out = os.path.join(root, f"seed{seed}")
    t0 = time.perf_counter()
    if quiet:  # the training log goes to stderr: keep only the table
        import contextlib
        import io

        with contextlib.redirect_stderr(io.StringIO()):
            summary = run_training(config, overrides, out=out, quiet=True)
    else:
        summary = run_training(config, overrides, out=out, quiet=False)
    return summary, time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="digits_mlp")
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--seeds", default="0,10,20", help="base seeds (members use base..base+K-1)")
    p.add_argument("--vary", default="seed", help="seed, bootstrap or seed,bootstrap")
    p.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default=None, help="keep the run directories here (default: a temporary directory)")
    p.add_argument("--verbose", action="store_true", help="show the training log")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    vary = "[" + ", ".join(f'"{v.strip()}"' for v in args.vary.split(",") if v.strip()) + "]"

    rows, ok_nll, ok_acc = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or tmp
        for seed in seeds:
            s, wall = run_one(args.config, args.members, seed, vary, args.extra, root, quiet=not args.verbose)
            accs, nlls = s["member_test_accuracy"], s["member_test_loss"]
            med, mean_nll = statistics.median(accs), statistics.fmean(nlls)
            ok_nll.append(s["test_loss"] < mean_nll)
            ok_acc.append(s["test_accuracy"] >= med)
            rows.append((seed, accs, nlls, s["test_accuracy"], s["test_loss"], med, mean_nll, wall))

    K = args.members
    print(f"\n{args.config}: {K}-member ensembles, vary={args.vary}, overrides {args.extra or 'none'}; "
          "test split (accuracy in %, NLL = mean negative log-likelihood)")
    head = (f"{'seed':>5} | " + " ".join(f"{'m' + str(k) + ' acc':>8}" for k in range(K)) +
            f" | {'median':>7} {'ENS acc':>8} {'vs mean':>7} | {'mean NLL':>8} {'ENS NLL':>8} {'reduct.':>8} | "
            f"{'wall s':>6}")
    print(head)
    print("-" * len(head))
    for seed, accs, nlls, eacc, enll, med, mnll, wall in rows:
        print(f"{seed:>5} | " + " ".join(f"{100 * a:>8.2f}" for a in accs) +
              f" | {100 * med:>7.2f} {100 * eacc:>8.2f} {100 * (eacc - statistics.fmean(accs)):>+7.2f} | "
              f"{mnll:>8.4f} {enll:>8.4f} {mnll - enll:>8.4f} | {wall:>6.1f}")
    ens_accs = [r[3] for r in rows]
    member_all = [a for r in rows for a in r[1]]
    med_ens = statistics.median(ens_accs)
    print("-" * len(head))
    print(f"median over seeds: ensemble accuracy {100 * med_ens:.2f}% (members' median "
          f"{100 * statistics.median(member_all):.2f}%), ensemble NLL {statistics.median(r[4] for r in rows):.4f} "
          f"(members' mean {statistics.median(r[6] for r in rows):.4f})")
    print(f"ensemble NLL < mean member NLL:        {sum(ok_nll)}/{len(rows)} seeds  "
          f"{'PASS' if all(ok_nll) else 'FAIL'}")
    print(f"ensemble accuracy >= median member's:  {sum(ok_acc)}/{len(rows)} seeds  "
          f"{'PASS' if all(ok_acc) else 'FAIL'}")
    print(f"ensemble accuracy >= {100 * TARGET:.1f}% (median of seeds): {100 * med_ens:.2f}%  "
          f"{'PASS' if med_ens >= TARGET else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
