"""``precision = "16-mixed"`` under mpiexec (pytest-mpi): the loss scaler's overflow skips are the same step
on every rank (the gradients are averaged during backward, before the scaler looks at them), so the
replicas and their scales stay identical; a NaN gradient on one rank alone is skipped by both.

Run with ``mpiexec -n 2 python -m pytest --with-mpi -m mpi tests/test_train_precision_mpi.py``.
"""
import numpy as np
import pytest

# (clean_preemption_flags: these tests run a job without run_training, which would put the handlers back)
pytestmark = [pytest.mark.mpi(min_size=2), pytest.mark.usefixtures("clean_preemption_flags")]


@pytest.fixture(scope="module")
def digits():
    from distnn.data import build_transforms, load_dataset

    splits = load_dataset("digits")
    return splits, build_transforms(splits, {"noise": 0.1}), build_transforms(splits)


@pytest.mark.parametrize("accumulation_steps", [1, 2])
def test_mpi_ranks_skip_the_same_overflow_steps(digits, monkeypatch, accumulation_steps):
    import distnn.distributed as dist
    from distnn.train.callbacks.base import Callback
    from distnn.train.callbacks.checkpoint_setup import attach

    from test_train_precision import _trainer

    class Steps(Callback):  # which steps the scaler skipped, and the scale after each
        def __init__(self):
            self.seen = []

        def on_batch_end(self, trainer, logs):
            self.seen.append((trainer.state.global_step, trainer.state.scaler_skipped_steps,
                              trainer.amp.scaler.get_scale()))

    comm = dist.init()
    # the last rank's local gradient gets a NaN at step 7, after the overflow streak of the large init_scale
    monkeypatch.setenv("DISTNN_FAULT_NONFINITE_AT", f"{comm.size - 1}:7")
    steps = Steps()
    t = _trainer(comm, digits, callbacks=[steps], accumulation_steps=accumulation_steps)
    attach(t, "unused", {"enabled": False}, nonfinite="error")  # the scaler's skips are not the policy's
    t.fit()
    every = comm.allgather_object((steps.seen, t.state.skipped_steps, t.model.state_dict()))
    for seen, policy_skips, state in every:
        assert seen == every[0][0] and policy_skips == 0
        for k in state:
            np.testing.assert_array_equal(state[k], every[0][2][k], err_msg=k)  # bit for bit on every rank
    counts = [0] + [n for _, n, _ in steps.seen]
    skipped = [s for (s, _, _), before, after in zip(steps.seen, counts, counts[1:]) if after > before]
    # the large init_scale's overflow at step 1 and step 7's NaN (which other steps overflow depends on the
    # number of ranks: each rank's float16 weight gradients are partial sums over its share of the batch)
    assert skipped[0] == 1 and 7 in skipped
