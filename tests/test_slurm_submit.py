"""slurm/submit.sh: `distnn train --check` for the job's rank count, then sbatch with every argument unchanged;
nothing queued when the check (or train.sbatch's own refusal of --out/--resume) fails. sbatch is a fake placed
first on PATH that records what it was given."""
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUBMIT = REPO / "slurm" / "submit.sh"
SCRIPT = REPO / "slurm" / "train.sbatch"
TIMEOUT = 300

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="submit.sh is a bash script")

FAKE_SBATCH = """#!/usr/bin/env bash
# records its arguments (NUL-separated) and DISTNN_ROOT, answers as sbatch does
printf '%s\\0' "$@" > "$FAKE_SBATCH_DIR/args"
printf '%s' "${DISTNN_ROOT:-}" > "$FAKE_SBATCH_DIR/root"
echo "Submitted batch job 42"
exit "${FAKE_SBATCH_STATUS:-0}"
"""


def install_fake_sbatch(tmp_path):
    """A fake ``sbatch`` (FAKE_SBATCH) in a new folder: (a PATH with that folder first, the folder its records
    go to, for FAKE_SBATCH_DIR)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "sbatch"
    fake.write_text(FAKE_SBATCH)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    record = tmp_path / "sbatch-record"
    record.mkdir()
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", str(record)


@pytest.fixture
def env(tmp_path):
    path, record = install_fake_sbatch(tmp_path)
    e = dict(os.environ, PATH=path, FAKE_SBATCH_DIR=record,
             DISTNN_PYTHON=sys.executable, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    for name in ("DISTNN_OUT", "DISTNN_ROOT", "SLURM_NTASKS", "PMI_RANK", "PMI_SIZE"):
        e.pop(name, None)
    return e


def _submit(args, cwd, env):
    return subprocess.run(["bash", str(SUBMIT), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


def _sbatch_args(env):
    path = Path(env["FAKE_SBATCH_DIR"]) / "args"
    return path.read_text().split("\0")[:-1] if path.exists() else None


@pytest.fixture
def work(tmp_path):
    w = tmp_path / "work"  # (not the repository: submit.sh passes DISTNN_ROOT to the job)
    w.mkdir()
    return w


def _listing(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))


def test_a_good_job_is_submitted_with_every_argument_unchanged(work, env):
    sbatch = ["-n", "4", "--time=5", "-J", "my job", "--comment", "a -- b"]
    train = ["--config", "xor", "--set", "train.epochs=2", "--set", "description=two words", "--quiet"]
    r = _submit([*sbatch, "--", *train], work, env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Submitted batch job 42\n"  # (sbatch's line alone on stdout: the check's goes to stderr)
    assert _sbatch_args(env) == [*sbatch, str(SCRIPT), *train]
    assert (Path(env["FAKE_SBATCH_DIR"]) / "root").read_text() == str(REPO)
    assert "check passed: config xor" in r.stderr and "4 ranks" in r.stderr
    assert "run directory: runs/slurm-<job id> (new)" in r.stderr
    assert _listing(work) == []


def test_no_separator_means_sbatch_options_only(work, env):
    r = _submit(["-n", "2", "--time=5"], work, env)
    assert r.returncode == 0, r.stderr
    assert _sbatch_args(env) == ["-n", "2", "--time=5", str(SCRIPT)]


@pytest.mark.parametrize("ranks", [["-n", "3"], ["-n3"], ["--ntasks=3"], ["--ntasks", "3"],
                                   ["-n", "2", "--ntasks=3"]])
def test_the_check_is_for_sbatchs_rank_count(work, env, ranks):
    r = _submit([*ranks, "--", "--config", "digits_mlp"], work, env)  # global batch 64: not over 3 ranks
    assert r.returncode == 2
    assert "must be divisible by the number of ranks 3" in r.stderr
    assert "nothing was queued" in r.stderr
    assert _sbatch_args(env) is None


@pytest.mark.parametrize("options", [[], ["-N", "2", "--ntasks-per-node=3"]])
def test_without_ntasks_the_scripts_own_two_ranks_are_checked(work, env, options):
    r = _submit([*options, "--", "--config", "digits_mlp", "--set", "data.batch_size=66"], work, env)
    assert r.returncode == 0, r.stderr
    assert "2 ranks, global batch 66 (33 per rank)" in r.stderr
    r = _submit([*options, "--", "--config", "digits_mlp", "--set", "data.batch_size=65"], work, env)
    assert r.returncode == 2 and "divisible by the number of ranks 2" in r.stderr
    assert _sbatch_args(env) == [*options, str(SCRIPT), "--config", "digits_mlp", "--set", "data.batch_size=66"]


@pytest.mark.parametrize("train, error", [
    (["--set", "train.epoch=1"], "unknown key 'train.epoch'"),
    (["--config", "no_such_config"], "no_such_config"),
    (["--set", "data.name=csv", "--set", "data.path=missing.csv"], "not found"),
    (["--out", "runs/x"], "this script sets the run directory itself"),
    (["--ou=runs/x"], "this script sets the run directory itself"),
    (["--resume", "auto"], "this script always resumes its own run directory"),
])
def test_a_bad_job_is_refused_and_nothing_is_queued(work, env, train, error):
    r = _submit(["-n", "2", "--", *train], work, env)
    assert r.returncode == 2
    assert error in r.stderr
    assert _sbatch_args(env) is None
    assert _listing(work) == []


def test_the_run_directory_checked_is_distnn_out(work, env):
    done = work / "done"
    done.mkdir()
    for name in ("model.npz", "summary.json"):
        (done / name).write_text("x")
    r = _submit(["--", "--config", "xor"], work, {**env, "DISTNN_OUT": "done"})
    assert r.returncode == 2 and "holds a finished run" in r.stderr  # (--resume auto, as the job runs)
    assert _sbatch_args(env) is None
    r = _submit(["--", "--config", "xor"], work, {**env, "DISTNN_OUT": "fresh"})
    assert r.returncode == 0, r.stderr
    assert "run directory: fresh (new)" in r.stderr
    assert not (work / "fresh").exists()


def test_bad_sbatch_task_counts_are_refused(work, env):
    for ranks in (["-n", "0"], ["--ntasks=four"], ["-n"]):
        r = _submit(ranks, work, env)
        assert r.returncode == 2 and "sbatch" in r.stderr, r.stderr
    assert _sbatch_args(env) is None


def test_sbatchs_own_failure_is_its_status(work, env):
    r = _submit(["--", "--config", "xor"], work, {**env, "FAKE_SBATCH_STATUS": "1"})
    assert r.returncode == 1
