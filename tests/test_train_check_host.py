"""``distnn train --check`` on a host that is not the job's: what only the job's nodes have (a GPU for
run.device = "gpu", a data file on their own disks, per-rank ``{rank}`` copies) is noted, "not checked on
this host: ... (checked when the job starts)", and passes; ``--check-strict`` refuses it as ``train`` here
does; what is wrong everywhere stays refused with the line a check with the data gives; the job itself
still refuses a GPU it does not have; ``slurm/submit.sh`` queues the first and refuses the last."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distnn.backend import gpu_available
from test_slurm_submit import _sbatch_args as _queued, _submit, install_fake_sbatch

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 300
NOTE = "not checked on this host: "
WHEN = "(checked when the job starts)"
GPU = ["--set", "run.device=gpu"]

no_gpu_here = pytest.mark.skipif(gpu_available(), reason="this host has a GPU: nothing to defer")


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", **extra)
    for name in ("SLURM_NTASKS", "PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                 "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "DISTNN_OUT", "DISTNN_ROOT", "DISTNN_CHECK_STRICT"):
        env.pop(name, None)
    return env


def _distnn(args, cwd):
    return subprocess.run([sys.executable, "-m", "distnn", *args], cwd=cwd, env=_env(), capture_output=True,
                          text=True, timeout=TIMEOUT)


def _check(args, cwd, ranks=2, strict=False):
    return _distnn(["train", "--check", *(["--check-strict"] if strict else []), "--check-ranks", str(ranks),
                    *args], cwd)


def _error_line(text):
    lines = [line for line in text.splitlines() if line.startswith("distnn: error:")]
    assert len(lines) == 1, text
    return lines[0]


def _notes(text):
    return [line.strip() for line in text.splitlines() if line.strip().startswith(NOTE)]


def _listing(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))


def _digits_like(path, shift=0.0):
    """300 8x8 images in 10 classes: what digits_mlp's model and augmentation take, as an .npz."""
    x = np.random.default_rng(0).normal(size=(300, 1, 8, 8)).astype(np.float32) + shift
    np.savez(path, x=x, y=np.arange(300) % 10)
    return path


def _npz(path):
    return ["--set", "data.name=npz", "--set", f"data.path={path}"]


@pytest.fixture
def work(tmp_path):
    w = tmp_path / "work"
    w.mkdir()
    return w


# ------------------------------------------------------------------------------------------ the GPU
@no_gpu_here
def test_a_gpu_config_passes_with_a_note_and_writes_nothing(tmp_path, work):
    r = _check(GPU, work)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("check passed: config digits_mlp")
    assert "digits: train 1257" in r.stdout and "of 20 steps" in r.stdout  # (the rest checked in full)
    assert _notes(r.stdout) == [f"{NOTE}run.device = 'gpu': no GPU is usable here (cupy missing or no device) {WHEN}"]
    assert _listing(tmp_path) == ["work"]


@no_gpu_here
def test_a_gpu_config_is_refused_when_strict(work):
    r = _check(GPU, work, strict=True)
    assert r.returncode == 2
    assert "run.device is 'gpu' but no GPU is usable here" in _error_line(r.stderr)
    assert r.stdout == ""


@no_gpu_here
def test_the_job_itself_still_refuses_a_gpu_it_does_not_have(work):
    r = _distnn(["train", *GPU, "--set", "train.epochs=1", "--out", "run", "--quiet"], work)
    assert r.returncode == 2
    assert "run.device is 'gpu' but no GPU is usable here (cupy missing or no device)" in _error_line(r.stderr)
    assert _listing(work) == []  # (refused before its run directory is made)


def test_check_strict_needs_check(work):
    r = _distnn(["train", "--check-strict"], work)
    assert r.returncode == 2 and "--check-strict" in _error_line(r.stderr) and "needs --check" in r.stderr


# ---------------------------------------------------------------------- what is wrong everywhere
# (arguments, ranks, what the error names): refused by a check without the GPU or the data just as by one
# with them
WRONG_EVERYWHERE = {
    "unknown key": (["--set", "train.epoch=3"], 2, "'train.epoch' (did you mean 'train.epochs'?)"),
    "mistyped value": (["--set", "train.epochs=three"], 2, "train.epochs"),
    "value out of range": (["--set", "optimizer.lr=-1"], 2, "optimizer.lr"),
    "batch does not split over the ranks": ([], 3, "must be divisible by the number of ranks 3"),
    "per-rank batch vs accumulation": (["--set", "train.grad_accumulation=3"], 2, "train.grad_accumulation"),
    "ensemble members vs ranks": (["--config", "digits_mlp_ensemble"], 6, "members"),
    "--resume a missing path": (["--resume", "nothere"], 2, "no such checkpoint"),
    "--resume auto without --out": (["--resume", "auto"], 2, "needs --out"),
    "--out is a file": (["--out", "afile"], 2, "is not a directory"),
    "--out holds a finished run": (["--out", "done", "--resume", "auto"], 2, "holds a finished run"),
    "--profile into a file": (["--profile", "afile"], 2, "cannot hold the profile's traces"),
}


def _wrong_everywhere_dir(work):
    (work / "afile").write_text("x")
    (work / "done").mkdir()
    for name in ("model.npz", "summary.json", "metrics.csv"):
        (work / "done" / name).write_text("x")


@no_gpu_here
@pytest.mark.parametrize("case", sorted(WRONG_EVERYWHERE))
def test_what_is_wrong_everywhere_is_refused_without_the_gpu(work, case):
    args, ranks, names = WRONG_EVERYWHERE[case]
    _wrong_everywhere_dir(work)
    before = _listing(work)
    r = _check([*GPU, *args], work, ranks=ranks)
    assert r.returncode == 2, r.stdout
    assert names in _error_line(r.stderr)
    assert _listing(work) == before


@pytest.mark.parametrize("case", sorted(WRONG_EVERYWHERE))
def test_what_is_wrong_everywhere_is_refused_without_the_data_as_with_it(tmp_path, work, case):
    args, ranks, names = WRONG_EVERYWHERE[case]
    _wrong_everywhere_dir(work)
    here = _digits_like(tmp_path / "data.npz")
    before = _listing(tmp_path)
    with_data = _check([*_npz(here), *args], work, ranks=ranks)
    without = _check([*_npz(tmp_path / "on-the-nodes" / "data.npz"), *args], work, ranks=ranks)
    assert with_data.returncode == without.returncode == 2, without.stdout
    assert names in _error_line(without.stderr)
    assert _error_line(without.stderr).replace("on-the-nodes/", "") == _error_line(with_data.stderr)
    assert _listing(tmp_path) == before


# ------------------------------------------------------------------------------------------ the data
def test_a_data_path_missing_here_passes_with_notes(tmp_path, work):
    gone = tmp_path / "local" / "data.npz"
    r = _check([*_npz(gone), "--out", "run", "--resume", "auto"], work, ranks=4)
    assert r.returncode == 0, r.stderr
    assert "data:          not loaded (no data file here)" in r.stdout
    assert "4 ranks, global batch 64 (16 per rank)" in r.stdout
    # (as a check with the data says it: the checkpoint directory looked in)
    assert "resume:        auto: no checkpoint in run/checkpoints yet (a fresh start)" in r.stdout
    notes = _notes(r.stdout)
    assert notes[0] == f"{NOTE}data.path '{gone}' does not exist here {WHEN}"
    assert len(notes) == 2 and "the model built for it" in notes[1]
    assert _listing(tmp_path) == ["work"]


def test_a_data_path_missing_here_is_refused_when_strict(tmp_path, work):
    gone = tmp_path / "local" / "data.npz"
    r = _check(_npz(gone), work, strict=True)
    assert r.returncode == 2
    # (the path came from --set data.path: the error says so, as the config's own errors do)
    assert _error_line(r.stderr) == f"distnn: error: data file '{gone}' not found (set by --set)"


def test_a_relative_data_path_missing_here_is_still_refused(work):
    """A relative path is the submit directory's, which the job runs in: missing here, missing there."""
    r = _check(_npz("data.npz"), work)
    assert r.returncode == 2 and "not found" in _error_line(r.stderr)


def test_per_rank_data_is_checked_for_every_rank_whose_file_is_here(tmp_path, work):
    for rank in (1, 2):
        _digits_like(tmp_path / f"d{rank}.npz")
    per_rank = _npz(tmp_path / "d{rank}.npz")
    r = _check(per_rank, work, ranks=4)
    assert r.returncode == 0, r.stderr
    assert "data:          npz: train 210" in r.stdout and "of 4 steps" in r.stdout  # (built from rank 1's file)
    assert _notes(r.stdout) == [f"{NOTE}data.path '{tmp_path}/d{{rank}}.npz' does not exist here for ranks 0, 3 {WHEN}"]

    _digits_like(tmp_path / "d3.npz", shift=1.0)  # rank 3's file is here now, and holds other data
    r = _check(per_rank, work, ranks=4)
    assert r.returncode == 2
    assert "gives rank 3 other data than rank 1" in _error_line(r.stderr)

    r = _check(per_rank, work, ranks=3, strict=True)  # (rank 0's file is not here)
    assert r.returncode == 2 and "d0.npz' not found" in _error_line(r.stderr)


def test_per_rank_data_of_no_rank_here_passes_with_a_note(tmp_path, work):
    r = _check(_npz(tmp_path / "local" / "d{rank}.npz"), work, ranks=2)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "local" / "d{rank}.npz"
    assert _notes(r.stdout)[0] == f"{NOTE}data.path '{path}' does not exist here for any rank {WHEN}"


# ------------------------------------------------------------------------------------------ submit.sh
@pytest.fixture
def sbatch_env(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("submit.sh is a bash script")
    path, record = install_fake_sbatch(tmp_path)
    return _env(PATH=path, FAKE_SBATCH_DIR=record, DISTNN_PYTHON=sys.executable)


@no_gpu_here
def test_submit_queues_a_gpu_job_with_the_note(work, sbatch_env):
    r = _submit(["-n", "2", "--", *GPU], work, sbatch_env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Submitted batch job 42\n"
    assert f"{NOTE}run.device = 'gpu'" in r.stderr
    assert _queued(sbatch_env) == ["-n", "2", str(REPO / "slurm" / "train.sbatch"), *GPU]


def test_submit_queues_a_job_whose_data_is_on_the_nodes(tmp_path, work, sbatch_env):
    data = _npz(tmp_path / "local" / "d{rank}.npz")
    r = _submit(["-n", "2", "--", *data], work, sbatch_env)
    assert r.returncode == 0, r.stderr
    assert "does not exist here for any rank" in r.stderr
    assert _queued(sbatch_env)[-len(data):] == data


@no_gpu_here
@pytest.mark.parametrize("bad", [["--set", "train.epoch=1"], ["--set", "data.batch_size=63"]])
def test_submit_refuses_a_bad_gpu_job_and_queues_nothing(work, sbatch_env, bad):
    r = _submit(["-n", "2", "--", *GPU, *bad], work, sbatch_env)
    assert r.returncode == 2
    assert "nothing was queued" in r.stderr
    assert _queued(sbatch_env) is None
    assert _listing(work) == []


@no_gpu_here
@pytest.mark.parametrize("how", ["option", "environment"])
def test_submit_strict_refuses_the_gpu_job(work, sbatch_env, how):
    args = ["-n", "2", "--", *GPU, *(["--check-strict"] if how == "option" else [])]
    env = {**sbatch_env, "DISTNN_CHECK_STRICT": "1"} if how == "environment" else sbatch_env
    r = _submit(args, work, env)
    assert r.returncode == 2
    assert "run.device is 'gpu' but no GPU is usable here" in r.stderr
    assert _queued(sbatch_env) is None


def test_submit_takes_check_strict_out_of_the_jobs_arguments(work, sbatch_env):
    r = _submit(["-n", "2", "--", "--config", "xor", "--check-strict"], work, sbatch_env)
    assert r.returncode == 0, r.stderr
    assert _queued(sbatch_env) == ["-n", "2", str(REPO / "slurm" / "train.sbatch"), "--config", "xor"]
