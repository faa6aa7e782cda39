"""A resume that rewrites the run's ``config.toml`` leaves it checked at every crash point.

The rewrite used to take ``config.toml`` out of ``SHA256SUMS``, rename the new one in, then list it
again: a kill in between left ``config.toml`` unlisted, and an unlisted file is read as it is, so a
``config.toml`` edited after the crash went unnoticed by the next resume. Now the new file's SHA-256
is listed beside the old one's before the rename: at every crash point the file there (old or new)
is listed, and one changed since is refused.
"""
from __future__ import annotations

import hashlib
import os
import shutil

import pytest

from distnn.cli import main
from distnn.train import run_checksums
from cli_cases import run_cli

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

TRAIN = ["--quiet", "--set", "train.epochs=2", "--set", "run.plots=false", "--set", "checkpoint.keep_last=0",
         "--set", "model.hidden_sizes=[16]"]
MORE = [*TRAIN, "--set", "train.epochs=3", "--resume", "auto"]  # (a setting changed: config.toml rewritten)


class _Killed(BaseException):
    """A kill -9 stand-in: nothing after it runs."""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("swap") / "run"
    assert main(["train", "--out", str(run), *TRAIN]) == 0
    return run


def _killed_resume(finished, tmp_path, monkeypatch, k):
    """A copy of ``finished`` whose resume was killed just before its ``k``-th rename of config.toml or
    SHA256SUMS (0: SHA256SUMS's first update, 1: config.toml's, 2: SHA256SUMS's last)."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    replace, seen = os.replace, []

    def spied(src, dst, **kw):
        if os.path.dirname(os.path.abspath(dst)) == str(run) and os.path.basename(dst) in ("SHA256SUMS",
                                                                                          "config.toml"):
            seen.append(os.path.basename(dst))
            if len(seen) > k:
                raise _Killed
        return replace(src, dst, **kw)

    monkeypatch.setattr(os, "replace", spied)
    with pytest.raises(_Killed):
        main(["train", "--out", str(run), *MORE])
    monkeypatch.undo()
    from distnn.train import run_dir as rd

    rd.release_run_dir(str(run))  # (the kill drops the lock with the process)
    return run, seen


@pytest.mark.parametrize("k", [0, 1, 2])
def test_a_config_toml_changed_after_a_crash_in_its_rewrite_is_refused(finished, tmp_path, monkeypatch, capsys, k):
    run, seen = _killed_resume(finished, tmp_path, monkeypatch, k)
    assert seen[-1] == ["SHA256SUMS", "config.toml", "SHA256SUMS"][k], seen
    config = run / "config.toml"
    assert run_checksums.CONFIG_MARK.encode() in config.read_bytes()
    config.write_text(config.read_text().replace("lr = ", "lr = 1", 1))  # (edited after the crash)
    code, _, err = run_cli(["train", "--out", str(run), *MORE], capsys)
    assert code == 2 and "Traceback" not in err, err
    assert f"{config} fails its SHA-256 check" in err.strip().splitlines()[-1]
    code, _, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 2 and f"{config} fails its SHA-256 check" in err, err


@pytest.mark.parametrize("k", [0, 1, 2])
def test_a_resume_killed_in_its_config_rewrite_resumes_and_evaluates(finished, tmp_path, monkeypatch, capsys, k):
    run, _ = _killed_resume(finished, tmp_path, monkeypatch, k)
    code, out, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 0 and "accuracy" in out, err
    code, _, err = run_cli(["train", "--out", str(run), *MORE], capsys)
    assert code == 0, err
    assert (run / "SHA256SUMS").read_text() == "".join(
        f"{hashlib.sha256((run / n).read_bytes()).hexdigest()}  {n}\n"
        for n in ("config.toml", "model.json", "model.npz"))  # (sha256sum -c's format again, one line each)
    assert "epochs = 3" in (run / "config.toml").read_text()
