"""An error in the Trainer's ``train_step`` on one rank before the step's gradient exchange (a forward or loss that
raises there alone): every rank's ``fit`` ends with the same error naming that rank and its cause, at once.

Before, only data loading was covered (``DataParallel.fail_step``, tests/test_data_parallel_fail_step.py): a forward
of a ``no_sync()`` micro-batch, or a loss, raising on rank 1 left the others waiting in the step's exchange, so the
job ended by the collective timeout or MPI's abort, the cause named on rank 1 alone (simulated: "rank(s) [1] returned
without calling it"). Errors DataParallel already agrees on (a synchronizing forward raising) keep their error, and an
error after the exchange (the optimizer's step) is raised on its rank as it is.

Cases (rank 1 fails in step 1; ``accumulation_steps`` 1 or 2): the forward of the first (``no_sync()``) micro-batch,
the loss of the first micro-batch, the loss of the last (synchronizing) micro-batch, the loss of a one-micro-batch
step. Oracles: every rank raises the same ValueError naming rank 1 and its cause; every rank's parameters are bitwise
equal to the others' and equal (rtol 1e-12) to a run stopped before step 1 (``max_steps=1``): the failed step made no
update anywhere.

Simulated ranks (2, 3) and ``mpiexec -n 2`` / ``-n 3`` (pytest-mpi, ``-m mpi``) on a communicator whose collective
timeout is 20 s: a rank left waiting ends the job there, failing the test, where a correct end takes well under a
second.
"""
import numpy as np
import pytest

import distnn
import distnn.nn as nn
from distnn.backend import to_numpy
from distnn.data import TensorDataset
from distnn.distributed import simulate
from distnn.optim import SGD
from distnn.train.trainer import Trainer
from short_timeout_comm import short_timeout_fixture

pytestmark = pytest.mark.timeout(300)

FAILS_AT = 1  # the step (0-based) in which rank 1 fails
TIMEOUT_S = 20.0
# case: (accumulation_steps, what raises on rank 1, its micro-batch in the step)
CASES = {"micro_forward": (2, "forward", 0), "micro_loss": (2, "loss", 0), "last_micro_loss": (2, "loss", 1),
         "step_loss": (1, "loss", 0)}
AGREED = "DataParallel: the training step (before its gradient exchange) raised on rank 1: ValueError: "


class _Fault(nn.Module):
    """Identity, except on rank 1 in the chosen micro-batch: raises ("forward"), or drops a row so that the loss
    raises ("loss")."""

    def __init__(self, rank, what, at_call):
        super().__init__()
        self.rank, self.what, self.at_call, self.calls = rank, what, at_call, 0

    def forward(self, x):
        self.calls += 1
        if self.rank == 1 and self.calls == self.at_call:
            if self.what == "forward":
                raise ValueError("bad forward on rank 1")
            return x[:-1]
        return x


class _FaultyUpdate(SGD):
    """SGD whose step raises on rank 1 in step FAILS_AT (after the step's gradient exchange)."""

    def __init__(self, params, rank, **kw):
        super().__init__(params, **kw)
        self.rank, self.steps = rank, 0

    def step(self, *args, **kwargs):
        self.steps += 1
        if self.rank == 1 and self.steps == FAILS_AT + 1:
            raise ValueError("bad update on rank 1")
        return super().step(*args, **kwargs)


def fit(comm, case, fault=True, max_steps=None):
    """A Trainer whose ``case`` fault strikes rank 1 in step FAILS_AT (``fault``); returns ((type, message) of what
    ``fit`` raised, or None, and the parameters)."""
    accumulation, what, micro = CASES[case] if case in CASES else (1, case, 0)
    distnn.manual_seed(0)
    x = np.random.default_rng(0).standard_normal((96, 4))
    y = np.arange(96) % 3
    at_call = FAILS_AT * accumulation + micro + 1 if fault and what != "update" else 0
    model = nn.Sequential(nn.Linear(4, 8, dtype=np.float64), nn.Tanh(), nn.Linear(8, 3, dtype=np.float64),
                          _Fault(comm.rank, what, at_call))
    optimizer = (_FaultyUpdate(model.parameters(), comm.rank, lr=0.1) if what == "update"
                 else SGD(model.parameters(), lr=0.1, momentum=0.9))
    trainer = Trainer(model, optimizer, TensorDataset(x, y), comm=comm, batch_size=4 * comm.size * accumulation,
                      epochs=1, shuffle=False, accumulation_steps=accumulation, max_steps=max_steps)
    error = None
    try:
        trainer.fit()
    except Exception as e:
        error = (type(e).__name__, str(e))
    return error, {k: to_numpy(v).copy() for k, v in model.named_parameters()}


def assert_outcome(results, reference):
    size = len(results)
    for rank, (error, params) in enumerate(results):
        assert error is not None and error[0] == "ValueError" and error[1].startswith(AGREED), (rank, size, error)
        assert error == results[0][0], (rank, "the same error on every rank")
        for k, v in params.items():
            np.testing.assert_array_equal(v, results[0][1][k], err_msg=f"rank {rank} of {size}: {k} (replicas)")
            np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15,
                                       err_msg=f"rank {rank} of {size}: {k} (stopped before step {FAILS_AT})")


@pytest.mark.parametrize("size", [2, 3])
@pytest.mark.parametrize("case", list(CASES))
def test_simulated_ranks_end_the_step_naming_the_cause(case, size):
    reference = simulate(size, fit, case, fault=False, max_steps=FAILS_AT)
    assert [error for error, _ in reference] == [None] * size
    assert_outcome(simulate(size, fit, case), reference[0][1])


def test_the_reference_differs_from_the_full_run():
    full = simulate(2, fit, "step_loss", fault=False)[0][1]["0.weight"]
    stopped = simulate(2, fit, "step_loss", fault=False, max_steps=FAILS_AT)[0][1]["0.weight"]
    assert not np.allclose(full, stopped, rtol=1e-6)


def test_a_synchronizing_forward_keeps_its_agreed_error():
    # (DataParallel agrees on it in the forward already: the Trainer adds nothing)
    for error, _ in simulate(2, fit, "forward"):
        assert error == ("ValueError", error[1]) and error[1].startswith(
            "DataParallel: forward raised on rank 1: ValueError: bad forward on rank 1"), error


def test_an_error_after_the_exchange_is_raised_as_it_is():
    # (the exchange was made: nobody waits for rank 1 there, so its own error is not turned into a step's end;
    # the other rank then waits for it in the next step, which the simulated ranks report)
    results = simulate(2, fit, "update")
    assert results[1][0] == ("ValueError", "bad update on rank 1")


short_timeout_comm = short_timeout_fixture(TIMEOUT_S)  # (a rank left waiting fails the test)


@pytest.mark.mpi(min_size=2)
@pytest.mark.parametrize("case", list(CASES))
def test_mpi_ranks_end_the_step_naming_the_cause(short_timeout_comm, case):
    comm = short_timeout_comm
    results = comm.allgather_object(fit(comm, case))
    reference = comm.allgather_object(fit(comm, case, fault=False, max_steps=FAILS_AT))
    assert [error for error, _ in reference] == [None] * comm.size
    assert_outcome(results, reference[0][1])
