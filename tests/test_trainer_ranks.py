"""Trainer: N simulated ranks against 1 process (half batches, drop_last, sync batchnorm, accumulation,
evaluation counting every sample once, the union of the ranks' batches, sequence models with dropout) and a
bitwise resume on two ranks."""
import math

import numpy as np
import pytest

import distnn
from distnn.data import Dataset, load_dataset
from distnn.distributed import LocalCommunicator, simulate
from distnn.models import build_model
from distnn.optim import SGD, Adam
from distnn.train.callbacks import Callback
from distnn.train.trainer import Trainer, shard

from trainer_runs import assert_same_run, digits, fit, make_trainer


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
