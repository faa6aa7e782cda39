"""``finish_gradient_synchronization()`` after a refused step (an agreed DataParallel error) ends alike on every
rank: it is the next step's exchange of a rank with no batch when the others' backward synchronizes, so nobody
waits (distnn/distributed/sync_finish.py).

It used to be a no-op there (a refused step's gradients are None, as after zero_grad(): the call was taken for
the refused step's closing call), and the other ranks' backward waited for it: simulate's deadlock error,
the collective timeout under mpiexec. Also a rank whose own finish_gradient_synchronization() was the refused
exchange: its next call (no batch again) was a no-op. The oracle: the same loop without the refused step
(every rank's parameters equal it to 1e-12, and each other bitwise); and one ``mpiexec -n 2`` child job.
"""
import numpy as np
import pytest

import distnn
import distnn.functional as F
from distnn import nn
from distnn.backend import to_numpy
from distnn.distributed import DataParallel, simulate
from distnn.optim import SGD
from mpi_child import faults_on_rank_1

# FAULTS for the child job (rank 1 fails): how the refused step came about on the ranks, then who has no batch
FAULTS = ["refused-in-forward", "refused-in-finish"]


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 8, dtype=np.float64), nn.Linear(8, 3, dtype=np.float64)
        self.fault = False

    def forward(self, x):
        h = F.tanh(self.fc1(x))
        if self.fault:
            raise FloatingPointError("a non-finite activation")
        return self.fc2(h)


def _batch(comm, step):
    rng = np.random.default_rng(100 * step + comm.rank)
    return distnn.Tensor(rng.standard_normal((3 + comm.rank, 4))), rng.integers(0, 3, 3 + comm.rank)


def loop(comm, plan, with_refused_step=True, count_first=False):
    """``if batch: loss.backward() else: dp.finish_gradient_synchronization()``, every error caught (the loop
    goes on to the next step). ``plan[step][rank]``: "batch", "none" (no batch) or "fail" (a batch whose forward
    raises). Without ``with_refused_step`` the first step is left out (the oracle). ``count_first``: a rank
    with no batch calls ``set_num_samples(0)`` first. Returns (the errors per step, the parameters at the end,
    the exchanges made)."""
    distnn.manual_seed(0)
    model = _Net()
    dp = DataParallel(model, comm, bucket_mb=1e-6)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    errors = []
    for step, kinds in enumerate(plan[0 if with_refused_step else 1:], start=0 if with_refused_step else 1):
        kind = kinds[comm.rank]
        opt.zero_grad()
        model.fault = kind == "fail"
        try:
            if kind == "none":
                if count_first:
                    dp.set_num_samples(0)
                dp.finish_gradient_synchronization()
            else:
                x, y = _batch(comm, step)
                F.cross_entropy(dp(x), y).backward()
        except (FloatingPointError, RuntimeError) as e:
            errors.append((step, type(e).__name__, str(e)[:80]))
            continue
        finally:
            model.fault = False
        opt.step()
    return errors, {k: to_numpy(v).copy() for k, v in model.state_dict().items()}, dp.num_syncs


PLANS = {
    # every rank's exchange of the refused step was its forward's agreement; then rank 0 has no batch
    "refused-in-forward": [("batch", "fail"), ("none", "batch"), ("batch", "batch")],
    # rank 0 had no batch in the refused step (its finish_gradient_synchronization() made the exchange), and
    # none in the next one either
    "refused-in-finish": [("none", "fail"), ("none", "batch"), ("batch", "batch")],
    # no batch on rank 1 after the refused step, on rank 0 the step after
    "both-sides": [("fail", "batch"), ("batch", "none"), ("none", "batch"), ("batch", "batch")],
}


def _check(results, reference, plan):
    refused = ("FloatingPointError", "DataParallel: forward raised on rank ")
    for rank, (errors, state, _) in enumerate(results):
        assert [(s, t) for s, t, _ in errors] == [(0, "FloatingPointError")], (rank, errors)
        assert errors[0][2].startswith(refused[1]), (rank, errors)
        for k, v in state.items():
            np.testing.assert_array_equal(v, results[0][1][k], err_msg=k)
            np.testing.assert_allclose(v, reference[1][k], rtol=1e-12, atol=1e-15, err_msg=k)
    assert results[0][2] == results[1][2] == reference[2] + 1  # (the refused exchange, then the same steps)


@pytest.mark.parametrize("plan", sorted(PLANS))
def test_a_rank_with_no_batch_after_a_refused_step_takes_part_in_the_others_next_step(plan):
    results = simulate(2, loop, PLANS[plan])
    _check(results, simulate(2, loop, PLANS[plan], False)[0], PLANS[plan])


def test_the_case_left_ambiguous_takes_part_when_the_rank_sets_its_count_first():
    """Refused in rank 0's finish_gradient_synchronization() (it had no batch), then rank 1 has none: its call
    could be the refused step's closing call, and is taken for one (sync_finish.py) unless a count says it
    begins a step, as the docstring advises: set_num_samples(0)."""
    plan = [("none", "fail"), ("batch", "none"), ("batch", "batch")]
    results = simulate(2, loop, plan, True, True)
    _check(results, simulate(2, loop, plan, False, True)[0], plan)


def test_where_every_rank_calls_it_after_the_refused_backward_nobody_waits_and_training_goes_on():
    """``try: loss.backward() except: pass`` then finish_gradient_synchronization() on every rank: an exchange of
    nothing on every rank (the gradients stay None), and the next step is a fresh run's. (Passed before too,
    then as a no-op on every rank: it guards the change.)"""

    def run(comm, refused):
        distnn.manual_seed(0)
        model = _Net()
        dp = DataParallel(model, comm, bucket_mb=1e-6)
        opt = SGD(model.parameters(), lr=0.1)
        for step in range(0 if refused else 1, 3):
            opt.zero_grad()
            model.fault = step == 0 and comm.rank == 1
            x, y = _batch(comm, step)
            try:
                F.cross_entropy(dp(x), y).backward()
            except FloatingPointError:
                pass
            model.fault = False
            dp.finish_gradient_synchronization()
            if step == 0:
                assert all(p.grad is None for p in model.parameters())
            opt.step()
        return {k: to_numpy(v).copy() for k, v in model.state_dict().items()}

    got, want = simulate(2, run, True), simulate(2, run, False)[0]
    for state in got:
        for k in want:
            np.testing.assert_allclose(state[k], want[k], rtol=1e-12, atol=1e-15, err_msg=k)


def child(comm, fault, faulty_ranks):
    """The child job's run (tests/mpi_scripts/faults_on_rank_1.py): ``PLANS[fault]`` (its failing rank is 1)."""
    errors, state, syncs = loop(comm, PLANS[fault])
    return [errors[0][1], errors[0][2], syncs] if errors else None, len(errors) == 1, state


def test_under_mpiexec_nobody_waits(tmp_path):
    ranks = faults_on_rank_1("test_data_parallel_finish_after_refusal", "child", "FAULTS", tmp_path)
    for fault in FAULTS:
        reference = simulate(2, loop, PLANS[fault], False)[0]
        for seen in ranks:
            error, one_error, state = seen[fault]
            assert one_error and error[0] == "FloatingPointError" and error[2] == reference[2] + 1, error
            for k in state:
                np.testing.assert_allclose(state[k], reference[1][k], rtol=1e-12, atol=1e-15, err_msg=k)
