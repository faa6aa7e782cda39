"""Checkpoints through the CLI and by hand: train writes them and evaluate/predict read them, --resume PATH
continues bitwise, discarding newer checkpoints re-points best durably, resuming through a symlink, another
monitored metric."""
import math
import os

import numpy as np
import pytest

from distnn.distributed import LocalCommunicator
from distnn.train import checkpoint as ck
from distnn.train.callbacks import EarlyStopping
from distnn.train.callbacks.checkpoint import ModelCheckpoint
from distnn.train.callbacks.checkpoint_setup import attach, detach

from checkpoint_runs import write_step, digits, make_trainer, run_with_checkpoints


pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def test_cli_train_checkpoints_and_evaluate_predict_read_them(tmp_path, capsys, digits):
    from distnn.cli import main

    run = tmp_path / "run"
    args = ["train", "--out", str(run), "--simulate-ranks", "2", "--quiet", "--set", "train.epochs=2",
            "--set", "run.plots=false"]
    assert main(args) == 0
    cps = ck.list_checkpoints(str(run / "checkpoints"))
    assert [c.step for c in cps] == [20, 40]  # digits_mlp: 1257 samples, global batch 64; every epoch
    man = ck.read_manifest(cps[0].path)
    assert man["world_size"] == 2 and man["global_batch_size"] == 64 and man["epoch_end"]
    assert {"model.npz", "optimizer.npz", "trainer.json", "model.json", "config.toml"} <= set(man["files"])
    capsys.readouterr()
    assert main(["evaluate", cps[0].path]) == 0
    assert "accuracy" in capsys.readouterr().out
    inputs = tmp_path / "in.npz"
    np.savez(inputs, x=digits[0].test.x[:5])
    assert main(["predict", cps[0].path, "--input", str(inputs), "--output", str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 6
    # the same checkpoint resumed (a finished run: nothing left to train) gives the same final model
    assert main(args + ["--resume", "auto"]) == 0
    # a corrupt checkpoint is refused with the file named
    target = os.path.join(cps[0].path, "model.npz")
    data = bytearray(open(target, "rb").read())
    data[-30] ^= 1
    open(target, "wb").write(bytes(data))
    capsys.readouterr()
    assert main(["evaluate", cps[0].path]) == 2
    assert "model.npz fails its SHA-256 check" in capsys.readouterr().err
    assert main(["train", "--resume", "auto"]) == 2
    assert "--out RUN_DIR" in capsys.readouterr().err


def test_cli_resume_path_continues_from_that_checkpoint_bitwise(tmp_path, capsys):
    from distnn.cli import main

    def args(out, *extra):
        return ["train", "--out", str(out), "--simulate-ranks", "2", "--quiet", "--set", "train.epochs=3",
                "--set", "run.plots=false", *extra]

    assert main(args(tmp_path / "full")) == 0
    first = ck.list_checkpoints(str(tmp_path / "full" / "checkpoints"))[0]
    assert first.step == 40  # after epoch 2 of 3 (retention removed epoch 1's)
    capsys.readouterr()
    assert main(args(tmp_path / "resumed", "--resume", first.path)) == 0
    assert f"resumed from {first.path}" in capsys.readouterr().err
    with np.load(tmp_path / "full" / "model.npz") as a, np.load(tmp_path / "resumed" / "model.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert [c.step for c in ck.list_checkpoints(str(tmp_path / "resumed" / "checkpoints"))] == [60]


@pytest.mark.parametrize("best,expected", [("step-00000010", "step-00000010"), (None, None)])
def test_discarding_newer_checkpoints_re_points_best(tmp_path, best, expected):
    # `best` kept naming a checkpoint moved aside, so `evaluate RUN/checkpoints/best` failed
    for step in (10, 20, 30):
        write_step(tmp_path, step)
    ck.write_pointer(str(tmp_path), ck.BEST, "step-00000030")
    assert ck.discard_newer(str(tmp_path), 10, best=best) == ["step-00000020", "step-00000030"]
    assert ck.read_pointer(str(tmp_path)) == "step-00000010"
    assert ck.read_pointer(str(tmp_path), ck.BEST) == expected
    assert os.path.exists(tmp_path / ck.BEST) == (expected is not None)


@pytest.mark.parametrize("latest", ["step-00000010", None])
def test_discarding_newer_checkpoints_is_durable(tmp_path, monkeypatch, latest):
    # the renames aside were made durable only by a pointer's rewrite: where no pointer named a moved
    # checkpoint (latest gone, or naming an older one), a power loss brought the abandoned future back
    import stat

    for step in (10, 20, 30):
        write_step(tmp_path, step)
    if latest is None:
        os.remove(tmp_path / ck.LATEST)
    else:
        ck.write_pointer(str(tmp_path), ck.LATEST, latest)
    log = []
    fsync, rename = os.fsync, os.rename

    def spied_fsync(fd):
        st = os.fstat(fd)
        log.append(("fsync", st.st_ino, stat.S_ISDIR(st.st_mode)))
        return fsync(fd)

    def spied_rename(src, dst):
        log.append(("rename", dst))
        return rename(src, dst)

    monkeypatch.setattr(os, "fsync", spied_fsync)
    monkeypatch.setattr(os, "rename", spied_rename)
    assert ck.discard_newer(str(tmp_path), 10) == ["step-00000020", "step-00000030"]
    last = max(i for i, ev in enumerate(log) if ev[0] == "rename")
    assert ("fsync", os.stat(tmp_path).st_ino, True) in log[last + 1:]


def test_resuming_an_older_checkpoint_through_a_symlink_moves_the_newer_ones_aside(digits, tmp_path):
    run_with_checkpoints(LocalCommunicator(), digits, tmp_path / "a", every=4)
    os.symlink(tmp_path / "a", tmp_path / "link")
    t = make_trainer(LocalCommunicator(), digits)
    try:
        attach(t, str(tmp_path / "a"), {"dir": str(tmp_path / "a"), "every_steps": 0, "keep_last": 0},
               resume_spec=str(tmp_path / "link" / ck.step_name(8)))
        t.callbacks.on_train_begin(t)  # (where the newer ones are moved aside)
    finally:  # (no fit follows: the signal handlers and the step guard given back)
        detach(t)
    left = sorted(n for n in os.listdir(tmp_path / "a") if n.startswith("step-"))
    assert left == ["step-00000004", "step-00000008"], left
    assert any(n.startswith("discarded-step-00000012") for n in os.listdir(tmp_path / "a"))


@pytest.mark.parametrize("make", [lambda m: ModelCheckpoint("unused", monitor=m),
                                  lambda m: EarlyStopping(monitor=m)], ids=["checkpoint", "early-stopping"])
def test_a_resumed_run_with_another_monitored_metric_tracks_its_best_afresh(make):
    # the best val_loss (1.01) was compared with val_accuracy values: no accuracy below 1.01 ever improved
    saved = make("val_loss")
    saved.best, saved.best_name = 1.01, "step-00000040"
    if isinstance(saved, EarlyStopping):
        saved.best_epoch, saved.wait = 4, 3
    state = saved.state_dict()
    same = make("val_loss")
    same.load_state_dict(state)
    assert same.best == 1.01
    other = make("val_accuracy")
    other.load_state_dict(state)
    assert other.best in (None, -math.inf)
    if isinstance(other, EarlyStopping):
        assert other.wait == 0 and other.best_epoch == -1
        assert other.improved(0.5)
