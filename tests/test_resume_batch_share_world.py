"""Resuming on another number of ranks a model whose dropout draws from a ``BatchShareGenerator`` of its own.

Its masks are counter-based: a sample's mask is keyed by the mask counter and the sample's place in the global
batch, whichever rank draws it, so a run resumed on 1 rank from 2 (or on 2 from 1) continues the uninterrupted
run's masks and matches it to summation tolerance (float64) with no warning. The warning that layers draw per
rank stays where that is not so: a generator that drew by rows (a short last batch: a stream of one rank's
rows) or a numpy generator of each rank's own. The uninterrupted runs here have 320 samples, 8 full batches of
40 an epoch, and are checkpointed at step 10. Under mpiexec: test_checkpoint_mpi_share_dropout.py."""
import logging

import numpy as np
import pytest

import distnn
from distnn.data.batch_random import BatchShareGenerator
from distnn.distributed import LocalCommunicator, simulate
from distnn.train import checkpoint as ck
from distnn.train.callbacks.checkpoint_setup import attach

from checkpoint_runs import digits, final_state, make_trainer  # noqa: F401 (digits: a fixture)

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")
BATCH, RESUMED_AT = 40, 10
PER_RANK = "draw per rank"


def _trainer(comm, digits, subset=320, numpy_layer=False):
    t = make_trainer(comm, digits, subset=subset, batch_size=BATCH, dtype=np.float64, epochs=2)
    drop = next(m for m in t.model.modules() if isinstance(m, distnn.nn.Dropout))
    # this rank's places in the global batch (the trainer deals them round-robin)
    drop.generator = BatchShareGenerator([11, 3], BATCH, np.arange(comm.rank, BATCH, comm.size))
    if numpy_layer:
        t.model.add_module("extra_dropout", distnn.nn.Dropout(0.2, generator=np.random.default_rng([5, comm.rank])))
    return t, drop.generator


def _full(comm, digits, root, **kw):
    t, gen = _trainer(comm, digits, **kw)
    attach(t, root, {"dir": root, "every_steps": 5, "keep_last": 0}, signals=())
    t.fit()
    return final_state(t), gen.draw_state()[0]


def _resumed(comm, digits, root, spec, afresh=False, **kw):
    t, gen = _trainer(comm, digits, **kw)
    attach(t, root, {"dir": root, "every_steps": 0, "keep_last": 0}, resume_spec=spec, signals=())
    if afresh:  # the masks started over, as if the counter had not been carried on
        gen.set_draw_state((0, None, None))
    t.fit()
    return final_state(t), gen.draw_state()[0]


def _on(world, fn):
    return fn(LocalCommunicator()) if world == 1 else simulate(world, fn)[0]


def _run(tmp_path, digits, saved, resumed, caplog, afresh=False, **kw):
    full, full_masks = _on(saved, lambda c: _full(c, digits, str(tmp_path / "a"), **kw))
    spec = str(tmp_path / "a" / ck.step_name(RESUMED_AT))
    with caplog.at_level(logging.WARNING, logger="distnn"):
        res, res_masks = _on(resumed, lambda c: _resumed(c, digits, str(tmp_path / "b"), spec, afresh, **kw))
    warnings = [r.getMessage() for r in caplog.records if PER_RANK in r.getMessage()]
    return full, full_masks, res, res_masks, warnings


def _close(a, b):
    return a["step"] == b["step"] and all(np.allclose(a["model"][k], b["model"][k], rtol=1e-10, atol=1e-12)
                                          for k in a["model"])


@pytest.mark.parametrize("saved,resumed", [(2, 1), (1, 2)])
def test_counter_based_masks_continue_on_another_number_of_ranks(digits, tmp_path, caplog, saved, resumed):
    full, full_masks, res, res_masks, warnings = _run(tmp_path, digits, saved, resumed, caplog)
    assert res_masks == full_masks == 16  # (one mask a step, 16 steps: the counter went on from step 10's)
    for k in full["model"]:
        np.testing.assert_allclose(res["model"][k], full["model"][k], rtol=1e-10, atol=1e-12, err_msg=k)
    for a, b in zip(full["history"], res["history"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-10)
    assert warnings == []


def test_masks_started_afresh_would_differ(digits, tmp_path, caplog):
    # the test above has teeth: the masks matter, and a counter not carried on is seen
    full, _, res, res_masks, _ = _run(tmp_path, digits, 2, 1, caplog, afresh=True)
    assert res_masks == 16 - RESUMED_AT and not _close(full, res)


def test_a_generator_that_drew_by_rows_is_still_warned_about(digits, tmp_path, caplog):
    # 300 samples: the last batch of the first epoch (step 8) has 20, not 40: its masks came from the by-rows
    # stream, one rank's own (the uninterrupted runs on 1 and 2 ranks differ there too)
    *_, warnings = _run(tmp_path, digits, 2, 1, caplog, subset=300)
    [warning] = warnings
    assert "(2)" in warning and "not continued" in warning


def test_a_numpy_layer_generator_is_still_warned_about_alone(digits, tmp_path, caplog):
    *_, warnings = _run(tmp_path, digits, 1, 2, caplog, numpy_layer=True)
    [warning] = warnings
    assert "(extra_dropout)" in warning and "continue rank 0's streams" in warning
