"""A ``no_sync()`` micro-batch whose loss raises on rank 1 while a SyncBatchNorm head OUTSIDE the wrapped model (on
the wrapper's communicator) is, or was, in use: which SyncBatchNorm rounds the failing rank ends.

The other ranks may wait in a round of the head (its forward, after the point that failed on rank 1), so the
failing rank must end the head's rounds exactly when the others make them: a head it leaves out keeps them waiting
until the collective timeout (the regression of h39-sbnabort: a head not run yet in the wrapper's first
micro-batch); a head it ends that the others do not run keeps the failing rank waiting. Cases (plain model, head
``SyncBatchNorm(6)`` applied to the wrapper's output; rank 1's loss raises before the head):

* first: step 0's first micro-batch, the head built before the wrapper, an earlier SyncBatchNorm model alive in a
  reference cycle on the same communicator (its wrapper the layers' communicator's owner until this one is
  built): every rank raises rank 1's error and the step goes on as a run without that micro-batch (skip-all);
* first-late: the same, the head built after the wrapper (its communicator split at its first forward, which
  the failing rank makes in the abort); first-late-own-comm: the same with the model's own SyncBatchNorm on
  another communicator (the others wait in the head's round, not the model's);
* dropped: the head ran in step 0 only; rank 1's loss raises in step 1's second micro-batch: no rank makes a
  round there, so rank 1 raises its own error alone and the others go on (a run where rank 1 alone skipped it,
  skip-rank-1);

(Not covered, so not here: the same failure in step 1's FIRST micro-batch, right after the last micro-batch that
ran the head. Rank 1 cannot tell that the head will not run: it ends the head's rounds, the others meet that in
their step's exchange, where every rank raises rank 1's error, but rank 1 then runs the step's other micro-batches
and falls a step behind.)

Each runs on simulated ranks and under ``mpiexec -n 2`` / ``-n 3`` (pytest-mpi: ``mpiexec -n 3 python -m pytest
--with-mpi -m mpi tests/test_sbn_abort_heads.py``) on a communicator whose collective timeout is 20 s: a rank left
waiting ends the job there with the timeout's report, failing it, where a correct end takes well under a second.
Oracles: rank 1's cause named in the error every rank raises, parameters bitwise equal across ranks and equal to
rtol 1e-12 to the reference run.
"""
import contextlib
import gc

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn.backend import to_numpy
from distnn.distributed import DataParallel, SyncBatchNorm, simulate
from distnn.optim import SGD
from short_timeout_comm import short_timeout_fixture
from test_sbn_abort_stale_layers import _batch, _leave_stale_model, _Net

pytestmark = pytest.mark.timeout(300)

STEPS, MICROS = 3, 3
# case: (where the head is built ("before"/"after" the wrapper), steps that run the head, (step, micro) that
# fails on rank 1, the reference it must equal, whether the model has a SyncBatchNorm of its own on another
# communicator)
CASES = {
    "first": ("before", range(STEPS), (0, 0), "skip-all", False),
    "first-late": ("after", range(STEPS), (0, 0), "skip-all", False),
    "first-late-own-comm": ("after", range(STEPS), (0, 0), "skip-all", True),
    "dropped": ("before", (0,), (1, 1), "skip-rank-1", False),
}
AGREED = ("DataParallel: the code between a forward and its backward (the loss?) raised on rank 1 under no_sync(): "
          "ValueError: the loss raised")
OWN = ("ValueError", "the loss raised")
TIMEOUT_S = 20.0


def train(comm, case, fault=True, skip=None):
    """STEPS steps of MICROS micro-batches (all but the last under no_sync()); rank 1's loss raises before the head
    at CASES[case]'s micro-batch (``fault``), or ``skip`` leaves it out: on "all" ranks, or on "rank-1" alone.
    Returns (errors, parameters)."""
    built, head_steps, at, _, own_comm = CASES[case]
    gc.collect()
    gc.disable()  # (the earlier model stays alive, as when gc has not run yet)
    try:
        _leave_stale_model(comm)
        distnn.manual_seed(0)
        model = _Net(comm.split(0) if own_comm else None)
        make_head = lambda: SyncBatchNorm(6, affine=False, dtype=np.float64, comm=comm)  # noqa: E731
        head = make_head() if built == "before" else None
        dp = DataParallel(model, comm, bucket_mb=1e-6)
        head = head or make_head()
        opt = SGD(model.parameters(), lr=0.5, momentum=0.9)
        errors = []
        for step in range(STEPS):
            opt.zero_grad()
            dropped = False
            for micro in range(MICROS):
                if (step, micro) == at and (skip == "all" or skip == "rank-1" and comm.rank == 1):
                    continue
                x, y = _batch(comm, step, micro)
                try:
                    with dp.no_sync() if micro < MICROS - 1 else contextlib.nullcontext():
                        out = dp(x)
                        if fault and (step, micro) == at and comm.rank == 1:
                            raise ValueError("the loss raised")
                        out = head(out) if step in head_steps else out
                        F.cross_entropy(out, y).backward()
                except Exception as e:
                    errors.append((type(e).__name__, str(e)))  # (before any backward: no partial gradients)
                    dropped = dropped or micro == MICROS - 1
                out = None
            if not dropped:
                opt.step()
        return errors, {k: to_numpy(v).copy() for k, v in model.named_parameters()}
    finally:
        gc.enable()


def assert_outcome(case, results, reference):
    size = len(results)
    for rank, (errors, params) in enumerate(results):
        errors = [tuple(e) for e in errors]
        if case == "dropped":  # (no round to end: rank 1's own error, on rank 1 alone)
            assert errors == ([OWN] if rank == 1 else []), (rank, errors)
        else:
            assert len(errors) == 1 and errors[0][0] == "ValueError" and errors[0][1].startswith(AGREED), \
                (rank, errors)
        for k, v in params.items():
            np.testing.assert_array_equal(v, results[0][1][k], err_msg=f"{case}, rank {rank} of {size}: {k}")
            np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15,
                                       err_msg=f"{case}, rank {rank} of {size}: {k}")


def _reference(run, case):
    return run(case, fault=False, skip=CASES[case][3].replace("skip-", ""))[0][1]


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_simulated_ranks_end_the_rounds_the_others_wait_in(case, size):
    def run(*args, **kwargs):
        return simulate(size, train, *args, **kwargs)

    assert_outcome(case, run(case), _reference(run, case))


def test_the_references_differ():
    """The oracle can tell: each case's reference differs from its run without the failure, and from the other
    reference (rank 1 alone against every rank skipping the micro-batch)."""
    for case, (_, _, _, skip, _) in CASES.items():
        full = simulate(2, train, case, fault=False)[0][1]["fc1.weight"]
        other = "skip-all" if skip == "skip-rank-1" else "skip-rank-1"
        for ref in (skip, other):
            skipped = simulate(2, train, case, fault=False, skip=ref.replace("skip-", ""))[0][1]["fc1.weight"]
            assert not np.allclose(skipped, full, rtol=1e-6), (case, ref)
            if ref == other:
                assert not np.allclose(skipped, _reference(lambda *a, **k: simulate(2, train, *a, **k), case)
                                       ["fc1.weight"], rtol=1e-6), (case, ref)


short_timeout_comm = short_timeout_fixture(TIMEOUT_S)  # (a rank left waiting fails the test)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("case", list(CASES))
def test_mpi_ranks_end_the_rounds_the_others_wait_in(short_timeout_comm, case):
    comm = short_timeout_comm
    results = comm.allgather_object(train(comm, case))
    reference = comm.allgather_object(train(comm, case, fault=False, skip=CASES[case][3].replace("skip-", "")))
    assert_outcome(case, results, reference[0][1])
