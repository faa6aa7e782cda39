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
from test_double_backward import _compare, _run, assert_second_derivatives_match

R = np.random.default_rng(26)
DRAW_PER_TEST = True  # (conftest.py: each test draws from R = a generator of its own, seeded from its id)


def _n(*shape):
    return R.standard_normal(shape)


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
P34, T34 = R.uniform(0.1, 0.9, (3, 4)), R.uniform(0, 1, (3, 4))
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
     + (F.pad(x, (2, 1, 1, 2), mode="replicate")[:, :, 1:, 2:-1] ** 3).sum()
     + (F.pad(x * x, (2, 1, 3, 0), mode="circular") ** 2).sum(), (X4,)),
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
    assert_second_derivatives_match(torch, fn, arrays, f64=(1e-10, 1e-11), f32=(2e-3, 5e-4))


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


# ---------------------------------------------------------------- models: WGAN-GP on conv critics, hvp
def _critic_params(rng, norm):
    p = [rng.standard_normal((4, 3, 3, 3)) * 0.4, rng.standard_normal(4) * 0.1,
         rng.standard_normal((1, 4 * 3 * 3)) * 0.3, rng.standard_normal(1) * 0.1]
    if norm:  # a strided conv, layer norm over (C, H, W), group norm with its affine parameters
        p += [rng.standard_normal((4, 6, 6)) * 0.2 + 1, rng.standard_normal((4, 6, 6)) * 0.1,
              rng.standard_normal((4, 4, 3, 3)) * 0.3, rng.standard_normal(4) * 0.2 + 1, rng.standard_normal(4) * 0.1]
    return p


def _critic(Fm, params, x):
    """Conv2d-LeakyReLU-AvgPool-Linear; with norm parameters: Conv2d-LayerNorm-LeakyReLU-Conv2d(stride 2)-
    GroupNorm-LeakyReLU-MaxPool-Linear."""
    if len(params) == 4:
        w1, b1, w2, b2 = params
        h = Fm.avg_pool2d(Fm.leaky_relu(Fm.conv2d(x, w1, b1, padding=1), 0.2), 2)
    else:
        w1, b1, w2, b2, lw, lb, w3, gw, gb = params
        h = Fm.leaky_relu(Fm.layer_norm(Fm.conv2d(x, w1, b1, padding=1), (4, 6, 6), lw, lb), 0.2)
        h = Fm.leaky_relu(Fm.group_norm(Fm.conv2d(h, w3, None, stride=2, padding=2), 2, gw, gb), 0.2)
        h = Fm.max_pool2d(h, 2, 1, ceil_mode=True)
    return Fm.linear(h.reshape(h.shape[0], -1), w2, b2)


def _wgan_gp(lib, torch, params, real, fake, eps):
    """The critic loss of WGAN-GP: D(fake) - D(real) + 10 (|grad_x D(x_hat)| - 1)^2 (mean), backpropagated."""
    Fm = F if lib == "distnn" else torch.nn.functional
    T = (lambda a, g=False: Tensor(a.copy(), requires_grad=g)) if lib == "distnn" else \
        (lambda a, g=False: torch.tensor(a.copy(), requires_grad=g))
    grad = autograd.grad if lib == "distnn" else torch.autograd.grad
    ps = [T(p, True) for p in params]
    x_hat = T(eps * real + (1 - eps) * fake, True)
    g, = grad(_critic(Fm, ps, x_hat).sum(), x_hat, create_graph=True)
    penalty = ((g.reshape(g.shape[0], -1).norm(2, dim=1) - 1) ** 2).mean()
    loss = _critic(Fm, ps, T(fake)).mean() - _critic(Fm, ps, T(real)).mean() + 10.0 * penalty
    loss.backward()
    return float(loss.data if lib == "distnn" else loss.detach()), \
        [p.grad if lib == "distnn" else p.grad.numpy() for p in ps]


@pytest.mark.parametrize("norm", [False, True], ids=["conv_avgpool", "conv_layernorm_groupnorm_maxpool"])
def test_wgan_gp_on_a_conv_critic_matches_torch(torch, norm):
    rng = np.random.default_rng(31 + norm)
    params = _critic_params(rng, norm)
    real, fake = rng.standard_normal((3, 3, 6, 6)), rng.standard_normal((3, 3, 6, 6))
    eps = rng.uniform(size=(3, 1, 1, 1))
    if norm:  # (the linear layer reads the max pool's 4 x 3 x 3 output)
        params[2] = rng.standard_normal((1, 36)) * 0.3
    loss_d, grads_d = _wgan_gp("distnn", torch, params, real, fake, eps)
    loss_t, grads_t = _wgan_gp("torch", torch, params, real, fake, eps)
    assert loss_d == pytest.approx(loss_t, rel=1e-12)
    for i, (gd, gt) in enumerate(zip(grads_d, grads_t)):
        np.testing.assert_allclose(gd, gt, rtol=1e-9, atol=1e-11, err_msg=f"parameter {i}")


def test_wgan_gp_with_modules_and_batch_norm_keeps_the_running_stats(torch):
    """nn.Sequential critic (Conv2d, BatchNorm2d in training, LeakyReLU, Flatten, Linear) with the weights of
    PyTorch's: the parameter gradients of the penalized loss match, and the running statistics moved once per
    forward (three forwards), as PyTorch's: the double pass does not touch them."""
    tnn = torch.nn
    torch.manual_seed(0)
    ref = tnn.Sequential(tnn.Conv2d(2, 3, 3, padding=1), tnn.BatchNorm2d(3), tnn.LeakyReLU(0.2), tnn.Flatten(),
                         tnn.Linear(3 * 4 * 4, 1)).double()
    ours = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.LeakyReLU(0.2), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, 1)).double()
    for (_, p), (_, q) in zip(ours.named_parameters(), ref.named_parameters()):
        p.data = q.detach().numpy().copy()
    rng = np.random.default_rng(5)
    real, fake = rng.standard_normal((4, 2, 4, 4)), rng.standard_normal((4, 2, 4, 4))
    x_hat = 0.3 * real + 0.7 * fake
    for lib, model in (("distnn", ours), ("torch", ref)):
        T = Tensor if lib == "distnn" else torch.tensor
        grad = autograd.grad if lib == "distnn" else torch.autograd.grad
        xh = T(x_hat.copy(), requires_grad=True)
        g, = grad(model(xh).sum(), xh, create_graph=True)
        loss = model(T(fake.copy())).mean() - model(T(real.copy())).mean() \
            + 10 * ((g.reshape(4, -1).norm(2, dim=1) - 1) ** 2).mean()
        loss.backward()
    for (name, p), (_, q) in zip(ours.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)
    bn, tbn = ours[1], ref[1]
    np.testing.assert_allclose(np.asarray(bn.running_mean.data if hasattr(bn.running_mean, "data") else
                                          bn.running_mean), tbn.running_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(bn.running_var.data if hasattr(bn.running_var, "data") else
                                          bn.running_var), tbn.running_var.numpy(), rtol=1e-6)
    assert int(np.asarray(getattr(bn.num_batches_tracked, "data", bn.num_batches_tracked))) == 3


def test_hvp_through_a_conv_net_matches_torch(torch):
    """Hessian-vector product of a conv net's loss with respect to its parameters (conv, group norm, max
    pool, linear, cross-entropy), as ``autograd.functional.hvp``."""
    rng = np.random.default_rng(8)
    shapes = [(4, 2, 3, 3), (4,), (4,), (4,), (3, 16)]
    params = [rng.standard_normal(s) * 0.5 for s in shapes]
    vs = [rng.standard_normal(s) for s in shapes]
    x, labels = rng.standard_normal((5, 2, 6, 6)), np.array([0, 2, 1, 1, 0])
    out = {}
    for lib in ("distnn", "torch"):
        Fm = F if lib == "distnn" else torch.nn.functional
        T = Tensor if lib == "distnn" else torch.tensor
        fun = AF if lib == "distnn" else torch.autograd.functional

        def loss(w, b, gw, gb, lw, Fm=Fm, T=T):
            h = Fm.group_norm(Fm.conv2d(T(x.copy()), w, b, padding=1), 2, gw, gb).tanh()
            h = Fm.max_pool2d(h, 3, 3)
            return Fm.cross_entropy(Fm.linear(h.reshape(5, -1), lw), T(labels))

        _, hv = fun.hvp(loss, tuple(T(p.copy()) for p in params), tuple(T(v.copy()) for v in vs))
        out[lib] = [np.asarray(h.data if lib == "distnn" else h.numpy()) for h in hv]
    for a, b in zip(out["distnn"], out["torch"]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


# ---------------------------------------------------------------- gradgradcheck, dropout, refusals
@pytest.mark.parametrize("fn,shapes", [
    (lambda x, w: F.conv2d(x, w, stride=2, padding=1, dilation=1, groups=2), [(1, 2, 5, 4), (2, 1, 2, 3)]),
    (lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1), [(1, 2, 3, 3), (2, 2, 3, 2)]),
    (lambda x, w: F.conv3d(x, w, padding=1), [(1, 1, 3, 2, 3), (2, 1, 2, 2, 1)]),
    (lambda x, w: F.max_pool2d(x * w.sum(), 2, 1), [(1, 2, 3, 4), (2,)]),
    (lambda x, w: F.group_norm(x, 2, w, w * 2.0), [(2, 4, 3), (4,)]),
    (lambda x, w: F.batch_norm(x, None, None, w, None, training=True), [(3, 2, 2), (2,)]),
    (lambda x, w: F.layer_norm(x, (3,), w), [(2, 3), (3,)]),
    (lambda x, w: F.hardsigmoid(x * 2.0) * w + F.hardswish(x * 2.0), [(2, 3), (3,)]),
    (lambda x, w: F.embedding(Tensor(np.array([[1, 2], [2, 0]])), x) * w, [(3, 2), (2,)]),
])
def test_gradgradcheck_on_nn_ops(fn, shapes):
    """The numerical checks of the graph backwards (hardsigmoid: PyTorch has no double backward for it)."""
    rng = np.random.default_rng(9)
    inputs = tuple(Tensor(rng.uniform(-1, 1, s), requires_grad=True) for s in shapes)
    assert autograd.gradcheck(fn, inputs) is True
    assert autograd.gradgradcheck(fn, inputs) is True


def test_embedding_scale_grad_by_freq_double_backward_is_the_adjoint_of_its_backward():
    """With scale_grad_by_freq the weight's gradient L(g) adds each row's gradient over its index's count:
    the derivative of <v, L(g)> with respect to g is v at each index over its count (PyTorch's double
    backward leaves the count out)."""
    idx = np.array([[1, 2], [2, 2]])
    rng = np.random.default_rng(3)
    w = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    u = Tensor(rng.standard_normal((2, 2, 3)), requires_grad=True)
    v = rng.standard_normal((4, 3))
    gw, = autograd.grad((F.embedding(Tensor(idx), w, scale_grad_by_freq=True) * u).sum(), w, create_graph=True)
    counts = np.bincount(idx.ravel(), minlength=4)
    expected = np.zeros((4, 3))
    np.add.at(expected, idx.ravel(), u.data.reshape(-1, 3) / counts[idx.ravel()][:, None])
    np.testing.assert_allclose(gw.data, expected, rtol=1e-12)
    gu, = autograd.grad((gw * Tensor(v)).sum(), u)
    np.testing.assert_allclose(gu, v[idx] / counts[idx][..., None], rtol=1e-12)


def test_dropout_reuses_its_mask_and_draws_nothing():
    """The second pass multiplies by the forward's mask: d/dx of sum((2 u m x)^2) for y = sum(u * dropout(x) * x)
    is 8 u^2 m^2 x, and distnn's random stream is where the forward left it."""
    rng = np.random.default_rng(4)
    x0, u = rng.uniform(0.5, 1.5, (6, 50)), rng.standard_normal((6, 50))
    x = Tensor(x0.copy(), requires_grad=True)
    out = F.dropout(x, 0.4)
    mask = out.data / x0
    assert set(np.unique(np.round(mask, 12))) == {0.0, round(1 / 0.6, 12)}
    before = distnn.random.default_generator().bit_generator.state
    g, = autograd.grad((out * x * Tensor(u)).sum(), x, create_graph=True)
    h, = autograd.grad((g * g).sum(), x)
    assert distnn.random.default_generator().bit_generator.state == before
    np.testing.assert_allclose(g.data, 2 * u * mask * x0, rtol=1e-12)
    np.testing.assert_allclose(h, 8 * u * u * mask * mask * x0, rtol=1e-12)


def test_ops_left_out_are_refused_by_name():
    x = Tensor(R.standard_normal((1, 2, 4, 4, 4)), requires_grad=True)
    with pytest.raises(NotImplementedError, match=r"the op _CrossMapLRN2d \(.*\) has no differentiable backward"):
        autograd.grad(nn.CrossMapLRN2d(3)(x[0]).sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError, match=r"create_graph=True: .*only plain batch norm"):
        from distnn.nn.normalization import ValidRowsBatchNormTrain
        y = ValidRowsBatchNormTrain.apply(x[0], None, None, mean=np.zeros(4), var=np.ones(4), count=32)
        autograd.grad(y.sum(), x, create_graph=True)
