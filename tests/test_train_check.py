"""``distnn train --check``: accepts what ``train`` would start, refuses with ``train``'s own one-line error
(exit 2) what it would refuse before training, for the number of ranks asked, and writes nothing."""
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from distnn.cli import main
from distnn.train.config import list_configs

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 300


def _env():
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    for name in ("SLURM_NTASKS", "PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                 "SLURM_PROCID", "SLURM_STEP_NUM_TASKS"):
        env.pop(name, None)  # (a check run inside an allocation or a launcher takes its ranks from them)
    return env


def _distnn(args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "distnn", *args], cwd=cwd, env=env or _env(), capture_output=True,
                          text=True, timeout=TIMEOUT)


def _listing(root):
    """Every path under ``root`` with its size and modification time: what a check must leave as it was."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_size, st.st_mtime_ns)
    return out


def _error_line(text):
    lines = [line for line in text.splitlines() if line.startswith("distnn: error:")]
    assert len(lines) == 1, text
    return lines[0]


def _mnist_dir(path):
    """Tiny MNIST IDX files (100 train images of 28x28, 20 test): what mnist_mlp's data.path names."""
    path.mkdir()
    for prefix, n in (("train", 100), ("t10k", 20)):
        (path / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, n, 28, 28)
                                                           + bytes(i % 256 for i in range(n * 784)))
        (path / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 0x801, n)
                                                           + bytes(i % 10 for i in range(n)))
    return path


# ---------------------------------------------------------------------------------------- accepted
BUILTIN = sorted(name if isinstance(name, str) else name[0] for name in list_configs())


def test_every_builtin_config_is_listed_here():
    assert {"digits_mlp", "digits_cnn", "xor", "mnist_mlp", "digits_mlp_ensemble"} <= set(BUILTIN)


@pytest.mark.parametrize("name", BUILTIN)
def test_check_accepts_every_builtin_config(tmp_path, name):
    work = tmp_path / "work"
    work.mkdir()
    extra = ["--set", f"data.path={_mnist_dir(tmp_path / 'mnist')}"] if name == "mnist_mlp" else []
    before = _listing(tmp_path)
    r = _distnn(["train", "--check", "--config", name, "--check-ranks", "2", *extra], work)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"check passed: config {name}"), r.stdout
    assert "2 ranks" in r.stdout and "run directory: runs/" in r.stdout and "(new)" in r.stdout
    assert _listing(tmp_path) == before  # no run directory, no runs/


def test_check_summary_says_the_job(tmp_path):
    r = _distnn(["train", "--check", "--config", "digits_mlp", "--check-ranks", "4", "--set", "train.epochs=3",
                 "--out", "r1"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "model mlp" in r.stdout
    assert "digits: train 1257 / val 180 / test 360" in r.stdout
    assert "4 ranks, global batch 64 (16 per rank)" in r.stdout
    assert "3 of 20 steps" in r.stdout
    assert "run directory: r1 (new)" in r.stdout and "resume:        no" in r.stdout
    assert not (tmp_path / "r1").exists()


def test_check_imports_no_mpi(tmp_path):
    code = ("import sys; from distnn.cli import main; code = main(['train', '--check', '--check-ranks', '2']); "
            "print(code, sorted(m for m in sys.modules if m.startswith('mpi4py')))")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "0 []"


@pytest.mark.parametrize("source, env, want", [
    (["--check-ranks", "4"], {}, "4 ranks"),
    (["--simulate-ranks", "4"], {}, "4 ranks"),
    ([], {"SLURM_NTASKS": "4"}, "4 ranks"),  # inside an allocation: the tasks srun starts
    ([], {}, "1 rank,"),
])
def test_check_ranks_come_from_where_the_job_takes_them(tmp_path, source, env, want):
    r = _distnn(["train", "--check", *source], tmp_path, env={**_env(), **env})
    assert r.returncode == 0, r.stderr
    assert want in r.stdout


# ---------------------------------------------------------------------------------------- refused
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished xor run with checkpoints (trained by `train` itself, in a subprocess)."""
    root = tmp_path_factory.mktemp("trained")
    r = _distnn(["train", "--config", "xor", "--set", "train.epochs=2", "--set", "checkpoint.enabled=true",
                 "--set", "checkpoint.every_epochs=1", "--out", "run", "--quiet"], root)
    assert r.returncode == 0, r.stderr
    return root / "run"


def _finished_without_checkpoint(t):
    (t / "done").mkdir()
    for name in ("model.npz", "summary.json", "metrics.csv"):
        (t / "done" / name).write_text("x")
    return t / "done"


def _corrupt_copy(t, trained):
    copy = t / "copy"
    shutil.copytree(trained, copy)
    newest = sorted((copy / "checkpoints").glob("step-*"))[-1]
    victim = next(p for p in sorted(newest.iterdir()) if p.suffix == ".npz")
    victim.write_bytes(victim.read_bytes()[:-5] + b"xxxxx")
    return newest


OTHER_BATCH = "the checkpoint was written with a global batch of 4 samples but data.batch_size is 64"
# (name: (arguments given the test's directory, the run directory of a trained run), ranks, what the error names)
BAD = {
    "unknown config name": (lambda t, run: ["--config", "no_such_config"], 1, "no_such_config"),
    "missing config file": (lambda t, run: ["--config", "missing.toml"], 1, "missing.toml"),
    "config file not TOML": (lambda t, run: ["--config", str(_write(t / "bad.toml", "[train\nepochs = 3\n"))], 1,
                             "bad.toml"),
    "unknown key": (lambda t, run: ["--set", "train.epoch=3"], 1, "'train.epoch' (did you mean 'train.epochs'?)"),
    "mistyped value": (lambda t, run: ["--set", "train.epochs=three"], 1, "train.epochs"),
    "value out of range": (lambda t, run: ["--set", "optimizer.lr=-1"], 1, "optimizer.lr"),
    "unknown choice": (lambda t, run: ["--set", "optimizer.name=adamm"], 1, "optimizer.name"),
    "missing data file": (lambda t, run: ["--set", "data.name=csv", "--set", "data.path=nope.csv"], 1,
                          "not found"),
    "batch does not split over the ranks": (lambda t, run: [], 3,
                                            "must be divisible by the number of ranks 3"),
    "per-rank batch vs accumulation": (lambda t, run: ["--set", "train.grad_accumulation=3"], 2,
                                       "train.grad_accumulation"),
    "more ranks than samples": (lambda t, run: ["--config", "xor"], 8, "more ranks (8) than training samples"),
    "ensemble members vs ranks": (lambda t, run: ["--config", "digits_mlp_ensemble"], 6, "members"),
    "--out is a file": (lambda t, run: ["--out", str(_write(t / "afile", "x"))], 1, "is not a directory"),
    "--out holds a run": (lambda t, run: ["--out", str(_finished_without_checkpoint(t))], 1,
                          "already holds a run"),
    "--out is a checkpoint": (lambda t, run: ["--config", "xor", "--out",
                                              str(sorted((run / "checkpoints").glob("step-*"))[-1])], 1,
                              "is a checkpoint, not a run directory"),
    "--resume auto without --out": (lambda t, run: ["--resume", "auto"], 1, "needs --out"),
    "--resume auto on a finished run without checkpoints": (
        lambda t, run: ["--resume", "auto", "--out", str(_finished_without_checkpoint(t))], 1,
        "holds a finished run"),
    "--resume a missing path": (lambda t, run: ["--resume", "nothere"], 1, "no such checkpoint"),
    "--resume a corrupt checkpoint": (lambda t, run: ["--config", "xor", "--out", "new", "--resume",
                                                      str(_corrupt_copy(t, run))], 1, "checkpoint"),
    "--resume another config's checkpoint": (lambda t, run: ["--config", "digits_mlp", "--out", "new",
                                                             "--resume", str(run)], 1, OTHER_BATCH),
    "--resume auto into another config's run": (lambda t, run: ["--config", "digits_mlp", "--out", str(run),
                                                                "--resume", "auto"], 1, OTHER_BATCH),
    "--profile into a file": (lambda t, run: ["--profile", str(_write(t / "pfile", "x"))], 1,
                              "cannot hold the profile's traces"),
    "empty --out": (lambda t, run: ["--out", ""], 1, "--out is empty"),
}


def _write(path, text):
    path.write_text(text)
    return path


def _refusal(tmp_path, trained, case):
    make, ranks, _ = BAD[case]
    work = tmp_path / "work"
    work.mkdir()
    args = make(tmp_path, trained)
    return work, args, ranks


@pytest.mark.parametrize("case", sorted(BAD))
def test_check_refuses_with_exit_2_naming_the_problem_and_creates_nothing(tmp_path, trained, case, monkeypatch,
                                                                          capsys):
    work, args, ranks = _refusal(tmp_path, trained, case)
    monkeypatch.chdir(work)
    before, run_before = _listing(tmp_path), _listing(trained)
    code = main(["train", "--check", "--check-ranks", str(ranks), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert BAD[case][2] in _error_line(err)
    assert _listing(tmp_path) == before
    assert _listing(trained) == run_before  # a check of a resume from it changes nothing there


@pytest.mark.parametrize("case", sorted(BAD))
def test_train_refuses_what_the_check_refuses_with_the_same_line(tmp_path, trained, case, monkeypatch, capsys):
    work, args, ranks = _refusal(tmp_path, trained, case)
    monkeypatch.chdir(work)
    assert main(["train", "--check", "--check-ranks", str(ranks), *args]) == 2
    checked = _error_line(capsys.readouterr().err)
    # (the real run of N ranks, as threads of this process: the same set-up code on every rank)
    code = main(["train", "--quiet", *args, *(["--simulate-ranks", str(ranks)] if ranks > 1 else [])])
    err = capsys.readouterr().err
    assert code == 2, err
    assert _error_line(err) == checked


def test_check_of_a_good_job_and_the_run_agree(tmp_path):
    args = ["train", "--config", "xor", "--set", "train.epochs=2", "--out", "good", "--quiet"]
    r = _distnn([*args, "--check", "--check-ranks", "2"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "2 ranks, global batch 4 (2 per rank)" in r.stdout and "run directory: good (new)" in r.stdout
    assert not (tmp_path / "good").exists()
    r = _distnn([*args, "--simulate-ranks", "2"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "good" / "summary.json").is_file()
    # now the directory holds that run: a new run there is refused
    r = _distnn([*args, "--check", "--check-ranks", "2"], tmp_path)
    assert r.returncode == 2 and "already holds a run" in _error_line(r.stderr)


def test_check_of_a_resume_finds_the_checkpoint_the_run_resumes_from(tmp_path, trained):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    before = _listing(run)
    r = _distnn(["train", "--config", "xor", "--set", "train.epochs=3", "--set", "checkpoint.enabled=true",
                 "--out", "run", "--resume", "auto", "--check", "--check-ranks", "2"], tmp_path)
    assert r.returncode == 0, r.stderr
    newest = sorted((run / "checkpoints").glob("step-*"))[-1]
    assert f"resume:        auto: {os.path.join('run', 'checkpoints', newest.name)}" in r.stdout
    assert "run directory: run (exists)" in r.stdout
    assert _listing(run) == before


def test_check_ranks_needs_check(tmp_path):
    r = _distnn(["train", "--check-ranks", "2"], tmp_path)
    assert r.returncode == 2
    assert "--check-ranks" in _error_line(r.stderr) and "needs --check" in r.stderr
    assert os.listdir(tmp_path) == []


def test_check_ranks_and_simulate_ranks_must_agree(tmp_path):
    r = _distnn(["train", "--check", "--check-ranks", "2", "--simulate-ranks", "4"], tmp_path)
    assert r.returncode == 2 and "different numbers of ranks" in _error_line(r.stderr)
