"""Resuming on another number of ranks a model whose batch norm takes per-rank statistics.

Plain BatchNorm on several ranks normalizes each rank's part of the batch by its own statistics, so
the run depends on the number of ranks (distributed.sync_batchnorm spans the global batch instead). A
checkpoint of such a run resumed on another number of ranks cannot match the uninterrupted run to
summation tolerance, as other world-size changes do: the resume says so, naming the layers, as it does
for layers with their own random generator. With SyncBatchNorm, or on the same number of ranks, it
says nothing.
"""
import logging

import pytest

from distnn.distributed import LocalCommunicator, simulate
from distnn.train.callbacks.checkpoint_setup import attach
from distnn.train.job import Job

BASE = ["model.hidden_sizes=[16]", "model.norm='batch'", "train.epochs=1", "data.batch_size=128",
        "run.plots=false"]

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _fit(comm, root, overrides, resume=None):
    trainer = Job("digits_mlp", BASE + overrides, comm, quiet=True).trainer
    attach(trainer, str(root), {"dir": str(root), "every_steps": 3, "every_epochs": 0, "keep_last": 0,
                                "keep_best": False, "save_last": False},
           resume_spec=None if resume is None else str(resume))
    trainer.fit()


def _on(world, fn):
    return [fn(LocalCommunicator())] if world == 1 else simulate(world, fn)


def _resume_warnings(tmp_path, saved, resumed, overrides=()):
    overrides = list(overrides)
    _on(saved, lambda c: _fit(c, tmp_path / "a", overrides))
    records = _Records()
    logger = logging.getLogger("distnn")
    logger.addHandler(records)
    try:
        _on(resumed, lambda c: _fit(c, tmp_path / "b", overrides, resume=tmp_path / "a" / "step-00000006"))
    finally:
        logger.removeHandler(records)
    return [m for m in records.messages if "batch norm" in m]


@pytest.mark.parametrize("saved,resumed", [(2, 1), (1, 2), (2, 4)])
def test_per_rank_batch_norm_resumed_on_another_number_of_ranks_is_warned_about(tmp_path, saved, resumed):
    [warning] = _resume_warnings(tmp_path, saved, resumed)
    assert "per rank" in warning and "distributed.sync_batchnorm" in warning
    assert "(1)" in warning  # the layer is named (digits_mlp with norm: Linear, BatchNorm1d, ...)


@pytest.mark.parametrize("saved,resumed,overrides", [
    (2, 1, ["distributed.sync_batchnorm=true"]),
    (1, 2, ["distributed.sync_batchnorm=true"]),
    (2, 2, []),
])
def test_no_warning_with_sync_batchnorm_or_the_same_number_of_ranks(tmp_path, saved, resumed, overrides):
    assert _resume_warnings(tmp_path, saved, resumed, overrides) == []
