"""Trainer checks and settings: size checks, accumulation, state_dict resume, metrics against sklearn, gradient
clipping, warmup and linear scaling, a second fit, plotting and the metrics files."""
import math
import os
import pickle

import numpy as np
import pytest

from distnn.distributed import LocalCommunicator, simulate
from distnn.optim import SGD
from distnn.train.callbacks import Callback
from distnn.train.evaluation import (accuracy_from_cm, classification_report, confusion_matrix,
                                     format_confusion_matrix, precision_recall_f1)

from trainer_runs import assert_same_run, digits, fit, make_trainer


@pytest.mark.parametrize("world,batch,n,drop_last,match", [
    (2, 63, None, False, "divisible by the number of ranks"),
    (2, 400, 300, True, "larger than the 300 training samples: with data.drop_last = true"),
    (3, 3, 2, False, "more ranks"),
])
def test_size_checks(digits, world, batch, n, drop_last, match):
    def run(comm):
        with pytest.raises(ValueError, match=match):
            make_trainer(comm, digits, batch_size=batch, train_subset=n, drop_last=drop_last)
        return True

    assert all(simulate(world, run))


@pytest.mark.parametrize("world", [1, 2, 3])
def test_batch_larger_than_the_data_is_one_short_step(digits, world):
    # without drop_last a global batch above the sample count is one step over all of them per epoch,
    # as a PyTorch DataLoader gives one short batch: the same run as a batch of exactly the data
    whole = fit(LocalCommunicator(), digits, batch_size=300, train_subset=300, epochs=3)
    if world == 1:
        big = fit(LocalCommunicator(), digits, batch_size=600, train_subset=300, epochs=3)
    else:
        big = simulate(world, lambda c: fit(c, digits, batch_size=600, train_subset=300, epochs=3))[0]
    assert big[2].steps_per_epoch == 1 and big[2].state.global_step == 3
    assert_same_run(whole[:2], big[:2], atol=1e-6)


def test_accumulation_must_divide_local_batch(digits):
    # it named train.accumulation_steps, a config key that does not exist
    with pytest.raises(ValueError, match=r"train\.grad_accumulation \(accumulation_steps\) 4"):
        make_trainer(LocalCommunicator(), digits, batch_size=30, accumulation_steps=4)


def test_state_dict_resume_matches_uninterrupted(digits):
    full_h, full_s, _ = fit(LocalCommunicator(), digits, epochs=3, optimizer="adam", dropout=0.2, train_subset=300)
    t = make_trainer(LocalCommunicator(), digits, epochs=2, optimizer="adam", dropout=0.2, train_subset=300)
    t.fit()
    sd = pickle.loads(pickle.dumps(t.state_dict()))
    t2 = make_trainer(LocalCommunicator(), digits, epochs=3, optimizer="adam", dropout=0.2, train_subset=300)
    t2.load_state_dict(sd)
    t2.fit()
    assert len(t2.history) == 3
    assert_same_run((full_h, full_s), (t2.history, t2.model.state_dict()), atol=0)


def test_classification_metrics_match_sklearn(rng):
    sk = pytest.importorskip("sklearn.metrics")
    y = rng.integers(0, 4, 200)
    p = np.where(rng.random(200) < 0.7, y, rng.integers(0, 4, 200))
    p[p == 3] = 2  # class 3 never predicted: precision 0 by convention
    cm = confusion_matrix(y, p, 4)
    np.testing.assert_array_equal(cm, sk.confusion_matrix(y, p, labels=range(4)))
    m = precision_recall_f1(cm)
    ref = sk.precision_recall_fscore_support(y, p, labels=range(4), zero_division=0)
    for got, want in zip((m["precision"], m["recall"], m["f1"], m["support"]), ref):
        np.testing.assert_allclose(got, want)
    assert accuracy_from_cm(cm) == pytest.approx(sk.accuracy_score(y, p))
    text = classification_report(cm, ["a", "b", "c", "d"])
    assert "macro avg" in text and "weighted avg" in text and len(text.splitlines()) == 7
    assert "predicted" in format_confusion_matrix(cm)
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix([0, 5], [0, 1], 4)


def test_gradient_clipping_bounds_the_update(digits):
    # plain SGD, one step: the update is lr * g * min(1, clip / |g|), so its norm is lr * clip when clipping
    def one_step(clip):
        t = make_trainer(LocalCommunicator(), digits, epochs=1, max_steps=1, clip_grad_norm=clip)
        t.optimizer = SGD(t.model.parameters(), lr=0.1)
        before = t.model.state_dict()
        t.fit()
        after = t.model.state_dict()
        return math.sqrt(sum(float(((after[k] - before[k]).astype(np.float64) ** 2).sum()) for k in before))

    free = one_step(None)
    assert free > 0.1 * 0.05
    assert one_step(0.05) == pytest.approx(0.1 * 0.05, rel=1e-4)
    assert one_step(1e6) == pytest.approx(free, rel=1e-6)


def test_config_schedule_warmup_and_linear_scaling(digits):
    from distnn.train.config import load_config
    from distnn.train.job import build_schedule

    cfg = load_config("digits_mlp", ["optimizer.lr=0.1", "data.batch_size=128", "schedule.linear_scaling=true",
                                     "schedule.reference_batch=64", "schedule.warmup_epochs=1",
                                     "schedule.warmup_start_factor=0.5", "schedule.name=cosine", "train.epochs=3"])
    t = make_trainer(LocalCommunicator(), digits, batch_size=128, epochs=3)
    t.callbacks.callbacks = build_schedule(cfg, t.optimizer, t.steps_per_epoch)
    lrs = []

    class Record(Callback):
        def on_batch_end(self, trainer, logs):
            lrs.append(trainer.lr)

    t.callbacks.append(Record())
    first = t.lr
    t.fit()
    spe = t.steps_per_epoch
    assert first == pytest.approx(0.1 * 2 * 0.5)           # scaled by 128/64, warmup starts at half
    assert lrs[spe - 1] == pytest.approx(0.2)               # warmup over after one epoch of steps
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)         # cosine down to eta_min at the last step
    assert all(a >= b - 1e-12 for a, b in zip(lrs[spe - 1:], lrs[spe:]))  # then decreasing


def test_a_second_fit_trains_no_more_and_says_so(digits, caplog):
    from distnn.distributed import LocalCommunicator

    t = make_trainer(LocalCommunicator(), digits, epochs=1)
    t.fit()
    state = {k: v.copy() for k, v in t.model.state_dict().items()}
    with caplog.at_level("INFO"):
        history = t.fit()
    assert len(history) == 1 and "fit: nothing left to train (1 of 1 epochs run)" in caplog.text
    for k, v in t.model.state_dict().items():
        np.testing.assert_array_equal(v, state[k])


def test_plotting_leaves_the_process_matplotlib_backend_alone(tmp_path):
    # plot_curves forced the whole process onto Agg (a notebook's inline backend was replaced)
    matplotlib = pytest.importorskip("matplotlib")
    from distnn.train.callbacks.plots import plot_curves

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        path = plot_curves([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.2, "train_accuracy": 0.5}],
                           str(tmp_path / "curves.png"))
        assert path and (tmp_path / "curves.png").stat().st_size > 0
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)


def test_curves_of_a_short_run_have_whole_epoch_ticks(tmp_path, monkeypatch):
    # a 2-epoch run's x axis read 1.0, 1.2, ... 2.0
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from distnn.train.callbacks.plots import plot_curves

    drawn, savefig = [], Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (drawn.append(fig), savefig(fig, *a, **k))[1])
    rows = [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.1 / e, "train_accuracy": 0.5, "val_accuracy": 0.4}
            for e in (1, 2)]
    assert plot_curves(rows, str(tmp_path / "curves.png"))
    for ax in drawn[0].axes:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_metrics_files_after_many_epochs_and_a_resumed_history_equal_a_fresh_write(tmp_path):
    """MetricsLogger keeps the rows it formatted; what it writes must not differ from formatting them all."""
    from distnn.train.callbacks.metrics_logger import MetricsLogger, read_metrics_csv

    def row(e, **extra):
        return {"epoch": e, "train_loss": 1.0 / e, "train_accuracy": np.float64(0.5), "val_loss": None,
                "lr": 0.1, "samples_per_sec": float("nan"), "wall_time": e * 0.25, **extra}

    def files(directory):
        return [open(os.path.join(directory, n)).read() for n in ("metrics.csv", "metrics.jsonl")]

    live, fresh = tmp_path / "live", tmp_path / "fresh"
    live.mkdir()
    fresh.mkdir()
    logger = MetricsLogger(live)
    history = []
    for e in range(1, 6):
        history.append(row(e, val_accuracy=0.9 if e % 2 else None))
        logger.write(history)
    assert files(live) == (MetricsLogger(fresh).write(history) or files(fresh))
    # a resumed run: its history comes from the checkpoint (copies, fewer rows), then grows again
    history = [dict(r) for r in history[:3]] + [row(4, val_accuracy=0.25)]
    logger.write(history)
    assert files(live) == (MetricsLogger(fresh).write(history) or files(fresh))
    assert [r["epoch"] for r in read_metrics_csv(live / "metrics.csv")] == [1, 2, 3, 4]
    assert read_metrics_csv(live / "metrics.csv")[3]["val_accuracy"] == 0.25
    assert not [n for n in os.listdir(live) if n.endswith(".tmp")]


def test_metrics_logger_keeps_no_half_formatted_row_after_a_write_that_raised(tmp_path):
    from distnn.train.callbacks.metrics_logger import MetricsLogger, read_metrics_csv

    logger = MetricsLogger(tmp_path)
    row = {"epoch": 1, "train_loss": np.float32(0.5)}  # not JSON-serializable: the write raises
    with pytest.raises(TypeError):
        logger.write([row])
    row["train_loss"] = 0.5  # mended in place (the same dict)
    logger.write([row, {"epoch": 2, "train_loss": 0.25}])
    assert [r["epoch"] for r in read_metrics_csv(tmp_path / "metrics.csv")] == [1, 2]
    assert len(open(tmp_path / "metrics.jsonl").read().splitlines()) == 2


def test_a_run_directory_holding_only_its_config_is_no_previous_run(tmp_path):
    """A job aborted during start-up may leave the config.toml rank 0 wrote first: the same command must start."""
    from distnn.train.run_dir import previous_run_marks

    (tmp_path / "config.toml").write_text("[train]\n")
    assert previous_run_marks(tmp_path) == []
    (tmp_path / "metrics.csv").write_text("epoch\n")
    assert previous_run_marks(tmp_path) == ["config.toml", "metrics.csv"]
