"""``distnn train --resume auto --out RUN`` (no ``--config``) checks ``RUN/config.toml`` against ``SHA256SUMS``.

A checkpoint's ``config.toml`` was used only as its checksum verified, but the run's own was read by path,
unchecked: a flipped ``epochs = 2`` -> ``epochs = 3`` configured the resumed run without a word (and the
session then wrote it over, listed as good). Now a config that fails its check is a one-line error naming
it, and nothing is trained or written. It is not passed over for a checkpoint's config, which may predate
the run's latest session; a config edited on purpose resumes when given as ``--config``, as any config.
A run directory without ``SHA256SUMS`` (an earlier distnn's) resumes with its config unchecked, as before.
"""
from __future__ import annotations

import json
import shutil

import pytest

from distnn.cli import main
from cli_cases import run_cli
from test_run_dir_checksums import unmark_config

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

TRAIN = ["--quiet", "--set", "train.epochs=2", "--set", "run.plots=false", "--set", "model.hidden_sizes=[16]"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("resume-config") / "run"
    assert main(["train", "--out", str(run), *TRAIN]) == 0
    return run


@pytest.fixture
def run(finished, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished, copy)
    return copy


def _edit_epochs(run):  # as a flipped bit would: one character, still a valid config
    path = run / "config.toml"
    text = path.read_text()
    assert "epochs = 2\n" in text
    path.write_text(text.replace("epochs = 2\n", "epochs = 3\n"))


def _snapshot(run):
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def _epochs_run(run):
    return json.loads((run / "summary.json").read_text())["epochs_run"]


@pytest.mark.parametrize("fork", [False, True])
def test_a_changed_run_config_is_an_error_naming_it_and_nothing_is_trained(run, tmp_path, capsys, fork):
    _edit_epochs(run)
    before = _snapshot(run)
    # --resume auto --out RUN continues the run; --resume RUN --out NEW forks it (the same config)
    how = ["--resume", str(run), "--out", str(tmp_path / "fork")] if fork else ["--resume", "auto", "--out", str(run)]
    code, _, err = run_cli(["train", "--quiet", *how], capsys)
    assert not (tmp_path / "fork").exists()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(run / "config.toml") in lines[0], err
    assert "SHA-256" in lines[0] and "--config" in lines[0], err
    assert str(run / "checkpoints" / "step-") in lines[0], err  # the newest checkpoint's config, suggested
    assert _snapshot(run) == before  # nothing trained, the edited file left as it is


def test_a_damaged_sha256sums_is_an_error_naming_both(run, capsys):
    (run / "SHA256SUMS").write_text("not a checksum list\n")
    code, _, err = run_cli(["train", "--quiet", "--resume", "auto", "--out", str(run)], capsys)
    assert code == 2
    assert str(run / "config.toml") in err and str(run / "SHA256SUMS") in err, err


def test_a_config_edited_on_purpose_resumes_when_given_as_config(run, capsys):
    _edit_epochs(run)
    code, _, err = run_cli(["train", "--quiet", "--resume", "auto", "--out", str(run),
                            "--config", str(run / "config.toml")], capsys)
    assert code == 0, err
    assert _epochs_run(run) == 3
    # ... and the session lists its config again: the next resume without --config takes it
    code, _, err = run_cli(["train", "--quiet", "--resume", "auto", "--out", str(run), "--set", "train.epochs=4"],
                           capsys)
    assert code == 0, err
    assert _epochs_run(run) == 4


def test_an_intact_run_config_configures_the_resume(run, capsys):
    code, _, err = run_cli(["train", "--quiet", "--resume", "auto", "--out", str(run), "--set", "train.epochs=3"],
                           capsys)
    assert code == 0, err
    assert _epochs_run(run) == 3


def test_a_run_of_an_earlier_distnn_resumes_with_its_config_unchecked(run, capsys):
    (run / "SHA256SUMS").unlink()
    meta = json.loads((run / "model.json").read_text())
    del meta["checksums"]  # (an earlier distnn wrote neither)
    (run / "model.json").write_text(json.dumps(meta))
    unmark_config(run)  # (nor config.toml's)
    _edit_epochs(run)
    code, _, err = run_cli(["train", "--quiet", "--resume", "auto", "--out", str(run)], capsys)
    assert code == 0, err
    assert _epochs_run(run) == 3
