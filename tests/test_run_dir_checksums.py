"""The run directory's ``model.npz``, ``model.json`` and ``config.toml`` are checked against its ``SHA256SUMS``.

Before it, evaluate and predict loaded them unchecked: a ``model.npz`` replaced by another valid one
(another run's, a checkpoint's) or a ``model.json`` edited into other valid JSON (a standardization
mean) gave another model without a word. Now each is a one-line error naming the file, exit status 2;
a run directory of an older distnn (no ``SHA256SUMS``) loads as before, without a warning. And the model
is built from the very bytes that were checked, never from the file read again (also a checkpoint's).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from distnn.cli import main
from distnn.train import checkpoint as ck
from distnn.train import run_checksums
from distnn.train import run_dir as rd
from cli_cases import run_cli

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

TRAIN = ["--quiet", "--set", "train.epochs=2", "--set", "run.plots=false", "--set", "checkpoint.keep_last=0",
         "--set", "model.hidden_sizes=[16]"]
FILES = ("config.toml", "model.json", "model.npz")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("sums") / "run"
    assert main(["train", "--out", str(run), *TRAIN]) == 0
    return run


@pytest.fixture
def run(finished, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


def _weights(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _loaded(path):
    model, _, _ = rd.load_model(str(path))
    return {k: np.asarray(v) for k, v in model.state_dict().items()}


def test_sha256sums_lists_the_runs_files_as_sha256sum_writes_them(run):
    lines = (run / "SHA256SUMS").read_text().splitlines()
    assert lines == [f"{hashlib.sha256((run / n).read_bytes()).hexdigest()}  {n}" for n in FILES]


def _replace_with_a_checkpoints(run):  # a valid npz of the same model: the weights of epoch 1
    shutil.copyfile(run / "checkpoints" / "step-00000020" / "model.npz", run / "model.npz")


def _edit_the_mean(run):  # valid JSON, another standardization
    path = run / "model.json"
    meta = json.loads(path.read_text())
    meta["standardizer"]["mean"] = [m + 0.5 for m in meta["standardizer"]["mean"]]
    path.write_text(json.dumps(meta, indent=2) + "\n")


def _flip_config(run):
    path = run / "config.toml"
    path.write_text(path.read_text().replace("epochs = 2", "epochs = 3"))


@pytest.mark.parametrize("damage,name", [(_replace_with_a_checkpoints, "model.npz"), (_edit_the_mean, "model.json"),
                                         (_flip_config, "config.toml")])
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_changed_run_file_is_a_one_line_error_naming_it(run, tmp_path, capsys, damage, name, command):
    before = (run / name).read_bytes()
    damage(run)
    assert (run / name).read_bytes() != before
    args = [command, str(run)]
    if command == "predict":
        np.savetxt(tmp_path / "in.csv", np.zeros((3, 64)), delimiter=",")
        args += ["--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "p.csv")]
    code, out, err = run_cli(args, capsys)
    assert code == 2 and err.startswith("distnn: error: ") and len(err.strip().splitlines()) == 1, err
    assert f"{run / name} fails its SHA-256 check" in err and "Traceback" not in err
    assert not (tmp_path / "p.csv").exists()


def test_a_damaged_sha256sums_is_an_error_naming_it(run, capsys):
    path = run / "SHA256SUMS"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # in a file name: model.npz -> model.o... (it can no longer say what it covers)
    path.write_bytes(bytes(data))
    code, _, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and f"{path} is damaged" in err, err


def _unmark_meta(run):  # model.json without its mark that there is a SHA256SUMS
    path = run / "model.json"
    meta = json.loads(path.read_text())
    assert meta.pop(run_checksums.MARK) == "SHA256SUMS"
    path.write_text(json.dumps(meta, indent=2) + "\n")


def unmark_config(run):
    """``run``'s config.toml without its mark that there is a SHA256SUMS (as an earlier distnn wrote it)."""
    path = Path(run) / "config.toml"
    lines = path.read_text().splitlines(keepends=True)
    assert lines.count(run_checksums.CONFIG_MARK + "\n") == 1
    path.write_text("".join(line for line in lines if line != run_checksums.CONFIG_MARK + "\n"))


def _as_an_older_distnn_wrote_it(run):  # no SHA256SUMS, and no mark in model.json or config.toml that there is one
    (run / "SHA256SUMS").unlink(missing_ok=True)
    _unmark_meta(run)
    unmark_config(run)


def test_a_run_directory_of_an_older_distnn_loads_unchecked_and_quietly(run, capsys):
    _as_an_older_distnn_wrote_it(run)
    _edit_the_mean(run)  # (nothing to tell it by)
    code, out, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 0 and "accuracy" in out and "warning" not in err, err


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_deleted_sha256sums_is_an_error_naming_it_not_a_run_of_an_older_distnn(run, tmp_path, capsys, command):
    # a run's SHA256SUMS deleted: the run was taken for an older distnn's (none), its files read unchecked
    (run / "SHA256SUMS").unlink()
    _edit_the_mean(run)  # (what the checksums would have caught)
    args = [command, str(run)]
    if command == "predict":
        np.savetxt(tmp_path / "in.csv", np.zeros((2, 64)), delimiter=",")
        args += ["--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "p.csv")]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{run / 'SHA256SUMS'} is missing" in err and "model.json says the run was written with it" in err
    with pytest.raises(run_checksums.RunFileError, match="SHA256SUMS is missing"):
        rd.load_model(str(run))


def _predict_args(tmp_path):
    np.savetxt(tmp_path / "in.csv", np.zeros((2, 64)), delimiter=",")
    return ["--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "p.csv")]


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_a_deleted_sha256sums_is_an_error_when_config_toml_alone_is_still_marked(run, tmp_path, capsys, command):
    # SHA256SUMS deleted and model.json's mark lost too: the run read as an older distnn's, unchecked
    (run / "SHA256SUMS").unlink()
    _unmark_meta(run)
    _edit_the_mean(run)
    args = [command, str(run), *(_predict_args(tmp_path) if command == "predict" else [])]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{run / 'SHA256SUMS'} is missing" in err and "config.toml says the run was written with it" in err
    assert not (tmp_path / "p.csv").exists()


def _interrupted(run):
    """The run as it is while still training: config.toml, metrics and checkpoints; no model.npz/json yet."""
    for name in ("model.npz", "model.json", "summary.json"):
        (run / name).unlink()
    run_checksums.forget(str(run), ["model.npz", "model.json"])
    assert list(run_checksums.read_sums(str(run))) == ["config.toml"]


@pytest.mark.parametrize("command", ["evaluate", "predict", "resume"])
def test_a_deleted_sha256sums_of_a_run_still_training_is_an_error_naming_it(run, tmp_path, capsys, command):
    # before model.json there was no mark at all: evaluate read the newest checkpoint from where an
    # unchecked config.toml said, and a resume went on with that config
    _interrupted(run)
    (run / "SHA256SUMS").unlink()
    if command == "resume":
        args = ["train", "--out", str(run), *TRAIN, "--set", "train.epochs=3", "--resume", "auto"]
    else:
        args = [command, str(run), *(_predict_args(tmp_path) if command == "predict" else [])]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "SHA256SUMS is" in err and "missing" in err, err
    assert "Traceback" not in err and not (run / "model.npz").exists()


@pytest.mark.parametrize("command", ["evaluate", "resume"])
def test_a_run_still_training_of_an_older_distnn_loads_and_resumes_unchecked(run, capsys, command):
    # (neither file marked, no SHA256SUMS: as before)
    _interrupted(run)
    (run / "SHA256SUMS").unlink()
    unmark_config(run)
    if command == "resume":
        args = ["train", "--out", str(run), *TRAIN, "--set", "train.epochs=3", "--resume", "auto"]
    else:
        args = ["evaluate", str(run)]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert command == "resume" or "accuracy" in out


def test_config_toml_is_marked_and_still_a_config_of_the_same_settings(run, capsys):
    from distnn.train.config import load_config

    text = (run / "config.toml").read_text()
    assert text.startswith("# distnn run configuration") and run_checksums.CONFIG_MARK + "\n" in text
    code, _, err = run_cli(["train", "--config", str(run / "config.toml"), "--out", str(run.parent / "again"),
                            "--quiet", "--set", "checkpoint.keep_last=0"], capsys)
    assert code == 0, err
    assert load_config(str(run.parent / "again" / "config.toml")).to_dict() == \
        load_config(str(run / "config.toml")).to_dict()


def test_no_crash_leaves_a_marked_config_without_sha256sums(tmp_path, monkeypatch):
    # a fresh run's config.toml (marked) was renamed in before any SHA256SUMS existed: killed in between,
    # the run read as one whose SHA256SUMS was deleted, and could not be resumed
    run = tmp_path / "run"
    seen = []
    replace = os.replace

    def spied(src, dst, **kw):
        if os.path.basename(dst) == "config.toml" and os.path.dirname(os.path.abspath(dst)) == str(run):
            seen.append(os.path.exists(run / "SHA256SUMS"))
        return replace(src, dst, **kw)

    monkeypatch.setattr(os, "replace", spied)
    assert main(["train", "--out", str(run), *TRAIN]) == 0
    assert seen == [True]


class _Killed(BaseException):
    """A kill -9 stand-in: nothing after it runs."""


@pytest.fixture
def killed_after_config(tmp_path, monkeypatch):
    """A new run killed right after its config.toml was renamed in, before SHA256SUMS was updated."""
    run = tmp_path / "run"
    replace = os.replace

    def spied(src, dst, **kw):
        if os.path.basename(dst) == "SHA256SUMS" and (run / "config.toml").exists():
            raise _Killed
        return replace(src, dst, **kw)

    monkeypatch.setattr(os, "replace", spied)
    monkeypatch.setattr(rd, "remove_run_dir", lambda path: None)  # (a killed run cleans nothing up)
    with pytest.raises(_Killed):
        main(["train", "--out", str(run), *TRAIN])
    monkeypatch.undo()
    for n in os.listdir(run):  # (a kill leaves the temporary file of SHA256SUMS's update: nothing reads it)
        if n.startswith("SHA256SUMS") and n != "SHA256SUMS":
            os.remove(run / n)
    return run


def test_a_new_run_killed_after_its_config_has_it_listed_already(killed_after_config):
    # SHA256SUMS was created empty before config.toml came in: after a kill there, sha256sum -c refused
    # the empty list, and a resume took the marked config.toml unchecked (nothing listed it)
    run = killed_after_config
    assert "model.npz" not in os.listdir(run)
    config = (run / "config.toml").read_bytes()
    assert run_checksums.CONFIG_MARK.encode() in config
    assert (run / "SHA256SUMS").read_text() == f"{hashlib.sha256(config).hexdigest()}  config.toml\n"


def test_a_new_run_killed_after_its_config_evaluates_to_a_clear_error_and_resumes(killed_after_config, capsys):
    run = killed_after_config
    code, _, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 2 and err.startswith("distnn: error: ") and len(err.strip().splitlines()) == 1, err
    assert "model.npz is missing" in err and "Traceback" not in err
    code, _, err = run_cli(["train", "--out", str(run), *TRAIN, "--resume", "auto"], capsys)
    assert code == 0, err
    assert run_checksums.read_sums(str(run)) == {n: hashlib.sha256((run / n).read_bytes()).hexdigest()
                                                 for n in FILES}
    code, out, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 0 and "accuracy" in out, err


def test_a_new_run_killed_after_its_config_is_not_resumed_with_a_config_changed_since(killed_after_config, capsys):
    # (the config.toml the kill left was read unchecked: an edit since went unnoticed)
    run = killed_after_config
    _flip_config(run)
    code, _, err = run_cli(["train", "--out", str(run), *TRAIN, "--resume", "auto"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert f"{run / 'config.toml'} fails its SHA-256 check" in err


def test_an_unlisted_file_is_read_as_it_is(run):
    # what a crash between writing a file and listing it leaves: that file unchecked, not refused
    run_checksums.forget(str(run), ["model.npz"])
    assert "model.npz" not in run_checksums.read_sums(str(run))
    _replace_with_a_checkpoints(run)
    got = _loaded(run)
    want = _weights(run / "checkpoints" / "step-00000020" / "model.npz")
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got)


def test_a_resumed_run_lists_its_new_files(run, capsys):
    code, _, err = run_cli(["train", "--out", str(run), *TRAIN, "--set", "train.epochs=3", "--resume", "auto"],
                           capsys)
    assert code == 0, err
    sums = run_checksums.read_sums(str(run))
    assert sums == {n: hashlib.sha256((run / n).read_bytes()).hexdigest() for n in FILES}
    assert "epochs = 3" in (run / "config.toml").read_text()
    code, out, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 0, err


# ---------------------------------------------------------------------- read once: checked, then parsed
def _swap_after(monkeypatch, module, name, swap):
    real = getattr(module, name)

    def wrapped(*args, **kwargs):
        got = real(*args, **kwargs)
        swap()
        return got

    monkeypatch.setattr(module, name, wrapped)


@pytest.mark.parametrize("given", ["checkpoint", "run directory"])
def test_a_checkpoints_model_is_built_from_the_bytes_whose_sha256_was_checked(run, monkeypatch, given):
    # the file replaced between the check and the load: it used to be read again, and loaded unchecked
    from distnn.train.checkpoint import read as ck_read

    newest = run / "checkpoints" / "step-00000040"
    want = _weights(newest / "model.npz")
    os.remove(run / "model.npz")  # (an interrupted run: evaluate reads its newest checkpoint)

    def swap():  # another valid npz of the same model, renamed over the checked one
        shutil.copyfile(run / "checkpoints" / "step-00000020" / "model.npz", newest / ".swap")
        os.replace(newest / ".swap", newest / "model.npz")

    _swap_after(monkeypatch, ck_read, "model_source", swap)
    got = _loaded(newest if given == "checkpoint" else run)
    assert ck.verify_checkpoint(str(newest))  # (swapped indeed: the file there now fails its check)
    assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got)
