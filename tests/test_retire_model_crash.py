"""A resume from an older checkpoint that removes the run's ``model.npz`` leaves it checked or absent at
every crash point.

Resuming a finished run from a checkpoint before its ``model.npz`` rewinds the run, and ``model.npz`` (of
the abandoned future) is removed. It used to be taken out of ``SHA256SUMS`` first and removed second: a
kill in between left it there unlisted, and an unlisted file is read as it is, so a ``model.npz`` replaced
after the crash was evaluated without a word. Now it is removed first and unlisted second: a kill before
the removal leaves it listed (a changed one is refused), a kill after leaves it absent (``evaluate`` reads
the run's newest checkpoint).
"""
from __future__ import annotations

import io
import os
import shutil

import numpy as np
import pytest

from distnn.cli import main
from cli_cases import run_cli

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

XOR = ["--config", "xor", "--quiet", "--set", "run.plots=false", "--set", "checkpoint.enabled=true",
       "--set", "train.epochs=2"]


class _Killed(BaseException):
    """A kill -9 stand-in: nothing after it runs."""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("retire") / "run"
    assert main(["train", "--out", str(run), *XOR]) == 0  # (checkpoints of global steps 1 and 2)
    return run


def _killed_rewind(finished, tmp_path, monkeypatch, k):
    """A copy of ``finished`` resumed from its step-1 checkpoint, killed just before the ``k``-th removal of
    model.npz or rename of SHA256SUMS there (the retiring of model.npz is the first two)."""
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    replace, remove, seen = os.replace, os.remove, []

    def event(what, path):
        if os.path.dirname(os.path.abspath(path)) == str(run) and os.path.basename(path) == what:
            seen.append(what)
            if len(seen) > k:
                raise _Killed

    def spied_replace(src, dst, **kw):
        event("SHA256SUMS", dst)
        return replace(src, dst, **kw)

    def spied_remove(path, **kw):
        event("model.npz", path)
        return remove(path, **kw)

    monkeypatch.setattr(os, "replace", spied_replace)
    monkeypatch.setattr(os, "remove", spied_remove)
    with pytest.raises(_Killed):
        main(["train", "--out", str(run), *XOR, "--resume", str(run / "checkpoints" / "step-00000001")])
    monkeypatch.undo()
    from distnn.train import run_dir as rd

    rd.release_run_dir(str(run))  # (the kill drops the lock with the process)
    return run, seen


def _doubled(path):
    with np.load(path) as z:
        arrays = {k: z[k] * 2 for k in z.files}
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


@pytest.mark.parametrize("k", [0, 1])
def test_a_model_npz_replaced_after_a_crash_in_its_removal_is_never_read_unchecked(finished, tmp_path, monkeypatch,
                                                                                   capsys, k):
    run, seen = _killed_rewind(finished, tmp_path, monkeypatch, k)
    assert len(seen) == k + 1 and (k == 0 or sorted(seen) == ["SHA256SUMS", "model.npz"]), seen
    weights = run / "model.npz"
    if weights.exists():  # listed still: replaced after the crash, it is refused
        weights.write_bytes(_doubled(weights))
        code, _, err = run_cli(["evaluate", str(run)], capsys)
        assert code == 2 and f"{weights} fails its SHA-256 check" in err, (seen, err)
    else:  # removed: the run's newest checkpoint is read
        code, _, err = run_cli(["evaluate", str(run)], capsys)
        assert code == 0 and "reading checkpoint" in err and "no model.npz" in err, (seen, err)
    # and the run resumes (from its own newest checkpoint: the rewind's never started) and finishes whole
    code, _, err = run_cli(["train", "--out", str(run), *XOR, "--resume", str(run / "checkpoints" /
                                                                               "step-00000001")], capsys)
    assert code == 0, err
    code, _, err = run_cli(["evaluate", str(run)], capsys)
    assert code == 0 and f"reading {weights}" in err, err
