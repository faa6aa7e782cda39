"""An exception that user code raises on some ranks in the middle of DataParallel's synchronizing backward
is raised on every rank, as one agreed error, and training goes on.

User code inside backward (a gradient hook that raises or returns a wrong shape, a custom Function's
backward, a module backward hook, a hook on the loss before any parameter's gradient is ready, a callback
queued by a hook) used to unwind its rank's backward while the other ranks waited for it in the step's
bucket allreduces (simulate's deadlock check; the collective timeout under mpiexec), and the raising rank's
next backward refused to start ("the previous backward raised"). Now the raising rank finishes the step's
collectives first, every rank raises the same error naming the exception and the ranks it came from (the
raising rank's own exception as its ``__cause__``), the step's gradients are dropped, and the training after
it equals a fresh run's that never had the step (the oracle): 2 and 3 simulated ranks, one, two or all ranks
raising, fp16 and PowerSGD buckets, inside ``join()``, and ``mpiexec -n 2`` (a child job with a deadline).
Under ``no_sync()`` the exception is raised as it is, on its rank alone.
"""

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn.autograd.engine import queue_callback
from distnn.autograd.function import Function
from distnn.backend import to_numpy
from distnn.distributed import DataParallel, simulate
from distnn.optim import SGD
from mpi_child import faults_on_rank_1


class BadBatch(Exception):
    """A user's own exception class (not a built-in one: every rank raises a RuntimeError naming it)."""


class _Fails(Function):
    """Identity whose backward raises (a custom Function finding a bad batch deep in backward)."""

    def forward(self, x):
        return x

    def backward(self, g):
        raise FloatingPointError("non-finite gradient in _Fails")


# fault -> (the agreed error's type, the original exception's type, its message)
FAULTS = {
    "param-hook": ("ValueError", "ValueError", "fc1.weight's gradient refused"),
    "wrong-shape-hook": ("RuntimeError", "RuntimeError", "a gradient hook returned a gradient of shape (1, 8)"),
    "function": ("FloatingPointError", "FloatingPointError", "non-finite gradient in _Fails"),
    "module-hook": ("RuntimeError", "BadBatch", "fc2 saw a bad batch"),
    "loss-hook": ("ValueError", "ValueError", "the loss's gradient refused"),  # (before any parameter's)
    "callback": ("ValueError", "ValueError", "a callback refused the step"),  # (before the synchronization's)
}


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8, dtype=np.float64), nn.Linear(8, 3, dtype=np.float64)
        self.fault = None

    def forward(self, x):
        h = F.tanh(self.fc1(x))
        if self.fault == "function":
            h = _Fails.apply(h)
        if self.fault == "wrong-shape-hook":
            h.register_hook(lambda g: g[:1])
        out = self.fc2(h)
        if self.fault == "loss-hook":
            out.register_hook(_raiser(ValueError("the loss's gradient refused")))
        if self.fault == "callback":
            out.register_hook(lambda g: queue_callback(_raiser(ValueError("a callback refused the step"))))
        return out


def _raiser(exc):
    def hook(*args):
        raise exc
    return hook


def _install(model, fault):
    """The fault's hooks (the others live in forward); returns the handles."""
    model.fault = fault
    if fault == "param-hook":
        return [model.fc1.weight.register_hook(_raiser(ValueError("fc1.weight's gradient refused")))]
    if fault == "module-hook":
        return [model.fc2.register_full_backward_hook(_raiser(BadBatch("fc2 saw a bad batch")))]
    return []


def _batch(comm, step):
    rng = np.random.default_rng(100 * step + comm.rank)
    return distnn.Tensor(rng.standard_normal((3 + comm.rank, 4))), rng.integers(0, 3, 3 + comm.rank)


def train(comm, fault=None, faulty_ranks=(), compression=None, steps=2):
    """With ``fault``, a first step that raises on ``faulty_ranks``, every rank catching what it raises; then
    ``steps`` clean steps. Returns the error seen ((type, message, type of its __cause__) or None), whether
    every gradient was None after it, and the parameters at the end."""
    distnn.manual_seed(0)
    model = _Net()
    dp = DataParallel(model, comm, bucket_mb=1e-6, compression=compression)  # one bucket per parameter
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    error, grads_none = None, None
    if fault is not None:
        handles = _install(model, fault) if comm.rank in faulty_ranks else []
        x, y = _batch(comm, 99)
        try:
            F.cross_entropy(dp(x), y).backward()
        except Exception as e:
            cause = e.__cause__
            error = (type(e).__name__, str(e), None if cause is None else type(cause).__name__)
        grads_none = all(p.grad is None for p in model.parameters())
        for h in handles:
            h.remove()
        model.fault = None
    for step in range(steps):
        opt.zero_grad()
        x, y = _batch(comm, step)
        F.cross_entropy(dp(x), y).backward()
        opt.step()
    return error, grads_none, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}


def assert_agreed(results, fault, faulty_ranks, reference=None):
    """Every rank raised the same error, naming the exception and the ranks; the raising ranks hold their
    own exception as its cause; every gradient was dropped; then every rank trained alike (as ``reference``)."""
    agreed_type, original_type, message = FAULTS[fault]
    where = f"on rank{'s' if len(faulty_ranks) > 1 else ''} {', '.join(map(str, faulty_ranks))}"
    errors = [error for error, _, _ in results]
    assert errors[0] is not None, "rank 0 raised nothing"
    assert errors[0][0] == agreed_type, errors[0]
    if fault == "wrong-shape-hook":  # (its message holds the rank's own batch size: one part per rank)
        for r in faulty_ranks:
            assert f"backward raised on rank {r}: {original_type}: {message}" in errors[0][1], errors[0]
    else:
        assert errors[0][1].startswith(f"DataParallel: backward raised {where}: {original_type}: {message}"), \
            errors[0]
    for rank, error in enumerate(errors):
        assert error[:2] == errors[0][:2], (rank, error)
        assert error[2] == (original_type if rank in faulty_ranks else None), (rank, error)
    assert all(grads_none for _, grads_none, _ in results)
    for _, _, state in results:
        for k, v in state.items():
            np.testing.assert_array_equal(v, results[0][2][k], err_msg=k)
            if reference is not None:
                np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15, err_msg=k)


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("n,faulty_ranks", [(2, (1,)), (3, (0, 2)), (3, (0, 1, 2))])
def test_an_exception_on_some_ranks_is_raised_on_every_rank_and_training_goes_on_as_without_the_step(
        fault, n, faulty_ranks):
    reference = simulate(n, train)[0][2]  # a fresh run that never had the failed step
    assert_agreed(simulate(n, train, fault, faulty_ranks), fault, faulty_ranks, reference)


@pytest.mark.parametrize("compression", ["fp16", "powersgd"])
@pytest.mark.parametrize("fault", ["param-hook", "loss-hook"])
def test_an_exception_is_agreed_through_compressed_buckets(compression, fault):
    assert_agreed(simulate(2, train, fault, (1,), compression), fault, (1,))


def test_under_no_sync_the_exception_is_raised_as_it_is_on_its_rank_alone():
    """No synchronization, so no collective: rank 1 gets its own ValueError, rank 0 nothing; the loop drops
    rank 1's partial gradients (zero_grad(), as advised), so the micro-batch is dropped on rank 1 only (its backward
    failed), and the next synchronizing step goes on (kept, they refuse that step on every rank: see
    test_data_parallel_nosync_backward_raise.py)."""

    def run(comm):
        model = _Net()
        dp = DataParallel(model, comm)
        handles = _install(model, "param-hook") if comm.rank == 1 else []
        error = None
        with dp.no_sync():
            x, y = _batch(comm, 0)
            try:
                F.cross_entropy(dp(x), y).backward()
            except ValueError as e:
                error = (type(e).__name__, str(e))
                for p in model.parameters():  # (optimizer.zero_grad())
                    p.grad = None
        syncs = dp.num_syncs
        for h in handles:
            h.remove()
        x, y = _batch(comm, 1)
        F.cross_entropy(dp(x), y).backward()
        return error, syncs, dp.num_syncs, [to_numpy(p.grad).copy() for p in model.parameters()]

    (e0, s0, t0, g0), (e1, s1, t1, g1) = simulate(2, run)
    assert e0 is None and e1 == ("ValueError", "fc1.weight's gradient refused")
    assert (s0, s1, t0, t1) == (0, 0, 1, 1)
    for a, b in zip(g0, g1):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("failing", [0, 1])
def test_inside_join_a_rank_that_has_joined_raises_the_agreed_error_too(failing):
    """Rank 0 has two batches, rank 1 one. ``failing`` 1: rank 1's backward raises in its only step, both
    ranks catch the error and go on, rank 1 joins and shadows rank 0's second step. ``failing`` 0: rank 0's
    backward raises in its second step, which rank 1, joined, shadows: the agreed error ends rank 1's join
    (it runs no user code that could catch it), so rank 0 lets it leave the join too (an error inside a join
    ends it, see distnn.distributed.join)."""

    def run(comm):
        distnn.manual_seed(0)
        model = _Net()
        dp = DataParallel(model, comm, bucket_mb=1e-6)
        errors = []
        try:
            with dp.join():
                for step in range(2 - comm.rank):
                    handles = _install(model, "param-hook") if comm.rank == failing and step == 1 - failing else []
                    x, y = _batch(comm, step)
                    try:
                        F.cross_entropy(dp(x), y).backward()
                    except ValueError as e:
                        if failing == 0:
                            raise
                        errors.append(str(e))
                    for h in handles:
                        h.remove()
        except ValueError as e:  # (the join ended by the agreed error)
            errors.append(str(e))
        return errors, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}

    (e0, s0), (e1, s1) = simulate(2, run)
    assert len(e0) == 1 and e0 == e1, (e0, e1)
    assert e0[0].startswith(f"DataParallel: backward raised on rank {failing}: ValueError: fc1.weight's")
    for k in s0:
        np.testing.assert_array_equal(s0[k], s1[k], err_msg=k)


def test_under_mpiexec_every_rank_raises_the_same_error_and_trains_on(tmp_path):
    # (the old code ended the job: the raising rank's next backward refused to start)
    ranks = faults_on_rank_1("test_data_parallel_backward_errors", "train", "MPI_FAULTS", tmp_path)
    reference = simulate(2, train)[0][2]
    for fault in MPI_FAULTS:
        assert_agreed([seen[fault] for seen in ranks], fault, (1,), reference)


MPI_FAULTS = ["param-hook", "function", "loss-hook"]


def test_a_normal_step_still_makes_one_collective_per_bucket_and_nothing_else():
    """The watch for a failing backward costs no collective: a step's collectives on the wrapper's own
    communicator are its buckets' allreduces (the step meta in the last), before and after a failed step."""

    def run(comm):
        model = _Net()
        dp = DataParallel(model, comm, bucket_mb=1e-6)
        seq = []
        for step, fault in enumerate((None, "param-hook", None)):
            handles = _install(model, fault) if fault and comm.rank == 1 else []
            before = dp._comm._seq  # (the in-process communicator's count of collectives started)
            x, y = _batch(comm, step)
            try:
                F.cross_entropy(dp(x), y).backward()
            except ValueError:
                pass
            for h in handles:
                h.remove()
            model.fault = None
            seq.append(dp._comm._seq - before)
        return seq, len(dp.bucket_layout)

    for seq, buckets in simulate(2, run):
        assert buckets == 4 and seq[0] == seq[2] == buckets and seq[1] > buckets, seq
