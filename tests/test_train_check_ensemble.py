"""``distnn train --check`` of an ensemble checks what the run will read for every member and every rank.

A resumed ensemble reads each member's own files when that member's turn comes (``members/member-k``: a
finished member's checked config and weights, else its checkpoints), and every world rank loads its own
per-rank data file. The check read rank 0's data and no member's files ("each member from its own
checkpoints (not checked)"): a job whose member 1 had only damaged checkpoints passed, was queued, trained
member 0 and then stopped. Each refusal here is tested against the run itself (the oracle: the check says
what the run hits).
"""
import shutil

import pytest

from test_train_check import _distnn, _error_line, _listing
from test_train_check_host import _digits_like, _npz

# (a small ensemble with a checkpoint every epoch; RESUME trains it further, so no member is finished)
ENS = ["--config", "xor", "--quiet", "--set", "run.plots=false", "--set", "checkpoint.enabled=true",
       "--set", "checkpoint.every_epochs=1", "--set", "ensemble.members=2"]
TRAINED = [*ENS, "--set", "train.epochs=2"]
RESUME = [*ENS, "--set", "train.epochs=4", "--resume", "auto"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 2-member ensemble run (trained by ``train`` itself), checkpoints at global steps 1 and 2."""
    root = tmp_path_factory.mktemp("ens")
    r = _distnn(["train", *TRAINED, "--out", "run"], root)
    assert r.returncode == 0, r.stderr
    return root / "run"


def _copy(trained, tmp_path, name="run"):
    shutil.copytree(trained, tmp_path / name)
    return tmp_path / name


def _checkpoints(run, member):
    return sorted((run / "members" / f"member-{member}" / "checkpoints").glob("step-*"))


def _corrupt(checkpoint):
    weights = checkpoint / "model.npz"
    weights.write_bytes(weights.read_bytes()[:-5] + b"xxxxx")
    return weights


def _message(stderr):
    return _error_line(stderr)[len("distnn: error: "):]


# ------------------------------------------------------------------------------- members' checkpoints
def test_check_refuses_member_1s_damaged_checkpoints_as_the_resume_then_fails(trained, tmp_path):
    run = _copy(trained, tmp_path)
    for checkpoint in _checkpoints(run, 1):
        _corrupt(checkpoint)
    before = _listing(tmp_path)
    checked = _distnn(["train", *RESUME, "--out", "run", "--check"], tmp_path)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    line = _message(checked.stderr)
    newest = f"checkpoint 'run/members/member-1/checkpoints/{_checkpoints(run, 1)[-1].name}'"
    assert line == ("ensemble member 1: no valid checkpoint in 'run/members/member-1/checkpoints': every one is "
                    f"incomplete or corrupt (the newest: {newest}: file model.npz fails its SHA-256 check (corrupt))")
    assert _listing(tmp_path) == before  # (nothing written, nothing recovered)
    # the oracle: the real resume trains member 0 and then stops at member 1 with that same error
    resumed = _distnn(["train", *RESUME, "--out", "run"], tmp_path)
    assert resumed.returncode == 2, resumed.stderr
    assert _message(resumed.stderr) == line
    assert _checkpoints(run, 0)[-1].name == "step-00000004"  # (the work the check saves from being wasted)


def test_check_names_the_checkpoint_each_member_resumes_from_as_the_run_does(trained, tmp_path):
    run = _copy(trained, tmp_path)
    _corrupt(_checkpoints(run, 1)[-1])  # member 1 falls back to its previous checkpoint, with a warning
    checked = _distnn(["train", *RESUME, "--out", "run", "--check"], tmp_path)
    assert checked.returncode == 0, checked.stderr
    resume = next(line for line in checked.stdout.splitlines() if line.lstrip().startswith("resume:"))
    assert resume.split(":", 1)[1].strip() == (
        "auto: member 0: run/members/member-0/checkpoints/step-00000002 (global step 2); "
        "member 1: run/members/member-1/checkpoints/step-00000001 (global step 1)")
    skipped = "checkpoint 'run/members/member-1/checkpoints/step-00000002': file model.npz fails its SHA-256 check"
    assert skipped in checked.stderr
    resumed = _distnn(["train", *RESUME, "--out", "run"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert skipped in resumed.stderr
    for member, step in ((0, 2), (1, 1)):
        assert f"resumed from run/members/member-{member}/checkpoints/step-0000000{step} " in resumed.stderr


def test_check_finds_the_members_an_earlier_session_finished(trained, tmp_path):
    _copy(trained, tmp_path)
    checked = _distnn(["train", *TRAINED, "--resume", "auto", "--out", "run", "--check"], tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert ("auto: member 0: finished in an earlier session (not trained again); member 1: finished in an "
            "earlier session (not trained again)") in checked.stdout
    resumed = _distnn(["train", *TRAINED, "--resume", "auto", "--out", "run"], tmp_path)
    assert resumed.returncode == 0 and resumed.stderr.count("not trained again") == 2, resumed.stderr


def test_check_refuses_a_finished_members_edited_config_as_the_run_does(trained, tmp_path):
    run = _copy(trained, tmp_path)
    config = run / "members" / "member-1" / "config.toml"
    config.write_text(config.read_text() + "# edited\n")
    checked = _distnn(["train", *TRAINED, "--resume", "auto", "--out", "run", "--check"], tmp_path)
    assert checked.returncode == 2, checked.stdout
    line = _message(checked.stderr)
    assert line.startswith("ensemble member 1: ") and "member-1/config.toml fails its SHA-256 check" in line, line
    resumed = _distnn(["train", *TRAINED, "--resume", "auto", "--out", "run"], tmp_path)
    assert resumed.returncode == 2 and _message(resumed.stderr) == line


def test_check_of_a_resume_from_an_ensembles_directory_checks_each_members_part(trained, tmp_path):
    run = _copy(trained, tmp_path)
    for checkpoint in _checkpoints(run, 1):
        _corrupt(checkpoint)
    args = [*ENS, "--set", "train.epochs=4", "--resume", str(run), "--out", "new"]
    checked = _distnn(["train", *args, "--check"], tmp_path)
    assert checked.returncode == 2, checked.stdout
    line = _message(checked.stderr)
    assert line.startswith(f"ensemble member 1: --resume '{run}/members/member-1'"), line
    assert not (tmp_path / "new").exists()
    resumed = _distnn(["train", *args], tmp_path)
    assert resumed.returncode == 2 and _message(resumed.stderr) == line


# ------------------------------------------------------------------------------- every rank's data file
PER_RANK = ["--config", "digits_mlp", "--quiet", "--set", "run.plots=false", "--set", "ensemble.members=2",
            "--set", "train.epochs=1"]


def _per_rank_files(tmp_path, ranks, shifts=None):
    for rank in range(ranks):
        _digits_like(tmp_path / f"d{rank}.npz", shift=(shifts or {}).get(rank, 0.0))
    return [*PER_RANK, *_npz(tmp_path / "d{rank}.npz")]


def _refused_by_check_as_by_the_run(args, ranks, tmp_path):
    """The error line with which ``train --check --check-ranks ranks`` refuses ``args``, asserted to be the one the
    run itself (on ``ranks`` simulated ranks) stops with: the oracle."""
    checked = _distnn(["train", *args, "--check", "--check-ranks", str(ranks)], tmp_path)
    assert checked.returncode == 2, checked.stdout
    line = _message(checked.stderr)
    ran = _distnn(["train", *args, "--simulate-ranks", str(ranks), "--out", "run"], tmp_path)
    assert ran.returncode == 2 and _message(ran.stderr) == line
    return line


def test_check_of_an_ensemble_compares_every_ranks_data_file(tmp_path):
    args = _per_rank_files(tmp_path, 4, shifts={3: 1.0})
    line = _refused_by_check_as_by_the_run(args, 4, tmp_path)
    assert line.startswith(f"data.path '{tmp_path}/d{{rank}}.npz' gives rank 3 other data than rank 0;"), line


def test_check_of_an_ensemble_names_the_rank_and_member_whose_file_is_bad(tmp_path):
    args = _per_rank_files(tmp_path, 2)
    (tmp_path / "d1.npz").write_bytes(b"not an npz file")
    line = _refused_by_check_as_by_the_run(args, 2, tmp_path)
    assert line.startswith("rank 1: ensemble member 1: ") and "d1.npz" in line, line


def test_per_rank_copies_with_the_same_data_pass_whether_or_not_their_bytes_match(tmp_path):
    import numpy as np

    args = [*_per_rank_files(tmp_path, 3), "--set", "data.batch_size=60"]
    with np.load(tmp_path / "d0.npz") as z:  # (rank 2's: the same arrays, written again compressed)
        np.savez_compressed(tmp_path / "d2.npz", **{k: z[k] for k in z.files})
    assert (tmp_path / "d2.npz").read_bytes() != (tmp_path / "d0.npz").read_bytes()
    for members in (1, 3):  # (a plain run, and an ensemble)
        checked = _distnn(["train", *args, "--set", f"ensemble.members={members}", "--check", "--check-ranks", "3"],
                          tmp_path)
        assert checked.returncode == 0, checked.stderr


# ------------------------------------------------------------------------------- a single run's resume too
def test_no_valid_checkpoint_names_the_newest_ones_damaged_file(tmp_path):
    args = ["--config", "xor", "--quiet", "--set", "run.plots=false", "--set", "checkpoint.enabled=true",
            "--set", "checkpoint.every_epochs=1", "--out", "run"]
    assert _distnn(["train", *args, "--set", "train.epochs=1"], tmp_path).returncode == 0
    weights = _corrupt(sorted((tmp_path / "run" / "checkpoints").glob("step-*"))[-1])
    for result in ("model.npz", "summary.json"):  # (as a run stopped before its end leaves it)
        (tmp_path / "run" / result).unlink()
    checked = _distnn(["train", *args, "--set", "train.epochs=2", "--resume", "auto", "--check"], tmp_path)
    assert checked.returncode == 2
    line = _message(checked.stderr)
    assert line.endswith(f"(the newest: checkpoint '{weights.parent.relative_to(tmp_path)}': file model.npz fails "
                         "its SHA-256 check (corrupt))"), line
    resumed = _distnn(["train", *args, "--set", "train.epochs=2", "--resume", "auto"], tmp_path)
    assert resumed.returncode == 2 and _message(resumed.stderr) == line


def test_a_bad_file_is_said_before_another_ranks_other_data_as_the_run_says_it(tmp_path):
    args = [*_per_rank_files(tmp_path, 4, shifts={1: 1.0}), "--set", "ensemble.members=1"]
    (tmp_path / "d3.npz").write_bytes(b"not an npz file")  # (rank 1's data differ, rank 3's file is bad)
    line = _refused_by_check_as_by_the_run(args, 4, tmp_path)
    assert line.startswith("rank 3: ") and "d3.npz" in line, line
