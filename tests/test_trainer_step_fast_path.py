"""The trainer's common step (every row real, precision "32", no adversarial pass) against a hand-written loop.

The per-step path was trimmed of no-op contexts and wrapper calls (bench_trainer: the trainer's overhead over a
bare loop); these pin what it computes: the same weights bit for bit as a plain loop over the same batches
(dropout masks drawn, as the trainer draws them, from the batch's samples' generator), the same per-epoch
loss and accuracy, the default generator given back after every step, and the general path (padding,
16-mixed) still taken where it must be.
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import random as dn_random
from distnn.data import Dataset
from distnn.data.batch_random import BatchShareGenerator
from distnn.data.loader import DataLoader
from distnn.distributed import DistributedSampler, LocalCommunicator
from distnn.optim import Adam
from distnn.train.trainer import Trainer


def _data(n=100, d=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, classes, n).astype(np.int64)
    return x, y


def _model(dropout, d=6, classes=3):
    distnn.manual_seed(3)
    return distnn.nn.Sequential(distnn.nn.Linear(d, 16), distnn.nn.ReLU(), distnn.nn.Dropout(dropout),
                                distnn.nn.Linear(16, classes))


def _trainer(x, y, dropout, batch, epochs, **kw):
    model = _model(dropout)
    return Trainer(model, Adam(model.parameters(), lr=1e-2), Dataset(x, y, 3), None, comm=LocalCommunicator(),
                   batch_size=batch, epochs=epochs, seed=5, **kw)


def _hand_loop(x, y, dropout, batch, epochs):
    """What one Trainer step is, written out: the sampler's order, the samples' dropout generator (stream 1),
    mean cross-entropy, backward, Adam; plus the epoch's loss and accuracy sums."""
    model = _model(dropout)
    opt = Adam(model.parameters(), lr=1e-2)
    loader = DataLoader(Dataset(x, y, 3), batch_size=batch, sampler=DistributedSampler(len(x), num_replicas=1, rank=0,
                                                                                    shuffle=True, seed=5),
                        seed=5, rank=0, with_mask=True)
    history = []
    for epoch in range(epochs):
        model.train()
        loss_sum = correct = count = 0
        for b, (xb, yb, valid) in enumerate(loader.batches(epoch, 0)):
            assert valid.all()
            with dn_random.use_generator(loader.sample_generator(epoch, b, len(yb), stream=1)):
                out = model(distnn.Tensor(xb))
            loss = F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += float(loss.data) * len(yb)
            correct += int((out.data.argmax(-1) == yb).sum())
            count += len(yb)
        history.append((loss_sum / count, correct / count))
    return model, history


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_common_step_is_the_hand_written_loop_bit_for_bit(dropout):
    x, y = _data()
    trainer = _trainer(x, y, dropout, batch=20, epochs=3)
    history = trainer.fit()
    model, hand = _hand_loop(x, y, dropout, batch=20, epochs=3)
    for (name, p), q in zip(trainer.model.named_parameters(), model.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    for logs, (loss, acc) in zip(history, hand, strict=True):
        assert logs["train_loss"] == pytest.approx(loss, rel=1e-12, abs=0)
        assert logs["train_accuracy"] == acc


def test_each_step_lends_the_samples_generator_and_gives_the_default_back():
    x, y = _data()
    seen = []

    class Probe(distnn.nn.Module):
        def forward(self, h):
            seen.append(dn_random.default_generator())
            return h

    distnn.manual_seed(3)
    model = distnn.nn.Sequential(distnn.nn.Linear(6, 3), Probe())
    trainer = Trainer(model, Adam(model.parameters(), lr=1e-2), Dataset(x, y, 3), None, comm=LocalCommunicator(),
                      batch_size=25, epochs=1, seed=5)
    own = dn_random.default_generator()  # (the rank's own stream, which the Trainer seeds)
    trainer.fit()
    assert len(seen) == 4 and all(isinstance(g, BatchShareGenerator) for g in seen)
    assert len({id(g) for g in seen}) == 4  # (a fresh one a step: each starts its samples' stream afresh)
    assert dn_random.default_generator() is own


def test_padded_and_mixed_precision_steps_still_take_the_general_path():
    x, y = _data(n=90)
    calls = []
    trainer = _trainer(x, y, 0.0, batch=20, epochs=1)  # 90 = 4 x 20 + 10: the last batch is short, not padded
    padded = _trainer(x, y, 0.0, batch=20, epochs=1)
    for t in (trainer, padded):
        real = t._padding_excluded
        t._padding_excluded = lambda valid, all_valid, real=real: (calls.append(bool(all_valid)), real(valid,
                                                                                                      all_valid))[1]
    trainer.fit()
    assert calls == []  # every row real: no padding context at all
    # a step with padded rows (what a rank gets when the data does not split evenly) masks them out
    xb, yb = x[:4].copy(), y[:4].copy()
    loss, n = padded.train_step(xb, yb, np.array([True, True, True, False]))
    assert calls == [False] and n == 3
    mixed = _trainer(x, y, 0.0, batch=20, epochs=1, precision="16-mixed")
    entered = []
    real_autocast = mixed.amp.autocast
    mixed.amp.autocast = lambda *a, **k: (entered.append(1), real_autocast(*a, **k))[1]
    mixed.fit()
    assert len(entered) == mixed.steps_per_epoch


def test_use_generator_nests_gives_back_on_errors_and_decorates():
    own = dn_random.default_generator()
    a, b = np.random.default_rng(1), np.random.default_rng(2)
    with dn_random.use_generator(a) as got:
        assert got is a and dn_random.default_generator() is a
        with contextlib.suppress(KeyError), dn_random.use_generator(b):
            assert dn_random.default_generator() is b
            raise KeyError
        assert dn_random.default_generator() is a
    assert dn_random.default_generator() is own

    @dn_random.use_generator(a)
    def depth(k):
        assert dn_random.default_generator() is a
        return 0 if k == 0 else 1 + depth(k - 1)

    assert depth(3) == 3 and dn_random.default_generator() is own


@pytest.mark.parametrize("world", [1, 3])
def test_sample_generator_rows_are_the_ranks_global_positions(world):
    x, y = _data(n=60)
    sampler = DistributedSampler(60, num_replicas=world, rank=world - 1, shuffle=True, seed=2)
    loader = DataLoader(Dataset(x, y, 3), batch_size=8, sampler=sampler, seed=2, rank=world - 1, with_mask=True)
    for n, rows in ((8, slice(None)), (8, slice(2, 6)), (5, slice(None)), (8, slice(None))):
        g = loader.sample_generator(1, 2, n, stream=1, rows=rows)
        expect = np.arange(world - 1, n * world, world)[rows]
        np.testing.assert_array_equal(g.rows, expect)
        assert g.total == 8 * world and g.seed == [2, 1, 2 * 8 * world, 1]
        with pytest.raises(ValueError):  # (positions shared by the batches' generators are read-only)
            g.rows[0] = 7
    a = loader.sample_generator(0, 0, 8, stream=1).keep_mask((8, 5), 0.5)
    b = BatchShareGenerator([2, 0, 0, 1], 8 * world, np.arange(world - 1, 8 * world, world)).keep_mask((8, 5), 0.5)
    np.testing.assert_array_equal(a, b)
