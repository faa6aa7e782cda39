"""A run directory copied elsewhere (``cp -r``) and resumed with ``--resume auto`` continues from, and
writes to, its own checkpoints, never the original's silently.

The default checkpoint directory is recorded relative to the run (it follows a copy). An absolute
``checkpoint.dir`` inside the run directory is now recorded relative to it too (it named the original's
checkpoints in the copy, which then read and wrote them). One outside the run stays as given, and a resume
says that the checkpoints it takes on are outside the run directory.
"""
import os
import shutil

import pytest

from distnn.cli import main
from cli_cases import run_cli

FAST = ["--quiet", "--set", "run.plots=false", "--set", "checkpoint.every_epochs=1", "--set", "checkpoint.keep_last=0"]


def _steps(root):
    return sorted(n for n in os.listdir(root) if n.startswith("step-"))


def _train_then_copy(original, copy, extra):
    assert main(["train", "--config", "digits_mlp", *FAST, *extra, "--set", "train.epochs=1",
                 "--out", str(original)]) == 0
    shutil.copytree(original, copy)


def _resume_copy(copy, capsys):
    """``--resume auto`` of the copy with the config it records (as its original was started)."""
    return run_cli(["train", "--config", str(copy / "config.toml"), *FAST, "--set", "train.epochs=2",
                    "--out", str(copy), "--resume", "auto"], capsys)


@pytest.mark.parametrize("where", ["default", "absolute inside the run"])
def test_a_copied_run_directory_resumes_from_and_writes_to_its_own_checkpoints(tmp_path, capsys, where):
    original, copy = tmp_path / "original", tmp_path / "copy"
    extra = [] if where == "default" else ["--set", f"checkpoint.dir={original / 'ck'}"]
    name = "checkpoints" if where == "default" else "ck"
    _train_then_copy(original, copy, extra)
    code, _, err = _resume_copy(copy, capsys)
    assert code == 0, err
    assert _steps(original / name) == ["step-00000020"]  # the original's untouched
    assert _steps(copy / name) == ["step-00000020", "step-00000040"]
    assert "outside the run directory" not in err
    assert str(original) not in (original / "config.toml").read_text()  # (nothing names the run's own path)


def test_resuming_with_checkpoints_outside_the_run_directory_says_so(tmp_path, capsys):
    original, copy, outside = tmp_path / "original", tmp_path / "copy", tmp_path / "elsewhere"
    _train_then_copy(original, copy, ["--set", f"checkpoint.dir={outside}"])
    assert f'dir = "{outside}"' in (copy / "config.toml").read_text()  # (kept as the user gave it)
    code, _, err = _resume_copy(copy, capsys)
    assert code == 0, err
    assert f"checkpoint.dir {outside} is outside the run directory {copy}" in err
    assert "a copy of another run's" in err and "--set checkpoint.dir=DIR" in err
