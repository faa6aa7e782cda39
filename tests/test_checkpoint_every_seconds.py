"""``checkpoint.every_seconds``: a save once that much time has passed since the last one, by rank 0's clock,
at the same step on every rank (rank 0's "due" rides in the next step's gradient exchange: no collective of
its own).

The callbacks' clocks are driven by the global step (rank 0: one "second" a step; the other ranks' clocks
never move, so a save they took by their own clock would show), which makes the saves deterministic.
make_trainer's digits MLP on 360 samples in global batches of 60 takes 6 steps an epoch, on 1, 2 or 3 ranks.
"""
import numpy as np
import pytest

from distnn.distributed import LocalCommunicator, simulate
from distnn.train import checkpoint as ck
from distnn.train.callbacks.checkpoint import ModelCheckpoint
from distnn.train.callbacks.checkpoint_setup import attach
from checkpoint_runs import assert_bitwise, digits, final_state, make_trainer  # noqa: F401 (digits: a fixture)

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


def _trainer(comm, digits, **kw):
    return make_trainer(comm, digits, epochs=3, subset=360, batch_size=60, **kw)


def _opts(root, **kw):
    return {"dir": str(root), "every_epochs": 0, "every_seconds": 4, "keep_last": 0, "keep_best": False, **kw}


def _saved(root):
    return [(c.step, ck.read_manifest(c.path)["reason"]) for c in ck.list_checkpoints(str(root))]


def _step_clock(trainer):
    """Rank 0's clock: one "second" a step; the other ranks' clocks never move."""
    return (lambda: float(trainer.state.global_step)) if trainer.rank == 0 else (lambda: 0.0)


def _timed(trainer, root, **kw):
    cb = attach(trainer, str(root), _opts(root, **kw))
    cb.clock = _step_clock(trainer)
    return cb


def test_one_process_saves_when_due_and_at_an_epochs_end_after_its_validation(digits, tmp_path):
    t = _trainer(LocalCommunicator(), digits)
    cb = _timed(t, tmp_path)
    t.fit()
    # due at steps 4, 8, 12, 16: at once mid-epoch; at an epoch's last step (12), as that epoch's end's save
    # (after its validation); the end at 18 is saved as ever (save_last)
    assert _saved(tmp_path) == [(4, "time"), (8, "time"), (12, "epoch"), (16, "time"), (18, "last")]
    assert cb.saves == 5
    assert ck.read_manifest(str(tmp_path / "step-00000012"))["epoch_end"]
    assert not ck.read_manifest(str(tmp_path / "step-00000008"))["epoch_end"]
    # a mid-epoch time checkpoint resumes exactly (the oracle: the uninterrupted run)
    t2 = _trainer(LocalCommunicator(), digits)
    attach(t2, str(tmp_path / "again"), _opts(tmp_path / "again", every_seconds=0),
           resume_spec=str(tmp_path / "step-00000008"))
    t2.fit()
    assert_bitwise(final_state(t), final_state(t2))


@pytest.mark.parametrize("async_save", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("world", [2, 3])
def test_every_rank_saves_at_the_step_after_rank_0s_clock_said_so(digits, tmp_path, world, async_save):
    def run(comm):
        t = _trainer(comm, digits)
        cb = _timed(t, tmp_path, async_save=async_save)
        t.fit()
        return cb.saves, final_state(t)

    res = simulate(world, run)
    assert [saves for saves, _ in res] == [4] * world
    # rank 0's clock says "due" at steps 4, 9 and 14 (4 since the last save); the next step saves; the end is
    # saved as ever (save_last)
    assert _saved(tmp_path) == [(5, "time"), (10, "time"), (15, "time"), (18, "last")]
    # the step-15 checkpoint resumes to the same end on one process (the batch is global)
    t = _trainer(LocalCommunicator(), digits)
    attach(t, str(tmp_path / "one"), _opts(tmp_path / "one", every_seconds=0),
           resume_spec=str(tmp_path / "step-00000015"))
    t.fit()
    assert t.state.global_step == 18


def test_without_a_per_step_exchange_the_ranks_agree_at_epoch_ends(digits, tmp_path):
    # data_parallel=False and no step guard: no per-step exchange to carry rank 0's "due"; it is agreed at
    # the epoch's end (rank 0's clock, taken by every rank)
    def run(comm):
        t = _trainer(comm, digits, data_parallel=False)
        cb = attach(t, str(tmp_path), _opts(tmp_path), nonfinite="off", signals=())
        cb.clock = _step_clock(t)
        assert getattr(t, "step_guard", None) is None
        t.fit()
        return cb.saves

    assert simulate(2, run) == [3, 3]
    assert _saved(tmp_path) == [(6, "epoch"), (12, "epoch"), (18, "epoch")]


def test_a_save_for_another_reason_restarts_the_clock(digits, tmp_path):
    t = _trainer(LocalCommunicator(), digits)
    _timed(t, tmp_path, every_steps=5, every_seconds=7)
    t.fit()
    # a save every 5 steps by count: 7 "seconds" never pass since the last save (measured from the start only,
    # the clock would have asked for saves at 7 and 14)
    assert _saved(tmp_path) == [(5, "step"), (10, "step"), (15, "step"), (18, "last")]


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), True, "60"])
def test_bad_every_seconds_is_refused(tmp_path, bad):
    with pytest.raises(ValueError, match="every_seconds"):
        ModelCheckpoint(str(tmp_path), every_n_seconds=bad)


@pytest.mark.parametrize("good", [0, 60, 0.5, np.float32(60), np.int64(60)])
def test_every_seconds_takes_numbers_numpy_ones_too(tmp_path, good):
    assert ModelCheckpoint(str(tmp_path), every_n_seconds=good).every_n_seconds == float(good)


def test_cli_refuses_a_negative_every_seconds(tmp_path, capsys):
    from distnn._launcher_env import launcher_rank
    from distnn.cli import main

    assert main(["train", "--config", "digits_mlp", "--quiet", "--set", "checkpoint.every_seconds=-5",
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    # One report for the job: under an MPI launcher (this file run by mpiexec -n 2 python -m pytest --with-mpi)
    # every process is a rank of the job, and a config error is printed by the launcher's rank 0 alone.
    if launcher_rank() == 0:
        assert "checkpoint.every_seconds" in err
    else:
        assert err == ""
    assert not (tmp_path / "r").exists()


@pytest.mark.mpi(min_size=2)
def test_mpi_every_rank_saves_at_the_same_step_by_rank_0s_clock(digits, mpi_tmp_path):
    import distnn.distributed as dist

    comm = dist.init()
    root = mpi_tmp_path / "ck"
    t = _trainer(comm, digits)
    cb = _timed(t, root)
    t.fit()
    assert cb.saves == 4
    if comm.rank == 0:
        assert _saved(root) == [(5, "time"), (10, "time"), (15, "time"), (18, "last")]
