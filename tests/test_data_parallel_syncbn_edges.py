"""SyncBatchNorm rounds that a failing DataParallel step left open before: a SyncBatchNorm layer OUTSIDE the
wrapped model on its communicator (a head applied to the wrapper's output), a forward that raises under
``no_sync()`` (gradient accumulation), and ranks whose calls differ in kind (one in a forward round, another in
a backward round: under MPI two different collectives met, which is undefined).

The oracle: every rank raises the same error, message asserted, and training goes on: the parameters after
the next steps equal, to 1e-12, a run in which every rank skipped what failed (the step, or the micro-batch),
and are bitwise equal across ranks. 2 simulated ranks, and ``mpiexec -n 2`` (a child job whose ranks wait at
most the 60 s collective timeout, with a 240 s deadline on the whole job).
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

# head-forward: rank 1's model raises in forward while rank 0 is in the head's first forward round (the model has
# no SyncBatchNorm: only the head's layer shares the wrapper's communicator); head-loss: rank 1's loss raises after
# the head (rank 0 waits in the head's backward round); no-sync-forward: rank 1's model raises in a micro-batch under
# no_sync() before its first SyncBatchNorm; no-sync-backward: a hook on fc2's weight gradient raises there, between
# the two SyncBatchNorm backward rounds; kinds / kinds-first: rank 1 skips the second SyncBatchNorm and the head,
# so its first backward round meets rank 0's forward round (after a clean step, whose rounds the ranks predict; in the first step)
FAULTS = ["head-forward", "head-loss", "no-sync-forward", "no-sync-backward", "kinds", "kinds-first"]
WARMUP = {"kinds": 1}
BN_INSIDE = {"no-sync-forward", "no-sync-backward", "kinds", "kinds-first"}
NO_SYNC = {"no-sync-forward", "no-sync-backward"}
MISMATCH = ("SyncBatchNorm: the ranks' collectives do not match: rank 0: forward (its statistics' allgather) of 13 "
            "numbers; rank 1: backward (its gradient sums' allreduce) of 16 numbers")


class _Net(nn.Module):
    def __init__(self, bn_inside):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8, dtype=np.float64), nn.Linear(8, 6, dtype=np.float64)
        self.bn1 = SyncBatchNorm(8, dtype=np.float64) if bn_inside else None
        self.bn2 = SyncBatchNorm(6, dtype=np.float64) if bn_inside else None
        self.fault = None

    def forward(self, x):
        if self.fault in ("head-forward", "no-sync-forward"):
            raise FloatingPointError(f"a non-finite activation ({self.fault})")
        h = self.fc1(x)
        h = F.tanh(h if self.bn1 is None else self.bn1(h))
        h = self.fc2(h)
        return h if self.bn2 is None or self.fault in ("kinds", "kinds-first") else self.bn2(h)


def _raise(grad):
    raise FloatingPointError("a non-finite gradient (no-sync-backward)")


def _batch(comm, step, micro=0):
    rng = np.random.default_rng(1000 * step + 10 * micro + comm.rank)
    return distnn.Tensor(rng.standard_normal((3 + comm.rank, 4))), rng.integers(0, 6, 3 + comm.rank)


def train(comm, fault=None, faulty_ranks=(), steps=2, record=True, skip=None):
    """Steps of two micro-batches (the first under no_sync; one for the head faults) through a model and a SyncBatchNorm head outside it;
    with ``fault``, the failing step comes after WARMUP[fault] clean ones, every rank catching what it raises
    (``skip``: the fault's run without it, every rank skipping what fails). Returns ((type, message, the
    DataParallel warning or None) or None, whether every gradient was None after the failure, the state)."""
    name = fault or skip
    distnn.manual_seed(0)
    model = _Net(name in BN_INSIDE)
    dp = DataParallel(model, comm, bucket_mb=1e-6)
    head = SyncBatchNorm(6, affine=False, dtype=np.float64)  # (built after the wrapper: its split comes later)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    error, grads_none = None, None
    failing = WARMUP.get(name, 0) if name else -1
    with warnings.catch_warnings(record=True) if record else contextlib.nullcontext() as seen:
        if record:
            warnings.simplefilter("always")
        for step in range(failing + 1 + steps):
            if step == failing and skip is not None and skip not in NO_SYNC:
                continue  # (the reference: the failed step is skipped on every rank)
            opt.zero_grad()
            for micro in (1,) if name in ("head-forward", "head-loss") else (0, 1):
                mine = fault if step == failing and comm.rank in faulty_ranks else None
                if step == failing and skip in NO_SYNC and micro == 0:
                    continue  # (the reference: the failed micro-batch is skipped on every rank)
                model.fault = mine if (micro == 0) == (name in NO_SYNC) else None
                x, y = _batch(comm, step, micro)
                hook = model.fc2.weight.register_hook(_raise) if model.fault == "no-sync-backward" else None
                try:
                    with dp.no_sync() if micro == 0 else contextlib.nullcontext():
                        out = dp(x)
                        out = out if mine in ("kinds", "kinds-first") and micro == 1 else head(out)
                        if model.fault == "head-loss" or mine == "head-loss" and micro == 1:
                            raise ValueError("the loss refused the targets")
                        F.cross_entropy(out, y).backward()
                except (Exception, KeyboardInterrupt) as e:
                    assert step == failing, (step, micro, e)
                    error = [type(e).__name__, str(e)]
                    grads_none = all(p.grad is None for p in model.parameters())
                    if name not in NO_SYNC:
                        break
                    opt.zero_grad()  # (what the failed micro-batch's backward accumulated before it raised)
                finally:
                    out = None
                    if hook is not None:
                        hook.remove()
                    model.fault = None
            if step != failing or name in NO_SYNC or skip is not None:
                dp.finish_gradient_synchronization()
                opt.step()
    dp_warnings = [str(w.message) for w in seen or () if str(w.message).startswith("DataParallel")]
    if error is not None:
        error = tuple(error + [dp_warnings[0] if dp_warnings else None])
    return error, grads_none, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}


def reference(fault):
    return simulate(2, train, skip=fault)[0][2]


def assert_agreed(results, fault, reference_state):
    errors = [error for error, _, _ in results]
    for rank, error in enumerate(errors):
        assert error is not None, f"rank {rank} raised nothing"
        if fault == "head-forward":
            assert error[:2] == ("FloatingPointError", "DataParallel: forward raised on rank 1: FloatingPointError: "
                                 "a non-finite activation (head-forward). " + error[1].split(". ", 1)[1]), error
        elif fault in NO_SYNC:
            what = "forward raised on rank 1 under no_sync(): FloatingPointError: a non-finite activation" \
                if fault == "no-sync-forward" else "backward raised on rank 1 under no_sync(): FloatingPointError: " \
                "a non-finite gradient"
            assert error[0] == "FloatingPointError", error
            assert error[1].startswith(f"DataParallel: {what} ({fault}). Every rank ended this micro-batch"), error
        elif fault == "head-loss":
            if rank == 1:  # its own error, then the agreed one as a warning at its next call
                assert error[0] == "ValueError" and (error[2] or "").startswith(
                    "DataParallel: the output of a forward on rank 1 never reached a synchronizing backward"), error
            else:
                assert error[0] == "RuntimeError" and error[1].startswith(
                    "DataParallel: the output of a forward on rank 1 never reached a synchronizing backward"), error
        else:  # kinds: each rank's round raised the same mismatch, agreed in the step's exchange
            assert error[0] == "RuntimeError", error
            assert error[1].startswith(f"DataParallel: forward raised on rank 0: RuntimeError: {MISMATCH}"), error
            assert f"backward raised on rank 1: RuntimeError: {MISMATCH}" in error[1], error
        if fault != "head-loss":
            assert error[:2] == errors[0][:2], (rank, error)
    for rank, (_, grads_none, _) in enumerate(results):
        # (head-loss: rank 1 keeps its micro-batches' until its next call; no-sync-backward: the partial gradients of
        # the backward that raised, dropped by the loop's zero_grad())
        assert grads_none or fault == "head-loss" and rank == 1 or fault == "no-sync-backward", rank
    for _, _, state in results:
        for k, v in state.items():
            np.testing.assert_array_equal(v, results[0][2][k], err_msg=k)
            if k.endswith(("weight", "bias")):
                np.testing.assert_allclose(v, reference_state[k], rtol=1e-12, atol=1e-15, err_msg=k)


@pytest.mark.parametrize("fault", FAULTS)
def test_every_rank_raises_the_same_error_and_training_goes_on(fault):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        results = simulate(2, train, fault, (1,), record=False)
    dp_warnings = [str(w.message) for w in seen if str(w.message).startswith("DataParallel")]
    results = [(None if e is None else e[:2] + (dp_warnings[0] if dp_warnings and r == 1 else None,), g, s)
               for r, (e, g, s) in enumerate(results)]
    assert_agreed(results, fault, reference(fault))


def test_under_mpiexec_every_rank_raises_the_same_error_and_trains_on(tmp_path):
    ranks = faults_on_rank_1("test_data_parallel_syncbn_edges", "train", "FAULTS", tmp_path)
    for fault in FAULTS:
        assert_agreed([seen[fault] for seen in ranks], fault, reference(fault))
