"""PyTorch's top-level forms (torch.conv2d, torch.dropout(input, p, train), torch.batch_norm's nine positional
arguments, int reductions, torch.svd's V, torch.gradient, ...) against torch itself: the same call, written once,
runs on both libraries; values, shapes, dtypes and gradients (float64 tight, float32 loose) must agree."""
import warnings

import numpy as np
import pytest

import distnn as dn

RTOL = {np.float64: 1e-6, np.float32: 2e-4}
R = np.random.default_rng(2026)
N = R.standard_normal
SPD_L = np.tril(N((3, 3))) + 3 * np.eye(3)  # a Cholesky factor with a well-conditioned A = L L^T
TRI = np.triu(N((3, 3))) + 3 * np.eye(3)


class _K(np.ndarray):
    """A float input that does not require grad (running statistics)."""


def _k(a):
    return np.asarray(a).view(_K)


def _c(lib, a, like=None):
    """A constant (labels, lengths, offsets) in ``lib``; ``like``: in that tensor's dtype."""
    return lib.tensor(np.asarray(a, dtype=None if like is None else like.detach().numpy().dtype))


# name: (float inputs, fn(lib, *tensors)); the fn is called with lib = distnn and lib = torch alike
CASES = {
    "conv1d": ([N((2, 3, 7)), N((4, 3, 3)), N(4)], lambda L, x, w, b: L.conv1d(x, w, b, 2, 1)),
    "conv2d": ([N((1, 2, 5, 5)), N((4, 1, 3, 3))], lambda L, x, w: L.conv2d(x, w, None, 1, 1, 1, 2)),
    "conv2d_same": ([N((1, 2, 5, 6)), N((3, 2, 3, 2))], lambda L, x, w: L.conv2d(x, w, None, 1, "same")),
    "conv3d": ([N((1, 2, 4, 4, 4)), N((2, 2, 2, 2, 2))], lambda L, x, w: L.conv3d(x, w, None, 2)),
    "conv_transpose1d": ([N((2, 3, 5)), N((3, 2, 3))], lambda L, x, w: L.conv_transpose1d(x, w, None, 2, 1, 1)),
    "conv_transpose2d": ([N((1, 2, 3, 4)), N((2, 3, 2, 2)), N(3)],
                         lambda L, x, w, b: L.conv_transpose2d(x, w, b, 2)),
    "conv_transpose3d": ([N((1, 2, 3, 3, 2)), N((2, 1, 2, 2, 2))], lambda L, x, w: L.conv_transpose3d(x, w)),
    "conv_tbc": ([N((5, 2, 3)), N((3, 3, 4)), N(4)], lambda L, x, w, b: L.conv_tbc(x, w, b, 1)),
    "dropout_eval": ([N((3, 4))], lambda L, x: L.dropout(x, 0.5, False)),
    "alpha_dropout_eval": ([N((3, 4))], lambda L, x: L.alpha_dropout(x, 0.3, False)),
    "feature_dropout_p0": ([N((2, 3, 4))], lambda L, x: L.feature_dropout(x, 0.0, True)),
    "batch_norm_train": ([N((4, 3, 2)), N(3), N(3)],
                         lambda L, x, w, b: L.batch_norm(x, w, b, None, None, True, 0.1, 1e-5, False)),
    "batch_norm_eval": ([N((4, 3)), N(3), N(3), _k(N(3)), _k(R.uniform(0.5, 2, 3))],
                        lambda L, x, w, b, m, v: L.batch_norm(x, w, b, m, v, False, 0.1, 1e-5, True)),
    "instance_norm": ([N((2, 3, 5)), N(3), N(3)],
                      lambda L, x, w, b: L.instance_norm(x, w, b, None, None, True, 0.1, 1e-5, False)),
    "layer_norm": ([N((2, 3, 4)), N((3, 4)), N((3, 4))], lambda L, x, w, b: L.layer_norm(x, [3, 4], w, b, 1e-3, False)),
    "group_norm": ([N((2, 4, 3)), N(4), N(4)], lambda L, x, w, b: L.group_norm(x, 2, w, b, 1e-5, True)),
    "rms_norm": ([N((2, 3, 4)), N(4)], lambda L, x, w: L.rms_norm(x, [4], w, 1e-6)),
    "embedding": ([N((5, 3))], lambda L, w: L.embedding(w, _c(L, [[1, 4], [4, 0]]))),
    "embedding_padding": ([N((5, 3))], lambda L, w: L.embedding(w, _c(L, [1, 4, 4, 2]), 4)),
    "embedding_padding_neg": ([N((5, 3))], lambda L, w: L.embedding(w, _c(L, [1, 4, 4, 2]), -1, True)),
    "bilinear": ([N((3, 2)), N((3, 4)), N((5, 2, 4)), N(5)], lambda L, a, b, w, c: L.bilinear(a, b, w, c)),
    "prelu": ([N((2, 3, 4)), N(3)], lambda L, x, w: L.prelu(x, w)),
    "selu": ([N((3, 4))], lambda L, x: L.selu(x)),
    "celu": ([N((3, 4))], lambda L, x: L.celu(x, 0.7)),
    "rrelu_eval": ([N((3, 4))], lambda L, x: L.rrelu(x, 0.1, 0.3)),
    "threshold": ([N((3, 4))], lambda L, x: L.threshold(x, 0.1, -2.0)),
    "hardshrink": ([N((3, 4))], lambda L, x: L.hardshrink(x, 0.3)),
    "pixel_shuffle": ([N((1, 8, 2, 3))], lambda L, x: L.pixel_shuffle(x, 2)),
    "pixel_unshuffle": ([N((1, 2, 4, 6))], lambda L, x: L.pixel_unshuffle(x, 2)),
    "channel_shuffle": ([N((1, 6, 2, 2))], lambda L, x: L.channel_shuffle(x, 3)),
    "native_channel_shuffle": ([_k(N((1, 6, 2)))], lambda L, x: L.native_channel_shuffle(x, 2)),
    "max_pool1d": ([N((2, 3, 9))], lambda L, x: L.max_pool1d(x, 3, [], 1, 2, True)),
    "max_pool2d": ([N((1, 2, 5, 5))], lambda L, x: L.max_pool2d(x, 2)),
    "max_pool3d": ([N((1, 1, 4, 4, 5))], lambda L, x: L.max_pool3d(x, 2, 1, 1)),
    "max_pool1d_with_indices": ([N((2, 7))], lambda L, x: L.max_pool1d_with_indices(x, 2)),
    "avg_pool1d": ([N((2, 3, 8))], lambda L, x: L.avg_pool1d(x, 3, 2, 1, True, False)),
    "adaptive_avg_pool1d": ([N((2, 3, 7))], lambda L, x: L.adaptive_avg_pool1d(x, 3)),
    "adaptive_max_pool1d": ([N((2, 3, 7))], lambda L, x: L.adaptive_max_pool1d(x, 4)),
    "kl_div_default": ([N((3, 4)), R.random((3, 4))], lambda L, x, t: L.kl_div(x, t)),
    "kl_div_mean": ([N((3, 4)), R.random((3, 4))], lambda L, x, t: L.kl_div(x, t, 1)),
    "kl_div_sum": ([N((3, 4)), R.random((3, 4))], lambda L, x, t: L.kl_div(x, t, 2)),
    "ctc_loss_default": ([np.log(R.dirichlet(np.ones(5), (6, 2)))],
                         lambda L, lp: L.ctc_loss(lp, _c(L, [[1, 2, 2], [3, 1, 0]]), [6, 5], [3, 2])),
    "kl_div_none_log_target": ([N((3, 4)), N((3, 4))], lambda L, x, t: L.kl_div(x, t, 0, log_target=True)),
    "cosine_similarity": ([N((3, 4)), N((3, 4))], lambda L, a, b: L.cosine_similarity(a, b, 0)),
    "pairwise_distance": ([N((3, 4)), N((3, 4))], lambda L, a, b: L.pairwise_distance(a, b, 3.0, 1e-6, True)),
    "pdist": ([N((4, 3))], lambda L, x: L.pdist(x, 1.5)),
    "margin_ranking_loss": ([N(5), N(5)],
                            lambda L, a, b: L.margin_ranking_loss(a, b, _c(L, [1., -1, 1, 1, -1], a), 0.2, 2)),
    "hinge_embedding_loss": ([N((2, 3))], lambda L, x: L.hinge_embedding_loss(x, _c(L, [[1., -1, 1], [-1, -1, 1]]))),
    "hinge_embedding_loss_mean": ([N((2, 3))],
                                  lambda L, x: L.hinge_embedding_loss(x, _c(L, [[1., -1, 1], [-1, -1, 1]]), 0.5, 1)),
    "bce_with_logits_default": ([N((3, 4)), R.random((3, 4))],
                                lambda L, x, t: L.binary_cross_entropy_with_logits(x, t)),
    "triplet_margin_loss": ([N((3, 4)), N((3, 4)), N((3, 4))],
                            lambda L, a, p, n: L.triplet_margin_loss(a, p, n, 0.5, 2.0, 1e-6, True, 0)),
    "cosine_embedding_loss": ([N((3, 4)), N((3, 4))],
                              lambda L, a, b: L.cosine_embedding_loss(a, b, _c(L, [1., -1, 1]), 0.1, 2)),
    "poisson_nll_loss": ([N((3, 4)), R.uniform(0, 3, (3, 4))],
                         lambda L, x, t: L.poisson_nll_loss(x, t, True, True, 1e-8, 1)),
    "bce_with_logits": ([N((3, 4)), R.random((3, 4)), _k(R.random(4)), _k(R.uniform(0.5, 2, 4))],
                        lambda L, x, t, w, pw: L.binary_cross_entropy_with_logits(x, t, w, pw, 1)),
    "ctc_loss": ([np.log(R.dirichlet(np.ones(5), (6, 2)))],
                 lambda L, lp: L.ctc_loss(lp, _c(L, [[1, 2, 2], [3, 1, 0]]), [6, 5], [3, 2], 0, 1, False)),
    "constant_pad_nd": ([N((2, 3, 4))], lambda L, x: L.constant_pad_nd(x, [1, 2, -1, 0], 0.5)),
    "grid_sampler_bilinear": ([N((1, 2, 4, 5)), R.uniform(-1.1, 1.1, (1, 3, 2, 2))],
                              lambda L, x, g: L.grid_sampler(x, g, 0, 0, False)),
    "grid_sampler_bicubic_reflect": ([N((1, 1, 4, 4)), R.uniform(-1, 1, (1, 2, 3, 2))],
                                     lambda L, x, g: L.grid_sampler(x, g, 2, 2, True)),
    "affine_grid_generator": ([N((2, 2, 3))], lambda L, t: L.affine_grid_generator(t, [2, 1, 3, 4], False)),
    # linear algebra
    "svd": ([N((4, 3))], lambda L, a: _svd_invariants(L.svd(a))),
    "svd_full_wide": ([N((2, 3, 4))], lambda L, a: _svd_invariants(L.svd(a, False), full=True)),
    "svd_no_uv": ([N((4, 3))], lambda L, a: L.svd(a, True, False)),
    "qr": ([N((4, 3))], lambda L, a: L.qr(a)),
    "qr_complete": ([N((3, 3))], lambda L, a: L.qr(a, False)),
    "cholesky_solve": ([N((3, 2)), SPD_L], lambda L, b, f: L.cholesky_solve(b, f)),
    "cholesky_solve_upper": ([N((2, 3, 2)), SPD_L.T.copy()], lambda L, b, f: L.cholesky_solve(b, f, True)),
    "cholesky_inverse": ([SPD_L], lambda L, f: L.cholesky_inverse(f)),
    "cholesky_inverse_upper": ([SPD_L.T.copy()], lambda L, f: L.cholesky_inverse(f, True)),
    "triangular_solve": ([N((3, 2)), TRI + np.tril(N((3, 3)), -1)], lambda L, b, a: L.triangular_solve(b, a)),
    "triangular_solve_t_unit": ([N((3, 2)), TRI.T.copy()],
                                lambda L, b, a: L.triangular_solve(b, a, False, True, True)),
    "chain_matmul": ([N((2, 3)), N((3, 5)), N((5, 2)), N((2, 4))], lambda L, *m: L.chain_matmul(*m)),
    "chain_matmul_one": ([N((2, 3))], lambda L, m: L.chain_matmul(m)),
    "frobenius_norm": ([N((2, 3, 4))], lambda L, x: L.frobenius_norm(x, (0, 2), True)),
    "nuclear_norm": ([N((2, 3, 4))], lambda L, x: L.nuclear_norm(x)),
    "nuclear_norm_dim": ([N((3, 2, 4))], lambda L, x: L.nuclear_norm(x, (0, 2), True)),
    "mvlgamma": ([R.uniform(1.6, 5, (3, 4))], lambda L, x: L.mvlgamma(x, 3)),
    "igammac": ([_k(R.uniform(0.3, 6, (3, 4))), R.uniform(0.1, 12, (3, 4))], lambda L, a, x: L.igammac(a, x)),
    "igammac_tail": ([_k([3.0, 50.0, 0.5]), np.array([40.0, 300.0, 1e-3])], lambda L, a, x: L.igammac(a, x)),
    # sampled calculus
    "trapezoid_dx": ([N((3, 5))], lambda L, y: L.trapezoid(y, dx=0.5)),
    "trapezoid_x1d": ([N((3, 4)), np.sort(N(3))], lambda L, y, x: L.trapezoid(y, x, dim=0)),
    "trapezoid_xfull": ([N((3, 4)), N((3, 4))], lambda L, y, x: L.trapezoid(y, x)),
    "trapz": ([N((2, 5))], lambda L, y: L.trapz(y, dx=2.0)),
    "cumulative_trapezoid": ([N((3, 5)), np.sort(N(5))], lambda L, y, x: L.cumulative_trapezoid(y, x)),
    "trapezoid_empty": ([N((3, 0))], lambda L, y: L.trapezoid(y)),
    "gradient": ([N((4, 5))], lambda L, f: L.gradient(f)),
    "gradient_spacing_dim": ([N((4, 5, 3))], lambda L, f: L.gradient(f, spacing=[0.5, 2.0], dim=[2, 0], edge_order=2)),
    "gradient_coordinates": ([N((5, 3))],
                             lambda L, f: L.gradient(f, spacing=(_c(L, [0., 1, 3, 4, 7]),), dim=0, edge_order=2)),
    "gradient_coordinates_o1": ([N((2, 4))], lambda L, f: L.gradient(f, spacing=[_c(L, [0., .5, 2, 2.2])], dim=1)),
    # coordinate tensors that require grad: PyTorch's coefficients are ops on them, so they get a gradient
    "gradient_coordinates_grad": ([N((5, 4)), np.cumsum(R.uniform(0.5, 1.5, 5)), np.cumsum(R.uniform(0.5, 1.5, 4))],
                                  lambda L, f, c0, c1: L.gradient(f, spacing=(c0, c1), edge_order=2)),
    "gradient_coordinates_grad_o1": ([N((2, 4)), np.cumsum(R.uniform(0.2, 2.0, 4))],
                                     lambda L, f, c: L.gradient(f, spacing=[c], dim=1)),
}


def _svd_invariants(usv, full=False):
    """U diag(S) V^T and the sign-free |U|, S, |V| (singular vectors are defined up to sign)."""
    u, s, v = usv
    k = s.shape[-1]
    rebuilt = (u[..., :k] * s.unsqueeze(-2)) @ v[..., :k].mT
    return rebuilt, u.abs()[..., :k] if full else u.abs(), s, v.abs()[..., :k] if full else v.abs()


def _outputs(out):
    return [o for o in (out if isinstance(out, (tuple, list)) else [out])]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(CASES))
def test_top_level_form_matches_torch(name, dtype, torch):
    arrays, fn = CASES[name]
    grads = [not isinstance(a, _K) for a in arrays]
    arrays = [np.asarray(a, dtype=dtype).view(np.ndarray) for a in arrays]
    d_in = [dn.Tensor(a.copy(), requires_grad=g) for a, g in zip(arrays, grads)]
    t_in = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch's deprecation warnings for chain_matmul, triangular_solve, ...)
        d_out, t_out = _outputs(fn(dn, *d_in)), _outputs(fn(torch, *t_in))
    assert len(d_out) == len(t_out)
    rtol = RTOL[dtype]
    rng = np.random.default_rng(0)
    d_loss, t_loss = 0.0, 0.0
    for i, (d, t) in enumerate(zip(d_out, t_out)):
        t_np = t.detach().numpy()
        assert tuple(d.shape) == t_np.shape, f"output {i}: shape {tuple(d.shape)} != torch's {t_np.shape}"
        assert np.dtype(d.dtype) == t_np.dtype, f"output {i}: dtype {d.dtype} != torch's {t_np.dtype}"
        scale = max(float(np.abs(t_np).max()) if t_np.size else 0.0, 1e-3)
        np.testing.assert_allclose(d.numpy(), t_np, rtol=rtol, atol=rtol * scale, err_msg=f"output {i}")
        if t.requires_grad and t_np.dtype.kind == "f":
            u = rng.standard_normal(t_np.shape).astype(dtype)
            d_loss = d_loss + (d * dn.Tensor(u)).sum()
            t_loss = t_loss + (t * torch.tensor(u)).sum()
    if isinstance(t_loss, float):
        return  # (nothing differentiable, e.g. an empty integral)
    d_loss.backward()
    t_loss.backward()
    for i, (d, t) in enumerate(zip(d_in, t_in)):
        tg = t.grad.numpy() if t.grad is not None else np.zeros(t.shape, dtype)
        dg = np.asarray(d.grad) if d.grad is not None else np.zeros(d.shape, dtype)
        assert dg.dtype == dtype, f"gradient {i}: dtype {dg.dtype}"
        scale = max(float(np.abs(tg).max()) if tg.size else 0.0, 1e-3)
        np.testing.assert_allclose(dg, tg, rtol=rtol, atol=rtol * scale, err_msg=f"gradient of input {i}")
