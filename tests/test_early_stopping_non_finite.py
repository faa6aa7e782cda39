"""Early stopping follows the trainer's rule for the best: a value that is not finite is no improvement.

A diverged run can report val_loss = -inf (or an accuracy of inf): early stopping took it for the best (and
restore_best_weights ended the run with the diverged weights), and reset patience on it, while the trainer's
best (summary.json) and the best checkpoint skip values that are not finite."""
import math

import numpy as np
import pytest

from distnn.data import build_transforms, load_dataset
from distnn.distributed import LocalCommunicator
from distnn.train.callbacks import Callback, EarlyStopping
from trainer_runs import make_trainer

inf, nan = math.inf, math.nan


@pytest.fixture(scope="module")
def digits():
    splits = load_dataset("digits")
    return (splits, *build_transforms(splits))


def _run(digits, monitor, values, patience=10):
    """A run whose validation reports ``values[epoch]`` for ``monitor`` (as the trainer itself sees it, so its
    best and early stopping's judge the same numbers); (trainer, early stopping, weights after each epoch)."""
    snapshots = []

    class Snap(Callback):
        def on_epoch_end(self, trainer, logs):
            snapshots.append(trainer.model.state_dict())

    es = EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True)
    t = make_trainer(LocalCommunicator(), digits, epochs=len(values), train_subset=200, monitor=monitor,
                     callbacks=[es, Snap()])
    evaluate = t.evaluate

    def injected(dataset, prefix="", **kw):
        return {**evaluate(dataset, prefix=prefix, **kw), monitor: values[t.state.epoch]}

    t.evaluate = injected
    t.fit()
    return t, es, snapshots


@pytest.mark.parametrize("monitor, values, best", [
    ("val_loss", [2.0, 1.0, -inf, 0.5, 3.0], 3),
    ("val_loss", [2.0, nan, 1.0, 1.5], 2),
    ("val_accuracy", [0.5, 0.9, inf, 0.95, 0.1], 3),
    ("val_accuracy", [0.5, nan, 0.7, 0.6], 2),
])
def test_a_value_that_is_not_finite_is_not_the_best_nor_restored(digits, monitor, values, best):
    t, es, snapshots = _run(digits, monitor, values)
    assert len(t.history) == len(values) and not t.state.stopped_early
    assert t.state.best_epoch == best  # (the trainer's rule, as before)
    assert (es.best_epoch, es.best) == (best, values[best])  # (was the -inf/inf epoch)
    for k, v in t.model.state_dict().items():
        np.testing.assert_array_equal(v, snapshots[best][k], err_msg=k)


def test_a_value_that_is_not_finite_does_not_reset_patience(digits):
    # epochs 1 and 2 diverge to -inf: two evaluations without improvement, so patience 2 stops after epoch 2
    t, es, snapshots = _run(digits, "val_loss", [1.0, -inf, -inf, 0.5, 0.4], patience=2)
    assert len(t.history) == 3 and t.state.stopped_early  # (was 4: -inf reset the count)
    assert (es.best_epoch, es.wait) == (0, 2)
    for k, v in t.model.state_dict().items():
        np.testing.assert_array_equal(v, snapshots[0][k], err_msg=k)
