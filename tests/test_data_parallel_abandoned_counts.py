"""A synchronizing DataParallel step abandoned after ``no_sync()`` micro-batches (gradient accumulation) leaves
no sample counts behind: the next step weighs every rank's gradient by that step's own samples only.

It used to leak: rank 1's loss raising in the step's synchronizing micro-batch (or a KeyboardInterrupt there),
the rank went through the abandoned step's exchange at its next DataParallel call, but kept the samples its
``no_sync()`` micro-batches had counted for that step, so its next step's gradient got too large a weight
(and the global count with it). The oracle: the parameters after the steps that follow the failure equal, to
1e-12, a fresh run that never made the failed step (same data), on every rank, bitwise equal across ranks. The
ranks' micro-batches have different sizes, so a wrong weight shows. 2 simulated ranks, and ``mpiexec -n 2``
(a child job with a deadline).
"""
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn.backend import to_numpy
from distnn.distributed import DataParallel, simulate
from distnn.optim import SGD
from mpi_child import faults_on_rank_1

# where rank 1's failed step goes wrong, in its synchronizing micro-batch: the loss raises and the loop lets go
# of the output ("loss"), or keeps it bound until its next step's first forward rebinds it ("loss-output-kept");
# a KeyboardInterrupt in the forward, or in the backward (the output let go of, or kept until rebound)
FAULTS = ["loss", "loss-output-kept", "interrupt-forward", "interrupt-backward", "interrupt-backward-output-kept"]
MICRO_BATCHES = 3  # per step: two under no_sync(), then the synchronizing one


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8, dtype=np.float64)
        self.fc2 = nn.Linear(8, 3, dtype=np.float64)
        self.interrupt = False

    def forward(self, x):
        if self.interrupt:
            raise KeyboardInterrupt
        return self.fc2(F.tanh(self.fc1(x)))


def _interrupt(grad):
    raise KeyboardInterrupt


def _batch(comm, step, micro):
    """Sizes that differ between ranks and micro-batches, so each rank's weight n_r / N matters (the failed
    step's in other proportions than the others', so its counts kept on every rank would show too)."""
    rng = np.random.default_rng(1000 * step + 10 * micro + comm.rank)
    n = 1 + micro + 3 * comm.rank * (micro + 1) + (2 * comm.rank + 1 if step == 99 else 0)
    return distnn.Tensor(rng.standard_normal((n, 4))), rng.integers(0, 3, n)


def train(comm, fault=None, faulty_ranks=(), steps=2):
    """With ``fault``, a first step that fails on ``faulty_ranks`` in its synchronizing micro-batch, every rank
    catching what it raises; then ``steps`` clean steps, each of MICRO_BATCHES micro-batches. Returns (the
    error (type, message) or None, whether every gradient was None after the failed step, the final state)."""
    distnn.manual_seed(0)
    model = _Net()
    dp = DataParallel(model, comm, bucket_mb=1e-6)
    opt = SGD(model.parameters(), lr=0.5, momentum=0.9)
    error, grads_none, out = None, None, None
    if fault is not None:
        mine = fault if comm.rank in faulty_ranks else None
        opt.zero_grad()
        for micro in range(MICRO_BATCHES - 1):
            x, y = _batch(comm, 99, micro)
            with dp.no_sync():
                F.cross_entropy(dp(x), y).backward()
        handle = model.fc1.weight.register_hook(_interrupt) if (mine or "").startswith("interrupt-backward") \
            else None
        model.interrupt = mine == "interrupt-forward"
        x, y = _batch(comm, 99, MICRO_BATCHES - 1)
        try:
            out = dp(x)
            if mine in ("loss", "loss-output-kept"):
                raise ValueError("the loss refused the targets")
            F.cross_entropy(out, y).backward()
        except (Exception, KeyboardInterrupt) as e:
            error = (type(e).__name__, str(e))
        model.interrupt = False
        if handle is not None:
            handle.remove()
        if not (mine or "").endswith("output-kept"):
            out = None
        grads_none = all(p.grad is None for p in model.parameters())
    for step in range(steps):
        opt.zero_grad()  # (drops what the failed step left, as a loop does)
        for micro in range(MICRO_BATCHES):
            x, y = _batch(comm, step, micro)
            if micro < MICRO_BATCHES - 1:
                with dp.no_sync():
                    out = dp(x)
                    F.cross_entropy(out, y).backward()
            else:
                out = dp(x)
                F.cross_entropy(out, y).backward()
        opt.step()
    return error, grads_none, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}


def assert_trains_as_if_the_step_never_ran(results, fault, reference):
    for rank, (error, grads_none, state) in enumerate(results):
        assert error is not None, f"rank {rank} raised nothing"
        if rank == 1:
            assert error[0] == ("ValueError" if fault.startswith("loss") else "KeyboardInterrupt"), error
        else:  # the step's exchange ended with rank 1's note
            assert error[0] == "RuntimeError" and error[1].startswith("DataParallel: "), error
            assert grads_none, "the waiting rank kept the abandoned step's gradients"
        for k, v in state.items():
            np.testing.assert_array_equal(v, results[0][2][k], err_msg=f"rank {rank}: {k}")
            np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15, err_msg=f"rank {rank}: {k}")


def _simulate_quietly(*args):
    with warnings.catch_warnings():  # (rank 1 is told the others' error as a warning)
        warnings.simplefilter("ignore")
        return simulate(2, train, *args)


@pytest.mark.parametrize("fault", FAULTS)
def test_the_next_step_after_an_abandoned_accumulation_step_weighs_only_its_own_samples(fault):
    reference = simulate(2, train)[0][2]  # a fresh run that never had the failed step
    assert_trains_as_if_the_step_never_ran(_simulate_quietly(fault, (1,)), fault, reference)


def test_every_rank_abandoning_the_step_also_leaves_no_counts():
    """Every rank's loss raises: nobody waited, and the next steps still train as the fresh run."""
    reference = simulate(2, train)[0][2]
    for error, _, state in _simulate_quietly("loss", (0, 1)):
        assert error[0] == "ValueError", error
        for k, v in state.items():
            np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15, err_msg=k)


def test_under_mpiexec_the_next_step_weighs_only_its_own_samples(tmp_path):
    ranks = faults_on_rank_1("test_data_parallel_abandoned_counts", "train", "FAULTS", tmp_path)
    reference = simulate(2, train)[0][2]
    for fault in FAULTS:
        assert_trains_as_if_the_step_never_ran([seen[fault] for seen in ranks], fault, reference)
