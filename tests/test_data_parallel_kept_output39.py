"""A forward's output that the loop keeps referenced after its loss raised on one rank (in a variable, a list,
the exception's traceback), past that rank's NEXT forward, with SyncBatchNorm in the model: the rank's next
forward meets the other ranks' backward of the failed forward in a SyncBatchNorm round.

Before, every rank raised "the ranks' collectives do not match" (naming no cause), the ranks fell out of step by
a micro-batch or a step (a step paired with another's, and at the end a rank waiting for one that had run out),
and the kept output, once let go, ended another micro-batch later. Now the round says which rank ran ahead
(SyncBatchNorm's header carries whether the rank holds an output no backward reached): the ranks in the backward
raise ``ForwardRanAhead`` ("SyncBatchNorm: rank 1 began a forward while rank 0 ran a backward: the output of a
forward on rank 1 never reached the backward the others run ..."), in that backward; rank 1, which raised its
own error already, gets it as a warning, ends the kept output's micro-batch (forgotten) or step (its exchange, as
for an abandoned step) and runs its forward again, now paired with the others' next one.

micro-sync-next: two micro-batches a step, the loss of the first (under no_sync()) raises on rank 1, and the next
forward is the step's synchronizing one; micro-nosync-next: three, the next forward is under no_sync() too (the
loop calls zero_grad() after a failed micro-batch: the step is then a run without that micro-batch on every
rank); step: one batch a step, the step's loss raises on rank 1, the output kept into the next step (the failed
step is dropped on every rank). Oracles: the errors (messages asserted), parameters bitwise equal across ranks
and equal, to 1e-12, to a run without what failed. 2 simulated ranks, and ``mpiexec -n 2`` / ``-n 3`` child jobs.
"""
import contextlib
import warnings

import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn.backend import to_numpy
from distnn.distributed import DataParallel, simulate
from distnn.optim import SGD
from mpi_child import faults_on_rank_1
from test_data_parallel_failure_leftovers import _batch, _Net

pytestmark = pytest.mark.timeout(300)

MICROS = {"micro-sync-next": 2, "micro-nosync-next": 3, "step": 1}
FAULTS = list(MICROS)


def ahead(size):
    behind = "rank 0" if size == 2 else "ranks " + ", ".join(str(r) for r in range(size) if r != 1)
    return (f"SyncBatchNorm: rank 1 began a forward while {behind} ran a backward: the output of a forward on rank 1 "
            "never reached the backward the others run"), behind


def train(comm, fault=None, faulty_ranks=(), skip=None, micros=None, steps=3):
    """Steps of MICROS[fault] micro-batches; in step 0 rank 1's loss of micro-batch 0 raises, its output kept until
    the end. ``skip``: the reference (every rank skips step 0's micro-batch 0; with one micro-batch, step 0).
    Returns (errors, DataParallel warnings, state)."""
    micros = micros or MICROS[fault or skip]
    distnn.manual_seed(0)
    model = _Net(comm, False)
    dp = DataParallel(model, comm, bucket_mb=1e-6)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    errors, kept = [], []
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for step in range(steps):
            opt.zero_grad()
            failed = False
            for micro in range(micros):
                if skip and step == 0 and micro == 0:
                    failed = micros == 1
                    continue
                x, y = _batch(comm, step, micro)
                try:
                    with dp.no_sync() if micro < micros - 1 else contextlib.nullcontext():
                        try:  # (caught inside the block: leaving it would end the micro-batch there)
                            out = dp(x)
                            if fault and step == 0 and micro == 0 and comm.rank in faulty_ranks:
                                kept.append(out)
                                raise ValueError("the loss refused the targets")
                            F.cross_entropy(out, y).backward()
                        except ValueError as e:
                            errors.append((type(e).__name__, str(e)))
                            failed = micro == micros - 1
                except Exception as e:
                    errors.append((type(e).__name__, str(e)))
                    failed = micro == micros - 1
                if errors and step == 0 and micro == 0 and not failed:
                    opt.zero_grad()  # (what the failed micro-batch accumulated)
                out = None
            if not failed:
                opt.step()
    dp_warnings = [str(w.message) for w in seen if "SyncBatchNorm: rank" in str(w.message)]
    return errors, dp_warnings, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}


def assert_outcome(results, fault, reference):
    # (simulated ranks share the warnings machinery: a rank's record may hold another's warning)
    every_warning = [w for _, warned, _ in results for w in warned]
    named, behind = ahead(len(results))
    assert len(every_warning) == 1 and every_warning[0].startswith(named), every_warning
    for rank, (errors, _, state) in enumerate(results):
        assert len(errors) == 1, (rank, errors)
        kind, message = errors[0]
        if rank == 1:
            assert (kind, message) == ("ValueError", "the loss refused the targets"), errors
        elif fault == "step":  # (in the step's exchange, which rank 1 went through: both notes)
            assert kind == "RuntimeError" and message.startswith(
                f"DataParallel: backward raised on {behind}: ForwardRanAhead: " + named), errors
            assert "the output of a forward on rank 1 never reached a synchronizing backward" in message, errors
        else:
            assert kind == "ForwardRanAhead" and message.startswith(named), errors
        for k, v in state.items():
            np.testing.assert_array_equal(v, results[0][2][k], err_msg=f"rank {rank}: {k}")
            if k.endswith(("weight", "bias")):  # (running statistics saw the failed forward: not the reference's)
                np.testing.assert_allclose(v, reference[k], rtol=1e-12, atol=1e-15, err_msg=f"rank {rank}: {k}")


def reference(fault, size=2):
    return simulate(size, train, skip=fault)[0][2]


@pytest.mark.parametrize("fault", FAULTS)
def test_a_kept_output_is_named_at_the_next_forward_and_the_ranks_stay_in_step(fault):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_outcome(simulate(2, train, fault, (1,)), fault, reference(fault))


def test_the_references_differ_from_a_run_without_the_failure():
    """The oracle can tell: skipping the failed micro-batch, or step, changes the parameters."""
    for fault in FAULTS:
        plain = simulate(2, train, micros=MICROS[fault])[0][2]
        assert not np.allclose(reference(fault)["fc1.weight"], plain["fc1.weight"], rtol=1e-6), fault


def train_for_child(comm, fault=None, faulty_ranks=()):
    """The child job's protocol: (error, grads_none, state), the error holding the errors and warnings. (The
    faults share one communicator: the last fault's model, left alive in a reference cycle, is no layer of this
    fault's step: tests/test_sbn_abort_stale_layers.py.)"""
    errors, dp_warnings, state = train(comm, fault, faulty_ranks)
    return (errors, dp_warnings), None, state


@pytest.mark.parametrize("ranks", [2, 3])
def test_under_mpiexec_a_kept_output_is_named_and_the_ranks_stay_in_step(tmp_path, ranks):
    seen = faults_on_rank_1("test_data_parallel_kept_output39", "train_for_child", "FAULTS", tmp_path, n=ranks)
    for fault in FAULTS:
        results = [([tuple(e) for e in s[fault][0][0]], s[fault][0][1], s[fault][2]) for s in seen]  # (from JSON)
        assert_outcome(results, fault, reference(fault, ranks))
