"""``distnn train --check``: refuse a bad job before it is queued (see :mod:`distnn.train.job_check`).

It takes ``train``'s arguments and runs ``train``'s own argument handling and set-up, for the number of
ranks the job will have, in this one process: no MPI, no launcher, nothing written. It prints a summary and
exits 0, or prints the one-line error ``train`` would print and exits 2. What only the job's hosts can check
(a GPU, data files on their own disks) is a "not checked on this host" line of the summary, or, with
``--check-strict``, refused as ``train`` here would.
"""
from __future__ import annotations

import os

from distnn.cli_common import _launcher_rank

#: the number of tasks of the SLURM allocation this process runs in (salloc -n N, or inside a batch script):
#: what a plain srun there starts
SLURM_TASKS_ENV = "SLURM_NTASKS"


def check_ranks(args) -> tuple[int, str]:
    """The number of ranks the checked job will have, and where that number comes from: ``--check-ranks N``;
    else ``--simulate-ranks N``; else, under an MPI launcher, the ranks it started; else, inside a SLURM
    allocation, its tasks (``SLURM_NTASKS``: what srun starts there); else 1, as ``train`` alone runs."""
    from distnn._launcher_env import launcher_env
    from distnn.train.job import JobError

    if args.check_ranks is not None:
        if args.simulate_ranks is not None and args.simulate_ranks != args.check_ranks:
            raise JobError(f"--check-ranks {args.check_ranks} and --simulate-ranks {args.simulate_ranks} name "
                           "different numbers of ranks: give one", report=_launcher_rank() == 0)
        return args.check_ranks, "--check-ranks"
    if args.simulate_ranks is not None:
        return max(1, args.simulate_ranks), "--simulate-ranks"
    launched = launcher_env()
    if launched is not None and launched[2] > 1:
        return launched[2], f"the MPI launcher ({launched[1]})"
    tasks = os.environ.get(SLURM_TASKS_ENV, "")
    if tasks.isdigit() and int(tasks) >= 1:
        return int(tasks), f"the SLURM allocation ({SLURM_TASKS_ENV})"
    return 1, "one process (give --check-ranks N for a job of N ranks)"


def cmd_check(args) -> int:
    """``train --check``: the check's summary on stdout (from the launcher's rank 0 only), status 0."""
    from distnn.cli_train import train_arguments
    from distnn.train.job_check import check_training, summary_lines

    config, overrides = train_arguments(args)  # (train's own usage errors first)
    ranks, source = check_ranks(args)
    if _launcher_rank() != 0:  # under a launcher one process checks for them all
        return 0
    summary = check_training(config, overrides, out=args.out, ranks=ranks, quiet=args.quiet,
                             strict=args.check_strict)
    lines = summary_lines(summary)
    lines[2] += f" [ranks from {source}]"
    print("\n".join(lines), flush=True)
    return 0
