"""A run directory's files are durable as a checkpoint's: each survives a power loss whole.

Each was written through a temporary file and a rename, but never fsynced: a file system that allocates
late (ext4) may commit the rename before the data, so after a power loss ``model.npz`` (or
``SHA256SUMS``, ``config.toml``, ``summary.json``) could be there empty, the previous copy gone. Now each
temporary file is fsynced before its rename, and the directory after the renames (once after several);
so is ``predict --output``'s file. An fsync that fails (a write-back error) is an error naming the file,
and the previous file stays. The tests watch the calls themselves (``os.fsync``, ``os.replace``): the
order of the two is the whole guarantee, and no test can pull the power.

The metrics (``metrics.jsonl``, ``metrics.csv``) differ: rank 0 rewrites them at every epoch end, on the
training thread, and fsyncing them there (each file, then the directory) cost time in every epoch of
every run, for files that a resumed run rewrites from its checkpoint's history anyway. Each rewrite is
still whole (temporary file and rename: a reader never sees a part), but none is fsynced; when training
ends (its last epoch, an early stop, an error or a preemption) each file is fsynced after its last
rename, and the directory after both, before ``Trainer.fit`` returns or raises.
"""
from __future__ import annotations

import errno
import json
import os
import stat

import numpy as np
import pytest

from distnn.cli import main
from cli_cases import run_cli

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

TRAIN = ["--quiet", "--set", "train.epochs=2", "--set", "model.hidden_sizes=[16]", "--set", "checkpoint.keep_last=1"]
METRICS = {"metrics.jsonl", "metrics.csv"}
RUN_FILES = {"config.toml", "SHA256SUMS", "curves.png", "model.npz", "model.json", "summary.json"} | METRICS


@pytest.fixture
def calls(monkeypatch):
    """Every ``os.fsync`` (the inode, whether a directory, and the file's path), ``os.replace`` (the inode
    moved, where to), and the end of ``Trainer.fit`` (returned or raised)."""
    from distnn.train.trainer import Trainer

    if not os.path.exists("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to tell which file is fsynced")
    log = []
    fsync, replace, fit = os.fsync, os.replace, Trainer.fit

    def spied_fsync(fd):
        st = os.fstat(fd)
        log.append(("fsync", st.st_ino, stat.S_ISDIR(st.st_mode), os.readlink(f"/proc/self/fd/{fd}")))
        return fsync(fd)

    def spied_replace(src, dst, **kw):
        log.append(("replace", os.lstat(src).st_ino, os.path.realpath(dst)))
        return replace(src, dst, **kw)

    def spied_fit(trainer):
        try:
            return fit(trainer)
        finally:
            log.append(("fit-end",))

    monkeypatch.setattr(os, "fsync", spied_fsync)
    monkeypatch.setattr(os, "replace", spied_replace)
    monkeypatch.setattr(Trainer, "fit", spied_fit)
    return log


def _fsynced(log, ino, is_dir):
    return any(ev[:3] == ("fsync", ino, is_dir) for ev in log)


def _check_durable(log, directory):
    """Each file replaced in ``directory`` (but the metrics: :func:`_check_metrics_durable_at_the_end`) was
    fsynced after the previous replace of that name and before its own; the directory is fsynced after it,
    before the name is replaced again (and after the last). Returns the names replaced (the metrics too).

    (Not ``SHA256SUMS`` before it is replaced again: a write of the run's files lists them in it twice, the
    new files beside the old ones, then alone, and fsyncs the directory once after both: the renames are
    committed in the order they were made, and each first part of them leaves a consistent list. A run
    file's new copy, ``NAME.new``, is checked as the others, and not returned: it is renamed in as NAME.)"""
    directory = os.path.realpath(directory)
    dir_ino = os.stat(directory).st_ino
    replaced = [(i, ev) for i, ev in enumerate(log) if ev[0] == "replace" and os.path.dirname(ev[2]) == directory]
    assert replaced, "nothing was replaced there"
    last = {}
    for i, (_, ino, dst) in replaced:
        if os.path.basename(dst) in METRICS:
            continue
        start = last.get(dst, -1)
        assert _fsynced(log[start + 1:i], ino, False), f"{os.path.basename(dst)} was renamed in before its fsync"
        later = [j for j, ev in replaced if j > i and ev[2] == dst and not dst.endswith("SHA256SUMS")]
        stop = later[0] if later else len(log)
        assert _fsynced(log[i + 1:stop], dir_ino, True), \
            f"{os.path.basename(dst)}: no fsync of the directory after its rename"
        last[dst] = i
    return {os.path.basename(ev[2]) for _, ev in replaced if not ev[2].endswith(".new")}


def _check_metrics_durable_at_the_end(log, directory, epochs):
    """The metrics files were rewritten at each of the ``epochs`` epoch ends with no fsync (neither the
    temporary copy nor the file), and when ``fit`` ended each was fsynced once, after its last rename (the
    file renamed in last), and the directory after both."""
    directory = os.path.realpath(directory)
    end = log.index(("fit-end",))
    synced_at = []
    for name in sorted(METRICS):
        path = os.path.join(directory, name)
        renames = [i for i, ev in enumerate(log[:end]) if ev[0] == "replace" and ev[2] == path]
        assert len(renames) >= epochs, f"{name}: rewritten {len(renames)} times in {epochs} epochs"
        synced = [i for i, ev in enumerate(log[:end]) if ev[0] == "fsync" and ev[3] in (path, path + ".tmp")]
        assert len(synced) == 1 and synced[0] > renames[-1], \
            f"{name}: fsynced at {synced}, renamed in at {renames}: once, after the last rename, was expected"
        assert log[synced[0]][1] == log[renames[-1]][1], f"{name}: another file than the last one was fsynced"
        synced_at.append(synced[0])
    assert _fsynced(log[max(synced_at) + 1:end], os.stat(directory).st_ino, True), \
        "no fsync of the directory after the metrics files', before the end of training"


def test_every_file_a_run_writes_is_fsynced_before_its_rename_and_its_directory_after(tmp_path, calls):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TRAIN, "--set", "run.plots=true"]) == 0
    assert _check_durable(calls, run) == RUN_FILES
    _check_metrics_durable_at_the_end(calls, run, epochs=2)


def test_a_resumed_runs_rewrites_are_fsynced_too(tmp_path, calls):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TRAIN, "--set", "run.plots=false"]) == 0
    del calls[:]
    assert main(["train", "--out", str(run), *TRAIN, "--set", "train.epochs=3", "--set", "run.plots=false",
                 "--resume", "auto"]) == 0
    assert _check_durable(calls, run) == RUN_FILES - {"curves.png"}
    _check_metrics_durable_at_the_end(calls, run, epochs=1)


def test_an_early_stopped_runs_metrics_are_fsynced_when_it_stops(tmp_path, calls):
    # no epoch improves val_loss by 1e9: patience 1 stops the run after its second epoch of 6
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TRAIN, "--set", "run.plots=false", "--set", "train.epochs=6",
                 "--set", "early_stopping.enabled=true", "--set", "early_stopping.patience=1",
                 "--set", "early_stopping.min_delta=1e9"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_early"] and summary["epochs_run"] == 2, summary
    _check_metrics_durable_at_the_end(calls, run, epochs=2)


@pytest.mark.parametrize("fault,status", [
    ("DISTNN_FAULT_SIGNAL_AT", 75),  # a preemption (SIGTERM): a checkpoint, status 75
    ("DISTNN_FAULT_EXIT_AT", 3),     # user code raising SystemExit(3) mid-epoch
], ids=["preempted", "exception"])
def test_a_run_ended_by_an_exception_fsyncs_its_metrics_before_it_ends(tmp_path, calls, monkeypatch, fault,
                                                                       status):
    # step 25 is in epoch 2 (20 steps an epoch): epoch 1's rows were written, not fsynced, until then
    run = tmp_path / "run"
    monkeypatch.setenv(fault, "0:25")
    try:
        code = main(["train", "--out", str(run), *TRAIN, "--set", "run.plots=false"])
    except SystemExit as e:
        code = e.code
    assert code == status
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name or p.name.endswith(".new")]
    _check_metrics_durable_at_the_end(calls, run, epochs=1)


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
                os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith("model.npz.") and \
                os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
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
    assert not [p.name for p in run.iterdir() if ".tmp" in p.name or p.name.endswith(".new")]
