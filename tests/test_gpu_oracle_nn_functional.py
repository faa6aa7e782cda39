"""The GPU (cupy) against the CPU (numpy) for the functional layers changed since the last run on a GPU (commit
c209826), written without a GPU (a static review): distances and similarities at their kinks (zero vectors,
norms below eps, coordinates that agree for p < 1, tied maxima for p = inf, equal rows for pdist), prelu,
bilinear, gumbel_softmax (noise drawn on the host from a generator of one seed), embedding_bag with host indices
and offsets (empty bags, padding, max's ties), conv_transpose3d (the col2im adds one strided slice per kernel
offset), instance norm on 5-D inputs, the local response norms (sliding channel sums), conv_tbc. gpu_oracle.py
says how a case draws its inputs and how the devices are compared."""
import numpy as np
import pytest

from distnn import backend, nn
from distnn import functional as F

from gpu_oracle import DTYPES, NO_GPU, assert_op_matches_the_cpu

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)

_NORM_ZEROS = np.array([[0.0, 1.0, 2.0], [0.5, 0.0, -1.0], [0.0, 0.0, 0.0]])
_EB_IDX = np.array([1, 2, 0, 4, 5, 2, 1, 1, 3])
_EB_OFF = np.array([0, 2, 2, 5])
# equal rows (a pair at distance 0), tied |differences| for p = inf, coordinates that agree (p < 1)
_PDIST_X = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [0.0, 2.0, 5.0], [1.0, 0.0, 4.0], [-1.0, 2.0, 1.0]])


def _with_a_zero_row(R):
    """A zero vector in row 1: its norm below any eps."""
    x = R.standard_normal((4, 3))
    x[1] = 0.0
    return x


CASES = {
    "cosine_similarity_small_norms": lambda R: ([R.standard_normal((4, 3)) * 1e-4, _with_a_zero_row(R)],
                                                lambda a, b: F.cosine_similarity(a, b, eps=1e-3)),
    "cosine_similarity_broadcast": lambda R: ([R.standard_normal((2, 4, 3)), R.standard_normal((4, 1))],
                                              lambda a, b: F.cosine_similarity(a, b, dim=-1)),
    "pairwise_distance_p3_keepdim": lambda R: ([R.standard_normal((4, 3)), R.standard_normal((3,))],
                                               lambda a, b: F.pairwise_distance(a, b, p=3.0, keepdim=True)),
    "pairwise_distance_p_half": lambda R: ([_NORM_ZEROS, np.zeros((3, 3))],
                                           lambda a, b: F.pairwise_distance(a, b, 0.5, 0.0)),
    "normalize_p_half_zero_entries": lambda R: ([_NORM_ZEROS], lambda x: F.normalize(x, p=0.5)),
    "prelu_per_channel": lambda R: ([R.standard_normal((2, 3, 4)), R.random(3)], F.prelu),
    "bilinear": lambda R: ([R.standard_normal((2, 5, 3)), R.standard_normal((2, 5, 4)), R.standard_normal((6, 3, 4)),
                            R.standard_normal(6)], F.bilinear),
    "gumbel_softmax_hard": lambda R: ([R.standard_normal((5, 4))], lambda x: F.gumbel_softmax(
        x, tau=0.5, hard=True, generator=np.random.default_rng(1))),
    "gumbel_softmax_soft_dim0": lambda R: ([R.standard_normal((5, 4))],
                                           lambda x: F.gumbel_softmax(x, dim=0, generator=np.random.default_rng(2))),
    "embedding_bag_max_ties": lambda R: ([np.round(R.standard_normal((7, 3)))],
                                         lambda w: F.embedding_bag(_EB_IDX, w, _EB_OFF, mode="max")),
    "embedding_bag_mean_padding": lambda R: ([R.standard_normal((7, 3))], lambda w: F.embedding_bag(
        _EB_IDX, w, _EB_OFF, mode="mean", padding_idx=2)),
    "embedding_bag_per_sample_weights": lambda R: ([R.standard_normal((7, 3)), R.standard_normal(9)],
                                                   lambda w, p: F.embedding_bag(
                                                       _EB_IDX, w, _EB_OFF, mode="sum", per_sample_weights=p,
                                                       include_last_offset=True, scale_grad_by_freq=True)),
    # conv_transpose3d and instance norm on 5-D inputs: the col2im adds one strided slice per kernel offset, the
    # backward conv3d's im2col of the gradient
    "conv_transpose3d": lambda R: (
        [R.standard_normal((2, 4, 3, 2, 3)), R.standard_normal((4, 3, 2, 3, 2)), R.standard_normal(6)],
        lambda x, w, b: F.conv_transpose3d(x, w, b, stride=(2, 1, 2), padding=(1, 0, 1), output_padding=(1, 0, 0),
                                           groups=2, dilation=(1, 2, 1))),
    "instance_norm_5d": lambda R: (
        [R.standard_normal((2, 3, 2, 3, 4)) * 2 + 1, R.standard_normal(3), R.standard_normal(3)],
        lambda x, w, b: F.instance_norm(x, weight=w, bias=b)),
    # the local response norms and pdist: sliding channel sums, pair indices moved to the device, the
    # antisymmetric pair scatter
    "local_response_norm_3d": lambda R: ([R.standard_normal((2, 5, 4))],
                                         lambda x: F.local_response_norm(x, 3, 0.5, 0.8, 1.5)),
    "local_response_norm_5d_wide": lambda R: ([R.standard_normal((2, 3, 2, 3, 2))],
                                              lambda x: F.local_response_norm(x, 8, 2.0, 0.6, 1.0)),
    "cross_map_lrn2d": lambda R: ([R.standard_normal((2, 6, 3, 4))],
                                  lambda x: nn.CrossMapLRN2d(4, 0.7, 0.9, 2.0)(x)),
    "pdist_equal_rows": lambda R: ([_PDIST_X], F.pdist),
    "pdist_inf_ties": lambda R: ([_PDIST_X], lambda x: F.pdist(x, float("inf"))),
    "pdist_p_half": lambda R: ([_PDIST_X], lambda x: F.pdist(x, 0.5)),
    "conv_tbc": lambda R: ([R.standard_normal((7, 2, 3)), R.standard_normal((3, 3, 4)), R.standard_normal(4)],
                           lambda x, w, b: F.conv_tbc(x, w, b, 1)),  # (per-tap matmuls)
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(CASES))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype, per_test_rng):
    assert_op_matches_the_cpu(*CASES[op](per_test_rng), dtype)
