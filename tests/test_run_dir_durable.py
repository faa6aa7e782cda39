"""A run directory's files are durable as a checkpoint's: each survives a power loss whole.

Each was written through a temporary file and a rename, but never fsynced: a file system that allocates
late (ext4) may commit the rename before the data, so after a power loss ``model.npz`` (or
``SHA256SUMS``, ``config.toml``, the metrics) could be there empty, the previous copy gone. Now each
temporary file is fsynced before its rename, and the directory after the renames (once after several);
so is ``predict --output``'s file. An fsync that fails (a write-back error) is an error naming the file,
and the previous file stays. The tests watch the calls themselves (``os.fsync``, ``os.replace``): the
order of the two is the whole guarantee, and no test can pull the power.
"""
from __future__ import annotations

import errno
import os
import stat

import numpy as np
import pytest

from distnn.cli import main
from test_cli import run_cli

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

TRAIN = ["--quiet", "--set", "train.epochs=2", "--set", "model.hidden_sizes=[16]", "--set", "checkpoint.keep_last=1"]
RUN_FILES = {"config.toml", "SHA256SUMS", "metrics.jsonl", "metrics.csv", "curves.png", "model.npz", "model.json",
             "summary.json"}


@pytest.fixture
def calls(monkeypatch):
    """Every ``os.fsync`` (the inode, and whether a directory) and ``os.replace`` (the inode moved, where to)."""
    log = []
    fsync, replace = os.fsync, os.replace

    def spied_fsync(fd):
        st = os.fstat(fd)
        log.append(("fsync", st.st_ino, stat.S_ISDIR(st.st_mode)))
        return fsync(fd)

    def spied_replace(src, dst, **kw):
        log.append(("replace", os.lstat(src).st_ino, os.path.abspath(dst)))
        return replace(src, dst, **kw)

    monkeypatch.setattr(os, "fsync", spied_fsync)
    monkeypatch.setattr(os, "replace", spied_replace)
    return log


def _check_durable(log, directory, names=None):
    """Each file replaced in ``directory`` was fsynced after the previous replace of that name and before its
    own; the directory is fsynced after it, before the name is replaced again (and after the last).
    Returns the names replaced.

    (Not ``SHA256SUMS`` before it is replaced again: a write of the run's files lists them in it twice, the
    files being replaced unlisted, then listed, and fsyncs the directory once after both: the renames are
    committed in the order they were made, and each first part of them leaves a consistent list.)"""
    directory = os.path.abspath(directory)
    dir_ino = os.stat(directory).st_ino
    replaced = [(i, ev) for i, ev in enumerate(log) if ev[0] == "replace" and os.path.dirname(ev[2]) == directory]
    assert replaced, "nothing was replaced there"
    last = {}
    for i, (_, ino, dst) in replaced:
        start = last.get(dst, -1)
        assert ("fsync", ino, False) in log[start + 1:i], f"{os.path.basename(dst)} was renamed in before its fsync"
        later = [j for j, ev in replaced if j > i and ev[2] == dst and not dst.endswith("SHA256SUMS")]
        stop = later[0] if later else len(log)
        assert ("fsync", dir_ino, True) in log[i + 1:stop], \
            f"{os.path.basename(dst)}: no fsync of the directory after its rename"
        last[dst] = i
    return {os.path.basename(ev[2]) for _, ev in replaced}


def test_every_file_a_run_writes_is_fsynced_before_its_rename_and_its_directory_after(tmp_path, calls):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TRAIN, "--set", "run.plots=true"]) == 0
    assert _check_durable(calls, run) == RUN_FILES


def test_a_resumed_runs_rewrites_are_fsynced_too(tmp_path, calls):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TRAIN, "--set", "run.plots=false"]) == 0
    del calls[:]
    assert main(["train", "--out", str(run), *TRAIN, "--set", "train.epochs=3", "--set", "run.plots=false",
                 "--resume", "auto"]) == 0
    assert _check_durable(calls, run) == RUN_FILES - {"curves.png"}


@pytest.mark.parametrize("existing", [False, True])
def test_predictions_are_fsynced_before_their_rename_and_their_directory_after(tmp_path, capsys, calls, existing):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TRAIN, "--set", "run.plots=false"]) == 0
    out = tmp_path / "predictions"
    out.mkdir()
    np.savetxt(tmp_path / "in.csv", np.zeros((3, 64)), delimiter=",")
    if existing:
        (out / "p.csv").write_text("the previous predictions\n")
    del calls[:]
    code, _, err = run_cli(["predict", str(run), "--input", str(tmp_path / "in.csv"), "--output",
                            str(out / "p.csv")], capsys)
    assert code == 0, err
    assert _check_durable(calls, out) == {"p.csv"}


def test_a_failed_fsync_is_an_error_naming_the_file_and_the_previous_file_stays(tmp_path, capsys, monkeypatch):
    # a write-back error (EIO) means the data may not be on the disk: not renamed in, said
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TRAIN, "--set", "run.plots=false"]) == 0
    before = (run / "model.npz").read_bytes()
    fsync = os.fsync

    def failing(fd):
        if os.fstat(fd).st_size > 0 and stat.S_ISREG(os.fstat(fd).st_mode) and \
                os.readlink(f"/proc/self/fd/{fd}").endswith("model.npz.tmp"):
            raise OSError(errno.EIO, "Input/output error")
        return fsync(fd)

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to tell which file is fsynced")
    monkeypatch.setattr(os, "fsync", failing)
    code, _, err = run_cli(["train", "--out", str(run), *TRAIN, "--set", "run.plots=false", "--set", "train.epochs=3",
                            "--resume", "auto"], capsys)
    last = err.strip().splitlines()[-1]
    assert code == 2 and "Input/output error" in last and "model.npz" in last, err
    assert (run / "model.npz").read_bytes() == before
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name]
