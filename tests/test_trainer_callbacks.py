"""Trainer callbacks decided on every rank alike: early stopping agreed across ranks and restoring the best
weights, ReduceLROnPlateau on the agreed metric, a monitored metric that must exist."""
import numpy as np
import pytest

from distnn.distributed import LocalCommunicator, simulate
from distnn.optim.lr_scheduler import ReduceLROnPlateau
from distnn.train.callbacks import Callback, EarlyStopping, LRSchedulerCallback

from trainer_runs import InjectMetric, digits, make_trainer


def test_early_stopping_is_agreed_across_ranks(digits):
    # rank 0 sees a plateau after epoch 2 (stop after 2 more), rank 1 keeps improving.
    values = {0: [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 1: [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4]}

    def run(comm):
        es = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
        t = make_trainer(comm, digits, epochs=7, train_subset=200, callbacks=[InjectMetric("val_loss", values), es])
        t.fit()
        return len(t.history), t.state.stopped_early, es.best_epoch, t.model.state_dict()

    res = simulate(2, run)
    assert res[0][:3] == res[1][:3] == (4, True, 1)
    for k in res[0][3]:
        np.testing.assert_array_equal(res[0][3][k], res[1][3][k])


def test_early_stopping_restores_best_weights(digits):
    snapshots = []

    class Snap(Callback):
        def on_epoch_end(self, trainer, logs):
            snapshots.append(trainer.model.state_dict())

    es = EarlyStopping(monitor="val_loss", patience=1)
    t = make_trainer(LocalCommunicator(), digits, epochs=5, train_subset=200,
                     callbacks=[InjectMetric("val_loss", {0: [3.0, 1.0, 2.0, 2.5, 4.0]}), es, Snap()])
    t.fit()
    assert len(t.history) == 3 and t.state.stopped_early and es.best_epoch == 1
    for k, v in t.model.state_dict().items():
        np.testing.assert_array_equal(v, snapshots[1][k])
    # without early stopping the run goes the full length
    t2 = make_trainer(LocalCommunicator(), digits, epochs=3, train_subset=200)
    t2.fit()
    assert len(t2.history) == 3 and not t2.state.stopped_early


def test_reduce_lr_on_plateau_follows_the_agreed_metric(digits):
    # rank 0's val_loss never improves after epoch 1 -> LR halves after patience=1 bad epochs;
    # rank 1's keeps improving, but every rank must follow rank 0.
    values = {0: [1.0, 1.0, 1.0, 1.0, 1.0], 1: [1.0, 0.9, 0.8, 0.7, 0.6]}

    def run(comm):
        t = make_trainer(comm, digits, epochs=5, train_subset=100, batch_size=50)
        sched = ReduceLROnPlateau(t.optimizer, mode="min", factor=0.5, patience=1)
        t.callbacks.callbacks = [InjectMetric("val_loss", values), LRSchedulerCallback(sched, monitor="val_loss")]
        t.fit()
        return [round(h["lr"], 8) for h in t.history], t.lr

    res = simulate(2, run)
    assert res[0] == res[1]
    # history's lr is the rate used during that epoch; reductions after epochs 3 and 5 (1-based)
    assert res[0][0] == [0.1, 0.1, 0.1, 0.05, 0.05]
    assert res[0][1] == pytest.approx(0.025)


def test_monitored_metric_must_exist(digits):
    t = make_trainer(LocalCommunicator(), digits, epochs=1, train_subset=100,
                     callbacks=[EarlyStopping(monitor="val_f2")])
    with pytest.raises(ValueError, match="val_f2"):
        t.fit()


def test_restore_best_keeps_final_weights_that_the_last_report_scores_better(digits):
    """eval_every=2 over 3 epochs: epoch 2 is judged (val_loss 2.0, the best), epoch 3's validation is
    the final report (1.0): the final weights are the best seen, so they are kept, not epoch 2's."""
    snapshots = []

    class Snap(Callback):
        def on_epoch_end(self, trainer, logs):
            snapshots.append(trainer.model.state_dict())

    def run(values):
        snapshots.clear()
        es = EarlyStopping(monitor="val_loss", patience=5)
        t = make_trainer(LocalCommunicator(), digits, epochs=3, train_subset=200, eval_every=2,
                         callbacks=[InjectMetric("val_loss", {0: values}), es, Snap()])
        t.fit()
        return t.model.state_dict(), es.best_epoch, t.state.best_epoch

    better_at_the_end, *best = run([5.0, 2.0, 1.0])
    assert best == [2, 2]  # (the best reported, early stopping's and the run's, is the epoch of those weights)
    for k, v in better_at_the_end.items():
        np.testing.assert_array_equal(v, snapshots[2][k], err_msg=k)
    worse_at_the_end, *best = run([5.0, 2.0, 3.0])  # the judged best is restored, as before
    assert best == [1, 1]
    for k, v in worse_at_the_end.items():
        np.testing.assert_array_equal(v, snapshots[1][k], err_msg=k)
