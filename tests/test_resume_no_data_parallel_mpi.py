"""``Trainer(data_parallel=False)`` on several ranks: each rank steps on its own shard, so its replica is
its own; a run resumed from a checkpoint equals the uninterrupted run on every rank (weights, optimizer
state, history). The checkpoint used to hold rank 0's replica only: the other ranks resumed with rank 0's
weights, and the history's ``train_loss`` (their losses in it) differed.

The mpi test runs with ``mpiexec -n 2 python -m pytest --with-mpi -m mpi``; the simulated one anywhere.
"""
import pytest

from distnn.distributed import simulate
from distnn.train.callbacks.checkpoint_setup import attach
from checkpoint_runs import assert_bitwise, digits, final_state, make_trainer  # noqa: F401 (digits: a fixture)

pytestmark = pytest.mark.usefixtures("clean_preemption_flags")
KW = dict(subset=360, batch_size=60, data_parallel=False)  # 6 steps an epoch, 3 epochs


def _uninterrupted_and_resumed(comm, digits, root):
    full = make_trainer(comm, digits, epochs=3, **KW)
    full.fit()
    opts = {"dir": root, "every_steps": 4, "keep_last": 0}
    first = make_trainer(comm, digits, epochs=3, **KW)
    first.max_steps = 8  # stops mid-epoch 2: the step-8 checkpoint holds the epoch's running sums so far
    attach(first, root, opts, signals=())
    first.fit()
    resumed = make_trainer(comm, digits, epochs=3, **KW)
    attach(resumed, root, opts, resume_spec=root + "/step-00000008", signals=())
    resumed.fit()
    return final_state(full), final_state(resumed)


@pytest.mark.mpi(min_size=2)
def test_mpi_a_resumed_run_without_data_parallel_equals_the_uninterrupted_one(digits, mpi_tmp_path):
    import distnn.distributed as dist

    full, resumed = _uninterrupted_and_resumed(dist.init(), digits, str(mpi_tmp_path / "ck"))
    assert_bitwise(full, resumed)  # on every rank: its own weights, and the all-rank train_loss


def test_simulated_ranks_resume_their_own_replicas(digits, tmp_path):
    results = simulate(2, lambda comm: _uninterrupted_and_resumed(comm, digits, str(tmp_path / "ck")))
    for full, resumed in results:
        assert_bitwise(full, resumed)
    # (the check has teeth: the ranks' replicas differ)
    assert any((results[0][0]["model"][k] != results[1][0]["model"][k]).any() for k in results[0][0]["model"])
