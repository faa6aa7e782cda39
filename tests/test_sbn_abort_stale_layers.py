"""A failed ``no_sync()`` micro-batch ends only the SyncBatchNorm rounds its step makes.

When rank 1's loss raises under ``no_sync()``, DataParallel ABORTs the micro-batch's SyncBatchNorm rounds on every
communicator the others make rounds on (:mod:`distnn.distributed.sync_batchnorm_closing`). Those are the model's
training layers' communicators and, for layers outside the model (a head), the split of the wrapper's
communicator, but only when the step makes rounds there: an earlier model left alive in a reference cycle (gc not
run yet) on the same communicator makes none, so ending its rounds waited for an answer no rank sends (the ABORT
met a later exchange instead, and the ranks fell out of step: a hang, or a job ended by the collective timeout).

Faults (each in ``mpiexec -n 2`` and ``-n 3`` child jobs with a deadline; every one leaves a stale SyncBatchNorm
model alive, gc disabled):

* stale-plain: the model has no SyncBatchNorm: rank 1 raises its own error alone, and the step goes on as a run
  in which rank 1 skipped that micro-batch (skip-plain);
* stale-own-comm: the model's SyncBatchNorm is on another communicator: every rank raises the agreed error and the
  step goes on as a run in which every rank skipped the micro-batch (skip-own-comm);
* head-after / head-before: a SyncBatchNorm head outside the model, on the wrapper's communicator, used every
  step; rank 1's loss raises in step 1 after / before the head's forward: the head's rounds are ended, every rank
  raises the agreed error, and the step is a run without that micro-batch (skip-head). (Guards behaviour the old
  code had for a head: it passes there.)

Oracles: parameters equal, rtol 1e-12, a run without the failed micro-batch, and bitwise equal across ranks; the
errors asserted by message.
"""
import contextlib
import gc

import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn.backend import to_numpy
from distnn.distributed import DataParallel, SyncBatchNorm
from distnn.optim import SGD
from mpi_child import faults_on_rank_1

pytestmark = pytest.mark.timeout(300)

# fault: (the stale model left alive, the model ("plain", "own-comm", "head"), (step, micro-batch) that fails or
# is skipped, where the loss raises ("after" / "before" the head), ranks that skip it: "faulty" / "all" / None)
FAULTS = {
    "stale-plain": (True, "plain", (0, 0), "after", None),
    "skip-plain": (False, "plain", (0, 0), None, "faulty"),
    "full-plain": (False, "plain", None, None, None),
    "stale-own-comm": (True, "own-comm", (0, 0), "after", None),
    "skip-own-comm": (False, "own-comm", (0, 0), None, "all"),
    "head-after": (True, "head", (1, 0), "after", None),
    "head-before": (True, "head", (1, 0), "before", None),
    "skip-head": (False, "head", (1, 0), None, "all"),
}
REFERENCE = {"stale-plain": "skip-plain", "stale-own-comm": "skip-own-comm", "head-after": "skip-head",
             "head-before": "skip-head"}
AGREED = ("DataParallel: the code between a forward and its backward (the loss?) raised on rank 1 under no_sync(): "
          "ValueError: the loss raised")


class _Stale(nn.Module):
    def __init__(self, comm):
        super().__init__()
        self.fc, self.bn = nn.Linear(4, 6, dtype=np.float64), SyncBatchNorm(6, dtype=np.float64, comm=comm)

    def forward(self, x):
        return self.bn(self.fc(x))


class _Net(nn.Module):
    def __init__(self, bn_comm=None):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8, dtype=np.float64), nn.Linear(8, 6, dtype=np.float64)
        self.bn = SyncBatchNorm(8, dtype=np.float64, comm=bn_comm) if bn_comm is not None else None

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(F.tanh(self.bn(h) if self.bn is not None else h))


def _batch(comm, step, micro):
    rng = np.random.default_rng(1000 * step + 10 * micro + comm.rank)
    n = 2 + micro + 3 * comm.rank
    return distnn.Tensor(rng.standard_normal((n, 4))), rng.integers(0, 6, n)


def _leave_stale_model(comm):
    """An earlier SyncBatchNorm model on ``comm``, trained a step, then dropped but kept alive by a reference cycle."""
    model = _Stale(comm)
    dp = DataParallel(model, comm)
    x, y = _batch(comm, 9, 0)
    F.cross_entropy(dp(x), y).backward()
    cycle = [model, dp]
    cycle.append(cycle)


def train(comm, fault, faulty_ranks=(), steps=2, micros=2):
    """Steps of ``micros`` micro-batches (all but the last under no_sync()). Returns (errors, state)."""
    stale, kind, at, where, skipping = FAULTS[fault]
    gc.collect()
    gc.disable()  # (the stale model stays alive, as when gc has not run yet)
    try:
        if stale:
            _leave_stale_model(comm)
        distnn.manual_seed(0)
        model = _Net(comm.split(0) if kind == "own-comm" else None)
        head = SyncBatchNorm(6, affine=False, dtype=np.float64, comm=comm) if kind == "head" else None
        dp = DataParallel(model, comm, bucket_mb=1e-6)
        opt = SGD(model.parameters(), lr=0.5, momentum=0.9)
        skip_ranks = {"faulty": faulty_ranks, "all": range(comm.size)}.get(skipping, ())
        errors = []
        for step in range(steps):
            opt.zero_grad()
            for micro in range(micros):
                x, y = _batch(comm, step, micro)
                if (step, micro) == at and comm.rank in skip_ranks:
                    continue
                fails = where is not None and (step, micro) == at and comm.rank in faulty_ranks
                try:
                    with dp.no_sync() if micro < micros - 1 else contextlib.nullcontext():
                        out = dp(x)
                        if fails and where == "before":
                            raise ValueError("the loss raised")
                        out = head(out) if head is not None else out
                        if fails and where == "after":
                            raise ValueError("the loss raised")
                        F.cross_entropy(out, y).backward()
                except Exception as e:
                    errors.append((type(e).__name__, str(e)))
                    opt.zero_grad()  # (a backward the abort cut short left partial gradients: the documented reset)
            opt.step()
        return errors, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}
    finally:
        gc.enable()


def train_for_child(comm, fault=None, faulty_ranks=()):
    """The child job's protocol: (errors, grads_none, state)."""
    errors, state = train(comm, fault, faulty_ranks)
    return errors, None, state


def _params(state):
    return {k: v for k, v in state.items() if k.endswith(("weight", "bias"))}


def assert_outcome(seen, fault):
    reference = _params(seen[0][REFERENCE[fault]][2])
    for rank, by_fault in enumerate(seen):
        errors = [tuple(e) for e in by_fault[fault][0] or ()]
        if fault == "stale-plain":  # (no round to end: rank 1 raises its own error alone)
            assert errors == ([("ValueError", "the loss raised")] if rank == 1 else []), (rank, errors)
        else:
            assert len(errors) == 1 and errors[0][0] == "ValueError" and errors[0][1].startswith(AGREED), \
                (rank, errors)
        for k, v in _params(by_fault[fault][2]).items():
            np.testing.assert_array_equal(v, _params(seen[0][fault][2])[k], err_msg=f"{fault}, rank {rank}: {k}")
            np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15, err_msg=f"{fault}, rank {rank}: {k}")


@pytest.mark.parametrize("ranks", [2, 3])
def test_a_failed_micro_batch_ends_only_the_rounds_of_its_step(tmp_path, ranks):
    seen = faults_on_rank_1("test_sbn_abort_stale_layers", "train_for_child", "FAULTS", tmp_path, n=ranks)
    for fault in REFERENCE:
        assert_outcome(seen, fault)
    # the oracle can tell: a run with rank 1's micro-batch differs from the reference without it
    plain, skipped = _params(seen[0]["full-plain"][2]), _params(seen[0]["skip-plain"][2])
    assert not np.allclose(plain["fc1.weight"], skipped["fc1.weight"], rtol=1e-6)


def test_forward_ran_ahead_is_exported_next_to_the_other_data_parallel_errors():
    import distnn.distributed as dist
    from distnn.distributed import ForwardRanAhead
    from distnn.distributed.sync_batchnorm_rounds import ForwardRanAhead as defined

    assert ForwardRanAhead is defined and issubclass(ForwardRanAhead, RuntimeError)
    assert "ForwardRanAhead" in dist.__all__
