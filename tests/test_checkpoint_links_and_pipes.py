"""What distnn never writes in a checkpoint root or a run directory is damage, never followed or read.

A ``latest``/``best`` pointer replaced by a symlink (to a checkpoint directory, to another run's
pointer) was followed: ``--resume latest`` and ``evaluate latest`` loaded whatever it named. A ``step-N``
entry that is a symlink to another checkpoint of the same step (a discarded one) was loaded as
``step-N``, and retention deleted the files of the directory it linked to. Now each is reported like
any damaged checkpoint: ``latest`` and ``--resume auto`` fall back to the newest valid checkpoint with a
warning naming it, ``best`` and an explicit ``step-N`` are an error naming it.

A named pipe (FIFO) in place of a checkpoint's or a run's file blocked the reader until some process
wrote to it (forever): now it is refused as unreadable, named, like any other damaged file. (Each call
below runs on a thread that the test unblocks, and fails, if it waits on a pipe: the suite cannot hang.)
"""
from __future__ import annotations

import os
import shutil
import threading

import numpy as np
import pytest

from distnn.cli import main
from distnn.train import checkpoint as ck
from distnn.train import run_dir as rd
from cli_cases import run_cli

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def _write(root, step):
    return ck.write_checkpoint(str(root), step, ck.serialize({"model": {"w": np.full(4, step, np.float32)}}),
                               {"world_size": 1}, update_best=True)


@pytest.fixture
def three(tmp_path):
    """Checkpoints 10, 20 and 30, ``latest`` and ``best`` naming step 30."""
    root = tmp_path / "checkpoints"
    for step in (10, 20, 30):
        _write(root, step)
    assert ck.read_pointer(str(root)) == ck.read_pointer(str(root), ck.BEST) == "step-00000030"
    return root


# ---------------------------------------------------------------------- symlinks
def _link_pointer(root, which, to):
    """Replace the pointer ``which`` by a symlink to step 10's directory, or to another root's pointer naming it."""
    if to == "directory":
        target = root / "step-00000010"
    else:
        target = root.parent / "elsewhere" / which
        target.parent.mkdir()
        target.write_bytes(ck.pointer_bytes("step-00000010"))
    os.remove(root / which)
    os.symlink(target, root / which)


@pytest.mark.parametrize("to", ["directory", "pointer file"])
def test_latest_replaced_by_a_symlink_gives_the_newest_valid_checkpoint_with_a_warning(three, to):
    _link_pointer(three, ck.LATEST, to)
    path = str(three / ck.LATEST)
    assert ck.read_pointer(str(three)) is None
    warnings = []
    got, _, man = ck.resolve_and_load(path, None, warnings.append)
    assert os.path.basename(got) == "step-00000030" and man["step"] == 30
    assert len(warnings) == 1 and f"{path!r} is damaged or unreadable: it is a symlink" in warnings[0]
    with pytest.raises(ck.CheckpointError, match="it is a symlink"):
        ck.follow_pointer(path)  # (no warn: no fallback either)


@pytest.mark.parametrize("to", ["directory", "pointer file"])
def test_best_replaced_by_a_symlink_is_an_error_naming_it(three, to):
    _link_pointer(three, ck.BEST, to)
    path = str(three / ck.BEST)
    with pytest.raises(ck.CheckpointError) as e:
        ck.resolve_and_load(path, None, [].append)
    assert f"{path!r} is damaged or unreadable: it is a symlink" in str(e.value) and "\n" not in str(e.value)


def test_a_step_entry_linked_to_a_discarded_checkpoint_of_its_step_is_not_loaded(three):
    # step-30 moved aside (a resume from step 20 discards it) and linked back: same step, and it verifies
    aside = three / "discarded-step-00000030-abc123"
    os.rename(three / "step-00000030", aside)
    os.symlink(aside, three / "step-00000030")
    warnings = []
    got, _, man = ck.resolve_and_load("auto", str(three), warnings.append)
    assert os.path.basename(got) == "step-00000020" and man["step"] == 20
    assert len(warnings) == 1 and "step-00000030' is a symlink to" in warnings[0], warnings
    with pytest.raises(ck.CorruptCheckpointError, match="step-00000030' is a symlink to"):
        ck.resolve_and_load(str(three / "step-00000030"), None)
    assert ck.model_directory(str(three), [].append) == str(three / "step-00000020")
    assert [c.step for c in ck.list_checkpoints(str(three))] == [10, 20]


def test_retention_never_deletes_a_linked_directorys_files(three):
    # retention renamed the link and emptied it as a checkpoint: the files of the directory it names went
    kept = three.parent / "kept-step-00000010"
    shutil.copytree(three / "step-00000010", kept)
    shutil.rmtree(three / "step-00000010")
    os.symlink(kept, three / "step-00000010")
    ck.apply_retention(str(three), 1, latest="step-00000030")
    assert sorted(os.listdir(kept)) == ["manifest.json", "model.npz", "trainer.json"]
    assert ck.verify_checkpoint(str(kept)) == []


FILES = ["manifest.json", "model.npz", "trainer.json"]


def test_a_checkpoint_written_over_a_linked_step_entry_leaves_the_linked_directory_whole(three):
    # The step's old entry is moved aside as .trash-step-N-* while the new one is renamed in, then deleted: a
    # symlink there had the files of the directory it names deleted through it, and stayed behind itself
    kept = three.parent / "kept-step-00000030"
    shutil.copytree(three / "step-00000030", kept)
    shutil.rmtree(three / "step-00000030")
    os.symlink(kept, three / "step-00000030")
    path = _write(three, 30)
    assert not os.path.islink(path) and ck.verify_checkpoint(path) == []
    assert sorted(os.listdir(kept)) == FILES and ck.verify_checkpoint(str(kept)) == []
    assert [n for n in os.listdir(three) if n.startswith(".")] == []


@pytest.mark.parametrize("prefix", [".trash-step-00000030-", ".tmp-step-00000030-", ".spare-step-00000030-",
                                    ".retired-step-00000030-"])
def test_cleanup_removes_a_linked_temporary_without_following_it(three, prefix):
    # (shutil.rmtree refuses a symlink: the link stayed, clutter in the root for good)
    os.symlink(three / "step-00000020", three / f"{prefix}dead")
    ck.cleanup_temporaries(str(three))
    assert [n for n in os.listdir(three) if n.startswith(".")] == []
    assert sorted(os.listdir(three / "step-00000020")) == FILES
    assert ck.verify_checkpoint(str(three / "step-00000020")) == []


def test_a_linked_trash_entry_is_never_put_back_as_a_checkpoint(three):
    # A crash between a same-step rewrite's two renames leaves the step's old entry as .trash-step-N-*, and
    # it went back as step-N. When that entry was a symlink (damage being written over), it came back as a
    # step-N symlink: skipped with a warning at every resume, and never cleaned up.
    other = three.parent / "other-run" / "step-00000040"
    ck.write_checkpoint(str(other.parent), 40, ck.serialize({"model": {"w": np.zeros(4, np.float32)}}))
    os.symlink(other, three / ".trash-step-00000040-dead")
    assert ck.recover_interrupted_rewrites(str(three)) == []
    assert not os.path.lexists(three / "step-00000040")
    warnings = []
    got, _, _ = ck.resolve_and_load("auto", str(three), warnings.append)
    assert os.path.basename(got) == "step-00000030" and warnings == []
    ck.cleanup_temporaries(str(three))  # unlinked, not followed: the other run's checkpoint stays whole
    assert [n for n in os.listdir(three) if n.startswith(".")] == []
    assert sorted(os.listdir(other)) == FILES and ck.verify_checkpoint(str(other)) == []


def test_a_trash_entry_that_is_a_real_directory_is_put_back(three):
    # (the rewrite's old checkpoint, complete: what the recovery is for)
    os.rename(three / "step-00000030", three / ".trash-step-00000030-abcd")
    assert ck.recover_interrupted_rewrites(str(three)) == ["step-00000030"]
    assert ck.verify_checkpoint(str(three / "step-00000030")) == []


def test_cleanup_removes_a_temporary_that_is_a_file(three):
    # (shutil.rmtree refused it quietly: it stayed for good, reported as removed)
    (three / ".trash-step-00000040-x").write_bytes(b"not a checkpoint")
    assert ck.cleanup_temporaries(str(three)) == [".trash-step-00000040-x"]
    assert [n for n in os.listdir(three) if n.startswith(".")] == []
    assert not os.path.lexists(three / "step-00000040")


# ---------------------------------------------------------------------- named pipes
def _call(call, pipes):
    """``call()``'s result (or the exception it raised); fails the test if it is still waiting on one of
    ``pipes`` after a while (each is then opened for writing and closed, so the thread ends)."""
    out = {}

    def run():
        try:
            out["got"] = call()
        except Exception as e:  # noqa: BLE001 - looked at by the caller
            out["got"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(20)
    if t.is_alive():
        for p in pipes:
            try:
                os.close(os.open(p, os.O_WRONLY | os.O_NONBLOCK))  # (end of file for the blocked reader)
            except OSError:
                pass
        t.join(5)
        pytest.fail(f"blocked reading a named pipe ({', '.join(map(str, pipes))})")
    return out["got"]


def _pipe_in_place_of(path):
    os.remove(path)
    os.mkfifo(path)
    return str(path)


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")


@needs_fifo
@pytest.mark.parametrize("name", ["trainer.json", "model.npz", "manifest.json"])
def test_a_pipe_in_a_checkpoint_is_reported_and_passed_over(three, name):
    pipe = _pipe_in_place_of(three / "step-00000030" / name)
    warnings = []
    got = _call(lambda: ck.resolve_and_load("auto", str(three), warnings.append), [pipe])
    assert os.path.basename(got[0]) == "step-00000020", got
    assert len(warnings) == 1 and f"{name} is unreadable (not a regular file: a named pipe (FIFO))" in warnings[0]
    got = _call(lambda: ck.resolve_and_load(str(three / "step-00000030"), None), [pipe])
    assert isinstance(got, ck.CorruptCheckpointError) and f"{name} is unreadable" in str(got)


@needs_fifo
@pytest.mark.parametrize("which", [ck.LATEST, ck.BEST])
def test_a_pipe_in_place_of_a_pointer_is_a_damaged_pointer(three, which):
    pipe = _pipe_in_place_of(three / which)
    got = _call(lambda: ck.resolve_and_load("auto", str(three), [].append), [pipe])  # (it reads both pointers)
    assert os.path.basename(got[0]) == "step-00000030", got
    warnings = []
    got = _call(lambda: ck.resolve_and_load(pipe, None, warnings.append), [pipe])
    if which == ck.LATEST:
        assert os.path.basename(got[0]) == "step-00000030", got
        assert len(warnings) == 1 and "named pipe" in warnings[0] and f"{pipe!r} is damaged" in warnings[0]
    else:
        assert isinstance(got, ck.CheckpointError) and f"{pipe!r} is damaged" in str(got) and "named pipe" in str(got)
    assert _call(lambda: ck.apply_retention(str(three), 1), [pipe]) == ["step-00000010", "step-00000020"]


TRAIN = ["--quiet", "--set", "train.epochs=2", "--set", "run.plots=false", "--set", "model.hidden_sizes=[16]"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("pipes") / "run"
    assert main(["train", "--out", str(run), *TRAIN]) == 0
    return run


@needs_fifo
def test_a_pipe_in_place_of_sha256sums_is_an_error_naming_it(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    pipe = _pipe_in_place_of(run / "SHA256SUMS")
    got = _call(lambda: run_cli(["evaluate", str(run)], capsys), [pipe])
    code, _, err = got
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{pipe}: unreadable (not a regular file: a named pipe (FIFO))" in err


@needs_fifo
def test_a_pipe_in_place_of_a_runs_config_does_not_block_evaluate(finished, tmp_path):
    # (config.toml says where the checkpoints are: unreadable, the default place is looked in)
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    pipe = _pipe_in_place_of(run / "config.toml")
    got = _call(lambda: rd.load_model(str(run)), [pipe])
    assert not isinstance(got, Exception), got


@needs_fifo
@pytest.mark.parametrize("name", ["model.npz", "model.json"])
def test_a_pipe_in_place_of_a_runs_model_is_an_error_naming_it(finished, tmp_path, capsys, name):
    # (it was taken for a file not written yet: evaluate read the newest checkpoint instead, saying the run
    # had not finished)
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    pipe = _pipe_in_place_of(run / name)
    code, _, err = _call(lambda: run_cli(["evaluate", str(run)], capsys), [pipe])
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{pipe}: unreadable (not a regular file: a named pipe (FIFO))" in err


@needs_fifo
def test_a_pipe_in_place_of_a_runs_metrics_csv_is_refused_by_read_metrics_csv(finished, tmp_path):
    from distnn.train.callbacks import read_metrics_csv

    run = tmp_path / "run"
    shutil.copytree(finished, run)
    assert len(read_metrics_csv(str(run / "metrics.csv"))) == 2
    pipe = _pipe_in_place_of(run / "metrics.csv")
    got = _call(lambda: read_metrics_csv(pipe), [pipe])
    assert isinstance(got, OSError) and got.filename == pipe and "named pipe" in str(got), got
