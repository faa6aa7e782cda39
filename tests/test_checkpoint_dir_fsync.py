"""A failed fsync of a directory during a same-step rewrite keeps the step's old checkpoint.

Rewriting a step moves its old checkpoint aside and deletes it once the new one is durable: the fsyncs of
the new directory and of the root say so. Their errors used to be ignored, so the old copy was deleted
after a failed fsync although the new one might not survive a power loss. An fsync a file system does not
support on directories (EINVAL...) is no failure.
"""
import errno
import os
import stat

import numpy as np
import pytest

from distnn.train import checkpoint as ck


def _write(root, step, payload):
    return ck.write_checkpoint(str(root), step, ck.serialize({"model": {"w": np.full(4, step, np.float32)}},
                                                              {"note.txt": payload}), {"world_size": 1})


def _failing_dir_fsync(monkeypatch, code, only=None):
    """os.fsync raises ``code`` for directory descriptors (``only``: that directory's alone)."""
    real = os.fsync
    hits = []

    def fsync(fd):
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode) and (only is None or st.st_ino == os.stat(only).st_ino):
            hits.append(fd)
            raise OSError(code, os.strerror(code))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return hits


def _note(path):
    return ck.read_checkpoint(path)[0]["_files"]["note.txt"]


@pytest.mark.parametrize("which", ["any directory", "the root"])
def test_a_failed_directory_fsync_in_a_same_step_rewrite_keeps_the_old_checkpoint(tmp_path, monkeypatch, which):
    _write(tmp_path, 10, b"ten")
    old = _write(tmp_path, 20, b"old")
    hits = _failing_dir_fsync(monkeypatch, errno.EIO, only=str(tmp_path) if which == "the root" else None)
    with pytest.raises(ck.CheckpointError, match="fsync.*Input/output error") as e:
        _write(tmp_path, 20, b"new")
    monkeypatch.undo()
    assert hits
    if which == "the root":
        assert repr(str(tmp_path)) in str(e.value)  # the message names the directory whose fsync failed
    # the old copy is back under its name, nothing else is left, and latest still names it
    assert sorted(os.listdir(tmp_path)) == ["latest", "step-00000010", "step-00000020"]
    assert ck.verify_checkpoint(old) == [] and _note(old) == b"old"
    assert ck.read_pointer(str(tmp_path)) == "step-00000020"


@pytest.mark.parametrize("code", [errno.EINVAL, errno.EBADF, errno.EROFS])
def test_a_directory_fsync_the_file_system_does_not_support_is_no_failure(tmp_path, monkeypatch, code):
    _write(tmp_path, 20, b"old")
    _failing_dir_fsync(monkeypatch, code)
    path = _write(tmp_path, 20, b"new")
    _write(tmp_path, 30, b"thirty")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["latest", "step-00000020", "step-00000030"]
    assert _note(path) == b"new" and ck.read_pointer(str(tmp_path)) == "step-00000030"


def test_a_failed_root_fsync_after_a_new_step_keeps_the_new_checkpoint(tmp_path, monkeypatch):
    # a new step has no old copy to lose, and latest names it already: it stays (nothing to roll back to)
    _write(tmp_path, 10, b"ten")
    _failing_dir_fsync(monkeypatch, errno.EIO, only=str(tmp_path))
    path = _write(tmp_path, 20, b"new")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["latest", "step-00000010", "step-00000020"]
    assert ck.verify_checkpoint(path) == [] and ck.read_pointer(str(tmp_path)) == "step-00000020"
