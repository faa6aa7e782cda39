"""``distnn train`` under a real ``mpiexec -n 2`` (subprocesses), compared with in-process runs.

These tests launch ``.venv/bin/mpiexec`` themselves, so plain ``pytest`` runs
them (they skip when mpiexec or mpi4py is missing). Each launch costs a few
seconds, so the assertions are grouped into few launches:

1. ``python -m distnn train`` on 2 MPI ranks, compared with the same config
   under ``--simulate-ranks 2`` (equal to 1e-6, dropout and augmentation on),
   and, with nothing random, with 1 process at the same global batch (equal
   up to float32 summation order);
2. one launch of a driver that runs every bad-input case on 2 ranks, each case
   hit either by both ranks or by rank 1 only: every rank must return exit
   status 2 with rank 0 printing one line, and no run directory may appear;
3. one real ``python -m distnn train`` where only rank 1's data file is
   missing: the job ends quickly with status 2 and one error line.
"""
import json
import os
import shutil
import sys

import pytest

from mpi_child import child_env, require_mpiexec, run_under_mpiexec

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPIEXEC = os.path.join(os.path.dirname(sys.executable), "mpiexec")
if not os.path.exists(MPIEXEC):
    MPIEXEC = shutil.which("mpiexec")

pytestmark = [
    pytest.mark.skipif(MPIEXEC is None, reason="mpiexec not found (install distnn[mpi] into the venv)"),
    pytest.mark.timeout(300),
]
# dropout and augmentation off so that 1 rank and 2 ranks draw nothing different
TRAIN = ["--config", "digits_mlp", "--set", "train.epochs=3", "--set", "model.dropout=0.0", "--set",
         "data.augment.shift=0", "--quiet"]


def _env():
    # a collective timeout beyond every deadline here: a rank left waiting for another fails the test
    # with TimeoutExpired (the jobs that must end "quickly" used to be held to 60 s of wall clock)
    env = child_env(600, PYTHONUNBUFFERED="1")
    env.pop("DISTNN_LOG_ALL_RANKS", None)
    return env


def mpirun(n, args, timeout=180):
    require_mpiexec()
    return run_under_mpiexec(n, args, env=_env(), deadline=timeout, cwd=REPO)


def _rows(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def _summary(run):
    with open(os.path.join(run, "summary.json")) as f:
        return json.load(f)


def test_mpiexec_matches_simulated_ranks_and_one_process(tmp_path):
    from distnn.cli import main

    # The built-in config as it is (dropout and shift augmentation on): per-rank random streams must be
    # the same whether the ranks are processes or threads.
    full = ["--config", "digits_mlp", "--set", "train.epochs=3", "--quiet"]
    real = str(tmp_path / "mpi2")
    r = mpirun(2, ["-m", "distnn", "train", *full, "--out", real])
    assert r.returncode == 0, r.stderr[-3000:]
    assert "test accuracy" in r.stdout and r.stdout.count("test accuracy") == 1  # rank 0 only
    assert "[rank 0]" in r.stderr and "[rank 1]" not in r.stderr                   # rank 0 logs only
    sim = str(tmp_path / "sim2")
    assert main(["train", *full, "--simulate-ranks", "2", "--out", sim]) == 0
    keys = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr")
    for a, b in zip(_rows(real), _rows(sim), strict=True):
        for k in keys:
            assert a[k] == pytest.approx(b[k], abs=1e-6), k      # same algorithm, different transport
    s_real, s_sim = _summary(real), _summary(sim)
    assert s_real["world_size"] == s_sim["world_size"] == 2 and s_real["epochs_run"] == s_sim["epochs_run"] == 3
    for k in ("test_accuracy", "test_loss"):
        assert s_real[k] == pytest.approx(s_sim[k], abs=1e-6)

    # 1 process with global batch B == 2 MPI ranks with B/2 each (nothing random that depends on the rank)
    real_b = str(tmp_path / "mpi2_det")
    r = mpirun(2, ["-m", "distnn", "train", *TRAIN, "--out", real_b])
    assert r.returncode == 0, r.stderr[-3000:]
    one = str(tmp_path / "one")
    assert main(["train", *TRAIN, "--out", one]) == 0
    for a, c in zip(_rows(real_b), _rows(one), strict=True):
        for k in keys:
            assert a[k] == pytest.approx(c[k], abs=2e-5), k
    for k in ("test_accuracy", "test_loss"):
        assert _summary(real_b)[k] == pytest.approx(_summary(one)[k], abs=2e-5)


def test_bad_input_on_one_or_all_ranks_ends_every_rank(tmp_path):
    r = mpirun(2, [os.path.join(REPO, "tests", "mpi_cli_driver.py"), str(tmp_path)], timeout=240)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    results = [json.load(open(tmp_path / f"result-{rank}.json")) for rank in (0, 1)]
    by_rank = {res["rank"]: res["cases"] for res in results}
    assert sorted(by_rank) == [0, 1]
    for case, got0 in by_rank[0].items():
        got1 = by_rank[1][case]
        assert got0["code"] == got1["code"] == 2, (case, got0, got1)
        lines = got0["stderr"].strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("distnn: error: "), (case, got0["stderr"])
        assert got0["needle"] in lines[0], (case, lines[0])
        assert got1["stderr"].strip() == "", (case, got1["stderr"])    # only rank 0 reports
        assert not got0["out_exists"], case


def test_rank1_missing_file_real_cli(tmp_path):
    from distnn.data import load_dataset

    tr = load_dataset("digits").train
    import numpy as np

    np.savetxt(tmp_path / "d_0.csv", np.column_stack([tr.x[:200], tr.y[:200]]), delimiter=",", fmt="%.5g")
    out = tmp_path / "run"
    r = mpirun(2, ["-m", "distnn", "train", *TRAIN, "--set", "data.name=csv", "--set",
                   f"data.path={tmp_path}/d_{{rank}}.csv", "--out", str(out)])
    assert r.returncode != 0
    errors = [ln for ln in r.stderr.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1 and errors[0].startswith("distnn: error: rank 1:") and "d_1.csv" in errors[0], r.stderr
    assert not out.exists()


def test_per_rank_files_with_other_data_are_refused_real_cli(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((120, 6)), np.arange(120) % 3
    np.savez(tmp_path / "d0.npz", x=x, y=y)
    np.savez(tmp_path / "d1.npz", x=x[::-1], y=y[::-1])  # the same samples in another order: other data
    out = tmp_path / "run"
    r = mpirun(2, ["-m", "distnn", "train", *TRAIN, "--set", "data.name=npz", "--set",
                   "data.augment.shift=0", "--set", f"data.path={tmp_path}/d{{rank}}.npz", "--out", str(out)])
    assert r.returncode == 2, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1 and "gives rank 1 other data than rank 0" in errors[0], r.stderr
    assert not out.exists()


def test_help_is_printed_once_under_mpiexec():
    # every rank printed the whole --help (usage errors were already rank 0's alone)
    for args in (["train", "--help"], ["evaluate", "--help"], []):
        r = mpirun(2, ["-m", "distnn", *args], timeout=120)
        assert r.returncode == (0 if args else 2), r.stderr
        assert r.stdout.count("usage: distnn") == 1, r.stdout
