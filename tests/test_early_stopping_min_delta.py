"""early_stopping.min_delta governs patience only: an improvement smaller than it does not reset the count, but
it is the best epoch all the same (summary.json's best_epoch, checkpoints/best, and the weights restore_best
ends with). Before, early stopping kept the last epoch that improved by min_delta as its best and restored
those weights and named that epoch in summary.json, while the best checkpoint held a later, better epoch."""
import json

import numpy as np
import pytest

from distnn.cli import main
from distnn.data import build_transforms, load_dataset
from distnn.distributed import LocalCommunicator
from distnn.train.callbacks import Callback, EarlyStopping
from test_final_report import assert_agree, records
from trainer_runs import InjectMetric, make_trainer


@pytest.fixture(scope="module")
def digits():
    splits = load_dataset("digits")
    return (splits, *build_transforms(splits))


def test_a_small_improvement_is_the_best_and_restored_but_does_not_reset_patience(digits):
    snapshots = []

    class Snap(Callback):
        def on_epoch_end(self, trainer, logs):
            snapshots.append(trainer.model.state_dict())

    # epoch 2 (0-based 1) improves by 0.2 < min_delta: the best, but patience goes on counting from epoch 1
    es = EarlyStopping(monitor="val_loss", patience=2, min_delta=0.5)
    t = make_trainer(LocalCommunicator(), digits, epochs=6, train_subset=200,
                     callbacks=[InjectMetric("val_loss", {0: [3.0, 2.8, 2.9, 1.0, 1.0, 1.0]}), es, Snap()])
    t.fit()
    assert len(t.history) == 3 and t.state.stopped_early  # (stopped at epoch 3: patience 2 from epoch 1)
    assert (es.best_epoch, es.best) == (1, 2.8)  # (was epoch 0, 3.0)
    for k, v in t.model.state_dict().items():
        np.testing.assert_array_equal(v, snapshots[1][k], err_msg=k)


def test_summary_best_checkpoint_and_restored_weights_agree_with_min_delta(tmp_path, capsys):
    # a min_delta no epoch reaches: patience runs out after epoch 1, while val_loss still falls a little
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--set", "train.epochs=3", "--set", "early_stopping.enabled=true",
                 "--set", "early_stopping.patience=2", "--set", "early_stopping.min_delta=1e9",
                 "--set", "checkpoint.enabled=true", "--set", "run.plots=false", "--quiet"]) == 0
    val = [r["val_loss"] for r in records(run)]
    best = int(np.argmin(val)) + 1
    assert best > 1, val  # (the case: a later epoch is better, by less than min_delta)
    assert json.loads((run / "summary.json").read_text())["stopped_early"]
    assert_agree(run, best)  # (was: summary.json and model.npz at epoch 1, checkpoints/best at the best epoch)
