"""The ``latest`` and ``best`` pointer files carry the SHA-256 of the name they hold.

A bit flipped in a pointer's step number can name another checkpoint that exists and verifies: before
the SHA-256, ``--resume best``, ``--resume latest`` and ``evaluate`` of a pointer used that other
checkpoint without a word. Now a damaged ``latest`` gives the newest valid checkpoint, with a warning
naming it; a damaged ``best`` is a one-line error naming it (which checkpoint was the best cannot be told
from the others). An older distnn's pointer (the name alone) is still read.
"""
from __future__ import annotations

import hashlib
import os
import shutil

import numpy as np
import pytest

from distnn.cli import main
from distnn.train import checkpoint as ck
from cli_cases import run_cli

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def _write(root, step, best=None):
    best_name = ck.step_name(best) if best is not None else None
    return ck.write_checkpoint(str(root), step, ck.serialize({"model": {"w": np.full(4, step, np.float32)}}),
                               {"world_size": 1, "best": {"monitor": "val_loss", "value": 0.25, "name": best_name}},
                               update_best=best == step)


def _flip_into(path, old: bytes, new: bytes):
    """Flip the one bit that turns the first ``old`` byte of ``path`` into ``new`` (e.g. a 3 into a 2)."""
    assert bin(old[0] ^ new[0]).count("1") == 1
    data = bytearray(open(path, "rb").read())
    at = data.index(old)
    data[at] ^= old[0] ^ new[0]
    open(path, "wb").write(bytes(data))


@pytest.fixture
def three(tmp_path):
    """Checkpoints 10, 20 and 30, ``latest`` and ``best`` naming step 30."""
    for step in (10, 20, 30):
        _write(tmp_path, step, best=step)
    return tmp_path


def test_a_pointer_holds_the_name_and_its_sha256(three):
    name = "step-00000030"
    want = f"{name} sha256={hashlib.sha256(name.encode()).hexdigest()}\n".encode()
    for which in (ck.LATEST, ck.BEST):
        assert (three / which).read_bytes() == want
        assert ck.read_pointer(str(three), which) == name
    ck.write_pointer(str(three), ck.BEST, "step-00000020")  # (re-pointed alone: the same format)
    assert ck.read_pointer(str(three), ck.BEST) == "step-00000020"


@pytest.mark.parametrize("which", [ck.LATEST, ck.BEST])
def test_a_bit_flipped_into_another_existing_step_is_not_followed(three, which):
    path = str(three / which)
    _flip_into(path, b"3", b"2")  # step-00000030 -> step-00000020: it exists, and verifies
    assert open(path, "rb").read().startswith(b"step-00000020 ")
    assert ck.read_pointer(str(three), which) is None
    warnings = []
    if which == ck.LATEST:  # the newest valid checkpoint, said with a warning naming the pointer
        got, _, _ = ck.resolve_and_load(path, None, warnings.append)
        assert os.path.basename(got) == "step-00000030"
        assert len(warnings) == 1 and f"{path!r} is damaged" in warnings[0] and "SHA-256" in warnings[0]
    else:  # an error naming it, and the best the newest manifest records, as a hint
        with pytest.raises(ck.CheckpointError) as e:
            ck.resolve_and_load(path, None, warnings.append)
        msg = str(e.value)
        assert f"{path!r} is damaged or unreadable: its SHA-256 does not match" in msg and "\n" not in msg
        assert f"records {str(three / 'step-00000030')!r} as the best by val_loss = 0.25" in msg
    with pytest.raises(ck.CheckpointError, match="is damaged"):
        ck.follow_pointer(path)  # (no warn: no fallback either)


def test_an_older_distnns_pointer_is_still_read_and_one_cut_short_is_not(three):
    (three / ck.BEST).write_text("step-00000020\n")  # the name alone
    assert ck.read_pointer(str(three), ck.BEST) == "step-00000020"
    got, _, _ = ck.resolve_and_load(str(three / ck.BEST), None)
    assert os.path.basename(got) == "step-00000020"
    (three / ck.BEST).write_text("step-0000002\n")  # step-00000020 cut short: step 2's name is step-00000002
    assert ck.read_pointer(str(three), ck.BEST) is None
    with pytest.raises(ck.CheckpointError, match="holds no checkpoint name"):
        ck.resolve_and_load(str(three / ck.BEST), None)


def test_retention_leaves_a_damaged_best_alone(three):
    # a damaged best names nothing: retention does not take it for the pointer of a checkpoint it retires
    _flip_into(str(three / ck.BEST), b"3", b"1")  # -> step-00000010, which retention removes
    assert ck.apply_retention(str(three), 1, latest="step-00000030") == ["step-00000010", "step-00000020"]
    assert (three / ck.BEST).exists() and ck.read_pointer(str(three), ck.BEST) is None


# ---------------------------------------------------------------------- through the CLI
TRAIN = ["--quiet", "--set", "train.epochs=3", "--set", "run.plots=false", "--set", "checkpoint.keep_last=0",
         "--set", "model.hidden_sizes=[16]"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("ptr") / "run"
    assert main(["train", "--out", str(run), *TRAIN]) == 0
    root = run / "checkpoints"
    assert [c.step for c in ck.list_checkpoints(str(root))] == [20, 40, 60]
    assert ck.read_pointer(str(root), ck.BEST) == ck.read_pointer(str(root)) == "step-00000060"
    return run


def test_cli_a_flipped_best_is_a_one_line_error_and_a_flipped_latest_reads_the_newest(finished, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    root = run / "checkpoints"
    for which in (ck.LATEST, ck.BEST):
        _flip_into(str(root / which), b"6", b"4")  # step-00000060 -> step-00000040
    code, out, err = run_cli(["evaluate", str(root / ck.BEST)], capsys)
    assert code == 2 and err.startswith("distnn: error: ") and len(err.strip().splitlines()) == 1, err
    assert f"{str(root / ck.BEST)!r} is damaged or unreadable" in err
    code, out, err = run_cli(["evaluate", str(root / ck.LATEST)], capsys)
    assert code == 0 and "accuracy" in out, err
    assert f"warning: {str(root / ck.LATEST)!r} is damaged" in err
    assert f"reading checkpoint {root / 'step-00000060'}" in err
    code, _, err = run_cli(["train", "--out", str(tmp_path / "other"), *TRAIN, "--resume", str(root / ck.BEST)],
                           capsys)
    assert code == 2 and f"{str(root / ck.BEST)!r} is damaged" in err, err
    # resuming in the run repairs both: a save rewrites latest, the restored best's name rewrites best
    code, _, err = run_cli(["train", "--out", str(run), *TRAIN, "--set", "train.epochs=4", "--resume", "auto"],
                           capsys)
    assert code == 0, err
    assert ck.read_pointer(str(root)) == "step-00000080" and ck.read_pointer(str(root), ck.BEST) is not None
