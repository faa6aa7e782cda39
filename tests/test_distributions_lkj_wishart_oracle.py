"""LKJCholesky and Wishart against torch (2.13) as the oracle, float64 tight: log_prob, entropy and the moments
with their gradients w.r.t. the parameters (and the value), the Cholesky/covariance/precision properties, the
Wishart/Wishart KL (the exponential-family Bregman divergence); shapes, expand, support, arg_constraints, repr;
the refusals. (Sampling statistics and rsample gradients: test_distributions_lkj_wishart_sampling.)"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TD = torch.distributions

import distnn  # noqa: E402
import distnn.distributions as D  # noqa: E402

R = np.random.default_rng(31)  # (module-level draws only, at import: each test draws from its own below)


DRAW_PER_TEST = True  # (R: each test draws from its own generator, conftest's per_test_rng)
# (torch 2.13's Wishart.rsample warns "Singular sample detected." on every call: its first test lacks a negation)
pytestmark = pytest.mark.filterwarnings("ignore:Singular sample detected")


def _spd(shape, p):
    """Well-conditioned symmetric positive definite matrices of ``shape + (p, p)``."""
    A = R.standard_normal(shape + (p, p))
    return A @ np.swapaxes(A, -1, -2) / p + np.eye(p)


def _check(yd, yt, rtol=1e-10, atol=1e-11, what=""):
    assert tuple(yd.shape) == tuple(yt.shape), what
    assert np.dtype(yd.dtype) == np.float64, what
    np.testing.assert_allclose(yd.data, yt.detach().numpy(), rtol=rtol, atol=atol, err_msg=what)


def _check_grads(yd, yt, d_leaves, t_leaves, rtol=1e-9, atol=1e-10, what=""):
    """The gradients of a random weighting of both results (weight 0 where torch's is NaN/inf)."""
    finite = np.isfinite(yt.detach().numpy())
    u = R.standard_normal(tuple(yt.shape)) * finite
    (distnn.where(distnn.tensor(finite), yd, 0.0) * distnn.tensor(u)).sum().backward()
    (torch.where(torch.tensor(finite), yt, 0.0) * torch.tensor(u)).sum().backward()
    for name in t_leaves:
        g_t, g_d = t_leaves[name].grad, d_leaves[name].grad
        if g_t is None:  # (a result that does not depend on the leaf: distnn's has no gradient there either)
            assert g_d is None or not np.any(g_d), f"{what}: d/d{name}"
            continue
        assert g_d is not None, f"{what}: d/d{name}"
        np.testing.assert_allclose(g_d, g_t.numpy(), rtol=rtol, atol=atol, err_msg=f"{what}: d/d{name}")


# ---------------------------------------------------------------------------------------------- LKJCholesky

@pytest.mark.parametrize("dim", [2, 3, 5])
@pytest.mark.parametrize("batch,sample", [((), ()), ((3,), (2,)), ((2, 3), (4, 1, 1))], ids=str)
def test_lkj_log_prob_and_its_gradients_match_torch(dim, batch, sample):
    conc = R.uniform(0.2, 4.0, batch)
    torch.manual_seed(dim)
    value = TD.LKJCholesky(dim, torch.tensor(conc)).sample(sample).numpy()
    cd, ct = distnn.tensor(conc, requires_grad=True), torch.tensor(conc, requires_grad=True)
    vd, vt = distnn.tensor(value, requires_grad=True), torch.tensor(value, requires_grad=True)
    yd, yt = D.LKJCholesky(dim, cd).log_prob(vd), TD.LKJCholesky(dim, ct).log_prob(vt)
    _check(yd, yt, what="log_prob")
    _check_grads(yd, yt, {"concentration": cd, "value": vd}, {"concentration": ct, "value": vt}, what="log_prob")


def test_lkj_log_prob_with_a_number_concentration_is_torchs_in_float32():
    value = TD.LKJCholesky(4, 2.0).sample((3,))
    yd = D.LKJCholesky(4, 2.0).log_prob(distnn.tensor(value.numpy()))
    yt = TD.LKJCholesky(4, 2.0).log_prob(value)
    assert yd.dtype == np.float32 and tuple(yd.shape) == (3,)
    np.testing.assert_allclose(yd.data, yt.numpy(), rtol=1e-5)


# -------------------------------------------------------------------------------------------------- Wishart

def _wishart_params(kind, batch, p, df_batch, low_df=False):
    """(df, {kind: matrix}) as numpy arrays; df broadcasts against the matrix's batch."""
    df = R.uniform(p - 0.5 if low_df else p + 0.5, p + 6.0, df_batch)
    S = _spd(batch, p)
    matrix = {"covariance_matrix": S, "precision_matrix": np.linalg.inv(S),
              "scale_tril": np.linalg.cholesky(S)}[kind]
    return df, matrix


WISHART_SHAPES = [((), (), 2), ((3,), (), 3), ((), (2,), 3), ((2, 1), (3,), 4)]  # (matrix batch, df batch, p)
KINDS = ["covariance_matrix", "precision_matrix", "scale_tril"]


def _pair(kind, df, matrix, df_as_number=False):
    leaves_d = {"matrix": distnn.tensor(matrix, requires_grad=True)}
    leaves_t = {"matrix": torch.tensor(matrix, requires_grad=True)}
    if df_as_number:
        df_d = df_t = float(df)
    else:
        leaves_d["df"], leaves_t["df"] = distnn.tensor(df, requires_grad=True), torch.tensor(df, requires_grad=True)
        df_d, df_t = leaves_d["df"], leaves_t["df"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the low-df warning: see test_wishart_warns_of_low_df_as_torch)
        dd = D.Wishart(df_d, **{kind: leaves_d["matrix"]})
        tt = TD.Wishart(df_t, **{kind: leaves_t["matrix"]})
    return dd, tt, leaves_d, leaves_t


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch,df_batch,p", WISHART_SHAPES, ids=str)
@pytest.mark.parametrize("method", ["log_prob", "entropy", "mean", "mode", "variance", "covariance_matrix",
                                    "precision_matrix", "scale_tril"])
def test_wishart_methods_and_their_gradients_match_torch(kind, batch, df_batch, p, method):
    df, matrix = _wishart_params(kind, batch, p, df_batch, low_df=method == "mode")  # (NaN modes too)
    dd, tt, ld, lt = _pair(kind, df, matrix)
    if method == "log_prob":
        value = TD.Wishart(torch.tensor(df), covariance_matrix=torch.tensor(_spd(batch, p))).sample((2,))
        ld["value"], lt["value"] = (distnn.tensor(value.numpy(), requires_grad=True),
                                    value.clone().requires_grad_())
        yd, yt = dd.log_prob(ld["value"]), tt.log_prob(lt["value"])
    else:
        yd, yt = getattr(dd, method), getattr(tt, method)
        yd, yt = (yd(), yt()) if callable(yd) else (yd, yt)
    _check(yd, yt, rtol=1e-9, atol=1e-10, what=method)
    _check_grads(yd, yt, ld, lt, rtol=1e-8, atol=1e-10, what=method)


def test_wishart_with_a_number_df_matches_torch():
    S = _spd((2,), 3)
    dd, tt, ld, lt = _pair("covariance_matrix", np.array(5.5), S, df_as_number=True)
    assert dd.batch_shape == (2,) and dd.df.dtype == np.float64
    _check(dd.entropy(), tt.entropy(), what="entropy")
    _check_grads(dd.entropy(), tt.entropy(), ld, lt, what="entropy")
    assert repr(dd) == repr(tt)


@pytest.mark.parametrize("batch", [(), (3,)], ids=str)
def test_wishart_kl_divergence_is_the_bregman_divergence_of_each_batch_member(batch):
    """torch's kl_divergence(Wishart, Wishart) is its exponential-family Bregman divergence; without a batch
    distnn's equals it. With a batch torch sums the df term over the batch (its _sum_rightmost takes
    len(event_shape) = 2 dims of a batch-shaped term), so distnn is checked against torch per member there."""
    df_p, Sp = np.asarray(R.uniform(3.5, 9.0, batch)), _spd(batch, 3)
    df_q, Sq = np.asarray(R.uniform(3.5, 9.0, batch)), _spd(batch, 3)
    leaves_d = [distnn.tensor(a, requires_grad=True) for a in (df_p, Sp, df_q, Sq)]
    kd = D.kl_divergence(D.Wishart(leaves_d[0], leaves_d[1]), D.Wishart(leaves_d[2], leaves_d[3]))
    assert tuple(kd.shape) == batch
    u = R.standard_normal(batch)
    (kd * distnn.tensor(u)).sum().backward()
    for i in np.ndindex(batch):
        leaves_t = [torch.tensor(a[i], requires_grad=True) for a in (df_p, Sp, df_q, Sq)]
        kt = TD.kl_divergence(TD.Wishart(leaves_t[0], leaves_t[1]), TD.Wishart(leaves_t[2], leaves_t[3]))
        np.testing.assert_allclose(kd.data[i], kt.item(), rtol=1e-9)
        (kt * float(u[i])).backward()
        for a, b in zip(leaves_d, leaves_t):
            if b.grad is None:  # (both detach p's natural parameters: no gradient reaches p's)
                assert a.grad is None
            else:
                np.testing.assert_allclose(a.grad[i], b.grad.numpy(), rtol=1e-8, atol=1e-10)
    assert float(D.kl_divergence(D.Wishart(leaves_d[0].detach(), leaves_d[1].detach()),
                                 D.Wishart(leaves_d[0].detach(), leaves_d[1].detach())).abs().max()) < 1e-9


# ----------------------------------------------------------------------------------- shapes, repr, refusals

def _pairs():
    conc, S, df = R.uniform(0.5, 3.0, (2,)), _spd((2,), 3), R.uniform(3.0, 6.0, (2,))
    L = np.linalg.cholesky(S)
    return [(D.LKJCholesky(3, distnn.tensor(conc)), TD.LKJCholesky(3, torch.tensor(conc))),
            (D.LKJCholesky(2), TD.LKJCholesky(2)), (D.LKJCholesky(4, 0.5), TD.LKJCholesky(4, 0.5)),
            (D.Wishart(distnn.tensor(df), distnn.tensor(S)), TD.Wishart(torch.tensor(df), torch.tensor(S))),
            (D.Wishart(4.0, precision_matrix=distnn.tensor(S)), TD.Wishart(4.0, precision_matrix=torch.tensor(S))),
            (D.Wishart(distnn.tensor(df[:1]), scale_tril=distnn.tensor(L)),
             TD.Wishart(torch.tensor(df[:1]), scale_tril=torch.tensor(L)))]


@pytest.mark.parametrize("i", range(len(_pairs())))
def test_shapes_expand_flags_support_and_repr_are_torchs(i):
    dd, tt = _pairs()[i]
    assert repr(dd) == repr(tt)
    assert dd.batch_shape == tuple(tt.batch_shape) and dd.event_shape == tuple(tt.event_shape)
    assert dd.has_rsample == tt.has_rsample and dd.has_enumerate_support == tt.has_enumerate_support
    assert repr(dd.support) == repr(tt.support) and dd.support.event_dim == tt.support.event_dim == 2
    assert {k: repr(v) for k, v in dd.arg_constraints.items()} == {k: repr(v) for k, v in tt.arg_constraints.items()}
    new_batch = (4,) + tuple(tt.batch_shape)
    e, te = dd.expand(new_batch), tt.expand(new_batch)
    assert type(e) is type(dd) and e.batch_shape == tuple(te.batch_shape) and e.event_shape == tuple(te.event_shape)
    assert repr(e) == repr(te)
    value = te.sample((3,))
    np.testing.assert_allclose(e.log_prob(distnn.tensor(value.numpy())).data, te.log_prob(value).numpy(),
                               rtol=1e-6, atol=1e-6)
    draws = e.sample((5,))
    assert tuple(draws.shape) == tuple(te.sample((5,)).shape) and bool(np.all(dd.support.check(draws)))
    if isinstance(dd, D.Wishart):
        np.testing.assert_allclose(e.mean.data, te.mean.numpy(), rtol=1e-12)
        assert tuple(dd.rsample((2, 1)).shape) == tuple(tt.rsample((2, 1)).shape)
    else:
        with pytest.raises(NotImplementedError):
            dd.rsample()


def test_module_aliases_are_torchs():
    for name in ("lkj_cholesky", "wishart"):
        module, torch_module = getattr(D, name), getattr(TD, name)
        for cls in torch_module.__all__:
            assert getattr(module, cls) is getattr(D, cls)
    assert "LKJCholesky" in D.__all__ and "Wishart" in D.__all__


def test_lkj_refusals_are_torchs():
    for dim in (1, 0, -3):
        with pytest.raises(ValueError) as t_err:
            TD.LKJCholesky(dim)
        with pytest.raises(ValueError, match=str(t_err.value)):
            D.LKJCholesky(dim)
    for dim in (2.5, "3", True):  # (torch fails on these further in, with a TypeError or not at all)
        with pytest.raises(ValueError, match=f"Expected dim to be an integer .* Found dim={dim}"):
            D.LKJCholesky(dim)
    # (torch's error names the Beta it builds; distnn's names LKJCholesky's own parameter)
    with pytest.raises(ValueError):
        TD.LKJCholesky(3, torch.tensor([1.0, -1.0]), validate_args=True)
    with pytest.raises(ValueError, match=r"parameter concentration .* of distribution LKJCholesky\(.*GreaterThan"):
        D.LKJCholesky(3, distnn.tensor(np.array([1.0, -1.0])), validate_args=True)
    d, t = D.LKJCholesky(3, validate_args=True), TD.LKJCholesky(3, validate_args=True)
    for bad in (np.eye(3) * 2, np.triu(np.ones((3, 3))) / np.sqrt(3), -np.eye(3)):
        with pytest.raises(ValueError, match="support"):
            t.log_prob(torch.tensor(bad, dtype=torch.float32))
        with pytest.raises(ValueError, match=r"support \(CorrCholesky\(\)\)"):
            d.log_prob(distnn.tensor(bad.astype(np.float32)))


def test_wishart_refusals_are_torchs():
    S = _spd((), 3)
    indefinite = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    cases = [  # (df, matrix keyword, matrix, the message both give)
        (2.0, "covariance_matrix", S, r"Value of df=2.0 expected to be greater than ndim - 1 = 2\."),
        (np.array([4.0, 1.5]), "covariance_matrix", S, r"Value of df=.* expected to be greater than ndim - 1 = 2"),
        (float("nan"), "covariance_matrix", S, r"Expected parameter df .*GreaterThan\(lower_bound=2\)"),
        (4.0, "covariance_matrix", -S, r"Expected parameter covariance_matrix .*PositiveDefinite\(\)"),
        (4.0, "precision_matrix", indefinite, r"Expected parameter precision_matrix .*PositiveDefinite\(\)"),
        (4.0, "scale_tril", S, r"Expected parameter scale_tril .*LowerCholesky\(\)"),
        (4.0, "scale_tril", np.ones(3), r"scale_tril must be at least two-dimensional"),
    ]
    for df, kind, matrix, message in cases:
        for lib, wrap in ((TD, torch.tensor), (D, distnn.tensor)):
            with pytest.raises(ValueError, match=message):
                lib.Wishart(df if isinstance(df, float) else wrap(df), **{kind: wrap(matrix)}, validate_args=True)
    with pytest.raises(ValueError, match="covariance_matrix must be at least two-dimensional"):
        D.Wishart(4.0, distnn.tensor(np.ones(3)))  # (torch's message names scale_tril whichever was given)
    for kwargs in ({}, {"covariance_matrix": S, "scale_tril": np.linalg.cholesky(S)}):
        with pytest.raises(AssertionError, match="Exactly one of covariance_matrix"):
            TD.Wishart(4.0, **{k: torch.tensor(v) for k, v in kwargs.items()})
        with pytest.raises(AssertionError, match="Exactly one of covariance_matrix"):
            D.Wishart(4.0, **{k: distnn.tensor(v) for k, v in kwargs.items()})
    with pytest.raises(ValueError, match="square"):
        D.Wishart(4.0, distnn.tensor(np.ones((3, 2))))
    with pytest.raises(ValueError, match=r"Incompatible batch shapes: df \(2,\), covariance_matrix \(3, 3, 3\)"):
        D.Wishart(distnn.tensor(np.array([4.0, 5.0])), distnn.tensor(_spd((3,), 3)))
    d, t = D.Wishart(4.0, distnn.tensor(S)), TD.Wishart(4.0, torch.tensor(S))
    for bad in (-np.eye(3), np.triu(np.ones((3, 3))) + np.eye(3)):
        with pytest.raises(ValueError, match="support"):
            t.log_prob(torch.tensor(bad))
        with pytest.raises(ValueError, match=r"support \(PositiveDefinite\(\)\)"):
            d.log_prob(distnn.tensor(bad))


def test_wishart_warns_of_low_df_as_torch():
    S = _spd((), 3)
    with pytest.warns(UserWarning, match="Low df values detected") as t_rec:
        TD.Wishart(torch.tensor([2.5, 4.0]), torch.tensor(S))
    with pytest.warns(UserWarning, match="Low df values detected") as d_rec:
        D.Wishart(distnn.tensor(np.array([2.5, 4.0])), distnn.tensor(S))
    assert str(d_rec[0].message) == str(t_rec[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        D.Wishart(3.0, distnn.tensor(S))  # (df = p: no warning)
