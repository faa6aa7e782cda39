"""The CLI around the run directory: a second run is not written over the first, a damaged model is a
one-line error, a resume needs a directory to resume in, and one-process commands under a launcher."""
import json
import os

import numpy as np
import pytest

from distnn.cli import main
from cli_cases import run_cli
from test_run_dir_checksums import unmark_config

FAST = ["--config", "digits_mlp", "--quiet", "--set", "train.epochs=1", "--set", "run.plots=false"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runs") / "r1")
    assert main(["train", *FAST, "--out", out]) == 0
    return out


def _snapshot(directory):
    return {name: open(os.path.join(directory, name), "rb").read() for name in ("summary.json", "model.npz",
                                                                                  "config.toml")}


def test_a_second_run_into_the_same_directory_is_refused_and_the_first_is_kept(finished, capsys):
    before = _snapshot(finished)
    code, _, err = run_cli(["train", *FAST, "--set", "optimizer.lr=0.01", "--out", finished], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "already holds a run" in err and "--resume auto" in err and "checkpoints" in err
    assert _snapshot(finished) == before


def test_resume_auto_continues_the_run_in_its_directory(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["train", *FAST, "--out", out]) == 0
    code, _, _ = run_cli(["train", *FAST, "--set", "train.epochs=2", "--out", out, "--resume", "auto"], capsys)
    assert code == 0
    assert json.load(open(os.path.join(out, "summary.json")))["epochs_run"] == 2
    assert "epochs = 2\n" in open(os.path.join(out, "config.toml")).read()  # the accepted resume's settings


@pytest.mark.parametrize("config", ["digits_mlp", "digits_mlp_ensemble"])
def test_a_refused_resume_leaves_the_run_directory_as_it_was(tmp_path, capsys, config):
    # config.toml was rewritten with the refused settings before the checkpoint was read
    out = str(tmp_path / "r")
    args = [*FAST, "--config", config] + (["--set", "ensemble.members=2"] if "ensemble" in config else [])
    assert main(["train", *args, "--out", out]) == 0
    files = ["config.toml", "summary.json", "model.json"]
    before = {n: open(os.path.join(out, n), "rb").read() for n in files}
    code, _, err = run_cli(["train", *args, "--set", "train.epochs=2", "--set", "model.hidden_sizes=[32]",
                            "--out", out, "--resume", "auto"], capsys)
    assert code == 2 and "cannot resume" in err
    assert {n: open(os.path.join(out, n), "rb").read() for n in files} == before


@pytest.mark.parametrize("how", [["--resume", "auto"], ["--set", "checkpoint.resume=auto"]])
def test_resume_auto_without_a_run_directory_is_refused(tmp_path, monkeypatch, capsys, how):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(["train", *FAST, *how], capsys)
    assert code == 2 and "needs --out RUN_DIR" in err and "(or --set run.run_name=NAME: run.out_dir/NAME)" in err
    assert not (tmp_path / "runs").exists()  # no fresh timestamped directory was started instead


def test_the_run_name_the_refusal_offers_resumes_its_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # (the advice works: a first session starts runs/NAME, a second continues it)
    code, _, err = run_cli(["train", *FAST, "--resume", "auto", "--set", "run.run_name=mine"], capsys)
    assert code == 0 and "starting from the beginning" in err, err
    code, _, err = run_cli(["train", *FAST, "--resume", "auto", "--set", "run.run_name=mine"], capsys)
    assert code == 0 and "resumed from " + os.path.join("runs", "mine", "checkpoints") in err, err


def _damage(path, how):
    data = open(path, "rb").read()
    if how == "bit flip":
        data = bytearray(data)
        data[len(data) // 2] ^= 0x40
    elif how == "truncated":
        data = data[: len(data) // 2]
    elif how == "empty":
        data = b""
    elif how == "huge mean":  # valid JSON: a number no float holds
        data = data.replace(b'"mean": [', b'"mean": [1' + b"0" * 400 + b", ", 1)
    elif how == "other model":  # valid, but not the model of model.npz
        meta = json.loads(data)
        meta["model"]["kwargs"]["hidden_sizes"] = [7]
        data = json.dumps(meta).encode()
    else:
        data = how.encode()
    with open(path, "wb") as f:
        f.write(bytes(data))


@pytest.mark.parametrize("name,how", [("model.npz", "bit flip"), ("model.npz", "truncated"), ("model.npz", "empty"),
                                      ("model.npz", "garbage\n"),
                                      ("model.json", "[]"), ("model.json", '{"model": {"name": "mlp"}, '
                                                                           '"standardizer": {"mean": 1}}'),
                                      # (found by test_checkpoint_corruption_fuzz: a traceback, TypeError)
                                      ("model.json", "7"), ("model.json", "null"), ("model.json", '"ensemble"'),
                                      ("model.json", "truncated"), ("model.json", "\x99\x00"),
                                      ("model.json", "huge mean"),  # (OverflowError)
                                      ("model.json", "other model")])  # (the error named model.npz alone)
@pytest.mark.parametrize("sums", [True, False], ids=["checksummed", "older-distnn"])
def test_a_damaged_model_in_the_run_directory_is_a_one_line_error(finished, tmp_path, capsys, name, how, sums):
    import shutil

    run = str(tmp_path / "copy")
    shutil.copytree(finished, run)
    shutil.rmtree(os.path.join(run, "checkpoints"))  # the run's own model, not a checkpoint's
    if not sums:  # a run directory of a distnn before SHA256SUMS: the files are parsed, and fail there
        os.remove(os.path.join(run, "SHA256SUMS"))
        meta_path = os.path.join(run, "model.json")  # (nor the mark in model.json that it has one)
        meta = json.load(open(meta_path))
        del meta["checksums"]
        json.dump(meta, open(meta_path, "w"))
        unmark_config(run)  # (nor config.toml's)
    _damage(os.path.join(run, name), how)
    code, _, err = run_cli(["evaluate", run], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert (f"{os.path.join(run, name)} fails its SHA-256 check" if sums else "cannot load the model of") in err
    assert name in err  # (which file: a JSON or zip error did not say)
    assert "pickle" not in err  # (numpy's advice to load a text file "unsafely")


def test_evaluate_and_predict_run_once_under_a_launcher(finished, tmp_path, monkeypatch, capsys):
    # mpiexec -n 2 python -m distnn predict ...: rank 1 does nothing (it used to race rank 0 on the output)
    csv = tmp_path / "in.csv"
    np.savetxt(csv, np.zeros((3, 64)), delimiter=",")
    monkeypatch.setenv("PMI_RANK", "1")
    assert run_cli(["evaluate", finished], capsys) == (0, "", "")
    assert run_cli(["predict", finished, "--input", str(csv), "--output", str(tmp_path / "p.csv")], capsys) \
        == (0, "", "")
    assert not (tmp_path / "p.csv").exists()
    monkeypatch.setenv("PMI_RANK", "0")
    code, out, _ = run_cli(["predict", finished, "--input", str(csv), "--output", str(tmp_path / "p.csv")], capsys)
    assert code == 0 and "wrote 3 predictions" in out


def test_a_usage_error_is_printed_by_rank_zero_only(monkeypatch, capsys):
    monkeypatch.setenv("PMI_RANK", "1")
    with pytest.raises(SystemExit) as e:
        main(["train", "--bogus"])
    assert e.value.code == 2 and capsys.readouterr().err == ""
    monkeypatch.setenv("PMI_RANK", "0")
    with pytest.raises(SystemExit) as e:
        main(["train", "--bogus"])
    assert e.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_ranks_with_differently_shaped_data_get_one_line(tmp_path, capsys):
    # Per-rank data files whose samples have 8 features on rank 0 and 5 on rank 1: refused before training.
    rng = np.random.default_rng(0)
    for rank, features in ((0, 8), (1, 5)):
        np.savez(tmp_path / f"e{rank}.npz", x=rng.standard_normal((120, features)), y=np.arange(120) % 3)
    code, _, err = run_cli(["train", *FAST, "--set", "data.name=npz", "--set", "data.augment.shift=0", "--set",
                            f"data.path={tmp_path}/e{{rank}}.npz",
                            "--simulate-ranks", "2", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and err.count("distnn: error:") == 1, err
    assert "gives rank 1 other data than rank 0" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_per_rank_files_must_hold_the_same_data(tmp_path, capsys):
    # distnn shards one dataset itself: per-rank files with other samples (the same shape) were sharded
    # again, each rank silently training on half of its own file. Refused; identical copies train.
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((120, 6)), np.arange(120) % 3
    np.savez(tmp_path / "d0.npz", x=x, y=y)
    np.savez(tmp_path / "d1.npz", x=x + 1, y=y)
    args = ["train", *FAST, "--set", "data.name=npz", "--set", "data.augment.shift=0", "--set",
            f"data.path={tmp_path}/d{{rank}}.npz", "--simulate-ranks", "2"]
    code, _, err = run_cli([*args, "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and err.count("distnn: error:") == 1 and len(err.strip().splitlines()) == 1, err
    assert "gives rank 1 other data than rank 0" in err and "pre-sharded" in err
    assert not (tmp_path / "r").exists()
    np.savez(tmp_path / "d1.npz", x=x, y=y)  # an identical copy per rank: trains
    code, _, err = run_cli([*args, "--out", str(tmp_path / "r2")], capsys)
    assert code == 0, err


def test_a_preempted_run_with_its_own_checkpoint_dir_keeps_it_and_resumes(tmp_path):
    # checkpoint.dir = "ckpts": a preemption in the first epoch used to remove the run directory with the
    # checkpoint it had just written (the check looked in checkpoints/ only), and `evaluate RUN` and
    # `--resume RUN` looked in checkpoints/ too
    import subprocess
    import sys

    run = tmp_path / "run"
    args = [sys.executable, "-m", "distnn", "train", "--config", "digits_mlp", "--set", "train.epochs=2",
            "--set", "checkpoint.dir=ckpts", "--set", "run.plots=false", "--quiet", "--out", str(run)]
    env = dict(os.environ, DISTNN_FAULT_SIGNAL_AT="0:7", OMP_NUM_THREADS="1")
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 75, out.stderr[-2000:]
    assert (run / "ckpts" / "step-00000007").is_dir()
    out = subprocess.run([sys.executable, "-m", "distnn", "evaluate", str(run)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "accuracy" in out.stdout, out.stderr[-2000:]  # (the step-7 weights)
    env.pop("DISTNN_FAULT_SIGNAL_AT")
    out = subprocess.run([*args, "--resume", str(run)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resumed from" in out.stderr and "ckpts/step-00000007" in out.stderr


def test_a_job_into_a_directory_another_job_is_running_in_is_refused(tmp_path, capsys):
    # Two jobs started into one --out both passed the "already holds a run" check and wrote a
    # directory mixing their files (a race, no lock); now the second is refused, resuming or not.
    import subprocess
    import sys

    from cli_faults import fault_env, wait_for_marker

    out = str(tmp_path / "r")
    # The first job pauses at step 25 (its second epoch; the first one's files are written) until the
    # test releases it, so it is certainly still running while the second starts (it used to be slowed
    # down instead, and a slow machine could leave the second starting after the first had ended).
    markers = tmp_path / "markers"
    markers.mkdir()
    env = fault_env(DISTNN_FAULT_PAUSE_AT="0:25", DISTNN_FAULT_MARKER_DIR=str(markers))
    slow = subprocess.Popen([sys.executable, "-m", "distnn", "train", *FAST, "--set", "train.epochs=2",
                             "--out", out], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_marker(slow, markers / "paused-rank0-step25")
        for extra in ([], ["--resume", "auto"]):
            code, _, err = run_cli(["train", *FAST, "--set", "run.seed=9", "--out", out, *extra], capsys)
            assert code == 2 and "in use by another distnn job" in err, err
        (markers / "release").touch()  # the first job trains on to its end
        assert slow.wait(timeout=300) == 0, slow.stderr.read()
    finally:
        if slow.poll() is None:
            slow.kill()
    assert json.load(open(os.path.join(out, "summary.json")))["epochs_run"] == 2
    assert "seed = 9" not in open(os.path.join(out, "config.toml")).read()
    # the lock went with its job: the run continues
    assert main(["train", *FAST, "--set", "train.epochs=3", "--out", out, "--resume", "auto"]) == 0


def test_a_file_system_without_flock_runs_without_the_lock(tmp_path, monkeypatch):
    # flock's ENOLCK / EOPNOTSUPP (some network mounts) is not "another job holds it"
    import errno
    import fcntl

    def unsupported(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", unsupported)
    assert main(["train", *FAST, "--out", str(tmp_path / "r")]) == 0


def test_resume_auto_of_a_finished_run_whose_checkpoints_are_all_damaged_says_how(finished, tmp_path, capsys):
    # (found by test_checkpoint_corruption_fuzz) the refusal said "no valid checkpoint to continue from"
    # without a word on why the checkpoints there are not valid
    import shutil

    from distnn.train import checkpoint as ck

    run = str(tmp_path / "copy")
    shutil.copytree(finished, run)
    newest = ck.list_checkpoints(os.path.join(run, "checkpoints"))[-1].path
    _damage(os.path.join(newest, "model.json"), "bit flip")
    code, _, err = run_cli(["train", "--out", run, "--resume", "auto", "--quiet"], capsys)
    assert code == 2 and "holds a finished run" in err
    assert f"none whole; the newest: checkpoint {newest!r}: file model.json fails its SHA-256 check" in err, err
