"""A damaged checkpoint through the CLI: evaluate and predict refuse it in one line, --resume auto falls back past
a damaged newest checkpoint, and with every checkpoint damaged it is a clear error."""
from __future__ import annotations

import os

import numpy as np
import pytest

from distnn.train import checkpoint as ck

from checkpoint_damage import copy_run, pristine


pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def _flip(path, at=None):
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2 if at is None else at] ^= 0x04
    open(path, "wb").write(bytes(data))


def _run_cli(argv, capsys):
    from distnn.cli import main

    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err


def _cli_case(pristine, tmp_path, how):
    run = str(tmp_path / "run")
    copy_run(str(pristine[0]), run)
    root = os.path.join(run, "checkpoints")
    newest = os.path.join(root, ck.step_name(100))
    if how == "bitflip":
        _flip(os.path.join(newest, "model.npz"))
        return newest, "model.npz fails its SHA-256 check"
    if how == "manifest-field":
        mpath = os.path.join(newest, ck.MANIFEST)
        text = open(mpath, "rb").read()
        open(mpath, "wb").write(text.replace(b'"epoch_end": true', b'"epoch_end": 1'))
        return newest, "manifest.json is damaged"
    if how == "manifest-list":
        open(os.path.join(newest, ck.MANIFEST), "w").write("[1, 2]")
        return newest, "manifest.json is not a distnn checkpoint manifest"
    if how == "pointer":
        open(os.path.join(root, ck.BEST), "wb").write(b"\xff\xfe garbage")
        return os.path.join(root, ck.BEST), "best' is damaged or unreadable"
    if how in ("another-step", "linked-step"):
        for n in os.listdir(newest):
            os.unlink(os.path.join(newest, n))
        os.rmdir(newest)
        if how == "linked-step":
            os.symlink(os.path.join(root, ck.step_name(40)), newest)
            return newest, f"is a symlink to {os.path.join(root, ck.step_name(40))!r}"
        copy_run(os.path.join(root, ck.step_name(40)), newest)
        return newest, "manifest.json is of step-00000040, not of step-00000100"
    raise AssertionError(how)


@pytest.mark.parametrize("command", ["evaluate", "predict"])
@pytest.mark.parametrize("how", ["bitflip", "manifest-field", "manifest-list", "pointer", "another-step",
                                 "linked-step"])
def test_cli_evaluate_and_predict_refuse_a_damaged_checkpoint_in_one_line(pristine, tmp_path, capsys, command,
                                                                            how):
    path, expected = _cli_case(pristine, tmp_path, how)
    args = [command, path]
    if command == "predict":
        inputs = tmp_path / "in.csv"
        np.savetxt(inputs, np.zeros((3, 64)), delimiter=",")
        args += ["--input", str(inputs), "--output", str(tmp_path / "p.csv")]
    code, err = _run_cli(args, capsys)
    assert code == 2 and err.startswith("distnn: error: ") and len(err.strip().splitlines()) == 1, err
    assert expected in err, err
    assert not (tmp_path / "p.csv").exists()


def test_cli_resume_auto_falls_back_past_a_damaged_newest_checkpoint(pristine, tmp_path, capsys):
    path, expected = _cli_case(pristine, tmp_path, "manifest-field")
    run = os.path.dirname(os.path.dirname(path))
    code, err = _run_cli(["train", "--out", run, "--resume", "auto", "--quiet", "--set", "train.epochs=6"], capsys)
    assert code == 0, err
    warning = next(line for line in err.splitlines() if expected in line)
    assert "step-00000100" in warning and "trying the previous checkpoint" in warning
    assert f"resumed from {os.path.join(run, 'checkpoints', ck.step_name(80))}" in err
    # the damaged checkpoint was moved aside (a rewind), and the run went on from step 80 to 6 epochs
    assert [c.step for c in ck.list_checkpoints(os.path.join(run, "checkpoints"))][-1] == 120


def test_cli_resume_auto_with_every_checkpoint_damaged_is_a_clear_error(pristine, tmp_path, capsys):
    run = str(tmp_path / "run")
    copy_run(str(pristine[0]), run)
    _flip(os.path.join(run, "checkpoints", ck.step_name(20), "model.json"))  # (one file, linked into all five)
    code, err = _run_cli(["train", "--out", run, "--resume", "auto", "--quiet"], capsys)
    assert code == 2, err
    newest = os.path.join(run, "checkpoints", ck.step_name(100))
    assert "holds a finished run" in err and "no valid checkpoint to continue from (5 there, none whole; the " \
        f"newest: checkpoint {newest!r}: file model.json fails its SHA-256 check" in err, err
    # a run that did not finish (no results): the resume tries each checkpoint and says why it cannot
    for name in ("model.npz", "summary.json"):
        os.remove(os.path.join(run, name))
    code, err = _run_cli(["train", "--out", run, "--resume", "auto", "--quiet"], capsys)
    assert code == 2, err
    assert "distnn: error: no valid checkpoint in" in err and "every one is incomplete or corrupt" in err
    # (one warning for each of the 5; the error names the newest's file again)
    assert err.count("file model.json fails its SHA-256 check (corrupt); skipping it") == 5, err
