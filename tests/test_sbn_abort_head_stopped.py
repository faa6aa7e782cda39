"""A ``no_sync()`` micro-batch that fails on rank 1 right after the loop stopped running a SyncBatchNorm head (a
SyncBatchNorm outside the wrapped model, on the wrapper's communicator), in a model with no SyncBatchNorm of its own.

The head ran in step 0 only. Rank 1's loss raises in step 1's FIRST micro-batch: rank 1 cannot tell that the head
will not run, so it ends the head's rounds (the others might wait there). They do not: they run the step's
micro-batches and meet rank 1's ABORT in their step's exchange, which rank 1 then joins (its buckets already in
flight there, no other way out), and every rank raises rank 1's error there. Rank 1 used to run the step's remaining
micro-batches after that and make one exchange more: a step behind the others from then on (gradients of
different steps averaged, and at the end a rank waiting for a partner that has finished).

Now its step is over on rank 1 too (the loop going on with the step's remaining micro-batches, "micro"; a loop
that skips the rest of the step, "step", is told apart by counting micro-batches and trains its next step as
usual): its remaining micro-batches accumulate nothing that counts, and its next synchronizing backward (the
step's last micro-batch) makes no exchange and raises the same error the others raised there, the step's gradients
dropped. (Rank 1's loss raising again there, "twice": it raises its own error, the step ends all the same.) So
every rank ends step 1 at its last micro-batch with the same error, and every rank skips its update (as the loop
does for a step whose synchronizing backward raised).

Oracles: the error each rank raises (rank 1's cause named, the same text everywhere), parameters bitwise equal
across ranks and equal (rtol 1e-12) to a run where every rank skips step 1 entirely. Simulated ranks (2, 3) and
``mpiexec -n 2`` / ``-n 3`` (pytest-mpi, ``-m mpi``) on a communicator whose collective timeout is 20 s: a rank left
waiting, or one a step behind, ends the job there (or fails the test), where a correct end takes well under a second.
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
from test_sbn_abort_stale_layers import _batch, _Net
from short_timeout_comm import short_timeout_fixture

pytestmark = pytest.mark.timeout(300)

STEPS, MICROS = 3, 3
HEAD_STEPS = (0,)   # the loop runs the head in step 0 only
FAILS_AT = (1, 0)   # rank 1's loss raises in step 1's first micro-batch, right after the head stopped
AGREED = ("DataParallel: loss raised on rank 1: ValueError: the loss raised")
TIMEOUT_S = 20.0


def train(comm, fault=True, skip_step=None, loop="micro"):
    """STEPS steps of MICROS micro-batches (all but the last under no_sync()); rank 1's loss raises at FAILS_AT
    (``fault``), or every rank leaves out step ``skip_step``. A step whose last micro-batch raised is not applied;
    ``loop``: after a micro-batch's error the loop goes on with the step's next micro-batch ("micro"; "twice": and
    rank 1's loss raises in the step's last micro-batch too) or skips the rest of the step ("step").
    Returns (errors as (step, micro, type, message), parameters)."""
    gc.collect()
    distnn.manual_seed(0)
    model = _Net(None)
    head = SyncBatchNorm(6, affine=False, dtype=np.float64, comm=comm)
    dp = DataParallel(model, comm, bucket_mb=1e-6)
    opt = SGD(model.parameters(), lr=0.5, momentum=0.9)
    errors = []
    for step in range(STEPS):
        if step == skip_step:
            continue
        opt.zero_grad()
        dropped = False
        for micro in range(MICROS):
            x, y = _batch(comm, step, micro)
            try:
                with dp.no_sync() if micro < MICROS - 1 else contextlib.nullcontext():
                    out = dp(x)
                    if fault and comm.rank == 1 and ((step, micro) == FAILS_AT
                                                     or loop == "twice" and (step, micro) == (1, MICROS - 1)):
                        raise ValueError("the loss raised")
                    out = head(out) if step in HEAD_STEPS else out
                    F.cross_entropy(out, y).backward()
            except Exception as e:
                errors.append((step, micro, type(e).__name__, str(e)))
                dropped = dropped or micro == MICROS - 1 or loop == "step"
                if loop == "step":
                    break
            out = None
        if not dropped:
            opt.step()
    return errors, {k: to_numpy(v).copy() for k, v in model.named_parameters()}


def assert_outcome(results, reference, loop="micro"):
    size = len(results)
    for rank, (errors, params) in enumerate(results):
        where = [tuple(e[:3]) for e in errors]
        # every rank ends step 1 at its last micro-batch with rank 1's error; rank 1 raised it at its failure too
        # (and, skipping the rest of the step there, ends it there)
        expected = [(1, 0, "ValueError")] if rank == 1 else []
        expected += [(1, MICROS - 1, "ValueError")] if rank != 1 or loop != "step" else []
        assert where == expected, (rank, size, errors)
        if loop == "twice" and rank == 1:  # (its step's end raised its own error: the step had ended everywhere)
            assert errors[0][3].startswith(AGREED) and errors[1][3] == "the loss raised", (rank, errors)
        else:
            assert all(e[3].startswith(AGREED) for e in errors), (rank, errors)
            assert errors[-1][3] == results[0][0][-1][3], (rank, "the same error on every rank")
        for k, v in params.items():
            np.testing.assert_array_equal(v, results[0][1][k], err_msg=f"rank {rank} of {size}: {k} (replicas)")
            np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15,
                                       err_msg=f"rank {rank} of {size}: {k} (step 1 skipped)")


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("loop", ["micro", "twice", "step"])
def test_simulated_ranks_end_the_step_alike(loop, size):
    assert_outcome(simulate(size, train, loop=loop), simulate(size, train, fault=False, skip_step=1)[0][1], loop)


def test_the_reference_differs_from_the_full_run():
    """The oracle can tell: skipping step 1 changes the parameters."""
    full = simulate(2, train, fault=False)[0][1]["fc1.weight"]
    skipped = simulate(2, train, fault=False, skip_step=1)[0][1]["fc1.weight"]
    assert not np.allclose(full, skipped, rtol=1e-6)


short_timeout_comm = short_timeout_fixture(TIMEOUT_S)  # (a rank left waiting fails the test)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("loop", ["micro", "twice", "step"])
def test_mpi_ranks_end_the_step_alike(short_timeout_comm, loop):
    comm = short_timeout_comm
    results = comm.allgather_object(train(comm, loop=loop))
    reference = comm.allgather_object(train(comm, fault=False, skip_step=1))
    assert_outcome(results, reference[0][1], loop)
