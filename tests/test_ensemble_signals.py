"""A preemption signal between two ensemble members trained one after another in the same process.

A group of ranks trains its members in turn (fewer ranks than members). A SIGTERM that arrived after
one member's training had ended and before the next member's training handler was installed was
lost: the job went on to train the next member in full (under SLURM the SIGKILL after the grace
time then lost that work), or, with simulated ranks, the process died by the signal. Now the next
member does not start: every rank of the group agrees on it before the member begins, nothing new
is written for it, the members already finished stay finished, and the job exits 75; ``--resume
auto`` then trains only the members that did not finish and ends as the uninterrupted ensemble.
The fault hook ``DISTNN_FAULT_SIGNAL_AT=RANK:between-members`` signals that rank's process exactly
there (once, before its second member).
"""
import json
import os
import re

import numpy as np
import pytest

import cli_faults

def _train(out, mode, n, members, *extra, fault=None):
    """`distnn train --config xor` (one step an epoch, 3 epochs), ``members`` members, checkpoints on."""
    return cli_faults.train(out, mode, n, ["--config", "xor", "--log-all-ranks", "--set", "train.epochs=3",
                                           "--set", "checkpoint.enabled=true", "--set", "run.plots=false",
                                           "--set", f"ensemble.members={members}", *extra], fault)


def _member(run, m):
    return run / "members" / f"member-{m}"


# mode, ranks, members, signalled rank, the member that must not start, the members finished before it
CASES = [
    ("process", 1, 2, 0, 1, [0]),           # one process, members in turns
    ("simulated", 2, 3, 1, 1, [0]),         # one group of 2 simulated ranks; rank 1 alone is signalled
    ("mpi", 2, 3, 1, 1, [0]),               # one group of 2 MPI ranks; rank 1 alone is signalled
    ("mpi", 2, 4, 0, 2, [0, 1, 3]),         # 2 groups of 1 rank: group 0 stops, group 1 finishes its members
]


@pytest.mark.parametrize("mode,n,members,rank,stopped,finished", CASES,
                         ids=["process", "simulated", "mpiexec", "mpiexec-2-groups"])
def test_a_signal_between_members_stops_before_the_next_member_and_resume_finishes(
        tmp_path, mode, n, members, rank, stopped, finished):
    run = tmp_path / "cut"
    p = _train(run, mode, n, members, fault=f"{rank}:between-members")
    assert p.returncode == 75, p.stderr[-4000:]
    assert f"before ensemble member {stopped} began training" in p.stderr, p.stderr[-4000:]
    assert "run again with --resume auto" in p.stderr, p.stderr[-4000:]
    assert not (run / "summary.json").exists()  # the ensemble did not finish
    for m in finished:  # finished members stay finished
        s = json.loads((_member(run, m) / "summary.json").read_text())
        assert s["epochs_run"] == 3, s
    # the member that did not start: nothing written for it (no checkpoint, no model, no metrics)
    assert not _member(run, stopped).exists() or not os.listdir(_member(run, stopped))
    if members == 3:  # (the member after it never started either)
        assert not _member(run, 2).exists()
    # resume: only the unfinished members train, and the ensemble ends as an uninterrupted one
    again = _train(run, mode, n, members, "--resume", "auto")
    assert again.returncode == 0, again.stderr[-4000:]
    skipped = {int(m) for m in re.findall(r"member-(\d+) \(\d+ of \d+\): finished in an earlier session",
                                          again.stderr)}
    assert skipped == set(finished), again.stderr[-4000:]
    ref = _train(tmp_path / "ref", mode, n, members)
    assert ref.returncode == 0, ref.stderr[-4000:]
    got, want = (json.loads((d / "summary.json").read_text()) for d in (run, tmp_path / "ref"))
    for k in ("test_accuracy", "test_loss", "member_test_accuracy", "member_test_loss"):
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-9, err_msg=k)
    assert got["epochs_run"] == [3] * members

