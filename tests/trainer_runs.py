"""Shared by the tests/test_trainer_*.py files (and the trainer tests elsewhere that import them): the digits data
set fixture, a Trainer on a communicator, one fit, the comparison of two runs, and InjectMetric (a callback that
reports given values of a metric, per rank and epoch)."""
import numpy as np
import pytest

import distnn
from distnn.data import build_transforms, load_dataset
from distnn.models import build_model
from distnn.optim import SGD, Adam
from distnn.train.callbacks import Callback
from distnn.train.trainer import Trainer


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


class InjectMetric(Callback):
    """Overwrites a metric with a rank-dependent sequence (a stand-in for ranks that disagree)."""

    def __init__(self, key, values_by_rank):
        self.key, self.values = key, values_by_rank

    def on_epoch_end(self, trainer, logs):
        seq = self.values[trainer.rank]
        logs[self.key] = seq[min(trainer.state.epoch, len(seq) - 1)]
