"""``distnn evaluate RUN`` and ``distnn predict RUN`` read the run's newest trained state, and say which.

A finished run (model.npz of its last step) resumed for more epochs and killed
after writing newer checkpoints: its model.npz is stale, and evaluate/predict
read the newest valid checkpoint instead (the oracle: evaluating that checkpoint
by name). Runs of an older distnn (no step recorded with model.npz) still load.
"""
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from distnn.cli import main
from test_run_dir_checksums import unmark_config

FAST = ["--config", "digits_mlp", "--quiet", "--set", "run.plots=false", "--set", "checkpoint.every_epochs=1"]


def _cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _train_subprocess(args, **env):
    cmd = [sys.executable, "-m", "distnn", "train", *map(str, args)]
    return subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1", **env), capture_output=True, text=True,
                          timeout=300)


def _step(s: int) -> str:
    return f"step-{s:08d}"


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A 1-epoch run, finished; then resumed for 4 epochs and SIGKILLed in its third epoch."""
    root = tmp_path_factory.mktemp("newest")
    run = root / "run"
    assert main(["train", *FAST, "--set", "train.epochs=1", "--out", str(run)]) == 0
    steps = json.load(open(run / "summary.json"))["global_steps"]  # one epoch
    assert json.load(open(run / "model.json"))["global_step"] == steps
    shutil.copytree(run, root / "finished")
    got = _train_subprocess([*FAST, "--set", "train.epochs=4", "--resume", "auto", "--out", run],
                            DISTNN_FAULT_KILL_AT=f"0:{2 * steps + 3}")
    assert got.returncode == -signal.SIGKILL, got.stderr[-2000:]
    assert (run / "checkpoints" / _step(2 * steps)).is_dir()
    assert json.load(open(run / "model.json"))["global_step"] == steps  # model.npz is the first session's
    return {"run": run, "finished": root / "finished", "steps": steps, "root": root}


def test_a_finished_run_is_read_from_its_model_npz(killed, capsys):
    code, out, err = _cli(["evaluate", killed["finished"]], capsys)
    assert code == 0 and "accuracy" in out
    assert f"reading {killed['finished'] / 'model.npz'} (global step {killed['steps']})" in err


def test_evaluate_reads_the_checkpoint_newer_than_model_npz(killed, capsys):
    run, newest = killed["run"], _step(2 * killed["steps"])
    code, stale, _ = _cli(["evaluate", killed["finished"]], capsys)
    assert code == 0
    code, out, err = _cli(["evaluate", run], capsys)
    assert code == 0, err
    code, oracle, _ = _cli(["evaluate", run / "checkpoints" / newest], capsys)
    assert code == 0
    assert out == oracle and out != stale  # (two epochs of training against one)
    line = [ln for ln in err.splitlines() if "reading" in ln]
    assert len(line) == 1 and f"checkpoint {run / 'checkpoints' / newest}" in line[0], err
    assert "newer than" in line[0] and "model.npz" in line[0] and f"global step {killed['steps']}" in line[0]


def test_predict_reads_the_checkpoint_newer_than_model_npz(killed, capsys, tmp_path):
    import numpy as np

    from distnn.data import load_dataset

    run, newest = killed["run"], _step(2 * killed["steps"])
    np.savez(tmp_path / "x.npz", x=load_dataset("digits").test.x[:50])
    outs = {}
    for name, path in (("run", run), ("checkpoint", run / "checkpoints" / newest), ("stale", killed["finished"])):
        code, _, err = _cli(["predict", path, "--input", tmp_path / "x.npz", "--output", tmp_path / f"{name}.csv"],
                            capsys)
        assert code == 0, err
        outs[name] = (tmp_path / f"{name}.csv").read_text()
        if name == "run":
            assert f"reading checkpoint {run / 'checkpoints' / newest}" in err, err
    assert outs["run"] == outs["checkpoint"] != outs["stale"]


def test_the_model_npz_named_explicitly_is_read(killed, capsys):
    code, out, err = _cli(["evaluate", killed["run"] / "model.npz"], capsys)
    code2, stale, _ = _cli(["evaluate", killed["finished"]], capsys)
    assert code == code2 == 0 and out == stale
    assert f"reading {killed['run'] / 'model.npz'}" in err


def test_a_run_of_an_older_distnn_without_a_recorded_step(killed, capsys, tmp_path):
    # model.json without global_step: summary.json's global_steps (written with model.npz) stands for it
    old = tmp_path / "old"
    shutil.copytree(killed["run"], old)
    meta = json.load(open(old / "model.json"))
    del meta["global_step"]
    del meta["checksums"]  # (nor did it checksum the run's files)
    json.dump(meta, open(old / "model.json", "w"))
    os.remove(old / "SHA256SUMS")
    unmark_config(old)  # (nor config.toml's mark)
    code, out, err = _cli(["evaluate", old], capsys)
    assert code == 0 and f"checkpoint {old / 'checkpoints' / _step(2 * killed['steps'])}" in err, err
    # neither file says: model.npz, as before
    summary = json.load(open(old / "summary.json"))
    del summary["global_steps"]
    json.dump(summary, open(old / "summary.json", "w"))
    code, out, err = _cli(["evaluate", old], capsys)
    code2, stale, _ = _cli(["evaluate", killed["finished"]], capsys)
    assert code == code2 == 0 and out == stale and f"reading {old / 'model.npz'}\n" in err, err


def test_a_corrupt_newer_checkpoint_falls_back_to_model_npz(killed, capsys, tmp_path):
    copy = tmp_path / "c"
    shutil.copytree(killed["run"], copy)
    for cp in (copy / "checkpoints").glob("step-*"):
        if int(cp.name.split("-")[1]) > killed["steps"]:
            with open(cp / "model.npz", "r+b") as f:
                f.seek(100)
                b = f.read(1)
                f.seek(100)
                f.write(bytes([b[0] ^ 0x40]))
    code, out, err = _cli(["evaluate", copy], capsys)
    code2, stale, _ = _cli(["evaluate", killed["finished"]], capsys)
    assert code == code2 == 0 and out == stale
    assert "SHA-256" in err and f"reading {copy / 'model.npz'}" in err, err


def test_a_rewound_resume_abandons_model_npz(tmp_path, capsys):
    # a finished 2-epoch run resumed from its first-epoch checkpoint: the newer checkpoints (model.npz's own
    # among them) are moved aside as discarded-*, and model.npz is of that abandoned future, though of a
    # larger step than the new session's checkpoints
    run = tmp_path / "run"
    assert main(["train", *FAST, "--set", "train.epochs=2", "--out", str(run)]) == 0
    steps = json.load(open(run / "summary.json"))["global_steps"] // 2
    got = _train_subprocess([*FAST, "--set", "train.epochs=3", "--set", "checkpoint.every_steps=1", "--resume",
                             run / "checkpoints" / _step(steps), "--out", run],
                            DISTNN_FAULT_KILL_AT=f"0:{steps + 3}")
    assert got.returncode == -signal.SIGKILL, got.stderr[-2000:]
    assert any(n.startswith(f"discarded-{_step(2 * steps)}-") for n in os.listdir(run / "checkpoints"))
    capsys.readouterr()
    code, out, err = _cli(["evaluate", run], capsys)
    code2, oracle, _ = _cli(["evaluate", run / "checkpoints" / _step(steps + 2)], capsys)
    assert code == code2 == 0 and out == oracle
    # (the resume removed model.npz: it belongs to the discarded checkpoints)
    assert f"reading checkpoint {run / 'checkpoints' / _step(steps + 2)}" in err and "no model.npz" in err, err
    assert not (run / "model.npz").exists()
