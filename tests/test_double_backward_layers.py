"""Double backward (``create_graph=True``) of attention (scaled_dot_product_attention, MultiheadAttention, a
Transformer layer), the recurrent layers and cells (WGAN-GP on a recurrent critic), einsum, glu, prelu,
bilinear, conv_transpose3d, embedding_bag, max_unpool, rrelu, the alpha dropouts and the losses kl_div,
poisson_nll, gaussian_nll, soft_margin, hinge_embedding, multilabel_margin: each was refused by name before.

Second derivatives (third where cheap) against PyTorch's, float64 tight and float32 loose. PyTorch's fused
CPU attention kernel has no double backward, so its side runs the math backend (``sdpa_kernel(MATH)``), which
does. PyTorch differentiates embedding_bag and multilabel_margin_loss only once: the oracle there is its
composition of embedding rows and index_add (the same function), and gradgradcheck. The random ops use one
draw: rrelu's slopes and the dropouts' masks are recovered from the forward and replayed in PyTorch.
"""
import numpy as np
import pytest

import distnn
import distnn.functional as F
import distnn.nn as nn
from distnn import Tensor, autograd
from test_double_backward import _compare, _run, assert_second_derivatives_match
from torch_twins import copy_distnn_weights

RNG = np.random.default_rng(41)


def _n(*shape):
    return RNG.standard_normal(shape)


def _is_torch(Fm):
    return Fm.__name__.startswith("torch")


def _einsum(Fm, eq, *ops):
    if _is_torch(Fm):
        import torch
        return torch.einsum(eq, *ops)
    return distnn.einsum(eq, *ops)


IDX, OFF, BAG = np.array([1, 2, 0, 3, 3, 1]), np.array([0, 2, 2, 5]), np.array([0, 0, 2, 2, 2, 3])


def _bag(Fm, X, w, mode="mean", psw=None, two_d=False):
    """embedding_bag on distnn; PyTorch's composition of the same (rows, index_add or a reduction) on torch."""
    if not _is_torch(Fm):
        if two_d:
            return Fm.embedding_bag(X.as_tensor(IDX.reshape(2, 3)), w, mode=mode, per_sample_weights=psw)
        return Fm.embedding_bag(X.as_tensor(IDX), w, X.as_tensor(OFF), mode=mode, per_sample_weights=psw)
    import torch
    rows = w[torch.tensor(IDX)]
    if psw is not None:
        rows = rows * psw.reshape(-1)[:, None]
    if two_d:
        r = rows.view(2, 3, -1)
        return r.max(1).values if mode == "max" else r.sum(1) if mode == "sum" else r.mean(1)
    out = torch.zeros(4, w.shape[1], dtype=w.dtype).index_add(0, torch.tensor(BAG), rows)
    if mode == "mean":
        out = out / torch.tensor(np.maximum(np.bincount(BAG, minlength=4), 1)[:, None], dtype=w.dtype)
    return out


def _unpool(Fm, x, d, **kw):
    pool, unpool = getattr(Fm, f"max_pool{d}d"), getattr(Fm, f"max_unpool{d}d")
    out, idx = pool(x, 2, return_indices=True)
    return out, lambda o: unpool(o, idx, 2, **kw)


BOOL_MASK = _n(3, 5) > 0
BOOL_MASK[1] = False  # (a query with no key: probabilities 0, no NaN)
P34 = RNG.uniform(0.1, 1.0, (3, 4))
SIGNS = np.sign(_n(3, 4))
LABELS = np.array([[1, 2, -1, 0], [0, -1, 0, 0], [3, 3, 1, -1]])

# (name, f(F, X, L, *inputs) -> tensor, inputs), as test_double_backward's
CASES = [
    ("sdpa", lambda F, X, L, q, k, v: F.scaled_dot_product_attention(q, k, v).tanh(),
     (_n(2, 3, 4), _n(2, 5, 4), _n(2, 5, 3))),
    ("sdpa_causal_scale_4d", lambda F, X, L, q, k, v: F.scaled_dot_product_attention(
        q, k, v, is_causal=True, scale=0.7) ** 2, (_n(2, 2, 4, 3), _n(2, 2, 4, 3), _n(2, 2, 4, 3))),
    ("sdpa_bool_mask_dead_row", lambda F, X, L, q, k, v: F.scaled_dot_product_attention(
        q, k, v, attn_mask=X.as_tensor(BOOL_MASK)) ** 2, (_n(2, 3, 4), _n(2, 5, 4), _n(2, 5, 3))),
    ("sdpa_float_mask_grad", lambda F, X, L, q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m) ** 2,
     (_n(2, 3, 4), _n(2, 5, 4), _n(2, 5, 3), _n(3, 5))),
    ("sdpa_gqa", lambda F, X, L, q, k, v: F.scaled_dot_product_attention(q, k, v, enable_gqa=True) ** 2,
     (_n(1, 4, 3, 2), _n(1, 2, 3, 2), _n(1, 1, 3, 2))),
    ("einsum_matmul", lambda F, X, L, a, b: _einsum(F, "ij,jk->ik", a, b).tanh(), (_n(3, 4), _n(4, 5))),
    ("einsum_batched_broadcast", lambda F, X, L, a, b, c: _einsum(F, "bij,bjk,k->bi", a, b, c) ** 2,
     (_n(2, 3, 4), _n(1, 4, 5), _n(5))),
    ("einsum_diagonal_summed", lambda F, X, L, a, b: _einsum(F, "iij,k->j", a, b) ** 2, (_n(3, 3, 2), _n(4))),
    ("einsum_outer_transpose", lambda F, X, L, a, b: _einsum(F, "ij,k->kji", a * a, b).sin(), (_n(2, 3), _n(4))),
    ("glu", lambda F, X, L, a: F.glu(a, 1) ** 2, (_n(3, 4, 2),)),
    ("glu_last_dim", lambda F, X, L, a: F.glu(a.tanh()) * a[..., :2], (_n(3, 4),)),
    ("prelu_channels", lambda F, X, L, a, w: F.prelu(a, w) ** 2, (_n(2, 3, 4), RNG.uniform(0.1, 0.5, 3))),
    ("prelu_shared", lambda F, X, L, a, w: F.prelu(a * a - 0.5, w) * a, (_n(2, 3, 4, 2), RNG.uniform(0.1, 0.5, 1))),
    ("bilinear", lambda F, X, L, a, b, w, c: F.bilinear(a, b, w, c).tanh(), (_n(2, 3), _n(2, 4), _n(5, 3, 4), _n(5))),
    ("bilinear_batch_dims", lambda F, X, L, a, b, w: F.bilinear(a, b, w) ** 2, (_n(2, 2, 3), _n(2, 2, 4), _n(5, 3, 4))),
    ("conv_transpose3d", lambda F, X, L, x, w, b: F.conv_transpose3d(x * x, w, b, stride=2, padding=1) ** 2,
     (_n(1, 2, 3, 2, 3), _n(2, 2, 2, 3, 2), _n(2))),
    ("conv_transpose3d_groups_dilation", lambda F, X, L, x, w: F.conv_transpose3d(x.tanh(), w, groups=2, dilation=2)
     * 1.5, (_n(2, 4, 2, 2, 2), _n(4, 1, 2, 2, 2))),
    ("embedding_bag_mean", lambda F, X, L, w: _bag(F, X, w * w) ** 2, (_n(4, 3),)),
    ("embedding_bag_sum_per_sample_weights", lambda F, X, L, w, p: _bag(F, X, w, "sum", p).tanh(), (_n(4, 3), _n(6))),
    ("embedding_bag_max_2d", lambda F, X, L, w: _bag(F, X, w * w, "max", two_d=True) ** 2, (_n(4, 3),)),
    ("embedding_bag_2d_psw", lambda F, X, L, w, p: _bag(F, X, w, "sum", p, two_d=True) ** 2, (_n(4, 3), _n(2, 3))),
    ("max_unpool1d", lambda F, X, L, a: (lambda o, up: up(o * o) * 2)(*_unpool(F, a, 1)), (_n(2, 3, 6),)),
    ("max_unpool2d_output_size", lambda F, X, L, a: (lambda o, up: up(o.tanh()) ** 2)(
        *_unpool(F, a, 2, output_size=(5, 5))), (_n(2, 3, 5, 5),)),
    ("max_unpool3d", lambda F, X, L, a: (lambda o, up: up(o * a.sum()) ** 2)(*_unpool(F, a, 3)), (_n(1, 2, 4, 4, 4),)),
    ("rrelu_eval", lambda F, X, L, a: F.rrelu(a, 0.1, 0.3) * a, (_n(3, 4),)),
    ("kl_div_batchmean", lambda F, X, L, a, b: F.kl_div(a.log_softmax(dim=1), b, reduction="batchmean"), (_n(3, 4), P34)),
    ("kl_div_log_target", lambda F, X, L, a, b: F.kl_div(a, b, reduction="none", log_target=True) ** 2,
     (_n(3, 4), _n(3, 4))),
    ("kl_div_broadcast_sum", lambda F, X, L, a, b: F.kl_div(a * a, b, reduction="sum"), (_n(2, 3, 4), P34)),
    ("poisson_nll", lambda F, X, L, a, b: F.poisson_nll_loss(a, b), (_n(3, 4), P34 * 3)),
    ("poisson_nll_rate_full", lambda F, X, L, a, b: F.poisson_nll_loss(a * a + 0.2, b, log_input=False, full=True,
                                                                        reduction="sum"), (_n(3, 4), P34 * 3)),
    ("gaussian_nll", lambda F, X, L, a, b, v: F.gaussian_nll_loss(a, b, v), (_n(3, 4), _n(3, 4), P34)),
    ("gaussian_nll_shared_var_full", lambda F, X, L, a, b, v: F.gaussian_nll_loss(a.tanh(), b, v * v, full=True,
                                                                                  reduction="none") ** 2,
     (_n(3, 4), _n(3, 4), _n(3))),
    ("gaussian_nll_clamped", lambda F, X, L, a, b, v: F.gaussian_nll_loss(a, b, v, eps=0.3, reduction="sum"),
     (_n(3, 4), _n(3, 4), P34)),
    ("soft_margin", lambda F, X, L, a: F.soft_margin_loss(a * a, X.as_tensor(SIGNS)), (_n(3, 4),)),
    ("hinge_embedding", lambda F, X, L, a: F.hinge_embedding_loss(a * a, X.as_tensor(SIGNS), margin=1.5,
                                                                  reduction="none") * a, (_n(3, 4),)),
]
THIRD = ["sdpa", "sdpa_float_mask_grad", "einsum_matmul", "einsum_outer_transpose", "glu", "prelu_channels",
         "bilinear", "conv_transpose3d", "embedding_bag_mean", "embedding_bag_sum_per_sample_weights",
         "max_unpool1d", "kl_div_batchmean", "kl_div_log_target", "poisson_nll", "poisson_nll_rate_full",
         "gaussian_nll", "soft_margin"]


@pytest.fixture
def math_sdpa(torch):
    """PyTorch's math attention backend (its fused CPU kernel cannot be differentiated twice)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel(SDPBackend.MATH):
        yield torch


@pytest.mark.parametrize("name,fn,arrays", CASES, ids=[c[0] for c in CASES])
def test_second_derivatives_match_torch(math_sdpa, name, fn, arrays):
    torch = math_sdpa
    assert_second_derivatives_match(torch, fn, arrays, f64=(1e-10, 1e-11), f32=(2e-3, 5e-4))


@pytest.mark.parametrize("name", THIRD)
def test_third_derivatives_match_torch(math_sdpa, name):
    torch = math_sdpa
    _, fn, arrays = next(c for c in CASES if c[0] == name)
    _compare(_run("distnn", torch, fn, arrays, np.float64, order=3),
             _run("torch", torch, fn, arrays, np.float64, order=3), rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------- modules: PyTorch's with distnn's weights
def _module_derivatives(lib, torch, module, fwd, arrays, dtype, order):
    """The first ``order`` derivatives of sum(fwd(module, *inputs) * u) in the inputs and the parameters."""
    if lib == "distnn":
        ins = [Tensor(a.astype(dtype), requires_grad=True) for a in arrays]
        grad, const = autograd.grad, Tensor
    else:
        ins = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
        grad, const = torch.autograd.grad, torch.tensor
    module = module.double() if dtype == np.float64 else module.float()
    xs = ins + [p for _, p in sorted(module.named_parameters())]
    out = fwd(module, *ins)
    y = (out * const(np.random.default_rng(3).standard_normal(tuple(out.shape)).astype(dtype))).sum()
    results = []
    for k in range(order):
        gs = grad(y, xs, create_graph=k + 1 < order, allow_unused=True)
        results.append([None if g is None else np.array(g.data if lib == "distnn" else g.detach().numpy())
                        for g in gs])
        y = sum((g * g).sum() for g in gs if g is not None)
    return results


WEIGHT_SEED = 0


def _made(make, lib_nn, seed):
    """``make(lib_nn)`` with weights from a generator of its own: the default generator's state depends on
    which tests ran before in the process, and with it the weights (an order-dependent test)."""
    with distnn.random.use_generator(np.random.default_rng(seed)):
        return make(lib_nn)


def _compare_module(torch, make, fwd, arrays, order=2, seed=WEIGHT_SEED):
    # noise_eps: attention's key bias has derivatives that are exactly 0 (softmax ignores a shift shared by
    # all keys); both libraries leave rounding noise there, sums of terms as large as the largest entry:
    # up to ~17 eps * max|derivative| measured over 100 weight draws (float32: 1e-3 where max is 3e4).
    for dtype, rtol, atol in ((np.float64, 1e-9, 1e-10), (np.float32, 2e-3, 5e-4)):
        ours, theirs = _made(make, distnn.nn, seed), make(torch.nn)
        copy_distnn_weights(ours, theirs)
        k = order if dtype == np.float64 else 2
        _compare(_module_derivatives("distnn", torch, ours, fwd, arrays, dtype, k),
                 _module_derivatives("torch", torch, theirs, fwd, arrays, dtype, k), rtol, atol, noise_eps=64)


KEY_PADDING = np.zeros((2, 5), bool)
KEY_PADDING[0, 1] = True


def _padding(q):
    return Tensor(KEY_PADDING) if isinstance(q, Tensor) else __import__("torch").tensor(KEY_PADDING)


MODULE_CASES = [
    ("mha_self", lambda m: m.MultiheadAttention(4, 2), lambda m, x: m(x, x, x, need_weights=False)[0].tanh(),
     (_n(3, 2, 4),), 3),
    ("mha_cross_batch_first_kdim", lambda m: m.MultiheadAttention(4, 2, batch_first=True, kdim=3, vdim=5),
     lambda m, q, k, v: m(q, k, v, need_weights=False)[0] ** 2, (_n(2, 3, 4), _n(2, 5, 3), _n(2, 5, 5)), 2),
    ("mha_key_padding_weights", lambda m: m.MultiheadAttention(4, 2),
     lambda m, q, k: m(q, k, k, key_padding_mask=_padding(q))[0] ** 2, (_n(3, 2, 4), _n(5, 2, 4)), 2),
    ("transformer_encoder_layer", lambda m: m.TransformerEncoderLayer(4, 2, 8, dropout=0.0),
     lambda m, x: m(x).tanh(), (_n(3, 2, 4),), 2),
    ("rnn_2_layers", lambda m: m.RNN(3, 4, 2), lambda m, x: m(x)[0].tanh(), (_n(5, 2, 3),), 2),
    ("rnn_relu_bidirectional", lambda m: m.RNN(3, 4, nonlinearity="relu", bidirectional=True),
     lambda m, x: m(x)[0].tanh(), (_n(5, 2, 3),), 2),
    ("lstm_batch_first", lambda m: m.LSTM(3, 4, batch_first=True), lambda m, x: m(x)[0].tanh(), (_n(2, 5, 3),), 3),
    ("lstm_proj_bidirectional", lambda m: m.LSTM(3, 4, proj_size=2, bidirectional=True),
     lambda m, x: m(x)[0].tanh(), (_n(5, 2, 3),), 2),
    ("lstm_states", lambda m: m.LSTM(3, 4), lambda m, x, h, c: (lambda o: o[0].sum() + o[1][0] * o[1][1])(
        m(x, (h, c))), (_n(4, 2, 3), _n(1, 2, 4), _n(1, 2, 4)), 2),
    ("gru_2_layers_bidirectional", lambda m: m.GRU(3, 4, 2, bidirectional=True), lambda m, x: m(x)[0].tanh(),
     (_n(5, 2, 3),), 2),
    ("gru_no_bias_final_state", lambda m: m.GRU(3, 4, bias=False), lambda m, x, h: m(x, h)[1] ** 2,
     (_n(4, 2, 3), _n(1, 2, 4)), 3),
    ("rnn_cell", lambda m: m.RNNCell(3, 4), lambda m, x, h: m(x, h).tanh(), (_n(2, 3), _n(2, 4)), 3),
    ("gru_cell", lambda m: m.GRUCell(3, 4), lambda m, x, h: m(x, h).tanh(), (_n(2, 3), _n(2, 4)), 2),
    ("lstm_cell", lambda m: m.LSTMCell(3, 4), lambda m, x, h, c: (lambda o: o[0] * o[1])(m(x, (h, c))),
     (_n(2, 3), _n(2, 4), _n(2, 4)), 2),
    ("prelu_module", lambda m: m.PReLU(3, 0.2), lambda m, x: m(x) ** 2, (_n(2, 3, 4),), 2),
    ("bilinear_module", lambda m: m.Bilinear(3, 4, 2), lambda m, a, b: m(a, b).tanh(), (_n(2, 3), _n(2, 4)), 2),
]


@pytest.mark.parametrize("name,make,fwd,arrays,order", MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_module_derivatives_match_torch(math_sdpa, name, make, fwd, arrays, order):
    _compare_module(math_sdpa, make, fwd, arrays, order)


def test_wgan_gp_on_a_recurrent_critic_matches_torch(torch):
    """WGAN-GP's penalty (||d critic / d x|| - 1)^2 on interpolates through a GRU critic: the parameters'
    gradient of the penalty is a second derivative through the recurrent layer."""
    x = np.random.default_rng(43).standard_normal((6, 2, 3))  # (not _n: its draw would depend on test order)

    def penalty(lib, critic):
        T = (lambda a: Tensor(a, requires_grad=True)) if lib == "distnn" else (
            lambda a: torch.tensor(a, requires_grad=True))
        grad = autograd.grad if lib == "distnn" else torch.autograd.grad
        xi = T(x)
        out, h = critic["gru"](xi)
        score = critic["head"](h[-1]).sum()
        g, = grad(score, xi, create_graph=True)
        gp = ((g.reshape(6, -1) ** 2).sum(dim=1) + 1e-12) ** 0.5
        loss = ((gp - 1) ** 2).mean()
        params = [p for _, p in sorted(critic.named_parameters())]
        return [None if t is None else np.array(t.data if lib == "distnn" else t.detach().numpy())
                for t in grad(loss, params, allow_unused=True)]  # (the head's bias: no part in the penalty)

    def make(m):
        return m.ModuleDict({"gru": m.GRU(3, 5), "head": m.Linear(5, 1)}).double()

    ours, theirs = _made(make, nn, WEIGHT_SEED), make(torch.nn)
    copy_distnn_weights(ours, theirs)
    _compare([penalty("distnn", ours)], [penalty("torch", theirs)], rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("op", [
    lambda x, rng: F.rrelu(x, 0.1, 0.4, training=True, generator=rng),
    lambda x, rng: F.alpha_dropout(x, 0.3, training=True, generator=rng),
    lambda x, rng: F.feature_alpha_dropout(x, 0.4, training=True, generator=rng),
], ids=["rrelu_train", "alpha_dropout", "feature_alpha_dropout"])
def test_random_ops_match_torch_with_the_same_draw(torch, op):
    """out = x * scale + shift with one draw: scale (rrelu's slopes, the dropouts' masks) is the first
    derivative, shift what is left; PyTorch replays them and differentiates its composition."""
    x0 = np.random.default_rng(44).standard_normal((2, 3, 4))  # (not _n: its draw would depend on test order)
    xt = Tensor(x0.copy(), requires_grad=True)
    out = op(xt, np.random.default_rng(5))
    scale = autograd.grad(out.sum(), xt)[0].data
    shift = out.data - x0 * scale
    assert np.any(scale != 1) and np.any(scale != scale.flat[0])  # (a real draw)

    def derivatives(lib):
        x = Tensor(x0.copy(), requires_grad=True) if lib == "distnn" else torch.tensor(x0, requires_grad=True)
        if lib == "distnn":
            y = op(x, np.random.default_rng(5)) * x * x
        else:
            y = (x * torch.tensor(scale) + torch.tensor(shift)) * x * x
        grad = autograd.grad if lib == "distnn" else torch.autograd.grad
        g, = grad(y.sum(), x, create_graph=True)
        h, = grad((g ** 3).sum(), x)
        return [np.array(t.data if lib == "distnn" else t.detach().numpy()) for t in (g, h)]

    for a, b in zip(derivatives("distnn"), derivatives("torch")):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fn,shapes", [
    (lambda x, w: F.multilabel_margin_loss(x * w.sum(), Tensor(LABELS)), [(3, 4), (2,)]),
    (lambda x, w: F.multilabel_margin_loss(x.tanh() * w.sum(), Tensor(LABELS), reduction="none"), [(3, 4), (2,)]),
    (lambda w, p: F.embedding_bag(Tensor(IDX), w, Tensor(OFF), mode="sum", per_sample_weights=p), [(4, 3), (6,)]),
    (lambda w, p: F.embedding_bag(Tensor(IDX), w * p.sum(), Tensor(OFF), mode="max"), [(4, 3), (2,)]),
    (lambda x, w: F.alpha_dropout(x * w.sum(), 0.3, True, generator=np.random.default_rng(2)), [(3, 4), (2,)]),
    (lambda q, k: F.scaled_dot_product_attention(q, k, k, is_causal=True), [(2, 3, 2), (2, 3, 2)]),
])
def test_gradgradcheck(fn, shapes):
    rng = np.random.default_rng(11)
    inputs = tuple(Tensor(rng.uniform(-1, 1, s), requires_grad=True) for s in shapes)
    assert autograd.gradcheck(fn, inputs) is True
    assert autograd.gradgradcheck(fn, inputs) is True
