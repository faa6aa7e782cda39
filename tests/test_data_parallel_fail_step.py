"""An error in the training loop's own code before a step's forward on one rank (loading its batch): with
``DataParallel.fail_step(exc)`` every rank ends that step with the same error naming the cause, at once.

No DataParallel call sees such a step on the failing rank. Before ``fail_step``, a loop that caught the error and went
on paired its next step's exchange with the others' current one, and at the end a rank waited for a partner that
had finished (the collective timeout under mpiexec); a Trainer rank whose loader raised left the others with an MPI
abort (or, simulated, "rank(s) [1] returned without calling it"), never told why. The Trainer now calls
``fail_step`` for an error of its data loading.

Cases (rank 1's loading raises at step 1, before the forward):

* a user loop that catches the error, calls ``dp.fail_step(e)`` (which raises the agreed error), and goes on with the
  next step: one micro-batch per step ("plain"), gradient accumulation under ``no_sync()`` ("accumulate"), a model
  with SyncBatchNorm, whose forward round the others wait in ("syncbn"), and both: the others wait in a round of a
  ``no_sync()`` micro-batch, the first ("accumulate_syncbn") or the second ("accumulate_syncbn_later"), and join
  rank 1's exchange from there (they waited until the collective timeout before). Oracles: every rank's one error
  names rank 1 and its cause, parameters bitwise equal across ranks and equal (rtol 1e-12) to a run where every rank skips step 1;
* the Trainer on a map-style dataset whose sample raises on rank 1: every rank's ``fit`` raises the same ValueError
  naming rank 1's cause.

Simulated ranks (2, 3) and ``mpiexec -n 2`` / ``-n 3`` (pytest-mpi, ``-m mpi``) on a communicator whose collective
timeout is 20 s: a rank left waiting ends the job there, failing the test, where a correct end takes well under a
second.
"""
import contextlib

import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn.backend import to_numpy
from distnn.distributed import DataParallel, SyncBatchNorm, simulate
from distnn.optim import SGD
from short_timeout_comm import short_timeout_fixture

pytestmark = pytest.mark.timeout(300)

STEPS, FAILS_AT = 3, 1
# case: (micro-batches, SyncBatchNorm, the micro-batch whose loading raises); with both, the others wait in that
# micro-batch's SyncBatchNorm forward round under no_sync() (at its first, or after one accumulated)
CASES = {"plain": (1, False, 0), "accumulate": (3, False, 0), "syncbn": (1, True, 0),
         "accumulate_syncbn": (3, True, 0), "accumulate_syncbn_later": (3, True, 1)}
AGREED = "DataParallel: the training loop (before the step's forward) raised on rank 1: ValueError: bad batch 1"
TIMEOUT_S = 20.0


class _Net(nn.Module):
    def __init__(self, comm, syncbn):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8, dtype=np.float64), nn.Linear(8, 6, dtype=np.float64)
        self.bn = SyncBatchNorm(8, dtype=np.float64, comm=comm) if syncbn else None

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(F.tanh(self.bn(h) if self.bn is not None else h))


def _load(comm, step, micro, fault, fail_micro=0):
    if fault and step == FAILS_AT and micro == fail_micro and comm.rank == 1:
        raise ValueError(f"bad batch {step}")
    rng = np.random.default_rng(1000 * step + 10 * micro + comm.rank)
    n = 2 + micro + 3 * comm.rank
    return distnn.Tensor(rng.standard_normal((n, 4))), rng.integers(0, 6, n)


def train(comm, case, fault=True, skip_step=None):
    """STEPS steps; rank 1's loading of step FAILS_AT's first batch raises (``fault``), or every rank leaves out step
    ``skip_step``. Returns (errors as (step, type, message), parameters)."""
    micros, syncbn, fail_micro = CASES[case]
    distnn.manual_seed(0)
    model = _Net(comm, syncbn)
    dp = DataParallel(model, comm, bucket_mb=1e-6)
    opt = SGD(model.parameters(), lr=0.5, momentum=0.9)
    errors = []
    for step in range(STEPS):
        if step == skip_step:
            continue
        opt.zero_grad()
        try:
            for micro in range(micros):
                try:
                    x, y = _load(comm, step, micro, fault, fail_micro)
                except ValueError as e:
                    dp.fail_step(e)  # raises the error every rank raises
                with dp.no_sync() if micro < micros - 1 else contextlib.nullcontext():
                    F.cross_entropy(dp(x), y).backward()
        except Exception as e:
            errors.append((step, type(e).__name__, str(e)))
            continue
        opt.step()
    return errors, {k: to_numpy(v).copy() for k, v in model.named_parameters()}


def assert_outcome(results, reference):
    size = len(results)
    for rank, (errors, params) in enumerate(results):
        assert [e[:2] for e in errors] == [(FAILS_AT, "ValueError")], (rank, size, errors)
        assert errors[0][2].startswith(AGREED) and errors[0][2] == results[0][0][0][2], (rank, errors)
        for k, v in params.items():
            np.testing.assert_array_equal(v, results[0][1][k], err_msg=f"rank {rank} of {size}: {k} (replicas)")
            np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15,
                                       err_msg=f"rank {rank} of {size}: {k} (step {FAILS_AT} skipped)")


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_simulated_ranks_end_the_step_naming_the_cause(case, size):
    assert_outcome(simulate(size, train, case), simulate(size, train, case, fault=False, skip_step=FAILS_AT)[0][1])


def test_the_reference_differs_from_the_full_run():
    full = simulate(2, train, "plain", fault=False)[0][1]["fc1.weight"]
    skipped = simulate(2, train, "plain", fault=False, skip_step=FAILS_AT)[0][1]["fc1.weight"]
    assert not np.allclose(full, skipped, rtol=1e-6)


def test_one_rank_raises_the_exception_itself():
    dp = DataParallel(_Net(None, False), distnn.distributed.local_comm.LocalCommunicator())
    with pytest.raises(ValueError, match="^bad$"):
        dp.fail_step(ValueError("bad"))
    with pytest.raises(TypeError, match="takes the exception"):
        dp.fail_step("bad")


# ------------------------------------------------------------------ the Trainer
BAD_SAMPLE = 10  # rank 1's eleventh sample raises (in its third batch of 4: step 3)


def fit(comm, fault=True):
    """A Trainer over a map-style dataset whose sample BAD_SAMPLE raises on rank 1; returns (type, message) of what
    ``fit`` raised, or None."""
    from distnn.train.trainer import Trainer

    class Samples:
        def __init__(self, n):
            self.x = np.random.default_rng(0).standard_normal((n, 4)).astype(np.float32)
            self.y = np.arange(n) % 3

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            if fault and comm.rank == 1 and i == 1 + BAD_SAMPLE * comm.size:  # (unshuffled: rank r takes r, r + W, ...)
                raise ValueError("bad sample on rank 1")
            return self.x[i], self.y[i]

    distnn.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    trainer = Trainer(model, SGD(model.parameters(), lr=0.1), Samples(64), comm=comm, batch_size=4 * comm.size,
                      epochs=2, shuffle=False)
    try:
        trainer.fit()
    except Exception as e:
        return type(e).__name__, str(e)
    return None


TRAINER_AGREED = ("DataParallel: the training loop (before the step's forward) raised on rank 1: ValueError: bad "
                  "sample on rank 1")


def assert_trainer_outcome(results):
    for rank, error in enumerate(results):
        assert error is not None and error[0] == "ValueError" and error[1].startswith(TRAINER_AGREED), (rank, error)
        assert error == results[0], (rank, "the same error on every rank")


@pytest.mark.parametrize("size", [2, 3])
def test_simulated_trainer_ranks_raise_the_loading_error(size):
    assert_trainer_outcome(simulate(size, fit))
    assert simulate(size, fit, fault=False) == [None] * size


short_timeout_comm = short_timeout_fixture(TIMEOUT_S)  # (a rank left waiting fails the test)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("case", list(CASES))
def test_mpi_ranks_end_the_step_naming_the_cause(short_timeout_comm, case):
    comm = short_timeout_comm
    results = comm.allgather_object(train(comm, case))
    reference = comm.allgather_object(train(comm, case, fault=False, skip_step=FAILS_AT))
    assert_outcome(results, reference[0][1])


@pytest.mark.mpi(min_size=2)
def test_mpi_trainer_ranks_raise_the_loading_error(short_timeout_comm):
    assert_trainer_outcome(short_timeout_comm.allgather_object(fit(short_timeout_comm)))
