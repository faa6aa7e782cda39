"""use_generator.deferred: a lent generator made only when something in the block draws.

The trainer lends its samples' generator every training step this way, so a forward pass that draws
nothing makes none; one that draws must get exactly what an eager ``use_generator(make())`` gives.
"""
from __future__ import annotations

import contextlib

import numpy as np

import distnn
from distnn import random as dn_random
from distnn.data import Dataset
from distnn.data.loader import DataLoader
from distnn.distributed import LocalCommunicator
from distnn.optim import Adam
from distnn.train.trainer import Trainer


def _counting(seed):
    made = []

    def make(*args):
        made.append(args)
        return np.random.default_rng(seed)
    return make, made


def test_a_block_that_draws_nothing_makes_no_generator():
    make, made = _counting(1)
    own = dn_random.default_generator()
    with dn_random.use_generator.deferred(make, "a", 2) as got:
        assert got is None
    assert made == [] and dn_random.default_generator() is own


def test_draws_are_those_of_the_eager_loan_and_the_generator_is_made_once():
    make, made = _counting(7)
    own = dn_random.default_generator()
    with dn_random.use_generator(np.random.default_rng(7)):
        eager = [dn_random.default_generator().random(3) for _ in range(2)]
    with dn_random.use_generator.deferred(make, 5):
        lazy = [dn_random.default_generator().random(3) for _ in range(2)]
        first = dn_random.default_generator()
        assert dn_random.default_generator() is first
    assert made == [(5,)]
    np.testing.assert_array_equal(np.stack(lazy), np.stack(eager))
    assert dn_random.default_generator() is own


def test_nested_loans_and_errors_give_back_what_was_lent():
    make, made = _counting(3)
    own = dn_random.default_generator()
    inner = np.random.default_rng(9)
    with dn_random.use_generator.deferred(make):
        with contextlib.suppress(KeyError), dn_random.use_generator(inner):
            assert dn_random.default_generator() is inner
            raise KeyError
        assert made == []  # (the inner block asked for its own generator only)
        np.testing.assert_array_equal(dn_random.default_generator().random(2), np.random.default_rng(3).random(2))
    assert made == [()] and dn_random.default_generator() is own
    with contextlib.suppress(ValueError), dn_random.use_generator.deferred(make):
        dn_random.default_generator()
        raise ValueError
    assert dn_random.default_generator() is own


def test_a_snapshot_inside_copies_the_generator_the_block_would_draw_from():
    make, made = _counting(4)
    with dn_random.use_generator.deferred(make):
        snap = dn_random.snapshot_default_generator()
        drawn = dn_random.default_generator().random(4)
    assert len(made) == 1  # (the snapshot made it; the draw used that one, not a second)
    np.testing.assert_array_equal(snap.random(4), drawn)


def test_refused_draws_are_refused_before_anything_is_made():
    make, made = _counting(4)
    with dn_random.use_generator.deferred(make), dn_random.refusing_draws("no draws here"):
        with contextlib.suppress(RuntimeError):
            dn_random.default_generator()
    assert made == []


class _CountingLoader(DataLoader):
    calls = 0

    def sample_generator(self, *args, **kwargs):
        type(self).calls += 1
        return super().sample_generator(*args, **kwargs)


def _fit(dropout):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((60, 5)).astype(np.float32), rng.integers(0, 3, 60)
    distnn.manual_seed(2)
    model = distnn.nn.Sequential(distnn.nn.Linear(5, 8), distnn.nn.Dropout(dropout), distnn.nn.Linear(8, 3))
    trainer = Trainer(model, Adam(model.parameters(), lr=1e-2), Dataset(x, y, 3), None, comm=LocalCommunicator(),
                      batch_size=20, epochs=2, seed=1)
    trainer.loader.__class__ = _CountingLoader
    _CountingLoader.calls = 0
    trainer.fit()
    return _CountingLoader.calls, trainer.steps_per_epoch * 2


def test_the_trainer_makes_its_samples_generator_only_for_passes_that_draw():
    calls, steps = _fit(0.0)
    assert calls == 0
    calls, steps = _fit(0.5)
    assert calls == steps  # (one a step: dropout draws from its batch's samples' generator)
