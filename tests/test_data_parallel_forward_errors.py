"""An error on some ranks BEFORE DataParallel's synchronizing backward begins, caught by the user's loop
(``try: loss_fn(ddp(x), y).backward() except ...: continue``), ends the step on every rank alike.

It used to go unnoticed: the other ranks went into backward and waited in the step's bucket allreduces,
and the failing rank, going on with its loop, paired its NEXT step's buckets with their current step
(gradients of different steps averaged; at the end a rank waiting for a partner that had run out of
steps: simulate's "still waits" failure, the collective timeout under mpiexec). Now:

* the wrapped module's forward raises on some ranks ("forward"): those ranks go through the step's
  exchange at once (zeros and a note) and every rank raises the same error naming the ranks and the
  exception (its type kept when built-in; the raising rank's own exception as ``__cause__``);
* the loss raises after a successful forward ("loss"), or a KeyboardInterrupt is caught (in the forward,
  the loss or mid-backward: "interrupt-*"): no collective then, so the failing rank finishes the abandoned
  step at its next DataParallel call (the next forward, or the next backward when the old output is still
  referenced), with a note (its forward never reached backward; its forward raised KeyboardInterrupt; its
  backward was interrupted): the other ranks raise that error, the failing rank (which raised its own)
  gets it as a warning and goes on with its step;
* an uncaught KeyboardInterrupt ends the run (simulated) or the job (mpiexec), as it did
  (tests/test_data_parallel_uncaught_interrupt.py).

The step's gradients are dropped on every rank and training goes on as a fresh run that never had the
step (the oracle, to 1e-12): 2 and 3 simulated ranks, one, some or all ranks failing, and
``mpiexec -n 2`` (a child job with a deadline). A normal step makes no extra collective.
"""
import contextlib
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


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8, dtype=np.float64), nn.Linear(8, 3, dtype=np.float64)
        self.fault = None

    def forward(self, x):
        h = F.tanh(self.fc1(x))
        if self.fault == "forward":
            raise FloatingPointError("a non-finite activation in forward")
        if self.fault == "interrupt-forward":
            raise KeyboardInterrupt
        return self.fc2(h)


def _loss(out, y, fault):
    if fault == "loss":
        raise ValueError("the loss refused the targets")
    if fault == "interrupt-loss":
        raise KeyboardInterrupt
    return F.cross_entropy(out, y)


def _batch(comm, step):
    rng = np.random.default_rng(100 * step + comm.rank)
    return distnn.Tensor(rng.standard_normal((3 + comm.rank, 4))), rng.integers(0, 3, 3 + comm.rank)


FAULTS = ["forward", "loss", "interrupt-forward", "interrupt-loss", "interrupt-backward"]


def _interrupt(grad):
    raise KeyboardInterrupt


def train(comm, fault=None, faulty_ranks=(), steps=2, keep_output=False, record=True, compression=None):
    """With ``fault``, a first step that fails before (interrupt-backward: in) its backward on ``faulty_ranks``,
    every rank catching what it raises (``keep_output``: the forward's output stays referenced by the loop);
    then ``steps`` clean steps.
    Returns ((type, message, type of __cause__, the DataParallel warning or None) or None, whether every
    gradient was None after the failed step, the parameters at the end). ``record=False``: warnings are left
    to the caller (simulated ranks are threads, and catch_warnings is process-wide)."""
    distnn.manual_seed(0)
    model = _Net()
    dp = DataParallel(model, comm, bucket_mb=1e-6, compression=compression)  # one bucket per parameter
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    error, grads_none, out = None, None, None
    with warnings.catch_warnings(record=True) if record else contextlib.nullcontext() as seen:
        if record:
            warnings.simplefilter("always")
        if fault is not None:
            mine = fault if comm.rank in faulty_ranks else None
            model.fault = mine
            # (mid-backward: after the buckets of fc2, whose gradients come first, have started)
            handle = model.fc1.weight.register_hook(_interrupt) if mine == "interrupt-backward" else None
            x, y = _batch(comm, 99)
            opt.zero_grad()
            try:
                if keep_output:
                    out = dp(x)
                    _loss(out, y, mine).backward()
                else:
                    _loss(dp(x), y, mine).backward()
            except (Exception, KeyboardInterrupt) as e:
                cause = e.__cause__
                error = [type(e).__name__, str(e), None if cause is None else type(cause).__name__]
            grads_none = all(p.grad is None for p in model.parameters())
            model.fault = None
            if handle is not None:
                handle.remove()
        for step in range(steps):
            opt.zero_grad()
            x, y = _batch(comm, step)
            out = dp(x)
            F.cross_entropy(out, y).backward()
            opt.step()
    dp_warnings = [str(w.message) for w in seen or () if str(w.message).startswith("DataParallel")]
    if error is not None:
        error = tuple(error + [dp_warnings[0] if dp_warnings else None])
    return error, grads_none, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}


def simulate_recording(n, *args, **kwargs):
    """simulate(n, train, ...) with every rank's warnings recorded here: each failing rank's warning is put
    into its result (one DataParallel warning per failing rank, all alike)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        results = simulate(n, train, *args, record=False, **kwargs)
    dp_warnings = [str(w.message) for w in seen if str(w.message).startswith("DataParallel")]
    faulty = args[1] if len(args) > 1 else ()
    if dp_warnings:
        assert len(dp_warnings) == len(faulty) and len(set(dp_warnings)) == 1, dp_warnings
    return [(error if error is None or r not in faulty else error[:3] + (dp_warnings[0] if dp_warnings else None,),
             grads_none, state) for r, (error, grads_none, state) in enumerate(results)]


def _where(ranks):
    return f"on rank{'s' if len(ranks) > 1 else ''} {', '.join(map(str, ranks))}"


def assert_agreed(results, fault, faulty_ranks, reference=None):
    """What every rank saw: see the module docstring. Then every rank trained alike (as ``reference``)."""
    where = _where(faulty_ranks)
    errors = [error for error, _, _ in results]
    for rank, error in enumerate(errors):
        assert error is not None, f"rank {rank} raised nothing"
        if fault == "forward":  # the same error everywhere, the cause on the raising ranks
            assert error[0] == "FloatingPointError", (rank, error)
            assert error[1].startswith(f"DataParallel: forward raised {where}: FloatingPointError: a non-finite "
                                       "activation in forward"), (rank, error)
            assert error[1] == errors[0][1], (rank, error)
            assert error[2] == ("FloatingPointError" if rank in faulty_ranks else None), (rank, error)
            assert error[3] is None, (rank, error)
            continue
        agreed = f"DataParallel: the output of a forward {where} never reached a synchronizing backward"
        if fault == "interrupt-backward":
            agreed = f"DataParallel: backward was interrupted {where} (a KeyboardInterrupt?)"
        if rank in faulty_ranks:  # its own exception, then the agreed error as a warning
            assert error[0] == ("ValueError" if fault == "loss" else "KeyboardInterrupt"), (rank, error)
            if fault == "interrupt-forward":
                agreed = f"DataParallel: forward raised {where}: KeyboardInterrupt"
            if len(faulty_ranks) < len(results):  # (all failing: nobody waited, nothing to say)
                assert error[3] is not None and error[3].startswith(agreed), (rank, error)
        else:
            if fault == "interrupt-forward":
                agreed = f"DataParallel: forward raised {where}: KeyboardInterrupt"
            assert error[0] == "RuntimeError", (rank, error)
            assert error[1].startswith(agreed), (rank, error)
            assert error[3] is None, (rank, error)
    for rank, (_, grads_none, _) in enumerate(results):
        # (an interrupted backward leaves its rank's gradients as they were: its next call drops them)
        assert grads_none or (fault == "interrupt-backward" and rank in faulty_ranks), rank
    for _, _, state in results:
        for k, v in state.items():
            np.testing.assert_array_equal(v, results[0][2][k], err_msg=k)
            if reference is not None:
                np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15, err_msg=k)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("n,faulty_ranks", [(2, (1,)), (3, (0, 2)), (3, (0, 1, 2))])
def test_an_error_before_backward_on_some_ranks_ends_the_step_on_every_rank_and_training_goes_on(
        fault, n, faulty_ranks):
    reference = simulate(n, train)[0][2]  # a fresh run that never had the failed step
    assert_agreed(simulate_recording(n, fault, faulty_ranks), fault, faulty_ranks, reference)


@pytest.mark.parametrize("fault", ["loss", "interrupt-loss"])
def test_an_output_still_referenced_is_found_unreached_when_the_next_backward_begins(fault):
    """``out = dp(x)`` keeps the failed step's output alive through the next forward: the next backward, whose
    graph does not reach it, finishes the abandoned step before its own exchange."""
    reference = simulate(2, train)[0][2]
    assert_agreed(simulate_recording(2, fault, (1,), keep_output=True), fault, (1,), reference)


@pytest.mark.parametrize("compression", ["fp16", "powersgd"])
@pytest.mark.parametrize("fault", ["forward", "loss"])
def test_the_step_ends_alike_through_compressed_buckets(compression, fault):
    assert_agreed(simulate_recording(2, fault, (1,), compression=compression), fault, (1,))


def test_inside_join_a_step_abandoned_just_before_joining_is_the_shadow_of_a_joined_rank():
    """Rank 0 has two batches, rank 1 one, whose loss raises, caught: rank 1 leaves its loop, and its join
    answers rank 0's steps as a rank without samples, so rank 0 trains as if rank 1 had joined at once (the
    oracle: rank 1 with no batch at all) and nobody is left waiting."""

    def run(comm, abandon):
        distnn.manual_seed(0)
        model = _Net()
        dp = DataParallel(model, comm, bucket_mb=1e-6)
        opt = SGD(model.parameters(), lr=0.1)
        errors = []
        with dp.join():
            for step in range(2 if comm.rank == 0 else int(abandon)):
                opt.zero_grad()
                x, y = _batch(comm, step)
                try:
                    _loss(dp(x), y, "loss" if comm.rank == 1 else None).backward()
                except ValueError as e:
                    errors.append(str(e))
                    continue
                opt.step()
        return errors, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}

    (e0, s0), (e1, s1) = simulate(2, run, True)
    reference = simulate(2, run, False)[0][1]
    assert e0 == [] and e1 == ["the loss refused the targets"]
    for k in s0:
        np.testing.assert_array_equal(s0[k], s1[k], err_msg=k)
        np.testing.assert_allclose(s0[k], reference[k], rtol=1e-12, atol=1e-15, err_msg=k)


def test_under_mpiexec_every_rank_ends_the_step_and_trains_on(tmp_path):
    ranks = faults_on_rank_1("test_data_parallel_forward_errors", "train", "FAULTS", tmp_path)
    reference = simulate(2, train)[0][2]
    for fault in FAULTS:
        assert_agreed([seen[fault] for seen in ranks], fault, (1,), reference)


def test_gradients_accumulated_under_no_sync_before_the_abandoned_step_ends_are_kept():
    """Rank 1's loss raises in step 0, its output kept (``out = dp(x)``); step 1 accumulates a micro-batch under
    no_sync first, so the abandoned step ends at the last micro-batch's forward: the micro-batch's gradients
    (in the bucket buffers the exchange overwrites) and its samples are kept, and step 1 equals a fresh run's
    (no step 0) on every rank."""

    def run(comm, fail):
        distnn.manual_seed(0)
        model = _Net()
        dp = DataParallel(model, comm, bucket_mb=1e-6)
        if fail:
            x, y = _batch(comm, 9)
            try:
                out = dp(x)
                _loss(out, y, "loss" if comm.rank == 1 else None).backward()
            except (ValueError, RuntimeError):
                pass
        for p in model.parameters():
            p.grad = None
        with dp.no_sync():
            x, y = _batch(comm, 1)
            out = dp(x)
            F.cross_entropy(out, y).backward()
        x, y = _batch(comm, 2)
        out = dp(x)
        F.cross_entropy(out, y).backward()
        return [to_numpy(p.grad).copy() for p in model.parameters()]

    with warnings.catch_warnings():  # (rank 1's warning; in the caller's thread: the filters are process-wide)
        warnings.simplefilter("ignore")
        got, want = simulate(2, run, True), simulate(2, run, False)
    for rank in range(2):
        for g, w in zip(got[rank], want[rank]):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("fault", ["loss", "interrupt-backward"])
def test_finish_gradient_synchronization_after_a_failed_step_raises_the_agreed_error_on_every_rank(fault):
    """A loop that calls finish_gradient_synchronization() after a backward that may not have run (or was
    interrupted): on the failing rank that call is the step's exchange, so it raises there (it used to average
    the other ranks' gradients with zeros, or with this rank's partial ones, silently). On the rank whose
    backward raised the agreed error, the call after it is a no-op (not an exchange the other never joins)."""

    def run(comm):
        model = _Net()
        dp = DataParallel(model, comm, bucket_mb=1e-6)
        handle = model.fc1.weight.register_hook(_interrupt) if fault == "interrupt-backward" and comm.rank else None
        errors = []
        for step in range(2):  # (the second: a clean step)
            x, y = _batch(comm, step)
            try:
                _loss(dp(x), y, "loss" if fault == "loss" and comm.rank == 1 and step == 0 else None).backward()
            except (ValueError, KeyboardInterrupt) as e:
                errors.append(("own", str(e)))
                if handle is not None:
                    handle.remove()
            except RuntimeError as e:
                errors.append(("agreed", str(e)))
            try:
                dp.finish_gradient_synchronization()
            except RuntimeError as e:
                errors.append(("agreed", str(e)))
            if step == 0:
                grads_none, seq = [p.grad is None for p in model.parameters()], dp._comm._seq
        return errors, grads_none, dp._comm._seq - seq - len(dp.bucket_layout), dp.num_syncs

    (e0, g0, s0, n0), (e1, g1, s1, n1) = simulate(2, run)
    assert [kind for kind, _ in e0] == ["agreed"] and [kind for kind, _ in e1] == ["own", "agreed"], (e0, e1)
    assert e0[0][1] == e1[1][1] and e0[0][1].startswith(
        "DataParallel: the output of a forward on rank 1 never reached a synchronizing backward" if fault == "loss"
        else "DataParallel: backward was interrupted on rank 1 (a KeyboardInterrupt?)"), e0
    assert all(g0) and all(g1)
    assert s0 == s1 == 0 and n0 == n1 == 2  # (the clean step: its buckets only)


def test_a_forward_error_under_no_sync_or_no_grad_is_raised_as_it_is_on_its_rank_alone():
    """No synchronization follows such a forward: no collective, and its samples are not counted."""

    def run(comm):
        distnn.manual_seed(0)
        model = _Net()
        dp = DataParallel(model, comm)
        errors = []
        for context in (dp.no_sync, distnn.no_grad):
            model.fault = "forward"
            with context():
                try:
                    if comm.rank == 1:  # (rank 0's own forward would count its samples under no_sync)
                        dp(_batch(comm, 5)[0])
                except FloatingPointError as e:
                    errors.append(str(e))
            model.fault = None
        before = dp._comm._seq
        x, y = _batch(comm, 0)
        F.cross_entropy(dp(x), y).backward()
        return errors, dp._comm._seq - before - len(dp.bucket_layout), [to_numpy(p.grad).copy() for p in
                                                                         model.parameters()]

    def plain(comm):
        distnn.manual_seed(0)
        model = _Net()
        dp = DataParallel(model, comm)
        x, y = _batch(comm, 0)
        F.cross_entropy(dp(x), y).backward()
        return [to_numpy(p.grad).copy() for p in model.parameters()]

    (e0, s0, g0), (e1, s1, g1) = simulate(2, run)
    assert e0 == [] and e1 == ["a non-finite activation in forward"] * 2
    assert s0 == s1 == 0  # the step's bucket allreduces only
    for got, want in zip(g0, simulate(2, plain)[0]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_a_normal_step_makes_no_extra_collective_before_or_after_a_failed_one():
    def run(comm):
        model = _Net()
        dp = DataParallel(model, comm, bucket_mb=1e-6)
        seq = []
        for step, fault in enumerate((None, "forward", None, "loss", None, None)):
            model.fault = fault if comm.rank == 1 else None
            before = dp._comm._seq
            x, y = _batch(comm, step)
            try:
                _loss(dp(x), y, fault if comm.rank == 1 else None).backward()
            except (ValueError, RuntimeError, FloatingPointError):
                pass
            model.fault = None
            seq.append(dp._comm._seq - before)
        return seq, len(dp.bucket_layout)

    with warnings.catch_warnings():  # (rank 1's warning; in the caller's thread: the filters are process-wide)
        warnings.simplefilter("ignore")
        (seq0, buckets), (seq1, _) = simulate(2, run)
    assert buckets == 4
    assert seq0[0] == seq0[2] == seq0[5] == buckets and seq1[0] == seq1[2] == seq1[5] == buckets, (seq0, seq1)
    # (the failed steps' exchange, plus the gather of the notes, lands in the failing step on rank 0 and
    # in the failing or the next call on rank 1)
    assert sum(seq0) == sum(seq1), (seq0, seq1)


def test_an_output_every_rank_drops_ends_its_step_silently_and_the_next_step_is_a_fresh_runs():
    """Evaluation outside no_grad() on every rank (a grad-enabled forward whose output no rank runs backward
    from): nobody waited, so nothing is said (as PyTorch's DDP), and its samples do not weigh in the next step:
    the next step's gradients are a fresh run's."""

    def run(comm, evaluate_first):
        distnn.manual_seed(0)
        model = _Net()
        dp = DataParallel(model, comm, bucket_mb=1e-6)
        if evaluate_first:
            x, _ = _batch(comm, 7)
            dp(x).data.argmax(axis=-1)  # (the output dropped, no backward)
        x, y = _batch(comm, 1)
        F.cross_entropy(dp(x), y).backward()
        return [to_numpy(p.grad).copy() for p in model.parameters()]

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = simulate(2, run, True)
    assert not [str(w.message) for w in seen if "DataParallel" in str(w.message)]
    want = simulate(2, run, False)
    for rank in range(2):
        for g, w in zip(got[rank], want[rank]):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-15)
