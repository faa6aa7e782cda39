"""A damaged newest checkpoint resumed on several ranks: simulated and MPI ranks all fall back to the same
checkpoint."""
from __future__ import annotations

import os

import pytest

from distnn.train import checkpoint as ck


pytestmark = pytest.mark.usefixtures("clean_preemption_flags")


@pytest.fixture(scope="module")
def digits():  # (test_checkpoint's make_trainer takes these)
    from distnn.data import build_transforms, load_dataset

    splits = load_dataset("digits")
    return splits, build_transforms(splits, {"noise": 0.1}), build_transforms(splits)


def _resume_past_damage(comm, digits, root, damage_newest):
    """The uninterrupted run, and the run cut at step 16, its newest checkpoint damaged (on rank 0,
    between two barriers) and resumed with --resume auto: ``(full, resumed, resumed_from)``."""
    from checkpoint_runs import final_state, make_trainer

    from distnn.train.callbacks.checkpoint_setup import attach

    kw = dict(subset=360, batch_size=60)  # 6 steps an epoch, 3 epochs; checkpoints at 4, 6, 8, 12, 16
    full = make_trainer(comm, digits, epochs=3, **kw)
    full.fit()
    opts = {"dir": root, "every_steps": 4, "keep_last": 0}
    first = make_trainer(comm, digits, epochs=3, **kw)
    first.max_steps = 16
    attach(first, root, opts, signals=())
    first.fit()
    comm.barrier()
    if comm.rank == 0:
        damage_newest(os.path.join(root, ck.step_name(16)))
    comm.barrier()
    resumed = make_trainer(comm, digits, epochs=3, **kw)
    cb = attach(resumed, root, opts, resume_spec="auto", signals=())
    resumed.fit()
    return final_state(full), final_state(resumed), cb.resumed_from


def _edit_world_size(path):  # a manifest field outside `files`, one bit flipped (format 3's own checksum)
    import re

    mpath = os.path.join(path, ck.MANIFEST)
    text = open(mpath, "rb").read()
    edited = re.sub(rb'"world_size": (\d+)', lambda m: b'"world_size": %d' % (int(m.group(1)) ^ 1), text)
    assert edited != text
    open(mpath, "wb").write(edited)


def _check_one_fallback(results, root):
    from checkpoint_runs import assert_bitwise

    assert {r[2] for r in results} == {(os.path.join(root, ck.step_name(12)), 12)}, [r[2] for r in results]
    for full, resumed, _ in results:
        assert_bitwise(full, resumed)


def test_simulated_ranks_fall_back_to_the_same_checkpoint(digits, tmp_path):
    from distnn.distributed import simulate

    root = str(tmp_path / "ck")
    results = simulate(2, lambda comm: _resume_past_damage(comm, digits, root, _edit_world_size))
    _check_one_fallback(results, root)


@pytest.mark.mpi(min_size=2)
def test_mpi_ranks_fall_back_to_the_same_checkpoint(digits, mpi_tmp_path):
    import distnn.distributed as dist

    comm = dist.init()
    root = str(mpi_tmp_path / "ck")
    result = _resume_past_damage(comm, digits, root, _edit_world_size)
    _check_one_fallback(comm.allgather_object(result), root)
