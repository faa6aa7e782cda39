"""A failed fsync of a directory (EIO: a write-back error) fails the write that needed it.

``write_pointers``, ``discard_newer`` and the run directory's writes ignored it: a pointer, a discarded
future or a rewritten run file could then come back after a power loss (an old ``best`` naming a
checkpoint retention deleted since; the abandoned checkpoints as the newest, resumed into) with no
word. Each now raises the OSError, as a failed fsync of the file already did (so every caller handles
it already) and as ``write_checkpoint`` does. One the file system does not support (EINVAL...) is still
no failure.
"""
import errno
import os

import numpy as np
import pytest

from distnn.cli import main
from distnn.train import checkpoint as ck
from test_checkpoint_dir_fsync import _failing_dir_fsync
from cli_cases import run_cli

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

TRAIN = ["--quiet", "--set", "train.epochs=1", "--set", "run.plots=false", "--set", "model.hidden_sizes=[8]"]


def _write(root, step):
    return ck.write_checkpoint(str(root), step, ck.serialize({"model": {"w": np.full(4, step, np.float32)}}, {}),
                               {"world_size": 1})


@pytest.mark.parametrize("code,fails", [(errno.EIO, True), (errno.EINVAL, False)])
def test_a_failed_directory_fsync_fails_a_pointers_write(tmp_path, monkeypatch, code, fails):
    _write(tmp_path, 1)
    _failing_dir_fsync(monkeypatch, code, only=str(tmp_path))
    if fails:
        with pytest.raises(OSError) as e:
            ck.write_pointer(str(tmp_path), ck.BEST, ck.step_name(1))
        assert e.value.errno == code
    else:
        ck.write_pointer(str(tmp_path), ck.BEST, ck.step_name(1))


@pytest.mark.parametrize("code,fails", [(errno.EIO, True), (errno.EINVAL, False)])
def test_a_failed_directory_fsync_fails_discarding_newer_checkpoints(tmp_path, monkeypatch, code, fails):
    for step in (1, 2):
        _write(tmp_path, step)
    _failing_dir_fsync(monkeypatch, code, only=str(tmp_path))
    if fails:
        with pytest.raises(OSError) as e:
            ck.discard_newer(str(tmp_path), 1)
        assert e.value.errno == code
    else:
        assert ck.discard_newer(str(tmp_path), 1) == [ck.step_name(2)]


@pytest.mark.parametrize("code,fails", [(errno.EIO, True), (errno.EINVAL, False)])
def test_a_failed_fsync_of_the_run_directory_fails_the_run(tmp_path, monkeypatch, capsys, code, fails):
    run = tmp_path / "run"
    os.makedirs(run)
    _failing_dir_fsync(monkeypatch, code, only=str(run))
    got, _, err = run_cli(["train", "--out", str(run), *TRAIN], capsys)
    if fails:
        assert got != 0 and os.strerror(code) in err and "Traceback" not in err, err
    else:
        assert got == 0, err


def test_a_resume_whose_discarding_fsync_fails_stops_with_an_error(tmp_path, monkeypatch, capsys):
    # resumed from an older checkpoint: moving the newer ones aside must be durable, or they come back
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TRAIN, "--set", "train.epochs=2"]) == 0
    older = run / "checkpoints" / "step-00000020"
    _failing_dir_fsync(monkeypatch, errno.EIO, only=str(run / "checkpoints"))
    got, _, err = run_cli(["train", "--out", str(run), *TRAIN, "--set", "train.epochs=2", "--resume", str(older)],
                          capsys)
    last = err.strip().splitlines()[-1]
    assert got != 0 and "cannot move aside the checkpoints newer than step-00000020" in last, err
    assert os.strerror(errno.EIO) in last and "Traceback" not in err
