"""A micro-batch's backward under ``no_sync()`` that raises on ONE rank (a gradient hook, a custom Function's
backward), in a model WITHOUT SyncBatchNorm: the rank's partial gradients (some parameters got the micro-batch's
gradient, some not) must not reach the next synchronizing step silently.

The loop catches the error on rank 1 alone (no other rank sees it: nothing is exchanged under ``no_sync()``) and
goes on. *-zero: it calls ``zero_grad()`` after the failure, which drops the partial gradients and those of the
step's earlier micro-batches on rank 1: the step then equals, to 1e-12, a run in which rank 1 skipped every
micro-batch of the step up to the failed one (their samples dropped from its weight, as their gradients were).
*-keep: no ``zero_grad()``: every rank refuses the step ("gradients of a micro-batch that failed under no_sync()
... still accumulated on rank 1"), drops its gradients, and training after it equals a run without the step.
The failing micro-batch is the step's first (*-first) or its second, after a no_sync() micro-batch that
succeeded (hook-*, function-*). Parameters are bitwise equal across ranks. Micro-batch sizes differ between ranks
and micro-batches, so a wrong sample weight shows. 2 simulated ranks, and ``mpiexec -n 2`` (a child job with a
deadline, under the collective timeout: no rank is left waiting).
"""
import contextlib
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn.autograd.function import Function
from distnn.backend import to_numpy
from distnn.distributed import DataParallel, simulate
from distnn.optim import SGD
from mpi_child import faults_on_rank_1

FAULTS = ["hook-zero", "hook-keep", "function-zero", "function-keep", "hook-first-zero", "function-first-keep"]
MICROS = 3  # micro-batches a step: the first two under no_sync()


class _Fails(Function):
    """Identity whose backward raises: fc2's gradients are accumulated by then, fc1's not."""

    def forward(self, x):
        return x

    def backward(self, g):
        raise FloatingPointError("non-finite gradient in _Fails")


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8, dtype=np.float64), nn.Linear(8, 6, dtype=np.float64)
        self.fail = False

    def forward(self, x):
        h = F.tanh(self.fc1(x))
        return self.fc2(_Fails.apply(h) if self.fail else h)


def _raise(grad):
    raise ValueError("a refused gradient")


def _batch(comm, step, micro):
    rng = np.random.default_rng(1000 * step + 10 * micro + comm.rank)
    n = 2 + micro + 3 * comm.rank * (micro + 1)
    return distnn.Tensor(rng.standard_normal((n, 4))), rng.integers(0, 6, n)


def _failing_micro(fault):
    return 0 if "first" in fault else 1


def train(comm, fault=None, faulty_ranks=(), skip=None, steps=3):
    """Steps of MICROS micro-batches; in step 0 rank 1's backward of micro-batch ``_failing_micro`` raises.
    ``skip``: the reference: *-zero, rank 1 skips step 0's micro-batches up to the failing one; *-keep, every
    rank skips step 0. Returns (errors [(type, message)] in order, DataParallel warnings, the state)."""
    distnn.manual_seed(0)
    model = _Net()
    dp = DataParallel(model, comm, bucket_mb=1e-6)
    opt = SGD(model.parameters(), lr=0.5, momentum=0.9)
    errors = []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for step in range(steps):
            if skip and "keep" in skip and step == 0:
                continue
            opt.zero_grad()
            refused = False
            for micro in range(MICROS):
                if skip and "zero" in skip and step == 0 and comm.rank == 1 and micro <= _failing_micro(skip):
                    continue
                mine = fault if step == 0 and micro == _failing_micro(fault or "") and comm.rank in faulty_ranks \
                    else None
                x, y = _batch(comm, step, micro)
                hook = model.fc2.weight.register_hook(_raise) if (mine or "").startswith("hook") else None
                model.fail = (mine or "").startswith("function")
                try:
                    with dp.no_sync() if micro < MICROS - 1 else contextlib.nullcontext():
                        F.cross_entropy(dp(x), y).backward()
                except Exception as e:
                    errors.append((type(e).__name__, str(e)))
                    if micro == MICROS - 1:
                        refused = True
                    elif "zero" in mine:
                        opt.zero_grad()
                finally:
                    model.fail = False
                    if hook is not None:
                        hook.remove()
            if not refused:
                opt.step()
    dp_warnings = [str(w.message) for w in seen if str(w.message).startswith("DataParallel")]
    return errors, dp_warnings, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}


def assert_outcome(results, fault, reference):
    own = ("ValueError", "a refused gradient") if fault.startswith("hook") else \
        ("FloatingPointError", "non-finite gradient in _Fails")
    for rank, (errors, dp_warnings, state) in enumerate(results):
        assert not dp_warnings, dp_warnings
        expected = [own] if rank == 1 else []
        if "keep" in fault:  # the partial gradients were kept: the step is refused on every rank
            assert len(errors) == len(expected) + 1 and errors[-1][0] == "RuntimeError", (rank, errors)
            assert errors[-1][1].startswith("DataParallel: gradients of a micro-batch that failed under no_sync() "
                                            "(its backward cut short) are still accumulated on rank 1"), errors
            assert "zero_grad()" in errors[-1][1], errors
            errors = errors[:-1]
        assert errors == expected, (rank, errors)
        for k, v in state.items():
            np.testing.assert_array_equal(v, results[0][2][k], err_msg=f"rank {rank}: {k}")
            np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15, err_msg=f"rank {rank}: {k}")


def reference(fault):
    return simulate(2, train, skip=fault)[0][2]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_backward_raising_under_no_sync_on_one_rank_is_made_right_or_refused_everywhere(fault):
    assert_outcome(simulate(2, train, fault, (1,)), fault, reference(fault))


def test_the_reference_runs_differ_from_a_run_that_keeps_the_partial_gradients():
    """The oracle can tell: the failed micro-batch's samples kept (zero-run) or the step kept (keep-run) differ."""
    zero, keep, plain = reference("hook-zero"), reference("hook-keep"), simulate(2, train)[0][2]
    assert not np.allclose(zero["fc1.weight"], plain["fc1.weight"], rtol=1e-6)
    assert not np.allclose(keep["fc1.weight"], plain["fc1.weight"], rtol=1e-6)


def train_for_child(comm, fault=None, faulty_ranks=()):
    """The child job's protocol: (error, grads_none, state), the error holding the errors and warnings."""
    errors, dp_warnings, state = train(comm, fault, faulty_ranks)
    return (errors, dp_warnings), None, state


def test_under_mpiexec_each_failure_is_made_right_or_refused_on_every_rank(tmp_path):
    ranks = faults_on_rank_1("test_data_parallel_nosync_backward_raise", "train_for_child", "FAULTS", tmp_path)
    for fault in FAULTS:
        seen = [([tuple(e) for e in s[fault][0][0]], s[fault][0][1], s[fault][2]) for s in ranks]  # (from JSON)
        assert_outcome(seen, fault, reference(fault))
