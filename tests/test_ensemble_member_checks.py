"""A resumed ensemble reads its members' files as a single run's are read: checked, and never from a pipe.

``--resume auto`` looks in each member's directory for a member an earlier session finished (it is not
trained again). It read the member's ``config.toml`` without checking it against the member's
``SHA256SUMS``: a member whose config was edited was taken as finished (an edit that left the settings
compared equal, a comment) or silently trained over (one that changed a setting), where a single run's
resume refuses such a config. Now it is refused, naming the member and the file, as ``evaluate`` refuses
it. And it opened the member's ``metrics.jsonl`` with a plain ``open``: a named pipe there blocked the
resume for good; now it is an unreadable file like any other (the member is resumed from its checkpoints).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from distnn.cli import main
from cli_cases import run_cli

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

ENS = ["--config", "xor", "--quiet", "--set", "run.plots=false", "--set", "checkpoint.enabled=true",
       "--set", "ensemble.members=2", "--set", "train.epochs=2"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("ens") / "run"
    assert main(["train", "--out", str(run), *ENS]) == 0
    return run


def _copy(finished, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    return run


EDITS = {"a comment": lambda text: text + "# edited\n",
         "a setting": lambda text: text.replace("\nlr = ", "\nlr = 1", 1)}


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_members_edited_config_is_refused_on_resume_naming_the_member_and_file(finished, tmp_path, capsys, edit):
    run = _copy(finished, tmp_path)
    config = run / "members" / "member-1" / "config.toml"
    before = config.read_text()
    config.write_text(EDITS[edit](before))
    assert config.read_text() != before
    code, _, err = run_cli(["train", "--out", str(run), *ENS, "--resume", "auto"], capsys)
    assert code == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert "ensemble member 1" in last and f"{config} fails its SHA-256 check" in last, err
    assert config.read_text() == EDITS[edit](before)  # (not trained over: the evidence stays)
    code, _, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 2 and "member 1" in err and f"{config} fails its SHA-256 check" in err, err


def test_a_members_missing_sha256sums_is_refused_on_resume(finished, tmp_path, capsys):
    run = _copy(finished, tmp_path)
    sums = run / "members" / "member-0" / "SHA256SUMS"
    sums.unlink()
    code, _, err = run_cli(["train", "--out", str(run), *ENS, "--resume", "auto"], capsys)
    assert code == 2 and "ensemble member 0" in err and f"{sums} is missing" in err, err


def test_an_unedited_ensemble_resumes_without_training_again(finished, tmp_path, capsys):
    run = _copy(finished, tmp_path)
    weights = [(run / "members" / f"member-{m}" / "model.npz").read_bytes() for m in range(2)]
    code, _, err = run_cli(["train", "--out", str(run), *ENS, "--resume", "auto"], capsys)
    assert code == 0, err
    assert err.count("finished in an earlier session, not trained again") == 2, err
    assert [(run / "members" / f"member-{m}" / "model.npz").read_bytes() for m in range(2)] == weights


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_in_place_of_a_members_metrics_does_not_block_the_resume(finished, tmp_path):
    run = _copy(finished, tmp_path)
    metrics = run / "members" / "member-0" / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    metrics.unlink()
    os.mkfifo(metrics)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), os.environ.get("PYTHONPATH")) if p)}
    try:  # (a separate process: one blocked on the pipe is ended, and fails the test, instead of hanging it)
        p = subprocess.run([sys.executable, "-m", "distnn", "train", "--out", str(run), *ENS, "--resume", "auto"],
                           env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the resume blocked reading the named pipe {metrics}")
    assert p.returncode == 0, p.stderr[-3000:]
    # member 0 is resumed from its checkpoints (its metrics unreadable): the same epochs, written afresh
    assert os.path.isfile(metrics) and not os.path.islink(metrics)
    again = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    assert [r["epoch"] for r in again] == [r["epoch"] for r in rows]
