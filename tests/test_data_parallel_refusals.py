"""Refusals found on some ranks only during DataParallel's synchronizing backward end every rank together.

A rank whose gradient a dense bucket cannot take (sparse from F.embedding(..., sparse=True) on a parameter
that is no sparse layer's weight; another dtype than when wrapped) or that knows no sample count used to
raise alone while the others waited in the step's collectives (simulate's deadlock check; the collective
timeout under mpiexec). Now every rank raises the same error, naming the parameter and the ranks that found
it, with every gradient None, and the ranks train on together afterwards: simulated ranks (2 and 3, with
fp16 and PowerSGD buckets, a model without a dense bucket) and the same under ``mpiexec -n 2`` (a child
job with a deadline, so that a rank left waiting fails the test instead of hanging the suite).
"""
import threading

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn.backend import to_numpy
from distnn.distributed import DataParallel, simulate
from distnn.optim import SGD
from mpi_child import faults_on_rank_1

FAULTS = ["sparse", "dtype", "no-count", "no-count-sparse-only"]
EXPECTED = {  # (error type, what the message says, {where} standing for the ranks that found it)
    "sparse": ("RuntimeError", "parameter 'table' got a sparse gradient {where}, but it is synchronized in a "
                               "dense bucket"),
    "dtype": ("TypeError", "parameter 'lin.weight' is float32 {where} but was float64 when DataParallel was built"),
    "no-count": ("RuntimeError", "no sample count is known {where}: no forward went through the wrapper"),
    "no-count-sparse-only": ("RuntimeError", "no sample count is known {where}"),
}


class _Net(nn.Module):
    """A dense layer and a table read with F.embedding (no embedding layer: the table sits in a dense bucket)."""

    def __init__(self, sparse_only=False):
        super().__init__()
        self.sparse_only = sparse_only
        if sparse_only:  # (no dense bucket at all: the step meta takes an allreduce of its own)
            self.bag = nn.EmbeddingBag(4, 2, mode="sum", sparse=True, dtype=np.float64)
        else:
            self.lin = nn.Linear(3, 2, dtype=np.float64)
            self.table = nn.Parameter(np.arange(8.0).reshape(4, 2))
        self.sparse = False

    def forward(self, x, idx):
        if self.sparse_only:
            return self.bag(idx.reshape(-1, 1))
        return self.lin(x) + F.embedding(idx, self.table, sparse=self.sparse)


def _batch(rank, dtype=np.float64):
    rng = np.random.default_rng(rank)
    return distnn.Tensor(rng.standard_normal((3, 3)).astype(dtype)), distnn.tensor(rng.integers(0, 4, 3))


def refused_then_trained(comm, fault, faulty_ranks, compression=None):
    """Step 1 with ``fault`` on ``faulty_ranks``, every rank catching what it raises; then one clean step.

    Returns the error (type name, message), whether every gradient was None after it, and the parameters
    after the clean step."""
    distnn.manual_seed(0)
    model = _Net(sparse_only=fault == "no-count-sparse-only")
    dp = DataParallel(model, comm, compression=compression)
    opt = SGD(model.parameters(), lr=0.1)
    faulty = comm.rank in faulty_ranks
    x, idx = _batch(comm.rank)
    kept = {k: v.copy() for k, v in model.state_dict().items()}
    if faulty and fault == "sparse":
        model.sparse = True
    if faulty and fault == "dtype":
        model.float()
        x = distnn.Tensor(x.data.astype(np.float32))
    error = None
    try:
        out = dp.module(x, idx) if faulty and fault.startswith("no-count") else dp(x, idx)
        out.sum().backward()
    except (RuntimeError, TypeError) as e:
        error = (type(e).__name__, str(e))
    grads_none = all(p.grad is None for p in model.parameters())
    if faulty:  # (the fault mended: the ranks go on in step)
        model.sparse = False
        model.double()
        model.load_state_dict(kept)  # (the float32 round trip lost bits)
    opt.zero_grad()
    x, idx = _batch(comm.rank)
    dp(x, idx).sum().backward()
    opt.step()
    return error, grads_none, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}


def assert_agreed(results, fault, faulty_ranks):
    """Every rank raised the same error, naming the ranks that found the problem; gradients None; then the
    same parameters on every rank."""
    kind, text = EXPECTED[fault]
    where = f"on rank{'s' if len(faulty_ranks) > 1 else ''} {', '.join(map(str, faulty_ranks))}"
    errors = [error for error, _, _ in results]
    assert errors[0] is not None and errors[0][0] == kind, errors[0]
    assert text.format(where=where) in errors[0][1]
    assert errors[0][1].startswith("DataParallel: ")
    assert all(e == errors[0] for e in errors), errors
    assert all(grads_none for _, grads_none, _ in results)
    for _, _, state in results:
        for k, v in state.items():
            assert np.isfinite(v).all() and np.array_equal(v, results[0][2][k]), k


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("n,faulty_ranks", [(2, (1,)), (3, (0, 2))])
def test_a_refusal_on_some_ranks_is_raised_on_every_rank(fault, n, faulty_ranks):
    assert_agreed(simulate(n, refused_then_trained, fault, faulty_ranks), fault, faulty_ranks)


@pytest.mark.parametrize("compression", ["fp16", "powersgd"])
def test_a_refusal_is_agreed_through_compressed_buckets(compression):
    assert_agreed(simulate(2, refused_then_trained, "sparse", (1,), compression), "sparse", (1,))


def test_the_training_after_a_refused_step_is_the_training_without_it():
    """The refused step changes nothing: the clean step after it is the clean step of a fresh run."""

    def clean(comm):
        distnn.manual_seed(0)
        model = _Net()
        dp = DataParallel(model, comm)
        x, idx = _batch(comm.rank)
        dp(x, idx).sum().backward()
        SGD(model.parameters(), lr=0.1).step()
        return {k: to_numpy(v).copy() for k, v in model.state_dict().items()}

    ref = simulate(2, clean)[0]
    for fault in ("sparse", "no-count"):
        state = simulate(2, refused_then_trained, fault, (1,))[0][2]
        for k in ref:
            np.testing.assert_allclose(state[k], ref[k], rtol=1e-12, err_msg=f"{fault}: {k}")


@pytest.mark.parametrize("other", ["finish", "joined"])
def test_a_rank_without_a_backward_raises_the_refusal_too(other):
    """Rank 0's backward refuses; rank 1 synchronizes without one: finish_gradient_synchronization (no batch
    this step), or the shadow synchronization of a rank that has joined. Both raise the same error."""

    def run(comm):
        model = _Net()
        dp = DataParallel(model, comm)
        model.sparse = comm.rank == 0
        try:
            if other == "joined":
                with dp.join():
                    for _ in range(1 - comm.rank):  # (rank 1 has no batch: it joins at once)
                        dp(*_batch(comm.rank)).sum().backward()
            elif comm.rank == 0:
                dp(*_batch(0)).sum().backward()
            else:
                dp.finish_gradient_synchronization()
        except RuntimeError as e:
            return str(e)

    errors = simulate(2, run)
    assert errors[0] == errors[1] and "parameter 'table' got a sparse gradient on rank 0," in errors[0]


def test_under_mpiexec_every_rank_raises_the_same_error(tmp_path):
    ranks = faults_on_rank_1("test_data_parallel_refusals", "refused_then_trained", "FAULTS", tmp_path)
    for fault in FAULTS:
        assert_agreed([seen[fault] for seen in ranks], fault, (1,))


def test_a_note_made_before_another_rank_begins_its_backward_is_kept():
    """Simulated ranks are threads, and a backward pass runs every wrapper's begin hook: rank 0's pass
    beginning after rank 1 noted its refusal must leave rank 1's note alone (it used to clear it, so the
    error named fewer ranks, or none refused at all)."""
    noted = threading.Event()

    def step(comm):
        distnn.manual_seed(0)
        model = _Net()
        dp = DataParallel(model, comm)
        x, idx = _batch(comm.rank)
        if comm.rank == 1:
            out = dp.module(x, idx)  # no sample count: noted when its backward begins
            out.register_hook(lambda g: noted.set())  # (runs after the begin hooks)
        else:
            out = dp(x, idx)
            assert noted.wait(60)
        try:
            out.sum().backward()
        except RuntimeError as e:
            return str(e)
        return None

    errors = simulate(2, step)
    assert all(e is not None and "no sample count is known on rank 1:" in e for e in errors), errors
