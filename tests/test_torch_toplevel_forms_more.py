"""PyTorch's top-level forms beyond the oracle table: their refusals (the same error type and message as
torch's), the random ones' masks (dropout cannot match torch's RNG: scaling, shared channel masks, statistics),
running statistics updated by torch.batch_norm's positional form, histogramdd, and cholesky_solve's reading of
one triangle with PyTorch's unprojected gradient."""
import warnings

import numpy as np
import pytest

import distnn as dn

REFUSALS = {
    "dropout_without_train": (TypeError, "train", lambda L: L.dropout(L.ones(3, 4), 0.5)),
    "dropout_p": (RuntimeError, "dropout probability has to be between 0 and 1, but got 1.5",
                  lambda L: L.dropout(L.ones(3, 4), 1.5, True)),
    "feature_alpha_dropout_p": (RuntimeError, "between 0 and 1",
                                lambda L: L.feature_alpha_dropout(L.ones(3), -1, True)),
    "feature_dropout_1d": (RuntimeError, "Feature dropout requires at least 2 dimensions in the input",
                           lambda L: L.feature_dropout(L.ones(3), 0.5, True)),
    "batch_norm_without_cudnn_enabled": (TypeError, "cudnn_enabled", lambda L: L.batch_norm(
        L.ones(2, 3), None, None, None, None, True, 0.1, 1e-5)),
    "kl_div_string_reduction": (TypeError, "must be int", lambda L: L.kl_div(L.ones(3), L.ones(3), "mean")),
    "chain_matmul_empty": (RuntimeError, "chain_matmul(): Expected one or more matrices",
                           lambda L: L.chain_matmul()),
    "chain_matmul_vector": (RuntimeError, "Tensor dimension is 1, expected 2 instead.",
                            lambda L: L.chain_matmul(L.ones(3), L.ones(3, 2))),
    "gradient_edge_order": (RuntimeError, "torch.gradient only supports edge_order=1 and edge_order=2.",
                            lambda L: L.gradient(L.ones(4), edge_order=3)),
    "gradient_short_dim": (RuntimeError, "expected each dimension size to be at least edge_order+1",
                           lambda L: L.gradient(L.ones(2, 4), edge_order=2)),
    "gradient_spacing_length": (RuntimeError, "a list of length equal to 'self.dim() = 2'",
                                lambda L: L.gradient(L.ones(3, 4), spacing=[1.0, 2.0, 3.0])),
    "gradient_repeated_dim": (RuntimeError, "appears multiple times in the list of dims",
                              lambda L: L.gradient(L.ones(3, 4), dim=[0, 0])),
    "mvlgamma_p0": (RuntimeError, "p has to be greater than or equal to 1", lambda L: L.mvlgamma(L.ones(3), 0)),
    "frobenius_norm_three_dims": (RuntimeError, "Expected at most 2 dimensions, but got 3 dimensions instead.",
                                  lambda L: L.frobenius_norm(L.ones(2, 2, 2), (0, 1, 2))),
    "frobenius_norm_without_dim": (TypeError, "dim", lambda L: L.frobenius_norm(L.ones(2, 2))),
    "trapezoid_x_length": (RuntimeError, "There must be one `x` value for each sample point",
                           lambda L: L.trapezoid(L.ones(3, 4), L.ones(3))),
    "trapezoid_x_and_dx": (TypeError, "trapezoid", lambda L: L.trapezoid(L.ones(3, 4), L.ones(4), dx=1.0)),
    "cholesky_solve_vector": (RuntimeError, "b should have at least 2 dimensions, but has 1 dimensions instead",
                              lambda L: L.cholesky_solve(L.ones(3), L.ones(3, 3))),
    "svd_vector": (RuntimeError, "2 dimensions", lambda L: L.svd(L.ones(3))),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refusals_match_torch(name, torch):
    error, gist, call = REFUSALS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for lib in (torch, dn):
            with pytest.raises(error, match=None) as caught:
                call(lib)
            assert gist in str(caught.value), f"{lib.__name__}: {caught.value}"


def test_igammac_keeps_its_tail_and_refuses_the_shape_gradient_as_torch(torch):
    a, x = np.array([3.0, 50.0, 2.0]), np.array([40.0, 300.0, 60.0])  # Q ~ 1e-15, 1e-72, 1e-25: 1 - P would be 0
    want = torch.igammac(torch.tensor(a), torch.tensor(x)).numpy()
    got = dn.igammac(dn.tensor(a), dn.tensor(x)).numpy()
    assert (want > 0).all()
    np.testing.assert_allclose(got, want, rtol=1e-10)
    for lib in (torch, dn):
        shape = lib.tensor(a, requires_grad=True)
        with pytest.raises((RuntimeError, NotImplementedError), match="igammac.* not implemented"):
            lib.igammac(shape, lib.tensor(x)).sum().backward()


def test_own_refusals_name_the_problem():
    x = dn.ones(1, 1, 3, 3)
    grid = dn.zeros(1, 2, 2, 2)
    with pytest.raises(ValueError, match="interpolation_mode must be 0 .bilinear., 1 .nearest. or 2 .bicubic., got 3"):
        dn.grid_sampler(x, grid, 3, 0, False)  # (PyTorch reads garbage here)
    with pytest.raises(ValueError, match="padding_mode must be 0 .zeros., 1 .border. or 2 .reflection., got 5"):
        dn.grid_sampler(x, grid, 0, 5, False)
    with pytest.raises(ValueError, match="reduction must be 0 .'none'., 1 .'mean'. or 2 .'sum'., got 3"):
        dn.hinge_embedding_loss(dn.ones(3), dn.ones(3), 1.0, 3)
    with pytest.raises(RuntimeError, match="coordinate tensor to be 1-D with as many entries as dimension 1"):
        dn.gradient(dn.ones(3, 4), spacing=[dn.ones(3)], dim=1)


def test_dropout_scales_kept_units_and_feature_dropout_shares_a_mask_per_channel():
    dn.manual_seed(3)
    x = dn.ones(200, 50, dtype=np.float64)
    y = dn.dropout(x, 0.3, True).numpy()
    assert set(np.unique(y)) <= {0.0, 1.0 / 0.7}
    assert abs((y == 0).mean() - 0.3) < 0.02  # 10000 draws: 5 standard deviations is 0.023
    assert np.array_equal(dn.dropout(x, 0.3, False).numpy(), x.numpy())
    z = dn.feature_dropout(dn.ones(300, 40, 2, 3, dtype=np.float64), 0.25, True).numpy()
    per_channel = z.reshape(300, 40, -1)
    assert (per_channel == per_channel[:, :, :1]).all(), "one mask value per (sample, channel)"
    assert set(np.unique(z)) <= {0.0, 1.0 / 0.75}
    assert abs((per_channel[:, :, 0] == 0).mean() - 0.25) < 0.02
    flat = dn.feature_dropout(dn.ones(400, 30, dtype=np.float64), 0.5, True).numpy()  # (N, C): per element
    assert 0 < (flat == 0).mean() < 1


def test_alpha_dropouts_keep_mean_and_variance_and_share_channel_masks():
    dn.manual_seed(4)
    x = dn.randn(400, 300, dtype=np.float64)
    y = dn.alpha_dropout(x, 0.2, True).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.var() - 1.0) < 0.03
    z = dn.feature_alpha_dropout(dn.zeros(100, 20, 6, dtype=np.float64), 0.4, True).numpy()
    assert (z == z[:, :, :1]).all() and len(np.unique(z)) == 2


def test_batch_norm_positional_form_updates_the_running_statistics_as_torch(torch):
    x = np.random.default_rng(5).standard_normal((6, 3, 2))
    outs = []
    for lib in (dn, torch):
        mean, var = lib.tensor(np.zeros(3)), lib.tensor(np.ones(3))
        lib.batch_norm(lib.tensor(x), None, None, mean, var, True, 0.3, 1e-5, True)
        outs.append((mean.numpy().copy(), var.numpy().copy()))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-12)
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-12)


@pytest.mark.parametrize("bins", [4, [3, 5], "edges"])
def test_histogramdd_matches_torch(bins, torch):
    rng = np.random.default_rng(6)
    pts, w = rng.random((50, 2)), rng.random(50)
    for density in (False, True):
        got, want = [], []
        for lib, out in ((dn, got), (torch, want)):
            b = [lib.tensor(np.array([0.0, 0.3, 1.0])), lib.tensor(np.array([0.0, 0.5, 0.7, 1.0]))] \
                if bins == "edges" else bins
            kw = dict(range=[0.0, 1.0, 0.1, 0.9]) if bins != "edges" else {}
            hist, edges = lib.histogramdd(lib.tensor(pts), b, weight=lib.tensor(w), density=density, **kw)
            out.append((hist.numpy(), [e.numpy() for e in edges]))
        (h_d, e_d), (h_t, e_t) = got[0], want[0]
        assert h_d.dtype == h_t.dtype and h_d.shape == h_t.shape
        np.testing.assert_allclose(h_d, h_t, rtol=1e-12)
        for a, b in zip(e_d, e_t):
            np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("upper", [False, True])
def test_cholesky_solve_reads_one_triangle_and_its_gradient_is_torchs(upper, torch):
    """Values in the other triangle are never read (as torch's); the factor's gradient is PyTorch's
    -(G X^T + X G^T) L, not projected on the triangle, so it fills the other triangle too."""
    rng = np.random.default_rng(8)
    factor = np.tril(rng.standard_normal((3, 3))) + 3 * np.eye(3)
    factor = factor.T.copy() if upper else factor
    junk = factor + (np.tril(rng.standard_normal((3, 3)), -1) if upper else np.triu(rng.standard_normal((3, 3)), 1))
    b = rng.standard_normal((3, 2))
    u = np.arange(6.0).reshape(3, 2)
    for lib in (dn, torch):
        np.testing.assert_allclose(lib.cholesky_solve(lib.tensor(b), lib.tensor(junk), upper).numpy(),
                                   lib.cholesky_solve(lib.tensor(b), lib.tensor(factor), upper).numpy(), rtol=1e-13)
    results = []
    for lib in (dn, torch):
        f, bb = lib.tensor(factor, requires_grad=True), lib.tensor(b, requires_grad=True)
        (lib.cholesky_solve(bb, f, upper) * lib.tensor(u)).sum().backward()
        results.append([np.asarray(f.grad), np.asarray(bb.grad)])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    other = np.tril(results[0][0], -1) if upper else np.triu(results[0][0], 1)
    assert np.abs(other).max() > 1e-3, "the gradient is not projected on the triangle (PyTorch's is not)"


def test_integer_samples_give_torchs_float_results(torch):
    ints = np.arange(6) ** 2
    calls = [lambda L, x: L.gradient(x)[0], lambda L, x: L.gradient(x, spacing=2, edge_order=2)[0],
             lambda L, x: L.trapezoid(x), lambda L, x: L.cumulative_trapezoid(x), lambda L, x: L.trapz(x, dx=0.5),
             lambda L, x: L.mvlgamma(x + 2, 2)]
    for call in calls:
        want, got = call(torch, torch.tensor(ints)).numpy(), call(dn, dn.tensor(ints)).numpy()
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("op", ["cholesky_solve", "cholesky_inverse"])
def test_factor_gradient_with_values_in_the_other_triangle_is_torchs(op, upper, torch):
    """The value reads one triangle, but PyTorch's gradient formula multiplies by the factor as given: with
    values in the other triangle it differs from the triangle's gradient, and distnn's equals torch's (batched)."""
    rng = np.random.default_rng(9)
    factor = np.tril(rng.standard_normal((2, 3, 3))) + 3 * np.eye(3)
    factor = factor.mT.copy() if upper else factor
    junk = factor + (np.tril(rng.standard_normal((2, 3, 3)), -1) if upper
                     else np.triu(rng.standard_normal((2, 3, 3)), 1))
    b, u = rng.standard_normal((2, 3, 2)), rng.standard_normal((2, 3, 2 if op == "cholesky_solve" else 3))
    results = []
    for lib in (dn, torch):
        f = lib.tensor(junk, requires_grad=True)
        bb = lib.tensor(b, requires_grad=True)
        out = lib.cholesky_solve(bb, f, upper) if op == "cholesky_solve" else lib.cholesky_inverse(f, upper)
        (out * lib.tensor(u)).sum().backward()
        results.append((out.detach().numpy(), np.asarray(f.grad)))
    (out_d, grad_d), (out_t, grad_t) = results
    np.testing.assert_allclose(out_d, out_t, rtol=1e-12)
    np.testing.assert_allclose(grad_d, grad_t, rtol=1e-9, atol=1e-12)


def test_feature_dropout_in_place_is_feature_dropout_written_into_the_input():
    """torch.feature_dropout_: the same masks as feature_dropout (the same per-sample streams: one draw per
    (sample, channel)), written into the input's memory, which it returns; train=False leaves it."""
    x = np.random.default_rng(6).standard_normal((300, 40, 2, 3))
    dn.manual_seed(5)
    want = dn.feature_dropout(dn.tensor(x), 0.25, True).numpy()
    dn.manual_seed(5)
    t = dn.tensor(x)
    out = dn.feature_dropout_(t, 0.25, True)
    assert out is t
    np.testing.assert_array_equal(t.numpy(), want)
    ratio = (t.numpy() / x).reshape(300, 40, -1)
    assert np.allclose(ratio, ratio[:, :, :1]) and set(np.round(np.unique(ratio), 12)) <= {0.0, round(1 / 0.75, 12)}
    assert abs((ratio[:, :, 0] == 0).mean() - 0.25) < 0.02  # 12000 draws: 5 standard deviations is 0.02
    same = dn.tensor(x)
    assert dn.feature_dropout_(same, 0.25, False) is same and np.array_equal(same.numpy(), x)
    with pytest.raises(RuntimeError, match="Feature dropout requires at least 2 dimensions in the input"):
        dn.feature_dropout_(dn.ones(3), 0.5, True)
    with pytest.raises(RuntimeError, match="dropout probability has to be between 0 and 1, but got 1.5"):
        dn.feature_dropout_(dn.ones(3, 4), 1.5, True)


def test_feature_dropout_in_place_records_the_gradient(torch):
    """While recording (a non-leaf input), the input takes the dropout's node: the gradient is the mask scaled,
    as torch's (whose output equals its gradient's pattern for an upstream gradient of ones)."""
    x = dn.tensor(np.ones((4, 6, 3)), requires_grad=True)
    y = x * 1.0
    dn.feature_dropout_(y, 0.5, True)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, y.detach().numpy())
    xt = torch.ones(4, 6, 3, dtype=torch.float64, requires_grad=True)
    yt = xt * 1.0
    torch.feature_dropout_(yt, 0.5, True)
    yt.sum().backward()
    assert torch.equal(xt.grad, yt.detach())
