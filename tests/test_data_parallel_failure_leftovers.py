"""DataParallel failures left open before: a LOSS that raises on one rank under ``no_sync()`` (between a
micro-batch's forward and backward) with SyncBatchNorm in the model, on one or on two SyncBatchNorm
communicators; the gradients a failure leaves behind on one rank when the loop does not call ``zero_grad()``;
and a ``set_num_samples()`` count set for an abandoned step.

The oracle: every rank raises an error naming rank 1 and what raised (message asserted), and the parameters
after the steps that follow equal, to 1e-12, a run in which every rank skipped what failed (the micro-batch, or
the step), bitwise equal across ranks; or, where leftover gradients would make the step's average no run's,
every rank refuses that step with the same error. Micro-batch sizes differ between ranks and micro-batches, so
a wrong sample weight shows. 2 simulated ranks, and ``mpiexec -n 2`` (a child job with a deadline).
"""
import contextlib
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn.backend import to_numpy
from distnn.distributed import DataParallel, SyncBatchNorm, simulate
from distnn.optim import SGD
from mpi_child import faults_on_rank_1

# loss-exit: rank 1's loss raises in micro-batch 0 (under no_sync) and leaves the `with dp.no_sync():` block;
# loss-inside: the same, caught inside the block; *-two: bn2 on a second communicator; *-keep: the loop calls no
# zero_grad() after the failure; hook: a hook on fc2's weight gradient raises on rank 1 in micro-batch 0's backward
# (between the two SyncBatchNorm backward rounds: both ranks' cut-short backwards accumulated partial gradients),
# the loop then calling zero_grad() (hook) or not (hook-keep: the step is refused on every rank)
FAULTS = ["loss-exit", "loss-inside", "loss-exit-two", "loss-inside-two", "hook", "hook-keep"]


class _Net(nn.Module):
    def __init__(self, comm, second):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8, dtype=np.float64), nn.Linear(8, 6, dtype=np.float64)
        self.bn1 = SyncBatchNorm(8, dtype=np.float64, comm=comm)
        self.bn2 = SyncBatchNorm(6, dtype=np.float64, comm=comm.split(0) if second else comm)

    def forward(self, x):
        return self.bn2(self.fc2(F.tanh(self.bn1(self.fc1(x)))))


def _raise(grad):
    raise ValueError("a non-finite gradient")


def _batch(comm, step, micro):
    rng = np.random.default_rng(1000 * step + 10 * micro + comm.rank)
    n = 2 + micro + 3 * comm.rank * (micro + 1)
    return distnn.Tensor(rng.standard_normal((n, 4))), rng.integers(0, 6, n)


def train(comm, fault=None, faulty_ranks=(), skip=None, steps=3):
    """Steps of two micro-batches (the first under no_sync()); in step 0 rank 1's loss raises in micro-batch 0
    (``skip``: the reference, every rank skips that micro-batch; ``skip="step"``: every rank skips step 0).
    Returns (errors [(type, message)] in order, the DataParallel warnings, the state)."""
    name = fault or skip or ""
    distnn.manual_seed(0)
    model = _Net(comm, name.startswith("loss") and "two" in name)
    dp = DataParallel(model, comm, bucket_mb=1e-6)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    errors = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for step in range(steps):
            if skip == "step" and step == 0:
                continue
            opt.zero_grad()
            failed = False
            for micro in (0, 1):
                if skip and skip != "step" and step == 0 and micro == 0:
                    continue
                mine = fault if step == 0 and micro == 0 and comm.rank in faulty_ranks else None
                x, y = _batch(comm, step, micro)
                hook = model.fc2.weight.register_hook(_raise) if (mine or "").startswith("hook") else None
                try:
                    with dp.no_sync() if micro == 0 else contextlib.nullcontext():
                        try:
                            out = dp(x)
                            if (mine or "").startswith("loss"):
                                raise ValueError("the loss refused the targets")
                            F.cross_entropy(out, y).backward()
                        except ValueError as e:
                            if "inside" not in (mine or ""):
                                raise
                            errors.append((type(e).__name__, str(e)))
                        finally:
                            out = None
                except Exception as e:
                    errors.append((type(e).__name__, str(e)))
                    failed = True
                finally:
                    if hook is not None:
                        hook.remove()
                if failed and micro == 0 and "keep" not in name:
                    opt.zero_grad()  # (what a cut-short backward accumulated)
                    failed = False
                if failed and micro == 1:
                    break
            if not failed:
                opt.step()
    dp_warnings = [str(w.message) for w in seen if str(w.message).startswith("DataParallel")]
    return errors, dp_warnings, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}


def assert_outcome(results, fault, reference):
    for rank, (errors, dp_warnings, state) in enumerate(results):
        assert errors, f"rank {rank} raised nothing"
        kind, message = errors[0]
        assert kind == ("RuntimeError" if "inside" in fault and rank == 0 else "ValueError"), (rank, errors)
        if "inside" in fault and rank == 1:  # its own error, then the agreed one as a warning at its next forward
            assert message == "the loss refused the targets", errors
            assert dp_warnings and dp_warnings[0].startswith(
                "DataParallel: the output of a forward on rank 1 under no_sync() never reached a backward"), dp_warnings
        elif "inside" in fault:
            assert message.startswith("DataParallel: the output of a forward on rank 1 under no_sync() never reached "
                                      "a backward"), errors
        elif fault.startswith("hook"):
            assert message.startswith("DataParallel: backward raised on rank 1 under no_sync(): ValueError: a "
                                      "non-finite gradient. Every rank ended this micro-batch"), errors
        else:
            assert message.startswith("DataParallel: the code between a forward and its backward (the loss?) raised "
                                      "on rank 1 under no_sync(): ValueError: the loss refused the targets"), errors
        if "keep" in fault:  # rank 0's cut-short backward left partial gradients: the step is refused everywhere
            assert len(errors) == 2 and errors[1][0] == "RuntimeError", errors
            assert errors[1][1].startswith("DataParallel: gradients of a micro-batch that failed under no_sync() "
                                           "(its backward cut short) are still accumulated on ranks 0, 1"), errors
        else:
            assert len(errors) == 1, errors
        for k, v in state.items():
            np.testing.assert_array_equal(v, results[0][2][k], err_msg=f"rank {rank}: {k}")
            if k.endswith(("weight", "bias")):
                np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15, err_msg=f"rank {rank}: {k}")


def reference(fault):
    return simulate(2, train, skip="step" if "keep" in fault else fault)[0][2]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_loss_raising_under_no_sync_ends_the_micro_batch_on_every_rank(fault):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = simulate(2, train, fault, (1,))
    assert_outcome(results, fault, reference(fault))


def test_under_mpiexec_a_loss_raising_under_no_sync_ends_the_micro_batch(tmp_path):
    ranks = faults_on_rank_1("test_data_parallel_failure_leftovers", "train_for_child", "FAULTS", tmp_path)
    for fault in FAULTS:
        assert_outcome([seen[fault] for seen in ranks], fault, reference(fault))


def train_for_child(comm, fault=None, faulty_ranks=()):
    """The child job's protocol: (error, grads_none, state), the error holding the errors and warnings."""
    errors, dp_warnings, state = train(comm, fault, faulty_ranks)
    return (errors, dp_warnings), None, state
