"""Run every bad-input case of tests/cli_cases.py (BAD) through ``distnn.cli.main`` on each MPI rank.

Launched by tests/test_cli_mpi.py as ``mpiexec -n 2 python tests/mpi_cli_driver.py TMPDIR``.
Each case runs on every rank; some are hit by all ranks, some by rank 1 only
(a per-rank data path ``d_{rank}.csv``). Rank 0 creates the files and
broadcasts the arguments. Every rank writes ``TMPDIR/result-RANK.json`` with
its exit status and captured stderr per case.
"""
import contextlib
import io
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from distnn.cli import main  # noqa: E402
from distnn.distributed import init  # noqa: E402


def build_cases(tmp):
    import cli_cases as T

    cases = {}
    for name, (make_args, needle) in sorted(T.BAD.items()):
        d = tmp / name.replace(" ", "_")
        d.mkdir()
        cases[name] = (make_args(d), needle, str(d / "run"))
    # hit by rank 1 only: its per-rank file is missing / ragged; rank 0's is fine
    for name, kind, needle in (("rank 1 missing file", "missing", "not found"),
                               ("rank 1 ragged csv", "ragged", "line 5")):
        d = tmp / name.replace(" ", "_")
        d.mkdir()
        T.digits_csv(d / "d_0.csv", rows=200)
        if kind == "ragged":
            T.digits_csv(d / "d_1.csv", rows=200, ragged_line=4)
        args = ["--set", "data.name=csv", "--set", f"data.path={d}/d_{{rank}}.csv"]
        cases[name] = (args, "rank 1: " if kind == "missing" else needle, str(d / "run"))
    return cases


def run():
    import cli_cases as T

    comm = init()
    tmp = Path(sys.argv[1])
    cases = build_cases(tmp) if comm.rank == 0 else None
    cases = comm.broadcast_object(cases, root=0)
    results = {}
    for name, (args, needle, out) in cases.items():
        if "--out" not in args:
            args = args + ["--out", out]
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["train", "--config", "digits_mlp", "--quiet", *T.FAST, *args])
        comm.barrier()
        results[name] = {"code": code, "stderr": err.getvalue(), "needle": needle,
                         "out_exists": os.path.exists(out)}
    with open(tmp / f"result-{comm.rank}.json", "w") as f:  # a file per rank: stdout lines could interleave
        json.dump({"rank": comm.rank, "cases": results}, f)


if __name__ == "__main__":
    run()
