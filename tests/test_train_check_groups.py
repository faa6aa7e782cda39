"""``distnn train --check`` of an ensemble trained in several groups of ranks says a member's error as the run
says it: after the group that trains it (``ensemble group g (world rank(s) ..., member(s) ...): ensemble
member k: ...``), and, of several members whose files are damaged, the one the run stops on.

In a run of several groups, a group's error reaches the others as that group's ending, named by the group;
when several groups fail, the first group's error is the job's. The check said ``ensemble member k: ...``
alone, and named the lowest damaged member, which need not be the first group's. The oracle is the run
itself (its ranks as threads of one process) on the same files.
"""
import shutil

import pytest

from test_train_check import _distnn, _error_line
from test_train_check_ensemble import _checkpoints, _corrupt

XOR = ["--config", "xor", "--quiet", "--set", "run.plots=false", "--set", "checkpoint.enabled=true",
       "--set", "checkpoint.every_epochs=1"]


def _message(stderr):
    return _error_line(stderr)[len("distnn: error: "):]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """``{members: run}``: finished xor ensembles of 2 and 4 members trained on 2 ranks (2 groups)."""
    runs = {}
    for members in (2, 4):
        root = tmp_path_factory.mktemp(f"ens{members}")
        r = _distnn(["train", *XOR, "--set", f"ensemble.members={members}", "--set", "train.epochs=2",
                     "--simulate-ranks", "2", "--out", "run"], root)
        assert r.returncode == 0, r.stderr
        runs[members] = root / "run"
    return runs


def _check_and_run(args, cwd):
    """The check's error line on 2 planned ranks and the run's on 2 simulated ranks (both must refuse)."""
    checked = _distnn(["train", *args, "--check", "--check-ranks", "2"], cwd)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    ran = _distnn(["train", *args, "--simulate-ranks", "2"], cwd)
    assert ran.returncode == 2, ran.stderr
    return _message(checked.stderr), _message(ran.stderr)


def test_a_members_damaged_checkpoints_are_said_after_its_group_as_the_run_says_them(trained, tmp_path):
    run = shutil.copytree(trained[2], tmp_path / "run")
    for checkpoint in _checkpoints(run, 1):
        _corrupt(checkpoint)
    args = [*XOR, "--set", "ensemble.members=2", "--set", "train.epochs=4", "--resume", "auto", "--out", "run"]
    checked, ran = _check_and_run(args, tmp_path)
    assert checked.startswith("ensemble group 1 (world rank(s) 1, member(s) 1): ensemble member 1: no valid "
                              "checkpoint in 'run/members/member-1/checkpoints'"), checked
    assert ran == checked


def test_of_several_damaged_members_the_check_names_the_one_the_run_stops_on(trained, tmp_path):
    """4 members on 2 groups: group 0 trains members 0 and 2, group 1 members 1 and 3. With members 1 and 2
    damaged, group 1 fails at once and group 0 after member 0: the run says group 0's, member 2."""
    run = shutil.copytree(trained[4], tmp_path / "run")
    for member in (1, 2):
        for checkpoint in _checkpoints(run, member):
            _corrupt(checkpoint)
    args = [*XOR, "--set", "ensemble.members=4", "--set", "train.epochs=4", "--resume", "auto", "--out", "run"]
    checked, ran = _check_and_run(args, tmp_path)
    assert checked.startswith("ensemble group 0 (world rank(s) 0, member(s) 0, 2): ensemble member 2: "), checked
    assert ran == checked


def test_a_finished_members_edited_config_is_said_after_its_group_as_the_run_says_it(trained, tmp_path):
    run = shutil.copytree(trained[2], tmp_path / "run")
    config = run / "members" / "member-1" / "config.toml"
    config.write_text(config.read_text() + "# edited\n")
    args = [*XOR, "--set", "ensemble.members=2", "--set", "train.epochs=2", "--resume", "auto", "--out", "run"]
    checked, ran = _check_and_run(args, tmp_path)
    assert checked.startswith("ensemble group 1 (world rank(s) 1, member(s) 1): ensemble member 1: "), checked
    assert "member-1/config.toml fails its SHA-256 check" in checked
    assert ran == checked


def test_one_group_says_the_member_alone(trained, tmp_path):
    """On one rank the group is the whole job: no group to name, in the check as in the run."""
    run = shutil.copytree(trained[2], tmp_path / "run")
    for checkpoint in _checkpoints(run, 1):
        _corrupt(checkpoint)
    args = [*XOR, "--set", "ensemble.members=2", "--set", "train.epochs=4", "--resume", "auto", "--out", "run"]
    checked = _distnn(["train", *args, "--check"], tmp_path)
    ran = _distnn(["train", *args], tmp_path)
    assert checked.returncode == ran.returncode == 2
    assert _message(checked.stderr).startswith("ensemble member 1: no valid checkpoint")
    assert _message(ran.stderr) == _message(checked.stderr)
