"""Stateless differentiable ops (``import distnn.functional as F``)."""
from .activation import (
    dropout, elu, gelu, leaky_relu, log_softmax, logsigmoid, relu, sigmoid, softmax, softplus, tanh,
)
from .activation_more import (
    celu, glu, hardshrink, hardsigmoid, hardswish, hardtanh, mish, prelu, relu6, selu, silu, softmin, softshrink,
    softsign, tanhshrink, threshold,
)
from .activation_inplace import celu_, elu_, hardtanh_, leaky_relu_, relu_, rrelu_, selu_, threshold_
from .dropout_variants import alpha_dropout, dropout1d, dropout2d, dropout3d, feature_alpha_dropout
from .rrelu import rrelu
from .elementwise import abs, add, clip, div, exp, log, matmul, maximum, minimum, mul, neg, pow, sqrt, sub, where
from .linear import linear
from .bilinear import bilinear
from .sdpa import scaled_dot_product_attention
from .embedding import embedding, one_hot
from .gumbel import gumbel_softmax
from .embedding_bag import embedding_bag
from .normalize import normalize
from .conv import conv1d, conv2d
from .conv3d import conv3d
from .conv_transpose import conv_transpose1d, conv_transpose2d
from .conv_transpose3d import conv_transpose3d
from .norm import batch_norm, layer_norm, rms_norm
from .interpolate import interpolate
from .upsample_aliases import upsample, upsample_bilinear, upsample_nearest
from .grid_sample import GRID_SAMPLE_INTERPOLATION_MODES, GRID_SAMPLE_PADDING_MODES, affine_grid, grid_sample
from .conv_tbc import conv_tbc
from .mha_forward import multi_head_attention_forward
from .fold import fold, unfold
from .pixel_shuffle import channel_shuffle, native_channel_shuffle, pixel_shuffle, pixel_unshuffle

from .group_norm import group_norm, instance_norm
from .local_response_norm import local_response_norm
from .pooling import avg_pool1d, avg_pool2d, max_pool1d, max_pool2d
from .pooling3d import avg_pool3d, max_pool3d
from .unpooling import max_unpool1d, max_unpool2d, max_unpool3d
from .lp_pooling import lp_pool1d, lp_pool2d, lp_pool3d
from .fractional_pooling import (
    fractional_max_pool2d, fractional_max_pool2d_with_indices, fractional_max_pool3d, fractional_max_pool3d_with_indices,
)
from .adaptive_pooling import (
    adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d, adaptive_max_pool1d, adaptive_max_pool2d,
    adaptive_max_pool3d,
)
from .pooling_aliases import (
    adaptive_max_pool1d_with_indices, adaptive_max_pool2d_with_indices, adaptive_max_pool3d_with_indices,
    max_pool1d_with_indices, max_pool2d_with_indices, max_pool3d_with_indices,
)
from .loss import (
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, l1_loss, mse_loss,
    multi_margin_loss, nll_loss,
)
from .gaussian_nll import gaussian_nll_loss
from .margin_loss import binary_hinge_loss, hinge_embedding_loss, soft_margin_loss
from .loss_more import kl_div, poisson_nll_loss, smooth_l1_loss
from .ctc import ctc_loss
from .embedding_loss import cosine_embedding_loss, margin_ranking_loss, triplet_margin_loss
from .multilabel_loss import multilabel_margin_loss, multilabel_soft_margin_loss
from .distance import cosine_similarity, pairwise_distance
from .pdist import pdist
from .triplet_distance_loss import triplet_margin_with_distance_loss
from .linear_cross_entropy import linear_cross_entropy
from .reduce import max, mean, min, sum
from .variance import std, var
from .shape import (
    broadcast_to, cat, concat, expand, flatten, pad, reshape, split, squeeze, stack, transpose, unsqueeze,
)

from .elementwise_choice import clamp  # noqa: E402 - (its own function: PyTorch's messages name it)
