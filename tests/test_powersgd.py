"""PowerSGD compression (DataParallel(compression="powersgd")) on simulated ranks.

Oracles: a numpy reference of torch's powerSGD_hook (written from its source
and the paper) fed the same per-rank gradients, step by step (float64,
1e-12); N ranks on shards == 1 process with PowerSGD on the whole batch
(only sums of the per-rank matrices and of the errors enter each step); the
per-rank error state mapped to another world size keeps the trajectory.
"""
import numpy as np
import pytest

import distnn
import distnn.nn as nn
from distnn.distributed import DataParallel, LocalCommunicator, PowerSGDState, simulate

# (8, 3, 5) and (10, 12) are compressed (viewed as (shape[0], -1)); the bias (6,) and the (2, 2) matrix,
# whose rank-r factors would be no smaller, go in the plain allreduce
SHAPES = [(8, 3, 5), (6,), (2, 2), (10, 12)]
STEPS = 7


class Probe(nn.Module):
    """loss = sum_i <param_i, C_i>: the gradient of parameter i is C_i (chosen per rank and step)."""

    def __init__(self):
        super().__init__()
        self.ps = nn.ParameterList([nn.Parameter(distnn.zeros(*s, dtype=np.float64)) for s in SHAPES])

    def forward(self, coeffs):
        return sum((p * distnn.Tensor(c)).sum() for p, c in zip(self.ps, coeffs))


def coeffs(rank, step):
    rng = np.random.default_rng([rank, step, 5])
    # a shared low-rank part plus noise: what PowerSGD is meant for, and the error feedback matters
    base = np.random.default_rng([step, 9])
    return [base.standard_normal(s) + 0.3 * rng.standard_normal(s) for s in SHAPES]


def run_dp(comm, state_kwargs, steps=STEPS, counts=None, start_state=None):
    """Each rank's synchronized gradients per step (copies), and its PowerSGD state at the end."""
    dp = DataParallel(Probe(), comm, compression=PowerSGDState(**state_kwargs), bucket_mb=1e-3 if counts else 25)
    if start_state is not None:
        dp.load_sync_state_dict(start_state)
    out = []
    for t in range(steps):
        n = counts[comm.rank] if counts else 1
        total = sum(counts) if counts else comm.size
        dp.set_num_samples(n, total)
        for p in dp.parameters():
            p.grad = None
        dp(coeffs(comm.rank, t)).backward()  # (this rank's mean-loss gradient; DataParallel weighs it n / N)
        out.append([p.grad.copy() for p in dp.parameters()])
    return out, dp


# ------------------------------------------------------------------------------ the reference
def gram_schmidt(m):
    m = m.copy()
    for i in range(m.shape[1]):
        m[:, i] /= np.linalg.norm(m[:, i])
        m[:, i + 1:] -= np.outer(m[:, i], m[:, i] @ m[:, i + 1:])
    return m


def reference(world, steps, rank_r, q0):
    """torch's powerSGD_hook, from its source, on ``world`` ranks of equal weight; ``q0``: Q's first values."""
    errors = [[np.zeros(s) for s in SHAPES] for _ in range(world)]
    qs = [q.copy() for q in q0]
    out = []
    for t in range(steps):
        ms = [[g + e for g, e in zip(coeffs(r, t), errors[r])] for r in range(world)]
        avg = []
        k = 0
        for i, shape in enumerate(SHAPES):
            if i not in (0, 3):  # uncompressed: the allreduce mean
                avg.append(sum(m[i] for m in ms) / world)
                continue
            mats = [m[i].reshape(shape[0], -1) for m in ms]
            q = gram_schmidt(qs[k])
            p = gram_schmidt(sum(mat @ q for mat in mats))
            qs[k] = sum(mat.T @ p for mat in mats) / world
            avg.append((p @ qs[k].T).reshape(shape))
            k += 1
        for r in range(world):  # torch: input copy - result, over the whole bucket
            errors[r] = [m - a for m, a in zip(ms[r], avg)]
        out.append(avg)
    return out


def first_q(rank_r, seed=0):
    """The Q's distnn draws at its first compressed step (start 0, bucket 0)."""
    flat = np.random.default_rng([seed, 0, 0]).standard_normal(sum(int(np.prod(s[1:])) * rank_r
                                                                    for s in (SHAPES[3], SHAPES[0])))
    q_a, q_b = flat[:12 * rank_r].reshape(12, rank_r), flat[12 * rank_r:].reshape(15, rank_r)
    return [q_b, q_a]  # the reference's order: registration; distnn's bucket: reverse registration


@pytest.mark.parametrize("world,rank_r", [(2, 1), (3, 2)])
def test_matches_a_reference_of_torchs_hook_over_steps(world, rank_r):
    results = simulate(world, run_dp, {"matrix_approximation_rank": rank_r, "start_powerSGD_iter": 0})
    ref = reference(world, STEPS, rank_r, first_q(rank_r))
    for t in range(STEPS):
        for i in range(len(SHAPES)):
            for r in range(world):
                np.testing.assert_allclose(results[r][0][t][i], ref[t][i], rtol=1e-10, atol=1e-12,
                                           err_msg=f"step {t}, parameter {i}, rank {r}")
    # compressed for real: the approximation is not the plain average
    plain = [sum(coeffs(r, STEPS - 1)[0] for r in range(world)) / world]
    assert np.abs(results[0][0][-1][0] - plain[0]).max() > 1e-2


def test_start_iter_gives_plain_averages_until_it():
    results = simulate(2, run_dp, {"start_powerSGD_iter": 3})
    for t in range(STEPS):
        exact = [(a + b) / 2 for a, b in zip(coeffs(0, t), coeffs(1, t))]
        same = all(np.allclose(g, e, rtol=0, atol=1e-14) for g, e in zip(results[0][0][t], exact))
        assert same == (t < 3), t
    assert results[0][1].powersgd.iter == STEPS


@pytest.mark.parametrize("options", [{}, {"use_error_feedback": False, "warm_start": False, "matrix_approximation_rank": 2}])
def test_n_ranks_equal_one_process_on_the_summed_gradients(options):
    """Uneven sample counts: rank r's gradient weighs n_r / N. One process gets their weighted sum."""
    counts = [1, 3, 2]
    kwargs = {"start_powerSGD_iter": 1, **options}
    results = simulate(3, run_dp, kwargs, STEPS, counts)

    def one(comm):
        dp = DataParallel(Probe(), comm, compression=PowerSGDState(**kwargs), bucket_mb=1e-3)
        out = []
        for t in range(STEPS):
            dp.set_num_samples(1, 1)
            for p in dp.parameters():
                p.grad = None
            total = [sum(coeffs(r, t)[i] * counts[r] for r in range(3)) / sum(counts) for i in range(len(SHAPES))]
            dp(total).backward()
            out.append([p.grad.copy() for p in dp.parameters()])
        return out

    single = one(LocalCommunicator())
    for t in range(STEPS):
        for i in range(len(SHAPES)):
            np.testing.assert_allclose(results[0][0][t][i], single[t][i], rtol=1e-9, atol=1e-12)
            for r in (1, 2):
                np.testing.assert_array_equal(results[r][0][t][i], results[0][0][t][i])


@pytest.mark.parametrize("new_world", [1, 3])
def test_errors_mapped_to_another_world_size_keep_the_trajectory(new_world):
    """Resume state: rank 0 takes the sum of the saved errors on another number of ranks."""
    kwargs = {"start_powerSGD_iter": 0}
    saved = simulate(2, lambda c: (lambda r: (r[1].sync_state_dict(), r[1].rank_sync_state_dict()))(
        run_dp(c, kwargs, steps=3)))
    state = {**saved[0][0], "ranks": [s[1] for s in saved]}
    assert state["powersgd"]["iter"] == 3 and len(state["ranks"][1]["powersgd"]["error"]) == 1
    ahead = simulate(2, run_dp, kwargs, 5)  # uninterrupted: 3 + 2 steps

    def resumed(comm):
        # steps 3 and 4 of a 2-rank run: the coefficients of ranks 0 and 1 averaged, given to every rank
        dp = DataParallel(Probe(), comm, compression=PowerSGDState(**kwargs))
        dp.load_sync_state_dict(state)
        errors = dp.powersgd.error_dict
        assert (0 in errors) == (comm.rank == 0)
        out = []
        for t in (3, 4):
            dp.set_num_samples(1, comm.size)
            for p in dp.parameters():
                p.grad = None
            dp([(a + b) / 2 for a, b in zip(coeffs(0, t), coeffs(1, t))]).backward()
            out.append([p.grad.copy() for p in dp.parameters()])
        return out

    got = simulate(new_world, resumed) if new_world > 1 else [resumed(LocalCommunicator())]
    for k, t in enumerate((3, 4)):
        for i in range(len(SHAPES)):
            np.testing.assert_allclose(got[0][k][i], ahead[0][0][t][i], rtol=1e-9, atol=1e-12)


def test_same_world_size_resume_state_is_exact():
    kwargs = {"start_powerSGD_iter": 1}
    ahead = simulate(2, run_dp, kwargs, 5)

    def first(comm):
        _, dp = run_dp(comm, kwargs, steps=2)
        return dp.sync_state_dict(), dp.rank_sync_state_dict()

    saved = simulate(2, first)
    state = {**saved[0][0], "ranks": [s[1] for s in saved]}

    def rest(comm):
        dp = DataParallel(Probe(), comm, compression=PowerSGDState(**kwargs))
        dp.load_sync_state_dict(state)
        out = []
        for t in range(2, 5):
            dp.set_num_samples(1, 2)
            for p in dp.parameters():
                p.grad = None
            dp(coeffs(comm.rank, t)).backward()
            out.append([p.grad.copy() for p in dp.parameters()])
        return out

    got = simulate(2, rest)
    for r in range(2):
        for k, t in enumerate(range(2, 5)):
            for i in range(len(SHAPES)):
                np.testing.assert_array_equal(got[r][k][i], ahead[r][0][t][i])


def test_compression_stats_count_the_elements_sent():
    results = simulate(2, run_dp, {"start_powerSGD_iter": 0}, 2)
    rate, before, after = results[0][1].powersgd.compression_stats()
    # per step: 120 + 6 + 4 + 120 values; after: (8 + 15) + (10 + 12) at rank 1, plus 6 + 4 uncompressed
    assert (before, after) == (2 * 250, 2 * 55)
    assert rate == pytest.approx(250 / 55)


# ------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize("kwargs,match", [
    ({"matrix_approximation_rank": 0}, "matrix_approximation_rank must be an integer >= 1, got 0"),
    ({"matrix_approximation_rank": 1.5}, "matrix_approximation_rank must be an integer"),
    ({"start_powerSGD_iter": -1}, "start_powerSGD_iter must be an integer >= 0"),
    ({"min_compression_rate": float("nan")}, "min_compression_rate must be a finite number >= 0"),
    ({"orthogonalization_epsilon": -1e-8}, "orthogonalization_epsilon must be a finite number >= 0"),
    ({"use_error_feedback": "yes"}, "use_error_feedback must be True or False"),
    ({"random_seed": -3}, "random_seed must be an integer >= 0"),
])
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PowerSGDState(**kwargs)


def test_unknown_compression_names_the_choices():
    with pytest.raises(ValueError, match="unknown compression 'PowerSGD'.*'powersgd'"):
        DataParallel(Probe(), LocalCommunicator(), compression="PowerSGD")


def test_a_nonfinite_step_is_seen_and_leaves_no_trace():
    """A NaN gradient on one rank: that step's gradients are not finite (the step guard sees it); the error
    feedback and warm-start Q's it would leave are dropped, so the next steps are finite again."""
    def run(comm):
        dp = DataParallel(Probe(), comm, compression=PowerSGDState(start_powerSGD_iter=0))
        seen = []
        for t in range(4):
            c = coeffs(comm.rank, t)
            if t == 1 and comm.rank == 1:
                c[0][0, 0, 0] = np.nan
            dp.set_num_samples(1, comm.size)
            for p in dp.parameters():
                p.grad = None
            dp(c).backward()
            seen.append(dp.grads_finite())
        return seen, all(np.isfinite(e).all() for e in dp.powersgd.error_dict.values())

    for seen, errors_finite in simulate(2, run):
        assert seen == [True, False, True, True] and errors_finite


def test_one_state_serves_one_wrapper():
    state = PowerSGDState()
    DataParallel(Probe(), LocalCommunicator(), compression=state)
    with pytest.raises(ValueError, match="already serves another DataParallel"):
        DataParallel(Probe(), LocalCommunicator(), compression=state)


def test_zero_gradient_stays_zero_and_finite():
    def zero(comm):
        dp = DataParallel(Probe(), comm, compression=PowerSGDState(start_powerSGD_iter=0))
        for _ in range(2):
            dp.set_num_samples(1, comm.size)
            for p in dp.parameters():
                p.grad = None
            dp([np.zeros(s) for s in SHAPES]).backward()
        return [p.grad.copy() for p in dp.parameters()]

    for g in simulate(2, zero)[0]:
        np.testing.assert_array_equal(g, 0)


def test_a_wrongly_guessed_global_count_leaves_errors_in_averaged_units():
    """No n_global: the first step packs against a guess (the world size) and is rescaled; the errors follow,
    so they still sum to the exact average minus the installed approximation."""
    counts = [1, 3]

    def step(comm):
        dp = DataParallel(Probe(), comm, compression=PowerSGDState(start_powerSGD_iter=0))
        dp.set_num_samples(counts[comm.rank])  # (global count unknown: 2 guessed, 4 found)
        dp(coeffs(comm.rank, 0)).backward()
        return [p.grad.copy() for p in dp.parameters()], dp.powersgd.error_dict[0].copy(), dp.bucket_layout

    (grads, e0, layout), (_, e1, _) = simulate(2, step)
    exact = [(coeffs(0, 0)[i] * 1 + coeffs(1, 0)[i] * 3) / 4 for i in range(len(SHAPES))]
    # the bucket holds the parameters in reverse order: 3, 2, 1, 0
    order = [3, 2, 1, 0]
    flat_exact = np.concatenate([exact[i].ravel() for i in order])
    flat_grad = np.concatenate([grads[i].ravel() for i in order])
    compressed = np.concatenate([np.ones(120), np.zeros(10), np.ones(120)]).astype(bool)
    np.testing.assert_allclose((e0 + e1)[compressed], (flat_exact - flat_grad)[compressed], rtol=1e-10, atol=1e-12)
    assert layout == [["ps.3", "ps.2", "ps.1", "ps.0"]]
