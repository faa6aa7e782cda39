"""A DataParallel step that fails on some ranks while the others are inside a collective that is not one of
DataParallel's buckets (SyncBatchNorm's statistics in forward, its gradient sums in backward) ends promptly on
every rank, and training goes on in step.

It used to hang: rank 1, its forward raising before a SyncBatchNorm layer (or its loss, or a caught
KeyboardInterrupt), went to the step's bucket exchange while rank 0 waited in the layer's allgather or
allreduce (simulate's deadlock error; under mpiexec the collective timeout aborted the job). Now SyncBatchNorm's
collectives are rounds that a rank leaving its step answers (distnn/distributed/sync_batchnorm_rounds.py): every
rank raises the failing rank's error ("DataParallel: forward raised on rank 1: FloatingPointError: ...", or the
abandoned step's), the step's gradients are dropped, and the next steps train as a fresh run that never had the
failed step (the oracle, to 1e-12, on the parameters; every rank's state bitwise equal). 2 and 3 simulated
ranks, and ``mpiexec -n 2`` (a child job with a deadline).
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

# where rank 1 fails: its forward raises before the first SyncBatchNorm, between the two, after the last
# (the others then wait in a backward round); its loss raises; a KeyboardInterrupt in forward between the two
# layers, or in backward between their two backward rounds; the last three end at its next forward
FAULTS = ["before-first", "between", "after-last", "loss", "interrupt-forward", "interrupt-backward"]
FORWARD_FAULTS = {"before-first", "between", "after-last"}


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.bn1 = nn.Linear(4, 8, dtype=np.float64), SyncBatchNorm(8, dtype=np.float64)
        self.fc2, self.bn2 = nn.Linear(8, 6, dtype=np.float64), SyncBatchNorm(6, dtype=np.float64)
        self.fc3 = nn.Linear(6, 3, dtype=np.float64)
        self.fault = None

    def _maybe_fail(self, where):
        if self.fault == where:
            raise FloatingPointError(f"a non-finite activation {where}")
        if self.fault == "interrupt-forward" and where == "between":
            raise KeyboardInterrupt

    def forward(self, x):
        self._maybe_fail("before-first")
        h = F.tanh(self.bn1(self.fc1(x)))
        self._maybe_fail("between")
        h = F.tanh(self.bn2(self.fc2(h)))
        self._maybe_fail("after-last")
        return self.fc3(h)


def _interrupt(grad):
    raise KeyboardInterrupt


def _batch(comm, step):
    rng = np.random.default_rng(100 * step + comm.rank)
    return distnn.Tensor(rng.standard_normal((3 + comm.rank, 4))), rng.integers(0, 3, 3 + comm.rank)


def train(comm, fault=None, faulty_ranks=(), steps=2, record=True):
    """With ``fault``, a first step that fails on ``faulty_ranks``, every rank catching what it raises; then
    ``steps`` clean steps. Returns ((type, message, the DataParallel warning or None) or None, whether every
    gradient was None after the failed step, the state at the end)."""
    distnn.manual_seed(0)
    model = _Net()
    dp = DataParallel(model, comm, bucket_mb=1e-6)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    error, grads_none = None, None
    with warnings.catch_warnings(record=True) if record else contextlib.nullcontext() as seen:
        if record:
            warnings.simplefilter("always")
        if fault is not None:
            mine = fault if comm.rank in faulty_ranks else None
            model.fault = mine
            # (a hook on fc2's output gradient: after bn2's backward round, before bn1's)
            handle = model.fc2.weight.register_hook(_interrupt) if mine == "interrupt-backward" else None
            x, y = _batch(comm, 99)
            opt.zero_grad()
            try:
                out = dp(x)
                if mine == "loss":
                    raise ValueError("the loss refused the targets")
                F.cross_entropy(out, y).backward()
            except (Exception, KeyboardInterrupt) as e:
                error = [type(e).__name__, str(e)]
            out = None
            grads_none = all(p.grad is None for p in model.parameters())
            model.fault = None
            if handle is not None:
                handle.remove()
        for step in range(steps):
            opt.zero_grad()
            x, y = _batch(comm, step)
            F.cross_entropy(dp(x), y).backward()
            opt.step()
    dp_warnings = [str(w.message) for w in seen or () if str(w.message).startswith("DataParallel")]
    if error is not None:
        error = tuple(error + [dp_warnings[0] if dp_warnings else None])
    return error, grads_none, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}


def _where(ranks):
    return f"on rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))}"


def assert_agreed(results, fault, faulty_ranks, reference):
    where = _where(faulty_ranks)
    errors = [error for error, _, _ in results]
    agreed = {"loss": f"DataParallel: the output of a forward {where} never reached a synchronizing backward",
              "interrupt-forward": f"DataParallel: forward raised {where}: KeyboardInterrupt",
              "interrupt-backward": f"DataParallel: backward was interrupted {where}"}.get(fault)
    for rank, error in enumerate(errors):
        assert error is not None, f"rank {rank} raised nothing"
        if fault in FORWARD_FAULTS:  # the failing rank's error, the same on every rank
            assert error[0] == "FloatingPointError", (rank, error)
            assert error[1].startswith(f"DataParallel: forward raised {where}: FloatingPointError: a non-finite "
                                       f"activation {fault}"), (rank, error)
            assert "SyncBatchNorm" not in error[1], (rank, error)  # (the ranks that waited add nothing)
            assert error[1] == errors[0][1] and error[2] is None, (rank, error)
        elif rank in faulty_ranks:  # its own error, then the agreed one as a warning
            assert error[0] == ("ValueError" if fault == "loss" else "KeyboardInterrupt"), (rank, error)
            assert len(faulty_ranks) == len(results) or (error[2] or "").startswith(agreed), (rank, error)
        else:
            assert error[0] == "RuntimeError" and error[1].startswith(agreed), (rank, error)
            assert "SyncBatchNorm" not in error[1], (rank, error)
    for rank, (_, grads_none, _) in enumerate(results):
        assert grads_none or (fault == "interrupt-backward" and rank in faulty_ranks), rank
    for _, _, state in results:
        for k, v in state.items():
            np.testing.assert_array_equal(v, results[0][2][k], err_msg=k)
            if k.endswith(("weight", "bias")):  # (running statistics may have seen the failed step's batch)
                np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15, err_msg=k)


def simulate_recording(n, fault, faulty_ranks):
    """simulate(n, train, ...) with the failing ranks' warnings recorded here (catch_warnings is process-wide)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        results = simulate(n, train, fault, faulty_ranks, record=False)
    dp_warnings = [str(w.message) for w in seen if str(w.message).startswith("DataParallel")]
    return [(None if error is None else error[:2] + (dp_warnings[0] if dp_warnings and r in faulty_ranks else None,),
             grads_none, state) for r, (error, grads_none, state) in enumerate(results)]


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("n,faulty_ranks", [(2, (1,)), (3, (0, 2))])
def test_a_step_failing_while_other_ranks_are_in_sync_batchnorm_ends_on_every_rank_and_training_goes_on(
        fault, n, faulty_ranks):
    reference = simulate(n, train)[0][2]  # a fresh run that never had the failed step
    assert_agreed(simulate_recording(n, fault, faulty_ranks), fault, faulty_ranks, reference)


def test_under_mpiexec_every_rank_ends_the_step_and_trains_on(tmp_path):
    ranks = faults_on_rank_1("test_data_parallel_outside_collectives", "train", "FAULTS", tmp_path)
    reference = simulate(2, train)[0][2]
    for fault in FAULTS:
        assert_agreed([seen[fault] for seen in ranks], fault, (1,), reference)


def test_a_normal_step_pays_one_closing_round_and_no_extra_round_trip_per_layer():
    """Per step on SyncBatchNorm's communicator: each layer's forward and backward round (a header and its
    payload, started together) and one closing header at the exchange; DataParallel's own: its buckets and the
    broadcast of the running statistics (float64 and int64: two), as before."""

    def run(comm):
        model = _Net()
        dp = DataParallel(model, comm, bucket_mb=1e-6)
        bn_comm = model.bn1._get_comm()
        counts = []
        for step in range(3):
            before, dp_before = bn_comm._seq, dp._comm._seq
            x, y = _batch(comm, step)
            F.cross_entropy(dp(x), y).backward()
            counts.append((bn_comm._seq - before, dp._comm._seq - dp_before - len(dp.bucket_layout)))
        return counts

    for counts in simulate(2, run):
        assert counts == [(2 * 2 * 2 + 1, 2)] * 3, counts


def test_a_rank_skipping_its_sync_batchnorm_forward_makes_every_rank_raise_naming_the_mismatch():
    """A data-dependent skip: rank 1 makes no forward in a step, only the step's exchange
    (finish_gradient_synchronization), while rank 0 waits in SyncBatchNorm's forward round. It used to deadlock
    (tests/test_simulate_deadlock.py had it as its example); now rank 1's exchange answers the round, and both
    ranks raise the same error, naming the mismatch. The next step trains on, in step."""

    def run(comm):
        distnn.manual_seed(0)
        model = _Net()
        dp = DataParallel(model, comm, bucket_mb=1e-6)
        errors = []
        for step in range(3):
            model.zero_grad()
            try:
                if comm.rank == 1 and step == 1:
                    dp.finish_gradient_synchronization()
                else:
                    x, y = _batch(comm, step)
                    F.cross_entropy(dp(x), y).backward()
            except RuntimeError as e:
                errors.append((step, str(e)))
        return errors, [to_numpy(p.grad).copy() for p in model.parameters()]

    (e0, g0), (e1, g1) = simulate(2, run)
    assert [s for s, _ in e0] == [s for s, _ in e1] == [1] and e0[0][1] == e1[0][1], (e0, e1)
    assert e0[0][1].startswith("DataParallel: forward raised on rank 0: RuntimeError: SyncBatchNorm: rank 1 began "
                               "DataParallel's gradient exchange while this rank was in a SyncBatchNorm forward"), e0
    for a, b in zip(g0, g1):  # (the last step's averaged gradients: the ranks are in step)
        np.testing.assert_array_equal(a, b)
