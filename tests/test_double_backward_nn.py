"""Double backward (``create_graph=True``) of the CNN and normalization ops against PyTorch: second derivatives
(Hessian-vector products) over a small fuzz of convolutions, pools and norms, the other nn ops (activations,
losses, embedding, pad, interpolate, vector_norm of every ord, pointwise math), third derivatives, WGAN-GP
on conv critics, ``hvp`` through a conv net, gradgradcheck, batch norm's running statistics, dropout's mask.
(The core ops: test_double_backward.py, whose ``_run``/``_compare`` these cases use.)"""
import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn import Tensor, autograd
from distnn.autograd import functional as AF
from test_double_backward import _compare, _run

RNG = np.random.default_rng(26)


def _n(*shape):
    return RNG.standard_normal(shape)


def _conv_fuzz(count, nd, seed):
    """(name, fn, arrays) for random convolutions of ``nd`` spatial dims: groups, stride, padding, dilation,
    with and without bias; the output through tanh (so that the second derivative has a curvature term)."""
    rng = np.random.default_rng(seed)
    conv = {1: "conv1d", 2: "conv2d", 3: "conv3d"}[nd]
    out = []
    for i in range(count):
        G = int(rng.integers(1, 3))
        C, O = G * int(rng.integers(1, 3)), G * int(rng.integers(1, 3))
        k = tuple(int(v) for v in rng.integers(1, 4, nd))
        s, p, d = int(rng.integers(1, 4)), int(rng.integers(0, 3)), int(rng.integers(1, 3))
        size = tuple(max(kk * d + int(rng.integers(0, 3)) - 2 * p, d * (kk - 1) + 1) for kk in k)
        size = tuple(max(v, 1) for v in size)
        arrays = [_n(2, C, *size), _n(O, C // G, *k)]
        bias = bool(rng.integers(0, 2))
        if bias:
            arrays.append(_n(O))

        def fn(F, X, L, x, w, b=None, conv=conv, s=s, p=p, d=d, G=G):
            return getattr(F, conv)(x, w, b, stride=s, padding=p, dilation=d, groups=G).tanh()
        out.append((f"{conv}_{i}_g{G}s{s}p{p}d{d}k{'x'.join(map(str, k))}{'b' if bias else ''}", fn, arrays))
    return out


def _transpose_fuzz(count, seed):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        nd = 1 + i % 2
        G = int(rng.integers(1, 3))
        C, Og = G * int(rng.integers(1, 3)), int(rng.integers(1, 3))
        k = tuple(int(v) for v in rng.integers(1, 4, nd))
        s, d = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        p = int(rng.integers(0, 2))
        op = int(rng.integers(0, s)) if s > 1 else 0
        arrays = [_n(2, C, *(3,) * nd), _n(C, Og, *k), _n(G * Og)]
        name = "conv_transpose1d" if nd == 1 else "conv_transpose2d"

        def fn(F, X, L, x, w, b, name=name, s=s, p=p, op=op, d=d, G=G):
            return getattr(F, name)(x, w, b, stride=s, padding=p, output_padding=op, groups=G, dilation=d).tanh()
        out.append((f"{name}_{i}_g{G}s{s}p{p}op{op}d{d}", fn, arrays))
    return out


X4 = _n(2, 4, 6, 7)
X3 = _n(2, 3, 9)
W4, B4 = _n(4), _n(4)
RUNNING = (np.arange(4.0) * 0.1, np.arange(1.0, 5.0) * 0.5)

# (name, f(F, X, L, *inputs) -> tensor, inputs): each op fed a nonlinear function of its input (x * x) or
# followed by one (** 2, tanh), so that both its own second derivative and its graph backward's links count.
CNN_CASES = _conv_fuzz(6, 2, 1) + _conv_fuzz(3, 1, 2) + _conv_fuzz(2, 3, 3) + _transpose_fuzz(4, 4) + [
    ("max_pool2d", lambda F, X, L, x: F.max_pool2d(x * x, 3, 2, 1) * x[:, :, :3, :4].sum(), (X4,)),
    ("max_pool2d_dilated_ceil", lambda F, X, L, x: F.max_pool2d(x.tanh(), 2, 2, 0, dilation=2, ceil_mode=True) ** 2,
     (X4,)),
    ("max_pool1d", lambda F, X, L, x: F.max_pool1d(x.tanh(), 3, 2, 1) ** 2, (X3,)),
    ("avg_pool2d", lambda F, X, L, x: F.avg_pool2d(x * x, 3, 2, 1, count_include_pad=False) ** 2, (X4,)),
    ("avg_pool2d_ceil_divisor", lambda F, X, L, x: F.avg_pool2d(x * x, 2, ceil_mode=True, divisor_override=3) ** 2,
     (X4,)),
    ("avg_pool1d", lambda F, X, L, x: F.avg_pool1d(x * x, 4, 2, 2) ** 2, (X3,)),
    ("adaptive_avg_pool2d", lambda F, X, L, x: F.adaptive_avg_pool2d(x * x, (4, 3)) ** 2, (X4,)),
    ("adaptive_avg_pool1d", lambda F, X, L, x: F.adaptive_avg_pool1d(x * x, 3) ** 2, (X3,)),
    ("adaptive_max_pool2d", lambda F, X, L, x: F.adaptive_max_pool2d(x.tanh(), (4, 3)) ** 2, (X4,)),
    ("adaptive_max_pool1d", lambda F, X, L, x: F.adaptive_max_pool1d(x.tanh(), 4) ** 2, (X3,)),
    ("batch_norm_train", lambda F, X, L, x, w, b: F.batch_norm(x, None, None, w, b, training=True).tanh(),
     (X4, W4, B4)),
    ("batch_norm_train_no_affine", lambda F, X, L, x: F.batch_norm(x * x, None, None, training=True).tanh(), (X4,)),
    ("batch_norm_eval", lambda F, X, L, x, w, b: F.batch_norm(
        x, X.as_tensor(RUNNING[0]).to(x.dtype), X.as_tensor(RUNNING[1]).to(x.dtype), w, b, training=False).tanh(), (X4, W4, B4)),
    ("layer_norm", lambda F, X, L, x, w, b: F.layer_norm(x, (6, 7), w, b).tanh(), (X4, _n(6, 7), _n(6, 7))),
    ("layer_norm_no_affine", lambda F, X, L, x: F.layer_norm(x * x, (7,)).tanh(), (X4,)),
    ("group_norm", lambda F, X, L, x, w, b: F.group_norm(x, 2, w, b).tanh(), (X4, W4, B4)),
    ("group_norm_1d_no_affine", lambda F, X, L, x: F.group_norm(x * x, 3).tanh(), (X3,)),
    ("instance_norm", lambda F, X, L, x, w, b: F.instance_norm(x, weight=w, bias=b).tanh(), (X4, W4, B4)),
    ("instance_norm_running", lambda F, X, L, x, w, b: F.instance_norm(
        x, X.as_tensor(RUNNING[0]).to(x.dtype), X.as_tensor(RUNNING[1]).to(x.dtype), w, b, use_input_stats=False).tanh(), (X4, W4, B4)),
    ("rms_norm", lambda F, X, L, x, w: F.rms_norm(x, (6, 7), w, eps=1e-3).tanh(), (X4, _n(6, 7))),
]

A35 = _n(3, 5)
P34, T34 = RNG.uniform(0.1, 0.9, (3, 4)), RNG.uniform(0, 1, (3, 4))
IDX = np.array([[1, 2, 4], [4, 0, 1]])
OTHER_CASES = [
    ("elu_selu_celu", lambda F, X, L, x: F.elu(x, 0.7) * x + F.selu(x) * x + F.celu(x, 0.5) * x, (A35,)),
    ("silu_mish", lambda F, X, L, x: F.silu(x) * x + F.mish(x) * x, (A35,)),
    ("hardtanh_relu6", lambda F, X, L, x: F.hardtanh(x * 2, -1.5, 0.7) * x + F.relu6(x * 4) * x, (A35,)),
    ("hardswish", lambda F, X, L, x: F.hardswish(x * 3) * x, (A35,)),
    ("softsign_tanhshrink", lambda F, X, L, x: F.softsign(x) * x + F.tanhshrink(x) * x, (A35,)),
    ("shrink_threshold", lambda F, X, L, x: F.softshrink(x, 0.3) * x + F.hardshrink(x, 0.3) * x
     + F.threshold(x, 0.1, -2.0) * x, (A35,)),
    ("gelu_tanh", lambda F, X, L, x: F.gelu(x * x, approximate="tanh") * x, (A35,)),
    ("bce_logits", lambda F, X, L, x, t: F.binary_cross_entropy_with_logits(
        x * x, t, pos_weight=X.as_tensor(np.array([1.0, 2.0, 0.5, 3.0])).to(x.dtype)), (_n(3, 4), T34)),
    ("bce_logits_weighted_sum", lambda F, X, L, x, t: F.binary_cross_entropy_with_logits(
        x, t, weight=X.as_tensor(T34).to(x.dtype), reduction="sum"), (_n(3, 4), T34)),
    ("smooth_l1", lambda F, X, L, x, t: F.smooth_l1_loss(x * x, t, beta=0.5), (_n(3, 4), T34)),
    ("smooth_l1_none", lambda F, X, L, x, t: F.smooth_l1_loss(x, t * x, beta=2.0, reduction="none"),
     (_n(3, 4), T34)),
    ("huber_l1", lambda F, X, L, x, t: F.huber_loss(x * x, t, delta=0.5) + F.l1_loss(x * t, t), (_n(3, 4), T34)),
    ("cross_entropy_probs_smoothing", lambda F, X, L, x, t: F.cross_entropy(
        x * x, t.softmax(dim=1), label_smoothing=0.2), (_n(3, 4), _n(3, 4))),
    ("nll_loss", lambda F, X, L, x: F.nll_loss((x * x).log_softmax(dim=1), X.as_tensor(np.array([0, 3, 1]))),
     (_n(3, 4),)),
    ("vector_norm_p", lambda F, X, L, x: L.vector_norm(x, 3, dim=1) * x.sum() + (L.vector_norm(x, 1.5) * x).sum()
     + (L.vector_norm(x, 0.5, dim=0, keepdim=True) * x).sum(), (A35,)),
    ("vector_norm_inf_0", lambda F, X, L, x: L.vector_norm(x, float("inf"), dim=1) * x.sum()
     + (L.vector_norm(x, float("-inf")) * x).sum() + (L.vector_norm(x, 0) * x).sum(), (A35,)),
    ("embedding_padding_idx", lambda F, X, L, w: F.embedding(X.as_tensor(IDX), w * w, padding_idx=4) ** 2,
     (_n(6, 3),)),
    ("pad_constant_crop", lambda F, X, L, x: F.pad(x * x, (1, 2, 0, -1), value=0.5) ** 2, (X4,)),
    ("pad_reflect_replicate", lambda F, X, L, x: (F.pad(x * x, (1, 2, 0, 1), mode="reflect") ** 2).sum()
     + (F.pad(x, (2, 1, 1, 2), mode="replicate")[:, :, 1:, 2:-1] ** 3).sum(), (X4,)),
    ("interpolate_nearest_bilinear", lambda F, X, L, x: F.interpolate(x * x, scale_factor=2) ** 2
     + F.interpolate(x * x, size=(12, 14), mode="bilinear") ** 3, (X4,)),
    ("flatten_unflatten", lambda F, X, L, x: (x.flatten(1) * x.flatten(1)).unflatten(1, (4, 42)), (X4,)),
    ("dropout_eval", lambda F, X, L, x: F.dropout(x * x, 0.3, training=False) ** 2, (A35,)),
    ("pointwise_math", lambda F, X, L, x: x.log1p() * x + x.expm1() * x + x.erf() * x + x.erfc() * x
     + x.rsqrt() * x + x.reciprocal() * x + x.square() * x + x.log2() * x + x.log10() * x + x.exp2() * x
     + (x * 0.5).atanh() * x + (x + 1.5).acosh() * x + (x * 0.5).erfinv() * x, (P34,)),
]
CASES = CNN_CASES + OTHER_CASES

# PyTorch's binary_cross_entropy double backward adds 1e-12 to p and 1 - p in its denominator: its second
# derivative is that much off the exact one, which distnn computes
LOOSER = [("bce", lambda F, X, L, p, t: F.binary_cross_entropy(p, t), (P34, T34)),
          ("bce_weighted_none", lambda F, X, L, p, t: F.binary_cross_entropy(
              p * p, t, weight=X.as_tensor(T34), reduction="none"), (P34, T34))]


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_second_derivatives_match_torch(torch, name, fn, arrays):
    _compare(_run("distnn", torch, fn, arrays, np.float64), _run("torch", torch, fn, arrays, np.float64),
             rtol=1e-10, atol=1e-11)
    _compare(_run("distnn", torch, fn, arrays, np.float32), _run("torch", torch, fn, arrays, np.float32),
             rtol=2e-3, atol=5e-4)


@pytest.mark.parametrize("name,fn,arrays", LOOSER, ids=[c[0] for c in LOOSER])
def test_binary_cross_entropy_second_derivatives(torch, name, fn, arrays):
    _compare(_run("distnn", torch, fn, arrays, np.float64), _run("torch", torch, fn, arrays, np.float64),
             rtol=1e-8, atol=1e-9)


# (conv_transpose with output_padding: PyTorch's own third derivative raises; layer/batch/instance norm: below)
@pytest.mark.parametrize("name", ["conv2d_0", "conv2d_4", "conv3d_0", "conv_transpose1d_0", "max_pool2d",
                                  "avg_pool2d", "adaptive_max_pool2d", "group_norm", "rms_norm",
                                  "elu_selu_celu", "silu_mish", "interpolate_nearest_bilinear", "vector_norm_p",
                                  "smooth_l1", "bce_logits", "embedding_padding_idx", "pad_reflect_replicate"])
def test_third_derivatives_match_torch(torch, name):
    _, fn, arrays = next(c for c in CASES if c[0] == name or c[0].startswith(name + "_"))
    _compare(_run("distnn", torch, fn, arrays, np.float64, order=3),
             _run("torch", torch, fn, arrays, np.float64, order=3), rtol=1e-9, atol=1e-10)


def _composed_norm(F, x, axes, w, b, eps=1e-5):
    """Normalization over ``axes`` written with basic ops (what layer_norm and batch_norm compute)."""
    xc = x - x.mean(axes, keepdim=True)
    return xc * ((xc * xc).mean(axes, keepdim=True) + eps) ** -0.5 * w + b


@pytest.mark.parametrize("name", ["layer_norm", "batch_norm_train", "instance_norm"])
def test_third_derivatives_of_layer_batch_instance_norm(torch, name):
    """PyTorch's layer_norm and batch_norm (instance_norm's) double backwards are formulas whose own derivative (the third) is
    off (by 3% for layer_norm here): the oracle is the normalization composed of basic ops, in PyTorch."""
    x, w, b = X4, _n(7), _n(7)
    if name == "layer_norm":
        ours = (lambda F, X, L, x, w, b: F.layer_norm(x, (7,), w, b).tanh())
        theirs = (lambda F, X, L, x, w, b: _composed_norm(F, x, (3,), w, b).tanh())
    else:
        x, w, b = X4, W4, B4
        if name == "batch_norm_train":
            ours = (lambda F, X, L, x, w, b: F.batch_norm(x, None, None, w, b, training=True).tanh())
        else:
            ours = (lambda F, X, L, x, w, b: F.instance_norm(x, weight=w, bias=b).tanh())
        axes = (0, 2, 3) if name == "batch_norm_train" else (2, 3)
        theirs = (lambda F, X, L, x, w, b: _composed_norm(F, x, axes, w.reshape(1, -1, 1, 1),
                                                          b.reshape(1, -1, 1, 1)).tanh())
    _compare(_run("distnn", torch, ours, (x, w, b), np.float64, order=3),
             _run("torch", torch, theirs, (x, w, b), np.float64, order=3), rtol=1e-9, atol=1e-9)
