"""Checkpoint callbacks run after every other callback (PyTorch Lightning's convention), whatever the order a
user lists them in, so a checkpoint holds the whole outcome of the point it is taken at.

The oracle is the uninterrupted run: with ``callbacks=[ModelCheckpoint, EarlyStopping]`` (and the reverse), a
run resumed from the checkpoint of the epoch early stopping stops at trains no further, and a run interrupted
in a later epoch (``max_steps`` at an epoch's end, or an error mid-epoch) and resumed ends bitwise as the
uninterrupted run, stopping at the same epoch (early stopping's count carried right); with ``async_save`` on
and off, and on 2 (or 3) MPI ranks (``mpiexec -n 2 python -m pytest --with-mpi -m mpi``).

Early stopping here waits for an improvement by more than ``min_delta = 1e3``, which no epoch after the first
makes: with ``patience = 3`` every run stops at the end of epoch 4, whatever the losses, and its best epoch
(the weights it restores) is the run's best ``val_loss``.
"""
import json
import os

import numpy as np
import pytest

import distnn
from distnn.data import Dataset
from distnn.distributed import LocalCommunicator
from distnn.models import build_model
from distnn.optim import Adam
from distnn.train import checkpoint as ck
from distnn.train.callbacks import Callback, EarlyStopping
from distnn.train.callbacks.checkpoint import ModelCheckpoint
from distnn.train.callbacks.resume import resume
from distnn.train.trainer import Trainer

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")

STEPS_PER_EPOCH = 4  # 240 samples, a global batch of 60 (which 1, 2 and 3 ranks divide)
STOP_EPOCH = 4       # the epoch early stopping stops at (see the module docstring)
ORDERS = ["checkpoint_first", "checkpoint_last"]


def _data():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((8, 3))
    x = rng.standard_normal((300, 8)).astype(np.float32)
    y = np.argmax(x @ w + 0.5 * rng.standard_normal((300, 3)), axis=1).astype(np.int64)
    return Dataset(x[:240], y[:240], num_classes=3), Dataset(x[240:], y[240:], num_classes=3)


def _model(hidden, dropout=0.0):
    distnn.manual_seed(0)
    return build_model("mlp", hidden_sizes=hidden, dropout=dropout, input_shape=(8,), num_classes=3)


class CrashAt(Callback):
    """Raises at global step ``step``: a run that dies there (its newest checkpoint is an epoch end's)."""

    def __init__(self, step):
        self.step = step

    def on_batch_end(self, trainer, logs):
        if trainer.state.global_step == self.step:
            raise RuntimeError(f"crash at step {self.step}")


def _trainer(comm, root, order, async_save, epochs=10, max_steps=None, extra=()):
    """A trainer whose callbacks are ``[ModelCheckpoint, EarlyStopping]`` in ``order``, then ``extra``."""
    train, val = _data()
    model = _model([16], dropout=0.2)
    checkpoint = ModelCheckpoint(root, every_n_epochs=1, keep_last=0, save_best=True, async_save=async_save)
    stopping = EarlyStopping(monitor="val_loss", patience=3, min_delta=1e3, restore_best_weights=True)
    callbacks = [checkpoint, stopping] if order == "checkpoint_first" else [stopping, checkpoint]
    t = Trainer(model, Adam(model.parameters(), lr=1e-2), train, val, comm=comm, batch_size=60, epochs=epochs,
                callbacks=[*callbacks, *extra], seed=5, max_steps=max_steps)
    return t, checkpoint, stopping


def _outcome(t, stopping):
    return {"model": t.model.state_dict(), "optimizer": t.optimizer.state_dict(), "step": t.state.global_step,
            "epochs": len(t.history), "stopped_early": t.state.stopped_early,
            "val_loss": [h["val_loss"] for h in t.history],
            "stopping": {k: stopping.state_dict()[k] for k in ("wait", "best", "best_epoch", "stopped_epoch")}}


def _assert_same(a, b):
    for key in ("step", "epochs", "stopped_early", "val_loss", "stopping"):
        assert a[key] == b[key], key
    for k in a["model"]:
        np.testing.assert_array_equal(a["model"][k], b["model"][k], err_msg=k)
    for i, st in a["optimizer"]["state"].items():
        for k, v in st.items():
            np.testing.assert_array_equal(np.asarray(v), np.asarray(b["optimizer"]["state"][i][k]), err_msg=k)


def _uninterrupted(comm, root, order, async_save):
    t, _, stopping = _trainer(comm, root, order, async_save)
    t.fit()
    out = _outcome(t, stopping)
    assert out["epochs"] == STOP_EPOCH and out["stopped_early"] and out["step"] == STOP_EPOCH * STEPS_PER_EPOCH
    return out


def _resumed(comm, root, spec, order, async_save):
    t, checkpoint, stopping = _trainer(comm, root, order, async_save)
    assert resume(t, spec, root, checkpoint) is not None
    t.fit()
    return _outcome(t, stopping)


def _manifest(root, step):
    with open(os.path.join(root, ck.step_name(step), ck.MANIFEST)) as f:
        return json.load(f)


def _stop_epoch_is_recorded_and_resumes_to_the_end(comm, root, order, async_save):
    full = _uninterrupted(comm, os.path.join(root, "full"), order, async_save)
    last = STOP_EPOCH * STEPS_PER_EPOCH
    manifest = _manifest(os.path.join(root, "full"), last)
    assert manifest["epoch_end"] and manifest["stop_agreed"] is True
    state, _ = ck.read_checkpoint(os.path.join(root, "full", ck.step_name(last)))
    saved = state["callbacks"]["early_stopping"]
    assert (saved["wait"], saved["stopped_epoch"]) == (3, STOP_EPOCH - 1)  # this epoch's update included
    resumed = _resumed(comm, os.path.join(root, "again"), os.path.join(root, "full", ck.step_name(last)), order,
                       async_save)
    _assert_same(full, resumed)  # no further epoch trained; the same best weights restored


def _interrupted_run_resumes_to_the_same_stop(comm, root, order, async_save, how):
    full = _uninterrupted(comm, os.path.join(root, "full"), order, async_save)
    run = os.path.join(root, "run")
    if how == "max_steps":  # ends at epoch 3's end: its epoch-end checkpoint is the run's last
        t, _, _ = _trainer(comm, run, order, async_save, max_steps=3 * STEPS_PER_EPOCH)
        t.fit()
        assert len(t.history) == 3 and not t.state.stopped_early
    else:  # dies in epoch 4: epoch 3's checkpoint is the newest
        t, _, _ = _trainer(comm, run, order, async_save, extra=[CrashAt(3 * STEPS_PER_EPOCH + 2)])
        with pytest.raises(RuntimeError, match="crash at step"):
            t.fit()
    comm.barrier()  # (rank 0's background write of epoch 3 is joined as it leaves fit: read it after that)
    assert [c.name for c in ck.list_checkpoints(run)][-1] == ck.step_name(3 * STEPS_PER_EPOCH)
    assert _manifest(run, 3 * STEPS_PER_EPOCH)["stop_agreed"] is False
    _assert_same(full, _resumed(comm, run, "auto", order, async_save))


# ----------------------------------------------------------------------------------------- one process
@pytest.mark.parametrize("async_save", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("order", ORDERS)
def test_the_stop_epochs_checkpoint_records_the_stop_and_a_resume_trains_no_further(tmp_path, order, async_save):
    _stop_epoch_is_recorded_and_resumes_to_the_end(LocalCommunicator(), str(tmp_path), order, async_save)


@pytest.mark.parametrize("how", ["max_steps", "crash"])
@pytest.mark.parametrize("async_save", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("order", ORDERS)
def test_a_run_interrupted_later_resumes_bitwise_to_the_same_stop(tmp_path, order, async_save, how):
    _interrupted_run_resumes_to_the_same_stop(LocalCommunicator(), str(tmp_path), order, async_save, how)


class Recorder(Callback):
    """Appends ``(name, hook)`` to ``calls`` at every hook."""

    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    def on_train_begin(self, trainer):
        self.calls.append((self.name, "train_begin"))

    def on_epoch_begin(self, trainer):
        self.calls.append((self.name, "epoch_begin"))

    def on_batch_end(self, trainer, logs):
        self.calls.append((self.name, "batch_end"))

    def on_epoch_end(self, trainer, logs):
        self.calls.append((self.name, "epoch_end"))

    def on_loop_end(self, trainer):
        self.calls.append((self.name, "loop_end"))

    def on_train_end(self, trainer, logs):
        self.calls.append((self.name, "train_end"))

    def on_exception(self, trainer, exception):
        self.calls.append((self.name, "exception"))


class RecordedCheckpoint(ModelCheckpoint):
    """A ModelCheckpoint that notes each hook it runs, before it runs it."""

    def __init__(self, name, calls, root):
        super().__init__(root, every_n_epochs=1, keep_last=0)
        self.name, self.calls = name, calls

    def on_train_begin(self, trainer):
        self.calls.append((self.name, "train_begin"))
        super().on_train_begin(trainer)

    def on_epoch_begin(self, trainer):
        self.calls.append((self.name, "epoch_begin"))

    def on_batch_end(self, trainer, logs):
        self.calls.append((self.name, "batch_end"))
        super().on_batch_end(trainer, logs)

    def on_epoch_end(self, trainer, logs):
        self.calls.append((self.name, "epoch_end"))
        super().on_epoch_end(trainer, logs)

    def on_loop_end(self, trainer):
        self.calls.append((self.name, "loop_end"))
        super().on_loop_end(trainer)

    def on_train_end(self, trainer, logs):
        self.calls.append((self.name, "train_end"))
        super().on_train_end(trainer, logs)

    def on_exception(self, trainer, exception):
        self.calls.append((self.name, "exception"))
        super().on_exception(trainer, exception)


@pytest.mark.parametrize("crash", [False, True])
def test_every_hook_calls_the_checkpoint_callbacks_last_in_their_own_order(tmp_path, crash):
    calls = []
    train, val = _data()
    model = _model([4])
    given = [RecordedCheckpoint("ck1", calls, str(tmp_path / "a")), Recorder("a", calls),
             RecordedCheckpoint("ck2", calls, str(tmp_path / "b")), Recorder("b", calls)]
    t = Trainer(model, Adam(model.parameters()), train, val, comm=LocalCommunicator(), batch_size=60, epochs=2,
                callbacks=given + ([CrashAt(6)] if crash else []))
    if crash:
        with pytest.raises(RuntimeError, match="crash at step 6"):
            t.fit()
    else:
        t.fit()
    hooks = [hook for name, hook in calls if name == "a"]
    assert hooks[-1] == ("exception" if crash else "train_end")
    expected = [(name, hook) for hook in hooks for name in ("a", "b", "ck1", "ck2")]
    if crash:  # (CrashAt, after b, raised in step 6's on_batch_end: the checkpoints never got it)
        assert expected[-6:-4] == [("ck1", "batch_end"), ("ck2", "batch_end")]
        del expected[-6:-4]
    assert calls == expected
    assert t.callbacks.callbacks[:4] == given  # the list itself keeps the order given


def test_state_keys_follow_the_list_as_given_so_checkpoints_of_the_old_order_load(tmp_path):
    """Two checkpoint callbacks and one that runs before them: the keys are numbered in the order given, as
    before checkpoint callbacks ran last (a checkpoint written then has these keys)."""
    train, val = _data()
    model = _model([4])
    t = Trainer(model, Adam(model.parameters()), train, val, comm=LocalCommunicator(), batch_size=60, epochs=1,
                callbacks=[ModelCheckpoint(str(tmp_path / "a")), EarlyStopping(patience=2),
                           ModelCheckpoint(str(tmp_path / "b"))])
    assert list(t.state_dict()["callbacks"]) == ["checkpoint", "early_stopping", "checkpoint#2"]


# ----------------------------------------------------------------------------------------- MPI ranks
@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("async_save", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("order", ORDERS)
def test_mpi_the_stop_epochs_checkpoint_records_the_stop_and_a_resume_trains_no_further(mpi_tmp_path, order,
                                                                                       async_save):
    import distnn.distributed as dist

    _stop_epoch_is_recorded_and_resumes_to_the_end(dist.init(), str(mpi_tmp_path), order, async_save)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("how", ["max_steps", "crash"])
@pytest.mark.parametrize("async_save", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("order", ORDERS)
def test_mpi_a_run_interrupted_later_resumes_bitwise_to_the_same_stop(mpi_tmp_path, order, async_save, how):
    import distnn.distributed as dist

    _interrupted_run_resumes_to_the_same_stop(dist.init(), str(mpi_tmp_path), order, async_save, how)
