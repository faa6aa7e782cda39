"""PyTorch's top-level forms of the neural-network ops (``torch.conv2d``, ``torch.dropout``, ``torch.batch_norm``,
``torch.kl_div``, ...), each delegating to :mod:`distnn.functional`, so values and gradients are F's.

These are ATen's signatures, not ``torch.nn.functional``'s, and they differ in ways code written against torch
relies on: arguments are positional and often required (``torch.dropout(input, p, train)``,
``torch.batch_norm``'s nine), reductions are ints (0 'none', 1 'mean', 2 'sum'; ``torch.kl_div``'s 1 is the
mean over every element, with no warning; left out, the reduction is 0, 'none', in PyTorch 2.13's top-level
forms, whatever ATen's schema says, and so here), grid sampling takes int modes, ``torch.embedding`` takes the weight
first (and a negative ``padding_idx`` means none), the ``*_with_indices`` and ``adaptive_max_pool1d`` forms
always return ``(output, indices)``. ``cudnn_enabled`` arguments pick a backend in PyTorch and change nothing
here. Where the signature is F's already (the convolutions, pixel/channel shuffles, ...), the name is F's own
function. ``torch.embedding_bag`` returns ATen's four outputs: the bags and the bookkeeping its backward reads
(each entry's bag, the bags' sizes, max mode's argmax rows), with torch's values in each mode.
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from .functional.adaptive_pooling import adaptive_avg_pool1d
from .functional.dropout_variants import _noise_dropout

# F's own functions: ATen's signature is theirs, argument for argument
from .functional import (  # noqa: F401 - re-exported
    avg_pool1d, bilinear, channel_shuffle, conv1d, conv2d, conv3d, conv_tbc, conv_transpose1d, conv_transpose2d,
    conv_transpose3d, cosine_similarity, hardshrink, native_channel_shuffle, pairwise_distance, pdist, pixel_shuffle,
    pixel_unshuffle, prelu, rms_norm,
)

_REDUCTIONS = {0: "none", 1: "mean", 2: "sum"}  # ATen's at::Reduction enum


def _reduction(reduction, who):
    """ATen's int reduction as F's string; a string (F's form) is a TypeError, as torch's argument parser's."""
    if isinstance(reduction, bool) or not isinstance(reduction, int):
        raise TypeError(f"{who}(): argument 'reduction' must be int (0 'none', 1 'mean', 2 'sum'), "
                        f"not {type(reduction).__name__}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{who}(): reduction must be 0 ('none'), 1 ('mean') or 2 ('sum'), got {reduction}")
    return _REDUCTIONS[reduction]


# dropout: `train` is required and positional, as ATen's; a p outside [0, 1] is ATen's RuntimeError (F's is
# torch.nn.functional's ValueError)
def _check_p(p):
    if not 0.0 <= p <= 1.0:
        raise RuntimeError(f"dropout probability has to be between 0 and 1, but got {p}")
    return p


def dropout(input, p, train):  # noqa: A002 - PyTorch's name
    """``torch.dropout(input, p, train)``: :func:`distnn.functional.dropout` (its masks and random streams)."""
    return F.dropout(input, _check_p(p), train)


def alpha_dropout(input, p, train):  # noqa: A002
    """``torch.alpha_dropout(input, p, train)``: :func:`distnn.functional.alpha_dropout`."""
    return F.alpha_dropout(input, _check_p(p), train)


def dropout_(input, p, train):  # noqa: A002
    """``torch.dropout_(input, p, train)``: :func:`dropout` in place."""
    return F.dropout(input, _check_p(p), train, inplace=True)


def alpha_dropout_(input, p, train):  # noqa: A002
    """``torch.alpha_dropout_(input, p, train)``: :func:`alpha_dropout` in place."""
    return F.alpha_dropout(input, _check_p(p), train, inplace=True)


def feature_dropout(input, p, train):  # noqa: A002
    """``torch.feature_dropout(input, p, train)``: one mask value per (sample, channel) of an ``(N, C, ...)``
    input of any rank >= 2, kept channels scaled by 1/(1-p) (no rank checks or warnings, unlike dropout2d)."""
    return _noise_dropout(input, _check_p(p), train, False, None, feature=True, alpha=False)


def feature_dropout_(input, p, train):  # noqa: A002
    """``torch.feature_dropout_(input, p, train)``: :func:`feature_dropout` in place (the same masks and streams)."""
    return _noise_dropout(input, _check_p(p), train, True, None, feature=True, alpha=False)


def feature_alpha_dropout(input, p, train):  # noqa: A002
    """``torch.feature_alpha_dropout(input, p, train)``: :func:`distnn.functional.feature_alpha_dropout`."""
    return F.feature_alpha_dropout(input, _check_p(p), train)


def feature_alpha_dropout_(input, p, train):  # noqa: A002
    """``torch.feature_alpha_dropout_(input, p, train)``: :func:`feature_alpha_dropout` in place."""
    return F.feature_alpha_dropout(input, _check_p(p), train, inplace=True)


# normalization: ATen's argument order (weight and bias before the running statistics)
def batch_norm(input, weight, bias, running_mean, running_var, training, momentum, eps, cudnn_enabled):  # noqa: A002
    """``torch.batch_norm``: every argument required, positional as ATen's; ``running_mean``/``running_var``
    (may be None) are updated in place when ``training``. ``cudnn_enabled`` changes nothing."""
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def instance_norm(input, weight, bias, running_mean, running_var, use_input_stats, momentum, eps,  # noqa: A002
                  cudnn_enabled):
    """``torch.instance_norm``: every argument required, positional as ATen's (see :func:`batch_norm`)."""
    return F.instance_norm(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, cudnn_enable=True):  # noqa: A002
    """``torch.layer_norm``: :func:`distnn.functional.layer_norm` (``cudnn_enable`` changes nothing)."""
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, cudnn_enabled=True):  # noqa: A002
    """``torch.group_norm``: :func:`distnn.functional.group_norm` (``cudnn_enabled`` changes nothing)."""
    return F.group_norm(input, num_groups, weight, bias, eps)


def embedding(weight, indices, padding_idx=-1, scale_grad_by_freq=False, sparse=False):
    """``torch.embedding(weight, indices, ...)``: the weight first, and ``padding_idx`` -1 (any negative) means
    no padding row, as ATen's (``F.embedding`` turns its negative indices into these before calling it)."""
    return F.embedding(indices, weight, padding_idx if padding_idx >= 0 else None,
                       scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)


_BAG_MODES = {0: "sum", 1: "mean", 2: "max"}


def embedding_bag(weight, indices, offsets, scale_grad_by_freq=False, mode=0, sparse=False,
                  per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """``torch.embedding_bag``: ATen's form, the weight first, ``mode`` an int (0 sum, 1 mean, 2 max), 1-D
    ``indices`` with ``offsets``. Returns ``(output, offset2bag, bag_size, max_indices)``: ``output`` is
    :func:`distnn.functional.embedding_bag`'s (differentiable, same checks and differences from PyTorch);
    ``offset2bag`` each index's bag (empty in mode 0 with a float32 or float16 weight and no padding_idx: torch's
    fast path skips it); ``bag_size`` each bag's count of non-padding indices in modes 1 and 2,
    zeros in mode 0 (one per offset, or per bag when the weight requires grad, as torch's); ``max_indices``
    mode 2's weight row of each bag's maximum per dimension (0 in an empty bag), ``bag_size`` again in mode
    1, zeros in mode 0. The three are detached, in the indices' and offsets' common int dtype."""
    from .autograd.tensor import Tensor
    from .backend import get_array_module
    from .functional.embedding_bag import EmbeddingBagFunction, bag_arguments, bag_max

    if isinstance(mode, bool) or not isinstance(mode, int):
        raise TypeError(f"embedding_bag(): argument 'mode' (position 5) must be int (0 sum, 1 mean, 2 max), not "
                        f"{type(mode).__name__}")
    if mode not in _BAG_MODES:
        raise RuntimeError(f"embedding_bag: `mode` must be sum, mean, or max (0, 1 or 2), got {mode}")
    raw = lambda t: t.data if isinstance(t, Tensor) else t  # noqa: E731
    if raw(indices).ndim != 1:
        raise RuntimeError(f"embedding_bag: indices must be 1-D (with offsets; F.embedding_bag takes a 2-D batch), "
                           f"got shape {tuple(raw(indices).shape)}")
    args, params = bag_arguments(indices, weight, offsets, None, 2, scale_grad_by_freq, _BAG_MODES[mode], sparse,
                                 per_sample_weights, include_last_offset, padding_idx, "embedding_bag")
    output = EmbeddingBagFunction.apply(*args, **params)
    w, _, idx, sel, bag, num_bags = args
    w, idx = raw(w), raw(idx)
    xp = get_array_module(w)
    dtype = np.result_type(raw(indices).dtype, raw(offsets).dtype)
    if mode == 0:  # (ATen's CPU kernel leaves them zero, one per offset unless the weight needs a gradient)
        size = xp.zeros(num_bags if getattr(weight, "requires_grad", False) else raw(offsets).shape[0], dtype)
        # its fast path (a float32 or float16 weight, no padding) does not compute offset2bag: empty, as there
        offset2bag = bag[:0] if w.dtype in (np.float32, np.float16) and padding_idx is None else bag
        return output, Tensor(offset2bag.astype(dtype)), Tensor(size), Tensor(size.copy())
    bag_size = xp.bincount(bag[sel], minlength=num_bags)[:num_bags].astype(dtype)
    if mode == 1:
        max_indices = bag_size.copy()
    else:
        rows_idx = idx[sel]
        _, argrow = bag_max(w[rows_idx], rows_idx, bag[sel], num_bags)
        max_indices = xp.where((bag_size > 0)[:, None], argrow, 0).astype(dtype)
    return output, Tensor(bag.astype(dtype)), Tensor(bag_size), Tensor(max_indices)


# activations without F's `inplace`
def selu(input):  # noqa: A002
    """``torch.selu``."""
    return F.selu(input)


def celu(input, alpha=1.0):  # noqa: A002
    """``torch.celu``."""
    return F.celu(input, alpha)


def threshold(input, threshold, value):  # noqa: A002
    """``torch.threshold``: ``value`` where ``input <= threshold``, else the input."""
    return F.threshold(input, threshold, value)


def rrelu(input, lower=0.125, upper=1.0 / 3.0, training=False, generator=None):  # noqa: A002
    """``torch.rrelu``: :func:`distnn.functional.rrelu` (``generator``: a ``numpy.random.Generator``)."""
    return F.rrelu(input, lower, upper, training, generator=generator)


# pooling: ATen's stride=[] (empty: the kernel size); the *_with_indices forms always return the indices
def _stride(stride):
    return None if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else stride


def max_pool1d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):  # noqa: A002
    """``torch.max_pool1d``: the pooled values only."""
    return F.max_pool1d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool2d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):  # noqa: A002
    """``torch.max_pool2d``: the pooled values only."""
    return F.max_pool2d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool3d(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):  # noqa: A002
    """``torch.max_pool3d``: the pooled values only."""
    return F.max_pool3d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode)


def max_pool1d_with_indices(input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False):  # noqa: A002
    """``torch.max_pool1d_with_indices``: ``(output, indices)``."""
    return F.max_pool1d(input, kernel_size, _stride(stride), padding, dilation, ceil_mode, return_indices=True)


def adaptive_max_pool1d(input, output_size):  # noqa: A002
    """``torch.adaptive_max_pool1d``: ``(output, indices)``, always."""
    return F.adaptive_max_pool1d(input, output_size, return_indices=True)


# losses: reductions as ATen's ints
def kl_div(input, target, reduction=0, *, log_target=False):  # noqa: A002
    """``torch.kl_div``: reduction 1 is the mean over every element (ATen's, without F's 'batchmean' warning),
    0 (the default here, as torch's top-level form's) none."""
    loss = F.kl_div(input, target, reduction="none", log_target=log_target)
    mode = _reduction(reduction, "kl_div")
    return loss if mode == "none" else loss.mean() if mode == "mean" else loss.sum()


def margin_ranking_loss(input1, input2, target, margin=0.0, reduction=0):
    """``torch.margin_ranking_loss``."""
    return F.margin_ranking_loss(input1, input2, target, margin, _reduction(reduction, "margin_ranking_loss"))


def hinge_embedding_loss(input, target, margin=1.0, reduction=0):  # noqa: A002
    """``torch.hinge_embedding_loss``."""
    return F.hinge_embedding_loss(input, target, margin, _reduction(reduction, "hinge_embedding_loss"))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, reduction=0):
    """``torch.triplet_margin_loss``."""
    return F.triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                                 _reduction(reduction, "triplet_margin_loss"))


def cosine_embedding_loss(input1, input2, target, margin=0.0, reduction=0):
    """``torch.cosine_embedding_loss``."""
    return F.cosine_embedding_loss(input1, input2, target, margin, _reduction(reduction, "cosine_embedding_loss"))


def poisson_nll_loss(input, target, log_input, full, eps, reduction):  # noqa: A002
    """``torch.poisson_nll_loss``: every argument required, as ATen's."""
    return F.poisson_nll_loss(input, target, log_input, full, eps, _reduction(reduction, "poisson_nll_loss"))


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction=0):  # noqa: A002
    """``torch.binary_cross_entropy_with_logits``."""
    return F.binary_cross_entropy_with_logits(input, target, weight, pos_weight,
                                              _reduction(reduction, "binary_cross_entropy_with_logits"))


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction=0, zero_infinity=False):
    """``torch.ctc_loss``: reduction 1 divides each loss by its target length, then averages (as F's 'mean')."""
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, _reduction(reduction, "ctc_loss"),
                      zero_infinity)


# padding and sampling
def constant_pad_nd(input, pad, value=0):  # noqa: A002
    """``torch.constant_pad_nd``: :func:`distnn.functional.pad` in 'constant' mode (negative pads crop)."""
    return F.pad(input, pad, "constant", value)


_INTERPOLATION = {v: k for k, v in F.GRID_SAMPLE_INTERPOLATION_MODES.items()}  # 0 bilinear, 1 nearest, 2 bicubic
_PADDING = {v: k for k, v in F.GRID_SAMPLE_PADDING_MODES.items()}  # 0 zeros, 1 border, 2 reflection


def grid_sampler(input, grid, interpolation_mode, padding_mode, align_corners):  # noqa: A002
    """``torch.grid_sampler``: :func:`distnn.functional.grid_sample` with ATen's int modes. Another int is a
    ValueError (PyTorch does not check, and reads garbage)."""
    if interpolation_mode not in _INTERPOLATION:
        raise ValueError(f"grid_sampler(): interpolation_mode must be 0 (bilinear), 1 (nearest) or 2 (bicubic), "
                         f"got {interpolation_mode!r}")
    if padding_mode not in _PADDING:
        raise ValueError(f"grid_sampler(): padding_mode must be 0 (zeros), 1 (border) or 2 (reflection), "
                         f"got {padding_mode!r}")
    return F.grid_sample(input, grid, _INTERPOLATION[interpolation_mode], _PADDING[padding_mode], align_corners)


def affine_grid_generator(theta, size, align_corners):
    """``torch.affine_grid_generator``: :func:`distnn.functional.affine_grid` (``align_corners`` required)."""
    return F.affine_grid(theta, size, align_corners=align_corners)


__all__ = [
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "conv_tbc",
    "dropout", "alpha_dropout", "feature_dropout", "feature_alpha_dropout", "dropout_", "alpha_dropout_",
    "feature_alpha_dropout_", "feature_dropout_",
    "batch_norm", "instance_norm", "layer_norm", "group_norm", "rms_norm", "embedding", "embedding_bag", "bilinear",
    "prelu", "selu", "celu", "rrelu", "threshold", "hardshrink",
    "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle",
    "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "avg_pool1d", "adaptive_avg_pool1d",
    "adaptive_max_pool1d",
    "kl_div", "cosine_similarity", "pairwise_distance", "pdist", "margin_ranking_loss", "hinge_embedding_loss",
    "triplet_margin_loss", "cosine_embedding_loss", "poisson_nll_loss", "binary_cross_entropy_with_logits",
    "ctc_loss", "constant_pad_nd", "grid_sampler", "affine_grid_generator",
]
