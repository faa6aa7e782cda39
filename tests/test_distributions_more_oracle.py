"""The remaining standalone torch.distributions families (Chi2, StudentT, FisherSnedecor, ContinuousBernoulli,
Geometric, NegativeBinomial, Multinomial, GeneralizedPareto, VonMises, LowRankMultivariateNormal,
OneHotCategoricalStraightThrough) against torch (2.13) as the oracle, float64 tight: log_prob, cdf/icdf, entropy
and the moments with their gradients w.r.t. the parameters; shapes, expand, support, repr; the validate_args
refusals; kl_divergence pairs. (Sampling statistics and rsample gradients: test_distributions_more_sampling.)"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TD = torch.distributions

import distnn  # noqa: E402
import distnn.distributions as D  # noqa: E402

R = np.random.default_rng(30)  # (draws at collection only, for the number of cases: each test gets its own below)
SHAPES = [((), ()), ((3,), (2, 1)), ((2, 3), (3,))]  # (parameter shape, extra sample dims of the value)
NO_GRAD = set()


DRAW_PER_TEST = True  # (R: each test draws from its own generator, conftest's per_test_rng)


def _pos(shape, lo=0.3, hi=3.0):
    return R.uniform(lo, hi, shape)


def _gp_value(p, shape):
    """Points inside a GeneralizedPareto's support: its quantiles of uniform draws."""
    u = R.uniform(0.02, 0.95, shape)
    c = np.where(np.abs(p["concentration"]) < 1e-8, 1.0, p["concentration"])
    x = p["loc"] + p["scale"] / c * np.expm1(-c * np.log1p(-u))
    return np.where(np.abs(p["concentration"]) < 1e-8, p["loc"] - p["scale"] * np.log1p(-u), x)


def _cb_probs(s):
    # (both sides of 1/2 inside the Taylor region (0.499, 0.501], and outside it only where the exact formulas
    # are well-conditioned: |p - 1/2| >= 0.03. Between, mean/variance are a difference of two terms ~1/(1-2p)^2
    # that cancel to ~1/12: at p = 0.49 both libraries' variance gradient is 4.3e-10 off the exact derivative
    # (decimal arithmetic at 60 digits), at 0.4985 1.8e-7, so they agree there only to rounding noise; the
    # edges are tested on their own in test_continuous_bernoulli_at_its_limits_matches_torch.)
    outside = np.where(R.random(s) < 0.5, R.uniform(0.05, 0.47, s), R.uniform(0.53, 0.95, s))
    return np.where(R.random(s) < 0.3, R.uniform(0.4991, 0.501, s), outside)


# name -> (distnn ctor, torch ctor, params(shape) -> dict, value(params, shape) -> array, methods)
CASES = {
    "Chi2": (D.Chi2, TD.Chi2, lambda s: {"df": _pos(s, 0.5, 8.0)}, lambda p, s: _pos(s, 0.05, 6.0),
             ("entropy", "mean", "mode", "variance", "stddev")),
    "StudentT": (D.StudentT, TD.StudentT,
                 lambda s: {"df": _pos(s, 0.5, 8.0), "loc": R.standard_normal(s), "scale": _pos(s)},
                 lambda p, s: R.standard_normal(s) * 3, ("entropy", "mean", "mode", "variance")),
    "FisherSnedecor": (D.FisherSnedecor, TD.FisherSnedecor, lambda s: {"df1": _pos(s, 0.5, 9.0),
                                                                       "df2": _pos(s, 1.0, 12.0)},
                       lambda p, s: _pos(s, 0.05, 5.0), ("mean", "mode", "variance")),
    "ContinuousBernoulli_probs": (D.ContinuousBernoulli, TD.ContinuousBernoulli, lambda s: {"probs": _cb_probs(s)},
                                  lambda p, s: R.uniform(0.0, 1.0, s),
                                  ("cdf", "icdf", "entropy", "mean", "variance", "stddev")),
    "ContinuousBernoulli_logits": (D.ContinuousBernoulli, TD.ContinuousBernoulli,
                                   lambda s: {"logits": R.standard_normal(s) * 3}, lambda p, s: R.uniform(0, 1, s),
                                   ("cdf", "icdf", "entropy", "mean", "variance")),
    "Geometric_probs": (D.Geometric, TD.Geometric, lambda s: {"probs": R.uniform(0.05, 1.0, s)},
                        lambda p, s: R.integers(0, 8, s).astype(np.float64),
                        ("entropy", "mean", "mode", "variance", "stddev")),
    "Geometric_logits": (D.Geometric, TD.Geometric, lambda s: {"logits": R.standard_normal(s) * 2},
                         lambda p, s: R.integers(0, 8, s).astype(np.float64), ("entropy", "mean", "variance")),
    "NegativeBinomial_probs": (D.NegativeBinomial, TD.NegativeBinomial,
                               lambda s: {"total_count": _pos(s, 0.5, 9.0), "probs": R.uniform(0.0, 0.9, s)},
                               lambda p, s: R.integers(0, 9, s).astype(np.float64), ("mean", "mode", "variance")),
    "NegativeBinomial_logits": (D.NegativeBinomial, TD.NegativeBinomial,
                                lambda s: {"total_count": _pos(s, 0.5, 9.0), "logits": R.standard_normal(s)},
                                lambda p, s: R.integers(0, 9, s).astype(np.float64), ("mean", "mode", "variance")),
    "GeneralizedPareto": (D.GeneralizedPareto, TD.GeneralizedPareto,
                          lambda s: {"loc": R.standard_normal(s), "scale": _pos(s),
                                     "concentration": np.where(R.random(s) < 0.2, 0.0, R.uniform(-0.8, 1.2, s))},
                          _gp_value, ("cdf", "icdf", "log_cdf", "log_survival_function", "entropy", "mean", "mode",
                                      "variance")),
    "VonMises": (D.VonMises, TD.VonMises, lambda s: {"loc": R.standard_normal(s), "concentration": _pos(s, 0.05, 9.0)},
                 lambda p, s: R.uniform(-7, 7, s), ("mean", "mode", "variance")),
}
# entropies through digamma: torch's polygamma(1, x) is up to ~1e-9 off (distnn's ~1e-14)
TRIGAMMA_RTOL = 5e-8


def _build(ctor, params, lib):
    make = (lambda v: distnn.tensor(v, requires_grad=True)) if lib == "distnn" else (
        lambda v: torch.tensor(v, requires_grad=True))
    tensors = {k: make(v) for k, v in params.items()}
    return ctor(**tensors), tensors


def _compare(ctors, params, method, value=None, rtol=1e-10, atol=1e-11, grad_rtol=None, grad_atol=None):
    """One method of both (on ``value`` when it takes one), then a weighted sum's gradients w.r.t. each
    parameter."""
    dd, dp = _build(ctors[0], params, "distnn")
    tt, tp = _build(ctors[1], params, "torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if value is None:
            yd, yt = getattr(dd, method), getattr(tt, method)
            yd, yt = (yd(), yt()) if callable(yd) else (yd, yt)
        else:
            yd, yt = getattr(dd, method)(distnn.tensor(value)), getattr(tt, method)(torch.tensor(value))
    assert tuple(yd.shape) == tuple(yt.shape), method
    assert np.dtype(yd.dtype) == np.dtype(str(yt.dtype).replace("torch.", "")), method
    np.testing.assert_allclose(np.asarray(yd.data, dtype=np.float64), yt.detach().numpy(), rtol=rtol, atol=atol,
                               err_msg=method)
    if not yt.requires_grad:
        return
    finite = np.isfinite(yt.detach().numpy())
    u = R.standard_normal(tuple(yt.shape)) * finite  # (weight 0 on NaN/inf entries: no gradient to compare)
    (distnn.where(distnn.tensor(finite), yd, 0.0) * distnn.tensor(u)).sum().backward()
    (torch.where(torch.tensor(finite), yt, 0.0) * torch.tensor(u)).sum().backward()
    for k in params:
        g_t = tp[k].grad.numpy() if tp[k].grad is not None else np.zeros(params[k].shape)
        g_d = dp[k].grad if dp[k].grad is not None else np.zeros(params[k].shape)
        np.testing.assert_allclose(g_d, g_t, rtol=grad_rtol or rtol, atol=grad_atol or atol, err_msg=f"{method}: d/d{k}")


def _float64_default(tensor):
    def make(data, *args, **kwargs):
        if isinstance(data, float):
            kwargs.setdefault("dtype", torch.float64)
        return tensor(data, *args, **kwargs)
    return make


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("name", list(CASES))
def test_log_prob_cdf_icdf_entropy_moments_and_gradients_match_torch(name, shapes, monkeypatch):
    d_ctor, t_ctor, make_params, make_value, methods = CASES[name]
    shape, sample = shapes
    params = make_params(shape)
    if name == "GeneralizedPareto":
        # (torch's GeneralizedPareto.log_prob/cdf compare with a float32 0 and fail on float64 parameters
        # unless float64 is torch's default dtype)
        monkeypatch.setattr(torch, "tensor", _float64_default(torch.tensor))
    _compare((d_ctor, t_ctor), params, "log_prob", make_value(params, sample + shape))
    for method in methods:
        if method == "icdf":
            _compare((d_ctor, t_ctor), params, method, R.uniform(0.01, 0.99, sample + shape))
        elif method in ("cdf", "log_cdf", "log_survival_function"):
            _compare((d_ctor, t_ctor), params, method, make_value(params, sample + shape))
        else:
            grad_rtol = TRIGAMMA_RTOL if method == "entropy" and name in ("Chi2", "StudentT") else None
            _compare((d_ctor, t_ctor), params, method, grad_rtol=grad_rtol)


# The exact formulas just outside the lims (0.499 itself, 0.50100001) are ill-conditioned: at 0.499 both
# libraries' variance gradient is 3.3e-6 off the exact derivative, at 0.50100001 5.1e-6, mean's 4.4e-9 and 6.8e-9
# (against decimal arithmetic at 60 digits), the two agreeing to ~1e-8 only by computing the same expression;
# their gradients there are compared to 1e-7 (the exact ones are ~1.3e-4 and ~0.33: any formula error shows).
CB_EDGE_GRAD_ATOL = 1e-7


@pytest.mark.parametrize("probs,value,grad_atol", [
    # p = 1/2 exactly, inside the Taylor region next to the edges, and probs clamped off 0 and 1: well-conditioned
    (np.array([0.5, 0.49900001, 0.501, 0.0, 1.0, 1e-20]), np.array([0.0, 0.3, 0.7, 0.2, 0.9, 0.0]), None),
    # the edges, on the exact formulas' side
    (np.array([0.499, 0.50100001]), np.array([1.0, 0.5]), CB_EDGE_GRAD_ATOL)], ids=["regular", "edges"])
def test_continuous_bernoulli_at_its_limits_matches_torch(probs, value, grad_atol):
    _compare((D.ContinuousBernoulli, TD.ContinuousBernoulli), {"probs": probs}, "log_prob", value, rtol=1e-9,
             grad_atol=grad_atol)
    for method in ("mean", "variance", "entropy"):
        _compare((D.ContinuousBernoulli, TD.ContinuousBernoulli), {"probs": probs}, method, rtol=1e-9,
                 grad_atol=grad_atol)


def test_continuous_bernoulli_lims_are_torchs():
    probs = np.array([0.5, 0.499, 0.49900001, 0.501, 0.50100001])
    for lims in ((0.4, 0.6), (0.45, 0.5)):
        dd = D.ContinuousBernoulli(distnn.tensor(probs), lims=lims)
        tt = TD.ContinuousBernoulli(torch.tensor(probs), lims=lims)
        np.testing.assert_allclose(dd.mean.data, tt.mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(dd.expand((2, 5)).variance.data, tt.expand((2, 5)).variance.numpy(), rtol=1e-12)


# distributions with an event shape: (distnn ctor, torch ctor, params(batch) -> dict, value(shape) -> array)
EVENT_CASES = {
    "Multinomial_probs": (D.Multinomial, TD.Multinomial, lambda b: {"total_count": 5, "probs": _pos(b + (4,))},
                          lambda s: R.multinomial(5, [0.25] * 4, s).astype(np.float64),
                          ("entropy", "mean", "variance")),
    "Multinomial_logits": (D.Multinomial, TD.Multinomial,
                           lambda b: {"total_count": 3, "logits": R.standard_normal(b + (3,))},
                           lambda s: R.multinomial(3, [0.2, 0.3, 0.5], s).astype(np.float64),
                           ("entropy", "mean", "variance")),
    "LowRankMultivariateNormal": (
        D.LowRankMultivariateNormal, TD.LowRankMultivariateNormal,
        lambda b: {"loc": R.standard_normal(b + (3,)), "cov_factor": R.standard_normal(b[1:] + (3, 2)),
                   "cov_diag": _pos((3,), 0.5, 2.0)},
        lambda s: R.standard_normal(s + (3,)),
        ("entropy", "mean", "mode", "variance", "stddev", "scale_tril", "covariance_matrix", "precision_matrix")),
}


@pytest.mark.parametrize("batch,sample", [((), ()), ((2,), (3,)), ((2, 3), (4, 1, 1))], ids=str)
@pytest.mark.parametrize("name", list(EVENT_CASES))
def test_event_distributions_match_torch(name, batch, sample):
    d_ctor, t_ctor, make_params, make_value, methods = EVENT_CASES[name]
    params = make_params(batch)
    static = {k: v for k, v in params.items() if isinstance(v, int)}
    tensors = {k: v for k, v in params.items() if not isinstance(v, int)}
    ctors = (lambda **kw: d_ctor(**static, **kw), lambda **kw: t_ctor(**static, **kw))
    full_batch = tuple(t_ctor(**static, **{k: torch.tensor(v) for k, v in tensors.items()}).batch_shape)
    _compare(ctors, tensors, "log_prob", make_value(sample + full_batch), rtol=1e-9, atol=1e-10)
    for method in methods:
        # (torch's Multinomial entropy takes lgamma(n + 1) of an int64 tensor: a float32 number, ~1e-7 off)
        rtol = 3e-7 if name.startswith("Multinomial") and method == "entropy" else 1e-9
        _compare(ctors, tensors, method, rtol=rtol, atol=1e-10)


def _pairs():
    """(distnn distribution, torch distribution) of every new kind, with batch shape (2,)."""
    p, c, loc = _pos((2,)), R.uniform(0.1, 0.9, (2,)), R.standard_normal((2,))
    made = [("Chi2", (p,)), ("StudentT", (p, loc, p)), ("FisherSnedecor", (p, p + 1)),
            ("ContinuousBernoulli", (c,)), ("Geometric", (c,)), ("NegativeBinomial", (p, c)),
            ("GeneralizedPareto", (loc, p, c - 0.5)), ("VonMises", (loc, p))]
    pairs = [(getattr(D, n)(*map(distnn.tensor, a)), getattr(TD, n)(*map(torch.tensor, a))) for n, a in made]
    sp, w = _pos((2, 3)), R.standard_normal((2, 3, 2))
    pairs += [(D.Multinomial(4, probs=distnn.tensor(sp)), TD.Multinomial(4, probs=torch.tensor(sp))),
              (D.Geometric(logits=distnn.tensor(loc)), TD.Geometric(logits=torch.tensor(loc))),
              (D.ContinuousBernoulli(logits=distnn.tensor(loc)), TD.ContinuousBernoulli(logits=torch.tensor(loc))),
              (D.NegativeBinomial(3.0, logits=distnn.tensor(loc)), TD.NegativeBinomial(3.0, logits=torch.tensor(loc))),
              (D.OneHotCategoricalStraightThrough(distnn.tensor(sp)),
               TD.OneHotCategoricalStraightThrough(torch.tensor(sp))),
              (D.LowRankMultivariateNormal(distnn.tensor(sp), distnn.tensor(w), distnn.tensor(p[:1].repeat(3))),
               TD.LowRankMultivariateNormal(torch.tensor(sp), torch.tensor(w), torch.tensor(p[:1].repeat(3)))),
              (D.Chi2(3.0), TD.Chi2(3.0)), (D.StudentT(3.0), TD.StudentT(3.0)),
              (D.FisherSnedecor(2.0, 5.0), TD.FisherSnedecor(2.0, 5.0)),
              (D.ContinuousBernoulli(0.3), TD.ContinuousBernoulli(0.3)), (D.Geometric(0.3), TD.Geometric(0.3)),
              (D.GeneralizedPareto(0.0, 1.0, 0.2), TD.GeneralizedPareto(0.0, 1.0, 0.2))]
    return pairs


@pytest.mark.parametrize("i", range(len(_pairs())))
def test_shapes_expand_flags_support_and_repr_are_torchs(i, monkeypatch):
    dd, tt = _pairs()[i]
    if isinstance(dd, D.GeneralizedPareto) and dd.loc.dtype == np.float64:
        monkeypatch.setattr(torch, "tensor", _float64_default(torch.tensor))  # (torch's float32 0: see above)
    assert repr(dd) == repr(tt)
    assert dd.batch_shape == tuple(tt.batch_shape) and dd.event_shape == tuple(tt.event_shape)
    assert dd.has_rsample == tt.has_rsample and dd.has_enumerate_support == tt.has_enumerate_support
    assert type(dd.support).__name__.lstrip("_") == type(tt.support).__name__.lstrip("_")
    if not D.constraints.is_dependent(type(dd).support):
        assert repr(dd.support) == repr(tt.support)
    assert dd.support.event_dim == tt.support.event_dim and dd.support.is_discrete == tt.support.is_discrete
    assert {k: repr(v) for k, v in dd.arg_constraints.items()} == {k: repr(v) for k, v in tt.arg_constraints.items()}
    new_batch = (4,) + tuple(tt.batch_shape)
    e, te = dd.expand(new_batch), tt.expand(new_batch)
    assert type(e) is type(dd)
    assert e.batch_shape == tuple(te.batch_shape) and e.event_shape == tuple(te.event_shape)
    assert repr(e) == repr(te)
    value = te.sample((3,))
    # (float32 parameters: rtol 1e-7 is under float32's eps (1.19e-7); the two differ by up to 2.4e-7 relative,
    # 2 ulps, from the order of operations, measured over 200 draws of FisherSnedecor(2., 5.), while both sit
    # up to 7.4e-5 relative off the float64 log_prob of the same value: 1e-6 is ~8 ulps)
    tol = 1e-6 if value.dtype == torch.float32 else 1e-7
    np.testing.assert_allclose(e.log_prob(distnn.tensor(value.numpy())).data, te.log_prob(value).numpy(),
                               rtol=tol, atol=tol)
    assert tuple(dd.sample((3, 1)).shape) == tuple(tt.sample((3, 1)).shape)
    assert np.all(dd.support.check(e.sample((5,)))) if not isinstance(dd, D.VonMises) else True


def test_module_aliases_are_torchs():
    for name in ("chi2", "studentT", "fishersnedecor", "continuous_bernoulli", "geometric", "negative_binomial",
                 "multinomial", "generalized_pareto", "von_mises", "lowrank_multivariate_normal"):
        module = getattr(D, name)
        torch_module = getattr(TD, name)
        for cls in torch_module.__all__:
            assert getattr(module, cls) is getattr(D, cls)


BAD = [  # (constructor arguments a distribution of torch's refuses with ValueError)
    ("Chi2", (-1.0,)), ("StudentT", (0.0, 0.0, 1.0)), ("StudentT", (1.0, 0.0, -1.0)),
    ("StudentT", (1.0, float("nan"), 1.0)), ("FisherSnedecor", (1.0, 0.0)), ("ContinuousBernoulli", (1.5,)),
    ("Geometric", (0.0,)), ("Geometric", (1.2,)), ("NegativeBinomial", (-1.0, 0.5)), ("NegativeBinomial", (2.0, 1.0)),
    ("GeneralizedPareto", (0.0, -1.0, 0.5)), ("VonMises", (0.0, 0.0)),
]


@pytest.mark.parametrize("name,args", BAD, ids=str)
def test_invalid_parameters_are_refused_as_torch(name, args):
    with pytest.raises(ValueError) as t_err:
        getattr(TD, name)(*[torch.tensor([a], dtype=torch.float64) for a in args], validate_args=True)
    with pytest.raises(ValueError) as d_err:
        getattr(D, name)(*[distnn.tensor(np.array([a])) for a in args], validate_args=True)
    first = str(t_err.value).split(" of distribution")[0].split(" (Tensor")[0]
    assert str(d_err.value).startswith(first)


def test_values_outside_the_support_and_bad_shapes_are_refused_as_torch():
    cases = [(D.Geometric(distnn.tensor([0.3])), TD.Geometric(torch.tensor([0.3], dtype=torch.float64)), [1.5]),
             (D.ContinuousBernoulli(distnn.tensor([0.3])), TD.ContinuousBernoulli(torch.tensor([0.3], dtype=torch.float64)), [1.5]),
             (D.Multinomial(3, distnn.tensor([0.3, 0.7])), TD.Multinomial(3, torch.tensor([0.3, 0.7], dtype=torch.float64)), [4.0, 0.0]),
             (D.GeneralizedPareto(0.0, 1.0, distnn.tensor([-0.5])),
              TD.GeneralizedPareto(0.0, 1.0, torch.tensor([-0.5], dtype=torch.float64)), [2.5])]
    for dd, tt, v in cases:
        with pytest.raises(ValueError, match="support"):
            tt.log_prob(torch.tensor(v, dtype=torch.float64))
        with pytest.raises(ValueError, match="support"):
            dd.log_prob(distnn.tensor(np.array(v)))
    with pytest.raises(NotImplementedError, match="inhomogeneous total_count"):
        D.Multinomial(2.5, distnn.tensor([0.5, 0.5]))
    for args in [(np.zeros(3), np.ones((2, 1)), np.ones(3)), (np.zeros(3), np.ones((3, 1)), np.ones(2)),
                 (np.zeros(()), np.ones((3, 1)), np.ones(3)), (np.zeros(3), np.ones(3), np.ones(3))]:
        with pytest.raises(ValueError) as t_err:
            TD.LowRankMultivariateNormal(*map(torch.tensor, args))
        with pytest.raises(ValueError, match=str(t_err.value).split(" x ")[0].split(" torch.Size")[0]):
            D.LowRankMultivariateNormal(*map(distnn.tensor, args))
    with pytest.raises(ValueError, match="Either `probs` or `logits`"):
        D.Geometric()


def _kl_pairs():
    c1, c2 = R.uniform(0.1, 0.9, (3,)), np.array([0.4995, 0.2, 0.8])
    loc, p = R.standard_normal((3,)), _pos((3,))
    sp = _pos((2, 3))
    W1, W2, d1, d2 = R.standard_normal((2, 3, 2)), R.standard_normal((3, 1)), _pos((3,)), _pos((2, 3))
    L = np.tril(R.standard_normal((3, 3)) * 0.3, -1) + np.diag(_pos(3, 0.5, 1.5))
    return [
        ("ContinuousBernoulli", (c1,), "ContinuousBernoulli", (c2,)),
        ("ContinuousBernoulli", (c2,), "Exponential", (p,)), ("ContinuousBernoulli", (c1,), "Normal", (loc, p)),
        ("ContinuousBernoulli", (c1,), "Uniform", (np.array([-0.5, 0.0, -1.0]), np.array([1.5, 2.0, 1.0]))),
        ("Beta", (p, p + 1), "ContinuousBernoulli", (c2,)),
        ("Uniform", (np.array([0.1, 0.0, 0.2]), np.array([0.9, 0.5, 1.0])), "ContinuousBernoulli", (c1,)),
        ("Exponential", (p,), "ContinuousBernoulli", (c1,)), ("Gamma", (p, p), "ContinuousBernoulli", (c1,)),
        ("Normal", (loc, p), "ContinuousBernoulli", (c1,)), ("Laplace", (loc, p), "ContinuousBernoulli", (c1,)),
        ("Geometric", (c1,), "Geometric", (c2,)),
        ("LowRankMultivariateNormal", (sp, W1, d1), "LowRankMultivariateNormal", (sp[0], W2, d2)),
        ("MultivariateNormal", (sp, None, None, L), "LowRankMultivariateNormal", (sp[0], W1, d2)),
        ("LowRankMultivariateNormal", (sp, W1, d2), "MultivariateNormal", (sp[1], None, None, L)),
        ("Chi2", (p,), "Gamma", (p, p)),
    ]


# p's entropy inside the KL (Beta's, Chi2's): its gradient takes trigamma, where torch's polygamma(1, x) is up to
# 4.9e-10 relative off scipy's (x in [0.15, 8]; distnn's ~1e-15), and the gradient is a difference like
# (a-1)ψ1(a) - (a+b-2)ψ1(a+b) that can cancel to ~0: torch's KL gradients w.r.t. p's parameters are up to 9.7e-10
# (Beta || ContinuousBernoulli) and 1.9e-9 (Chi2 || Gamma) absolute off the analytic ones over these parameter
# ranges, distnn's 6e-15 and 2e-14. Against torch those gradients get this atol; against the analytic
# gradients (test_kl_gradients_through_trigamma_match_the_analytic_ones) distnn is held tight.
KL_TRIGAMMA_GRAD_ATOL = 1e-8


@pytest.mark.parametrize("i", range(len(_kl_pairs())))
def test_kl_divergence_and_its_gradients_match_torch(i):
    p_name, p_args, q_name, q_args = _kl_pairs()[i]
    d_t = [[distnn.tensor(a, requires_grad=True) if a is not None else None for a in args]
           for args in (p_args, q_args)]
    t_t = [[torch.tensor(a, requires_grad=True) if a is not None else None for a in args]
           for args in (p_args, q_args)]
    kd = D.kl_divergence(getattr(D, p_name)(*d_t[0]), getattr(D, q_name)(*d_t[1]))
    kt = TD.kl_divergence(getattr(TD, p_name)(*t_t[0]), getattr(TD, q_name)(*t_t[1]))
    assert tuple(kd.shape) == tuple(kt.shape)
    np.testing.assert_allclose(kd.data, kt.detach().numpy(), rtol=1e-9, atol=1e-10)
    if not kt.requires_grad or not np.isfinite(kt.detach().numpy()).all():
        return
    u = R.standard_normal(tuple(kt.shape))
    (kd * distnn.tensor(u)).sum().backward()
    (kt * torch.tensor(u)).sum().backward()
    grad_atol = [KL_TRIGAMMA_GRAD_ATOL if p_name in ("Beta", "Chi2") else 1e-10] * len(p_args) + [1e-10] * len(q_args)
    for a, b, tol in zip(sum(d_t, []), sum(t_t, []), grad_atol):
        if b is not None and b.grad is not None:
            np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-8, atol=tol)


def test_kl_gradients_through_trigamma_match_the_analytic_ones():
    """The KL pairs whose gradients take trigamma, against their closed forms with scipy's polygamma."""
    special = pytest.importorskip("scipy.special")
    a, b, lam = _pos((50,)), _pos((50,)), R.uniform(0.05, 0.95, (50,))
    da, db = distnn.tensor(a, requires_grad=True), distnn.tensor(b, requires_grad=True)
    D.kl_divergence(D.Beta(da, db), D.ContinuousBernoulli(distnn.tensor(lam))).sum().backward()
    # KL = -H(Beta(a, b)) - E[x] logit(lam) - log(1 - lam) - log C(lam), E[x] = a / (a + b)
    s, logit, tri = a + b, np.log(lam / (1 - lam)), lambda x: special.polygamma(1, x)
    np.testing.assert_allclose(da.grad, (a - 1) * tri(a) - (s - 2) * tri(s) - logit * b / s**2, rtol=1e-11,
                               atol=1e-13)
    np.testing.assert_allclose(db.grad, (b - 1) * tri(b) - (s - 2) * tri(s) + logit * a / s**2, rtol=1e-11,
                               atol=1e-13)
    df, conc, rate = _pos((50,), 0.3, 6.0), _pos((50,)), _pos((50,))
    ddf = distnn.tensor(df, requires_grad=True)
    D.kl_divergence(D.Chi2(ddf), D.Gamma(distnn.tensor(conc), distnn.tensor(rate))).sum().backward()
    # Chi2(df) = Gamma(df / 2, 1 / 2); d KL(Gamma(a1, b1) || Gamma(a2, b2)) / d a1 = (a1 - a2) ψ1(a1) + (b2 - b1) / b1
    np.testing.assert_allclose(ddf.grad, 0.5 * ((df / 2 - conc) * tri(df / 2) + (rate - 0.5) / 0.5), rtol=1e-11,
                               atol=1e-13)
