"""The GPU (cupy) against the CPU (numpy) for the losses changed since the last run on a GPU (commit c209826),
written without a GPU (a static review): host constants (targets, labels, class weights) beside device inputs,
exact 0 and 1 probabilities, an ignored row of -inf logits, values far in the tails, labels that are neither -1
nor 1 (both hinge terms), and the kinks exactly (|d| = beta, zero targets, the Stirling term's target <= 1, a
hinge's corner, a variance below eps, zero vectors, tied maxima for p = inf). gpu_oracle.py says how a case
draws its inputs and how the devices are compared."""
from functools import partial

import numpy as np
import pytest

from distnn import backend, nn
from distnn import functional as F

from gpu_oracle import DTYPES, NO_GPU, assert_op_matches_the_cpu

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)

_PROBS = np.array([[0.0, 0.3, 1.0], [0.9, 0.5, 0.01], [1.0, 0.2, 0.0], [0.7, 0.999, 0.4]])  # exact 0 and 1: log clamped
_HARD = np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0], [0, 1, 1]])  # (p = 0 with y = 0, p = 1 with y = 1: finite gradients)
_LABELS_IGN = np.array([0, 3, -100, 1, 2, 3])
_CW = np.array([0.5, 2.0, 1.0, 0.25])
_VAR_TINY = np.array([[0.0, 0.5, 1e-3], [0.2, 1e-4, 0.9], [1.0, 0.3, 0.0], [0.05, 0.6, 0.7]])
_PM1 = np.array([[1, -1, 1], [-1, -1, 1], [1, 1, -1], [-1, 1, 1]])  # int64 labels on the host
_PM1_0 = np.array([[1, -1, 0], [-1, -1, 1], [2, 1, -1], [-1, 1, 1]])  # 0 and 2: neither label, both terms
_BIG = np.array([[120.0, -95.0, 3.0], [-700.0, 40.0, 0.0], [90.0, 800.0, -2.0], [-60.0, -1.0, 100.0]])
_HINGE_X = np.array([[0.5, -0.3, 1.2], [0.5, 2.0, -1.0], [0.1, 0.5, 0.7], [-0.5, 1.5, 0.25]])  # 0.5: the corner
_SL1_X = np.array([[-1.0, -0.5, 0.0, 0.5], [1.0, 0.25, 2.0, -2.0], [0.75, -0.25, 0.5, 0.0]])
_SL1_Y = np.array([[-0.5, 0.0, 0.0, 0.0], [0.5, 0.25, 0.0, -1.0], [0.0, 0.0, 1.0, 0.5]])  # |d| = 0.5 and 0 exactly
_KL_P = np.array([[0.5, 0.0, 0.25, 0.25], [0.0, 0.0, 1.0, 0.0], [0.1, 0.2, 0.3, 0.4]])  # zeros: a loss of 0 there
_COUNTS = np.array([[0, 1, 2, 5], [3, 0, 1, 1], [7, 2, 0, 4]])  # int64 on the host: the Stirling term's y <= 1 edge
_PM1_ROWS = np.array([1, -1, 1, -1])
_Y01 = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0]])
_ML_TARGETS = np.array([[3, 0, -1, 1], [1, 1, 2, -1], [-1, 0, 0, 0]])  # ends at -1; a class listed twice
_TIES_INF = np.array([[2.0, -2.0, 1.0], [0.5, 0.5, -0.5], [3.0, 0.0, 0.0]])  # tied |x| maxima for p = inf
# (ctc_loss: host targets and lengths beside device inputs; repeated labels, an infeasible sample)
_CTC_TG = np.array([[1, 1, 2, 0], [3, 2, 3, 1], [2, 0, 0, 0]])
_CTC_TG_CAT = np.array([1, 1, 2, 3, 2, 3, 1, 2])


def _inf_row(R):
    """Logits whose row 2 (label -100: ignored) is -inf in places (masked classes): left out with where."""
    x = R.standard_normal((6, 4))
    x[2] = [-np.inf, 0.0, -np.inf, 1.0]
    return x


def _log_probs(R):
    return np.log(R.dirichlet(np.ones(4), 3))


def _log_probs_and_reversed(R):
    p = _log_probs(R)
    return p, p[::-1].copy()


def _with_a_zero_row(R):
    """A zero vector in row 1: cos = 0, at the hinge's corner with margin 0."""
    x = R.standard_normal((4, 3))
    x[1] = 0.0
    return x


def _with_host_target(R, arrays, fn):
    """The case ``(arrays, fn)`` with a host target ``y`` (a keyword of ``fn``) beside the device inputs."""
    return arrays, partial(fn, y=R.standard_normal((4, 3)))


CASES = {
    "binary_cross_entropy": lambda R: ([_PROBS, R.random((4, 3))], lambda p, y: F.binary_cross_entropy(
        p, y, weight=np.array([0.5, 2.0, 1.0]))),
    "binary_cross_entropy_edges": lambda R: ([_PROBS], lambda p: F.binary_cross_entropy(
        p, _HARD.astype(np.float64), reduction="sum")),
    "cross_entropy_ignored_inf_row": lambda R: ([_inf_row(R)], lambda x: F.cross_entropy(x, _LABELS_IGN, weight=_CW)),
    "cross_entropy_ignored_inf_row_smooth": lambda R: ([_inf_row(R)], lambda x: F.cross_entropy(
        x, _LABELS_IGN, label_smoothing=0.2, reduction="sum")),
    "cross_entropy_ignored_none": lambda R: ([_inf_row(R)], lambda x: F.cross_entropy(
        x, _LABELS_IGN, reduction="none")),
    # values far in the tails, labels that are neither -1 nor 1 (both hinge terms), the hinge's corner (x ==
    # margin), a variance below eps (clamped)
    "gaussian_nll": lambda R: (
        [R.standard_normal((4, 3)), R.standard_normal((4, 3)), R.uniform(0.05, 1.0, (4, 3))], F.gaussian_nll_loss),
    "gaussian_nll_shared_var_full_sum": lambda R: _with_host_target(
        R, [R.standard_normal((4, 3)), R.uniform(0.05, 1.0, (4,))],
        lambda x, v, y: F.gaussian_nll_loss(x, y, v, full=True, reduction="sum")),
    "gaussian_nll_number_var_none": lambda R: _with_host_target(
        R, [R.standard_normal((4, 3))], lambda x, y: F.gaussian_nll_loss(x, y, 0.5, reduction="none")),
    "gaussian_nll_var_below_eps": lambda R: _with_host_target(
        R, [R.standard_normal((4, 3)), _VAR_TINY], lambda x, v, y: F.gaussian_nll_loss(x, y, v, eps=1e-2)),
    "soft_margin": lambda R: ([R.standard_normal((4, 3)) * 3], lambda x: F.soft_margin_loss(x, _PM1)),
    "soft_margin_large_margins_sum": lambda R: ([_BIG], lambda x: F.soft_margin_loss(x, _PM1, reduction="sum")),
    "soft_margin_broadcast_target": lambda R: ([R.standard_normal((4, 3))], lambda x: F.soft_margin_loss(
        x, _PM1[:, :1])),
    "hinge_embedding": lambda R: ([_HINGE_X], lambda x: F.hinge_embedding_loss(x, _PM1_0, margin=0.5)),
    "hinge_embedding_none": lambda R: ([_HINGE_X], lambda x: F.hinge_embedding_loss(x, _PM1_0, reduction="none")),
    "binary_hinge": lambda R: ([_HINGE_X], lambda x: F.binary_hinge_loss(x, _PM1, margin=0.5)),
    "binary_hinge_list_target_sum": lambda R: ([R.standard_normal((4,))], lambda x: F.binary_hinge_loss(
        x, [1, -1, -1, 1], reduction="sum")),
    # the kinks exactly (|d| = beta, zero targets, the Stirling term's target <= 1, zero vectors, tied maxima for
    # p = inf, hinges at 0)
    "smooth_l1_kinks": lambda R: ([_SL1_X], lambda x: F.smooth_l1_loss(x, _SL1_Y, beta=0.5)),
    "smooth_l1_beta0_target_grad_sum": lambda R: ([_SL1_X, _SL1_Y], lambda x, y: F.smooth_l1_loss(
        x, y, reduction="sum", beta=0.0)),
    "kl_div_batchmean_zero_targets": lambda R: ([_log_probs(R)], lambda x: F.kl_div(
        x, _KL_P, reduction="batchmean")),
    "kl_div_target_grad": lambda R: ([_log_probs(R), R.uniform(0.1, 1.0, (3, 4))], lambda x, y: F.kl_div(
        x, y, reduction="sum")),
    "kl_div_log_target_none": lambda R: ([*_log_probs_and_reversed(R)], lambda x, y: F.kl_div(
        x, y, reduction="none", log_target=True)),
    "poisson_nll_full": lambda R: ([R.standard_normal((3, 4))], lambda x: F.poisson_nll_loss(x, _COUNTS, full=True)),
    "poisson_nll_rates_target_grad": lambda R: (
        [R.uniform(0.0, 3.0, (3, 4)), R.uniform(0.5, 4.0, (3, 4))],
        lambda x, y: F.poisson_nll_loss(x, y, log_input=False, full=True, reduction="sum")),
    "cosine_embedding_zero_vector": lambda R: ([_with_a_zero_row(R), R.standard_normal((4, 3))],
                                               lambda a, b: F.cosine_embedding_loss(a, b, _PM1_ROWS)),
    "margin_ranking_target_grad": lambda R: (
        [R.standard_normal(4), R.standard_normal(4), _PM1_ROWS.astype(float)],
        lambda a, b, t: F.margin_ranking_loss(a, b, t, 0.5, "none")),
    "triplet_swap": lambda R: ([R.standard_normal((4, 3)) for _ in range(3)],
                               lambda a, p, n: F.triplet_margin_loss(a, p, n, swap=True, reduction="sum")),
    "triplet_p_inf_ties": lambda R: (
        [_TIES_INF, np.zeros((3, 3)), R.standard_normal((3, 3))],
        lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=2.0, p=float("inf"), eps=0.0)),
    "multilabel_soft_margin_weight": lambda R: ([R.standard_normal((4, 3)) * 3], lambda x: (
        F.multilabel_soft_margin_loss(x, _Y01, np.array([0.5, 2.0, 1.0])))),
    "multilabel_margin": lambda R: ([R.standard_normal((3, 4))], lambda x: F.multilabel_margin_loss(x, _ML_TARGETS)),
    "multilabel_margin_none": lambda R: ([np.round(R.standard_normal((3, 4)) * 2) / 2],  # (halves: hinges at 0)
                                         lambda x: F.multilabel_margin_loss(x, _ML_TARGETS, reduction="none")),
    "ctc_loss": lambda R: ([R.standard_normal((7, 3, 4))], lambda z: F.ctc_loss(
        F.log_softmax(z, dim=-1), _CTC_TG, [7, 6, 7], [3, 4, 1], reduction="none")),
    "ctc_loss_concat_zero_infinity": lambda R: ([R.standard_normal((5, 3, 4))], lambda z: F.ctc_loss(
        F.log_softmax(z, dim=-1), _CTC_TG_CAT, [5, 5, 0], [3, 4, 1], blank=0,
        zero_infinity=True)),  # (sample 2: no frames)
    "triplet_with_distance_cosine_swap": lambda R: (
        [R.standard_normal((4, 3)) for _ in range(3)],
        lambda a, p, n: F.triplet_margin_with_distance_loss(
            a, p, n, distance_function=lambda u, v: 1.0 - F.cosine_similarity(u, v), margin=0.5, swap=True)),
    # linear_cross_entropy: the reference composition and the chunked path (device labels and class weights from
    # host arrays, an ignored row, chunks that do not divide the batch; 'none' recomputes in backward)
    "linear_cross_entropy_paths": lambda R: (
        [R.standard_normal((7, 3)), R.standard_normal((5, 3)), R.standard_normal(5)],
        lambda x, w, b: F.linear_cross_entropy(x, w, np.array([0, 4, -100, 2, 2, 1, 3]), linear_bias=b,
                                               weight=np.array([0.5, 1.0, 2.0, 1.5, 0.7]), reduction="none",
                                               options=nn.LinearCrossEntropyOptions(batch_chunk_size=3))
        + F.linear_cross_entropy(x, w, np.array([0, 4, -100, 2, 2, 1, 3]),
                                 options=nn.LinearCrossEntropyOptions(batch_chunk_size=2))
        + F.linear_cross_entropy(x, w, np.array([0, 4, 1, 2, 2, 1, 3]), linear_bias=b, label_smoothing=0.1)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(CASES))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype, per_test_rng):
    assert_op_matches_the_cpu(*CASES[op](per_test_rng), dtype)
