"""The last epoch's validation off the eval_every schedule (the final report) scores the weights a run ends
with. When it beats the judged best, the run keeps those weights (early stopping's restore_best), and now
also reports them as its best (summary.json) and points checkpoints/best at their checkpoint; before, the
summary and the best checkpoint named the judged best's epoch while model.npz held the final weights."""
import json
import os

import numpy as np

from distnn.cli import main
from distnn.train import checkpoint as ck

RUN = ["--set", "train.epochs=3", "--set", "train.eval_every=2", "--set", "early_stopping.enabled=true",
       "--set", "checkpoint.enabled=true", "--set", "run.plots=false", "--quiet"]


def records(run):
    with open(run / "metrics.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def weights(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def assert_agree(run, epoch, monitor="val_loss"):
    """summary.json's best, model.npz and checkpoints/best all name epoch ``epoch`` (1-based)."""
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_epoch"] == epoch
    assert summary["best_" + monitor] == records(run)[epoch - 1][monitor]
    best = ck.read_pointer(str(run / "checkpoints"), ck.BEST)
    steps_per_epoch = summary["global_steps"] // summary["epochs_run"]
    assert best == f"step-{epoch * steps_per_epoch:08d}"
    final, kept = weights(run / "checkpoints" / best / "model.npz"), weights(run / "model.npz")
    assert final.keys() == kept.keys()
    for k in final:
        np.testing.assert_array_equal(final[k], kept[k], err_msg=k)


def test_a_final_report_better_than_the_best_is_the_runs_best_everywhere(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *RUN]) == 0
    val = [r.get("val_loss") for r in records(run)]
    assert val[0] is None and val[2] < val[1]  # (epoch 3: the report, better than epoch 2's judged best)
    assert "kept the final weights" in capsys.readouterr().err
    # (was: best epoch 2 in summary.json and checkpoints/best at epoch 2's step, with epoch 3's weights kept)
    assert_agree(run, 3)

    # resumed at its end (nothing left to train): it ends as it did, its best pointer too
    assert main(["train", "--out", str(run), "--resume", "auto", *RUN]) == 0
    assert "nothing left to train" in capsys.readouterr().err
    assert_agree(run, 3)


def test_a_final_report_worse_than_the_best_changes_nothing(tmp_path, capsys):
    # a high constant rate: epoch 3's val_accuracy is below epoch 2's, whose weights are restored and named
    run = tmp_path / "run"
    monitor = ["--set", "early_stopping.monitor=val_accuracy", "--set", "checkpoint.monitor=val_accuracy"]
    # (the rate that makes it so depends on the dropout masks: 0.7 does on the masks before and after the
    # per-sample streams of batch_random.py, 0.5 only before)
    assert main(["train", "--out", str(run), *RUN, *monitor, "--set", "optimizer.lr=0.7",
                 "--set", "schedule.name=constant"]) == 0
    acc = [r.get("val_accuracy") for r in records(run)]
    assert acc[2] < acc[1], acc  # (the seeded run makes it so)
    assert "restored the weights of epoch 2" in capsys.readouterr().err
    assert_agree(run, 2, "val_accuracy")
    assert os.path.exists(run / "checkpoints" / "step-00000060")  # (the final state's save_last checkpoint)
