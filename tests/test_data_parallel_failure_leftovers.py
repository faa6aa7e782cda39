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
    # (simulated ranks share the warnings machinery: a rank's record may hold another's warning)
    dp_warnings = [w for _, warned, _ in results for w in warned]
    for rank, (errors, _, state) in enumerate(results):
        assert errors, f"rank {rank} raised nothing"
        kind, message = errors[0]
        assert kind == ("RuntimeError" if "inside" in fault and rank == 0 else "ValueError"), (rank, errors)
        if "inside" in fault and rank == 1:  # its own error, then the agreed one as a warning at its next forward
            assert message == "the loss refused the targets", errors
            assert len(dp_warnings) == 1 and dp_warnings[0].startswith(
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


# A synchronizing step abandoned on rank 1 (its loss raises in the step's synchronizing micro-batch, after a
# no_sync() one), without SyncBatchNorm. zero-first: the loop calls zero_grad() as each step begins;
# zero-last: after each optimizer step only, so the failure leaves rank 1's no_sync() gradients in place
# (they must not reach the next step); kept / kept-zero: the loop keeps the failed output until its next
# step's second forward rebinds it (settled after the next step's first micro-batch), calling zero_grad() as
# each step begins or not (then the next step is refused on every rank); count-before: every rank set the
# failed step's count (set_num_samples) before its forwards, and no count for the next step (rank 1 must not
# keep it); count-after: every rank sets the next step's count right after the failure (kept)
STEP_FAULTS = ["zero-first", "zero-last", "kept-zero", "kept", "count-before", "count-after"]


class _Plain(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8, dtype=np.float64), nn.Linear(8, 6, dtype=np.float64)
        self.fault = False

    def forward(self, x):
        if self.fault:
            raise FloatingPointError("a non-finite activation")
        return self.fc2(F.tanh(self.fc1(x)))


def _count(comm, step):
    return sum(len(_batch(comm, step, m)[1]) for m in (0, 1)) - 1  # (as if a padded row were masked out)


def train_step(comm, fault=None, faulty_ranks=(), skip=None, skipped=1, steps=3):
    """Steps of two micro-batches; in step 0 rank 1's loss raises in the synchronizing one (``skip``: the
    reference, every rank skips the first ``skipped`` steps). Returns (errors, DataParallel warnings, state)."""
    name = fault or skip
    distnn.manual_seed(0)
    model = _Plain()
    dp = DataParallel(model, comm, bucket_mb=1e-6)
    opt = SGD(model.parameters(), lr=0.5, momentum=0.9)
    errors, out = [], None
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for step in range(steps):
            if skip and step < skipped:
                if name == "count-after":
                    dp.set_num_samples(_count(comm, 1))
                continue
            if name != "zero-last" and name != "kept":
                opt.zero_grad()
            if name == "count-before" and step == 0:
                dp.set_num_samples(_count(comm, 0))
            failed = False
            for micro in (0, 1):
                x, y = _batch(comm, step, micro)
                try:
                    with dp.no_sync() if micro == 0 else contextlib.nullcontext():
                        out = dp(x)
                        if fault and step == 0 and micro == 1 and comm.rank in faulty_ranks:
                            raise ValueError("the loss refused the targets")
                        F.cross_entropy(out, y).backward()
                except Exception as e:
                    errors.append((type(e).__name__, str(e)))
                    failed = True
                if not (name or "").startswith("kept"):
                    out = None
                if failed:
                    if name == "count-after":
                        dp.set_num_samples(_count(comm, 1))
                    break
            if not failed:
                opt.step()
                if name in ("zero-last", "kept"):
                    opt.zero_grad()
    dp_warnings = [str(w.message) for w in seen if str(w.message).startswith("DataParallel")]
    return errors, dp_warnings, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}


def assert_step_outcome(results, fault, reference):
    # (simulated ranks share the warnings machinery: a rank's record may hold another's warning)
    every_warning = [w for _, dp_warnings, _ in results for w in dp_warnings]
    for rank, (errors, _, state) in enumerate(results):
        assert errors, f"rank {rank} raised nothing"
        if rank == 1:
            assert errors[0] == ("ValueError", "the loss refused the targets"), errors
            dp_warnings = [w for w in every_warning if "on rank 1 never reached" in w]
            assert len(dp_warnings) == 1 and dp_warnings[0].startswith(
                "DataParallel: the output of a forward on rank 1 never reached a synchronizing backward"), dp_warnings
        else:
            assert errors[0][0] == "RuntimeError" and errors[0][1].startswith(
                "DataParallel: the output of a forward on rank 1 never reached a synchronizing backward"), errors
        if fault == "kept":  # the next step refused on every rank: rank 1 still held the failed step's gradients
            assert len(errors) == 2 and errors[1][0] == "RuntimeError", errors
            assert errors[1][1].startswith("DataParallel: gradients accumulated under no_sync() for a step that was "
                                           "abandoned were still held on rank 1"), errors
        else:
            assert len(errors) == 1, errors
        for k, v in state.items():
            np.testing.assert_array_equal(v, results[0][2][k], err_msg=f"rank {rank}: {k}")
            np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15, err_msg=f"rank {rank}: {k}")


def step_reference(fault):
    if fault == "kept":  # (steps 0 and 1 skipped: 1 was refused)
        return simulate(2, train_step, skip=fault, skipped=2)[0][2]
    return simulate(2, train_step, skip=fault)[0][2]


@pytest.mark.parametrize("fault", STEP_FAULTS)
def test_an_abandoned_step_leaves_no_gradients_or_count_on_its_rank(fault):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = simulate(2, train_step, fault, (1,))
    assert_step_outcome(results, fault, step_reference(fault))


def train_for_child(comm, fault=None, faulty_ranks=()):
    """The child job's protocol: (error, grads_none, state), the error holding the errors and warnings."""
    errors, dp_warnings, state = (train_step if fault in STEP_FAULTS else train)(comm, fault, faulty_ranks)
    return (errors, dp_warnings), None, state


ALL_FAULTS = FAULTS + STEP_FAULTS


def test_under_mpiexec_each_failure_ends_alike_and_trains_on(tmp_path):
    ranks = faults_on_rank_1("test_data_parallel_failure_leftovers", "train_for_child", "ALL_FAULTS", tmp_path)
    for fault in ALL_FAULTS:
        seen = [([tuple(e) for e in s[fault][0][0]], s[fault][0][1], s[fault][2]) for s in ranks]  # (from JSON)
        if fault in STEP_FAULTS:
            assert_step_outcome(seen, fault, step_reference(fault))
        else:
            assert_outcome(seen, fault, reference(fault))


# Several wrappers on one communicator with SyncBatchNorm, used in turn (an ensemble's members trained one after
# another, the earlier ones kept alive): each trains as it would alone. A deep-copied SyncBatchNorm is covered
# as the layer it copies.
def _in_turn(comm, keep_first):
    """Two steps of a first wrapped _Net (kept alive when ``keep_first``), then two of a second one built on the
    same communicator: the second's parameters."""
    first = None
    if keep_first:
        distnn.manual_seed(1)
        first = DataParallel(_Net(comm, False), comm)
        for step in range(2):
            x, y = _batch(comm, step, 1)
            F.cross_entropy(first(x), y).backward()
    distnn.manual_seed(0)
    model = _Net(comm, False)
    dp = DataParallel(model, comm)
    opt = SGD(model.parameters(), lr=0.1)
    for step in range(2):
        opt.zero_grad()
        x, y = _batch(comm, step, 0)
        F.cross_entropy(dp(x), y).backward()
        opt.step()
    assert first is None or first.module is not model
    return {k: to_numpy(v).copy() for k, v in model.state_dict().items()}


def test_wrappers_with_syncbatchnorm_trained_in_turn_on_one_communicator_each_train_as_alone():
    alone = simulate(2, _in_turn, False)
    after = simulate(2, _in_turn, True)
    for rank in range(2):
        for k, v in alone[rank].items():
            np.testing.assert_array_equal(after[rank][k], v, err_msg=k)
            np.testing.assert_array_equal(after[rank][k], after[0][k], err_msg=k)


def _deep_copied_head(comm, fault=None):
    """Rank 1's model raises in forward (``fault``) while rank 0 is in the first forward round of a head deep-copied
    from a SyncBatchNorm (never run) after the wrapper was built; then two clean steps."""
    import copy

    distnn.manual_seed(0)
    model = _Plain()
    dp = DataParallel(model, comm, bucket_mb=1e-6)
    head = copy.deepcopy(SyncBatchNorm(6, affine=False, dtype=np.float64))
    opt = SGD(model.parameters(), lr=0.1)
    error = None
    for step in range(3):
        if step == 0 and fault is None:
            continue
        opt.zero_grad()
        x, y = _batch(comm, step, 1)
        model.fault = fault is not None and step == 0 and comm.rank == 1
        try:
            F.cross_entropy(head(dp(x)), y).backward()
            opt.step()
        except (FloatingPointError, RuntimeError) as e:
            error = (type(e).__name__, str(e))
        model.fault = False
    return error, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}


def test_a_deep_copied_syncbatchnorm_head_is_ended_by_a_failing_step_as_the_layer_it_copies():
    reference = simulate(2, _deep_copied_head)[0][1]
    results = simulate(2, _deep_copied_head, "forward")
    for error, state in results:
        assert error is not None and error[0] == "FloatingPointError" and error[1].startswith(
            "DataParallel: forward raised on rank 1: FloatingPointError: a non-finite activation"), error
        for k, v in state.items():
            np.testing.assert_array_equal(v, results[0][1][k], err_msg=k)
            np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15, err_msg=k)
