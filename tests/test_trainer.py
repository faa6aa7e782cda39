"""Trainer: N simulated ranks vs 1 process, accumulation, agreed early stopping and LR decisions, metrics."""
import math
import os
import pickle

import numpy as np
import pytest

import distnn
from distnn.data import Dataset, build_transforms, load_dataset
from distnn.distributed import LocalCommunicator, simulate
from distnn.models import build_model
from distnn.optim import SGD, Adam
from distnn.optim.lr_scheduler import ReduceLROnPlateau
from distnn.train.callbacks import Callback, EarlyStopping, LRSchedulerCallback
from distnn.train.evaluation import (accuracy_from_cm, classification_report, confusion_matrix,
                                     format_confusion_matrix, precision_recall_f1)
from distnn.train.trainer import Trainer, shard


@pytest.fixture(scope="module")
def digits():
    splits = load_dataset("digits")
    train_tf, eval_tf = build_transforms(splits)
    return splits, train_tf, eval_tf


def make_trainer(comm, digits, batch_size=64, epochs=2, callbacks=(), accumulation_steps=1, dropout=0.0,
                 optimizer="sgd", train_subset=None, **kw):
    splits, train_tf, eval_tf = digits
    distnn.manual_seed(0)
    model = build_model("mlp", hidden_sizes=[32], dropout=dropout, input_shape=splits.input_shape, num_classes=10)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9) if optimizer == "sgd" else Adam(model.parameters(), lr=1e-3)
    train = splits.train if train_subset is None else splits.train.subset(np.arange(train_subset))
    return Trainer(model, opt, train, splits.val, comm=comm, batch_size=batch_size, epochs=epochs,
                   callbacks=list(callbacks), transform=train_tf, eval_transform=eval_tf,
                   accumulation_steps=accumulation_steps, **kw)


def fit(comm, digits, **kw):
    t = make_trainer(comm, digits, **kw)
    history = t.fit()
    return history, t.model.state_dict(), t


def assert_same_run(a, b, atol=1e-6):
    (ha, sa), (hb, sb) = a, b
    assert len(ha) == len(hb)
    for ra, rb in zip(ha, hb):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
            assert ra[key] == pytest.approx(rb[key], abs=atol), key
    for k in sa:
        np.testing.assert_allclose(sa[k], sb[k], atol=atol, err_msg=k)


# ------------------------------------------------------------------ equivalences
@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_two_ranks_half_batch_match_one_rank(digits, dropout):
    # 1257 training samples: the shards are uneven (one padded sample) and the last batch is partial.
    # A sample's dropout mask belongs to its place in the global batch, so dropout matches too.
    one = fit(LocalCommunicator(), digits, batch_size=64, dropout=dropout)[:2]
    two = simulate(2, lambda c: fit(c, digits, batch_size=64, dropout=dropout)[:2])
    assert_same_run(one, two[0])
    # replicas stay bitwise equal
    for k in two[0][1]:
        np.testing.assert_array_equal(two[0][1][k], two[1][1][k])


@pytest.mark.parametrize("world", [2, 3])
def test_drop_last_drops_the_same_global_batches_on_any_number_of_ranks(digits, world):
    # 659 samples, global batch 60: 10 complete global batches; the last 59 samples are dropped.
    # (Dropping each rank's partial batch of a padded shard kept an 11th step, mostly padding, on 2 and 3 ranks.)
    kw = dict(batch_size=60, drop_last=True, train_subset=659)
    one = fit(LocalCommunicator(), digits, **kw)
    many = simulate(world, lambda c: fit(c, digits, **kw))
    assert one[2].steps_per_epoch == 10 and all(t.steps_per_epoch == 10 for _, _, t in many)
    assert one[2].state.global_step == 20
    assert_same_run(one[:2], many[0][:2])


@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_two_ranks_with_sync_batchnorm_match_one_rank_despite_padding(digits, accumulation_steps):
    # 1257 samples over 2 ranks: one padded row, in each epoch's last batch. The trainer keeps it out
    # of SyncBatchNorm's statistics as well as the loss, so 2 ranks still match 1 rank.
    import distnn.nn as nn
    from distnn.distributed import SyncBatchNorm

    splits, train_tf, eval_tf = digits

    def run(comm):
        distnn.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(splits.input_shape)), 32), nn.BatchNorm1d(32),
                              nn.ReLU(), nn.Linear(32, 10))
        if comm.size > 1:
            model = SyncBatchNorm.convert_sync_batchnorm(model, comm)
        t = Trainer(model, SGD(model.parameters(), lr=0.1, momentum=0.9), splits.train, splits.val, comm=comm,
                    batch_size=64, epochs=2, transform=train_tf, eval_transform=eval_tf,
                    accumulation_steps=accumulation_steps)
        return t.fit(), t.model.state_dict()

    one = run(LocalCommunicator())
    two = simulate(2, run)
    assert_same_run(one, two[0])


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_gradient_accumulation_matches_full_batch(digits, dropout):
    full = fit(LocalCommunicator(), digits, batch_size=64, dropout=dropout)[:2]
    accum = fit(LocalCommunicator(), digits, batch_size=64, accumulation_steps=2, dropout=dropout)[:2]
    assert_same_run(full, accum)
    # and with 2 ranks, each accumulating 2 micro-batches of 16
    accum2 = simulate(2, lambda c: fit(c, digits, batch_size=64, accumulation_steps=2, dropout=dropout)[:2])
    assert_same_run(full, accum2[0])
    # and 3 ranks of 3 micro-batches (63 samples a step; the shards are uneven, the micro-batches short)
    full3 = fit(LocalCommunicator(), digits, batch_size=63, dropout=dropout, epochs=1)[:2]
    accum3 = simulate(3, lambda c: fit(c, digits, batch_size=63, accumulation_steps=3, dropout=dropout,
                                       epochs=1)[:2])
    assert_same_run(full3, accum3[0])


def test_every_sample_counted_once_in_evaluation(digits):
    splits = digits[0]

    def run(comm, eval_batch_size=60):
        t = make_trainer(comm, digits, epochs=0, batch_size=60, eval_batch_size=eval_batch_size)
        return t.evaluate(splits.val, prefix="val_", confusion=True)

    for eval_batch in (60, 41, 512):  # 180 val samples: 3 whole batches; 5 with a short last one; 1 (rank 0 alone)
        one = run(LocalCommunicator(), eval_batch)
        assert one["val_count"] == len(splits.val)
        assert np.sum(one["val_confusion_matrix"]) == len(splits.val)
        for world in (2, 3, 4):
            many = simulate(world, lambda c: run(c, eval_batch))
            assert all(m == many[0] for m in many)
            # bitwise one process's figures: whole batches per rank and an exact loss sum
            assert many[0] == one, (eval_batch, world)
    small = Dataset(splits.val.x[:7], splits.val.y[:7], 10)
    res = simulate(2, lambda c: make_trainer(c, digits, epochs=0, eval_batch_size=3).evaluate(small))
    assert res[0]["count"] == 7


def test_rank_batches_union_is_the_global_batch():
    # the trainer's sharding: the k-th local batches of all ranks together are the k-th batch of 1 rank
    class C:
        def __init__(self, rank, size):
            self.rank, self.size = rank, size

    n, world, b = 23, 3, 2
    shards = [shard(n, C(r, world), shuffle=True, seed=5) for r in range(world)]
    one = shard(n, C(0, 1), shuffle=True, seed=5)
    for s in shards + [one]:
        s.set_epoch(4)
    glob = one.indices_and_mask()[0]
    parts = [s.indices_and_mask() for s in shards]
    for k in range(math.ceil(len(shards[0]) / b)):
        union = []
        for idx, valid in parts:
            union += idx[k * b:(k + 1) * b][valid[k * b:(k + 1) * b]].tolist()
        assert sorted(union) == sorted(glob[k * b * world:(k + 1) * b * world].tolist())


# ------------------------------------------------------------ agreed decisions
class InjectMetric(Callback):
    """Overwrites a metric with a rank-dependent sequence (a stand-in for ranks that disagree)."""

    def __init__(self, key, values_by_rank):
        self.key, self.values = key, values_by_rank

    def on_epoch_end(self, trainer, logs):
        seq = self.values[trainer.rank]
        logs[self.key] = seq[min(trainer.state.epoch, len(seq) - 1)]


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


# ----------------------------------------------------------------- validation
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


# -------------------------------------------------------------------- resume
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


# ------------------------------------------------------------------- metrics
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


# ------------------------------------------------------- clipping and schedules
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


def test_trainer_state_dict_resumes_bitwise_on_two_ranks():
    # Trainer.state_dict() is everything a resumed run needs, DataParallel's global-count guess
    # included: after an epoch's short last batch it weights the next step's gradients.
    import copy

    from distnn import nn

    data = Dataset(np.random.default_rng(0).standard_normal((23, 3)), np.random.default_rng(1).integers(0, 3, 23), 3)

    class Stop(Exception):
        pass

    class Snapshot(Callback):
        def __init__(self, at):
            self.at, self.state = at, None

        def on_batch_end(self, trainer, logs):
            if self.at is not None and trainer.state.global_step == self.at:
                self.state = copy.deepcopy(trainer.state_dict())
                raise Stop

    def build(comm, callbacks):
        distnn.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 3))
        model.to(np.float64)
        opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
        return Trainer(model, opt, data, None, comm=comm, batch_size=6, epochs=2, seed=3, callbacks=callbacks)

    def uninterrupted(comm):
        t = build(comm, [])
        t.fit()
        return [p.data.copy() for p in t.model.parameters()]

    def interrupted(comm, at):
        snap = Snapshot(at)
        try:
            build(comm, [snap]).fit()
        except Stop:
            pass
        return snap.state

    def resumed(comm, states):
        t = build(comm, [])
        t.load_state_dict(states[comm.rank])
        t.fit()
        return [p.data.copy() for p in t.model.parameters()]

    whole = simulate(2, uninterrupted)[0]
    states = simulate(2, interrupted, 4)  # step 4 is epoch 0's short last batch (23 = 3 x 6 + 5)
    for a, b in zip(whole, simulate(2, resumed, states)[0]):
        np.testing.assert_array_equal(a, b)


def _sequence_model_on_two_ranks_matches_one_rank(model_kwargs, batch_size):
    """Train a dropout sequence model (float64) on seq_majority on 1 rank and on 2 simulated ranks."""
    data = load_dataset("seq_majority", length=8, vocab_size=4, n_samples=240)

    def run(comm):
        distnn.manual_seed(0)
        model = build_model(num_classes=data.num_classes, input_shape=data.input_shape, vocab_size=4, dropout=0.3,
                            **model_kwargs)
        model.to(np.float64)
        t = Trainer(model, Adam(model.parameters(), lr=1e-2), data.train, data.val, comm=comm,
                    batch_size=batch_size, epochs=2, seed=4)
        return t.fit(), t.model.state_dict()

    one = run(LocalCommunicator())
    two = simulate(2, run)
    assert_same_run(one, two[0], atol=1e-9)


def test_transformer_with_dropout_on_two_ranks_matches_one_rank():
    # dropout after attention weights (N, heads, L, S), in the feed-forward block and on the residuals:
    # every mask belongs to its sample, so 2 ranks with half the batch each train the 1-rank model
    _sequence_model_on_two_ranks_matches_one_rank(
        dict(name="transformer", d_model=16, nhead=2, num_layers=1, dim_feedforward=32), batch_size=32)


def test_stacked_lstm_with_dropout_on_two_ranks_matches_one_rank():
    # a batch_first LSTM runs time-major inside: its inter-layer dropout mask is (T, N, H), samples on
    # axis 1. Those masks belong to their samples too, so 2 ranks with half the batch train the 1-rank model.
    # 168 samples, 7 batches of 24: no batch (24 on 1 rank, 12 on 2) as long as the sequences (8), which
    # would make a (T, N, H) mask look batch-major
    _sequence_model_on_two_ranks_matches_one_rank(dict(name="lstm", hidden_size=16, num_layers=2), batch_size=24)


def test_stacked_lstm_with_dropout_matches_when_a_batch_is_as_long_as_the_sequences():
    # batches of 16 on sequences of 8: each rank's 8 rows (and the 1-rank last batch of 8) give a (T, N, H)
    # mask with N == T; the LSTM says its samples are on axis 1, so no shape guess reads it batch-major
    _sequence_model_on_two_ranks_matches_one_rank(dict(name="lstm", hidden_size=16, num_layers=2), batch_size=16)


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
