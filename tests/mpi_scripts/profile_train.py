"""`distnn train --profile` on each MPI rank, for tests/test_profile_cli.py: one mpiexec start for three jobs.

``mpiexec -n 2 python tests/mpi_scripts/profile_train.py TMPDIR ARGS_JSON`` runs ``distnn.cli.main`` with
``train ARGS --out TMPDIR/<case>`` and the case's options, in turn on every rank: "bad" (--profile under a
regular file: refused before training), "plain" (no profile) and "profiled" (--profile TMPDIR/prof). Every
rank writes ``TMPDIR/result-RANK.json``: each case's exit status and captured stderr.
"""
import contextlib
import io
import json
import os
import sys

from distnn.cli import main
from distnn.distributed import init


def run():
    comm = init()
    tmp, args = sys.argv[1], json.loads(sys.argv[2])
    if comm.rank == 0:
        with open(os.path.join(tmp, "afile"), "w") as f:
            f.write("not a directory")
    comm.barrier()
    cases = {"bad": ["--profile", os.path.join(tmp, "afile", "prof")], "plain": [],
             "profiled": ["--profile", os.path.join(tmp, "prof")]}
    results = {}
    for name, extra in cases.items():
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(["train", *args, "--out", os.path.join(tmp, name), *extra])
        comm.barrier()
        results[name] = {"code": code, "stderr": err.getvalue()}
    with open(os.path.join(tmp, f"result-{comm.rank}.json"), "w") as f:  # (a file per rank: no interleaving)
        json.dump(results, f)


if __name__ == "__main__":
    run()
