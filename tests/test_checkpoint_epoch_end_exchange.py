"""An ``async_save`` checkpoint at an epoch's end gathers the ranks' part in the trainer's stop agreement
(``Trainer.exchange_at_epoch_end``), not in a collective of its own.

Every rank must still stop at the same epoch when one rank alone asks for a stop, from a callback before
or after the checkpoint's; the checkpoint records a stop asked for before its save point (also from a callback
listed after the checkpoint's: checkpoint callbacks run last), and not one asked for after it, by a callback
that runs last too (as when the save gathered by itself); a run resumed from an epoch-end checkpoint equals the
uninterrupted run bitwise (dropout included); the exchange is one allgather an epoch.

The mpi tests run with ``mpiexec -n 2 python -m pytest --with-mpi -m mpi``; the simulated ones anywhere.
"""
import json
import os

import pytest

from distnn.distributed import simulate
from distnn.train import checkpoint as ck
from distnn.train.callbacks.base import Callback
from distnn.train.callbacks.checkpoint_setup import attach
from checkpoint_runs import assert_bitwise, digits, final_state, make_trainer  # noqa: F401 (digits: a fixture)

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")
KW = dict(subset=480, batch_size=60)  # 8 steps an epoch (60: a global batch 1, 2, 3, 4, 5 or 6 ranks divide)
OPTS = {"every_epochs": 1, "async_save": True, "keep_last": 0}


class StopOnOneRank(Callback):
    """Asks for a stop at the end of epoch ``epoch`` (0-based) on rank ``rank`` only."""

    def __init__(self, epoch, rank):
        self.epoch, self.rank = epoch, rank

    def on_epoch_end(self, trainer, logs):
        if trainer.state.epoch == self.epoch and trainer.rank == self.rank:
            trainer.request_stop("asked by one rank")


class StopAfterTheSave(StopOnOneRank):
    """:class:`StopOnOneRank` that runs last as the checkpoint callbacks do: listed after the checkpoint's, its
    ``on_epoch_end`` comes after the save point."""

    runs_last = True


class Rider(Callback):
    """Sends its rank and epoch with every epoch end's exchange; keeps what every rank sent."""

    def __init__(self):
        self.received, self.outside = [], None

    def on_train_begin(self, trainer):
        self.outside = trainer.exchange_at_epoch_end("rider", trainer.rank, self.received.append)

    def on_epoch_end(self, trainer, logs):
        assert trainer.exchange_at_epoch_end("rider", (trainer.rank, trainer.state.epoch), self.received.append)


WHERE = ["before", "listed_after", "after_the_save"]  # the stop callback: listed before, after the checkpoint's


def _stop_run(comm, digits, root, where):
    stop = (StopAfterTheSave if where == "after_the_save" else StopOnOneRank)(1, comm.size - 1)
    t = make_trainer(comm, digits, epochs=4, callbacks=[stop] if where == "before" else (), **KW)
    cb = attach(t, root, {**OPTS, "dir": root}, signals=())
    if where != "before":
        t.callbacks.append(stop)
    t.fit()
    return t, cb


def _check_stop(t, cb, root, where):
    assert len(t.history) == 2 and t.state.stopped_early and t.state.global_step == 16
    assert cb.saves == 2 and cb.failures == 0 and cb.last_path.endswith(ck.step_name(16))
    if t.is_main:
        names = [c.name for c in ck.list_checkpoints(root)]
        assert names == [ck.step_name(8), ck.step_name(16)]
        with open(os.path.join(root, ck.step_name(16), ck.MANIFEST)) as f:
            manifest = json.load(f)
        # a stop asked for before the save point is in the checkpoint; one asked for after it, not
        before = where != "after_the_save"
        assert manifest["stop_agreed"] is before and manifest["world_size"] == t.world
        state, _ = ck.read_checkpoint(os.path.join(root, ck.step_name(16)))
        assert [r["stop_requested"] for r in state["ranks"]] == [False] * (t.world - 1) + [before]
        for c in ck.list_checkpoints(root):
            assert ck.verify_checkpoint(c.path) == [], c.path


def _uninterrupted_and_resumed(comm, digits, root):
    full = make_trainer(comm, digits, epochs=4, **KW)
    full.fit()
    first = make_trainer(comm, digits, epochs=2, **KW)
    attach(first, root, {**OPTS, "dir": root}, signals=())
    first.fit()
    resumed = make_trainer(comm, digits, epochs=4, **KW)
    attach(resumed, root, {**OPTS, "dir": root}, resume_spec=os.path.join(root, ck.step_name(16)), signals=())
    resumed.fit()
    return final_state(full), final_state(resumed)


def _count_allgathers(comm):
    calls = []
    original = comm.allgather_object

    def counted(obj):
        calls.append(1)
        return original(obj)

    comm.allgather_object = counted
    return calls


# ----------------------------------------------------------------------------------------- 2 MPI ranks
@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("where", WHERE)
def test_mpi_a_stop_one_rank_asks_for_stops_every_rank_at_that_epoch(digits, mpi_tmp_path, where):
    import distnn.distributed as dist

    root = str(mpi_tmp_path / f"ck-{where}")
    t, cb = _stop_run(dist.init(), digits, root, where)
    _check_stop(t, cb, root, where)


@pytest.mark.mpi(min_size=2)
def test_mpi_a_run_resumed_from_an_async_epoch_end_checkpoint_equals_the_uninterrupted_one(digits, mpi_tmp_path):
    import distnn.distributed as dist

    full, resumed = _uninterrupted_and_resumed(dist.init(), digits, str(mpi_tmp_path / "ck"))
    assert_bitwise(full, resumed)


@pytest.mark.mpi(min_size=2)
def test_mpi_an_async_epoch_end_save_makes_no_gather_of_its_own(digits, mpi_tmp_path):
    import distnn.distributed as dist

    comm = dist.init()
    counts = []
    for save in (False, True):
        t = make_trainer(comm, digits, epochs=3, **KW)
        if save:
            root = str(mpi_tmp_path / "ck")
            cb = attach(t, root, {**OPTS, "dir": root}, signals=())
        calls = _count_allgathers(comm)
        t.fit()
        del comm.allgather_object
        counts.append(len(calls))
    assert cb.saves == 3
    assert counts[1] == counts[0]  # the stop agreement of each epoch end carries the save's gather


@pytest.mark.mpi(min_size=2)
def test_mpi_payloads_reach_every_rank_in_rank_order_also_when_max_steps_ends(digits):
    import distnn.distributed as dist

    comm = dist.init()
    rider = Rider()
    t = make_trainer(comm, digits, epochs=4, callbacks=[rider], **KW)
    t.max_steps = 20  # ends inside the third epoch: its end has no stop to agree on, the payloads still go
    t.fit()
    assert rider.outside is False
    assert rider.received == [[(r, e) for r in range(comm.size)] for e in range(3)]


# ----------------------------------------------------------------------------------------- simulated ranks
@pytest.mark.parametrize("where", WHERE)
def test_simulated_ranks_stop_together_and_record_the_stop_as_before(digits, tmp_path, where):
    root = str(tmp_path / "ck")

    def body(comm):
        t, cb = _stop_run(comm, digits, root, where)
        _check_stop(t, cb, root, where)
        return True

    assert simulate(2, body) == [True, True]


def test_simulated_ranks_resume_from_an_async_epoch_end_checkpoint_exactly(digits, tmp_path):
    out = simulate(2, lambda comm: _uninterrupted_and_resumed(comm, digits, str(tmp_path / "ck")))
    for full, resumed in out:
        assert_bitwise(full, resumed)


def test_one_rank_delivers_payloads_without_a_collective(digits):
    rider = Rider()
    t = make_trainer(None, digits, epochs=2, callbacks=[rider], **KW)
    t.fit()
    assert rider.outside is False and rider.received == [[(0, 0)], [(0, 1)]]


def _slow_failed_write_run(comm, digits, root, on_error):
    """Rank 0's write of step 8 fails, and ends only once training has reached the end of epoch 2: its
    outcome is agreed at that epoch end's save (in the exchange)."""
    import time

    t = make_trainer(comm, digits, epochs=3, **KW)
    cb = attach(t, root, {**OPTS, "dir": root, "on_error": on_error}, signals=())
    if t.is_main:
        write = cb._write_into

        def slow_failure(job):
            if job[0] != 8:
                return write(job)
            deadline = time.monotonic() + 60  # (never waits forever)
            while t.state.global_step < 16 and time.monotonic() < deadline:
                time.sleep(0.001)
            return {"ok": False, "error": "injected failure", "background": True}

        cb._write_into = slow_failure
    try:
        t.fit()
    except ck.CheckpointError as e:
        return str(e), cb
    return None, cb


@pytest.mark.parametrize("on_error", ["continue", "stop"])
def test_simulated_ranks_agree_on_a_failed_write_at_an_epoch_end_save(digits, tmp_path, on_error):
    root = str(tmp_path / "ck")
    out = simulate(2, lambda comm: _slow_failed_write_run(comm, digits, root, on_error))
    (error0, cb0), (error1, cb1) = out
    assert error0 == error1
    assert (cb0.saves, cb0.failures, cb0.best_name) == (cb1.saves, cb1.failures, cb1.best_name)
    names = [c.name for c in ck.list_checkpoints(root)]
    assert ck.step_name(8) not in names and cb0.failures == 1
    if on_error == "stop":
        assert "injected failure (written in the background from global step 8; agreed at step 16)" in error0
        assert names == [] and cb0.saves == 0
    else:
        assert error0 is None and names == [ck.step_name(16), ck.step_name(24)] and cb0.saves == 2
        assert cb0.best_name in names
