"""The distributions built on transforms (Gumbel, HalfNormal, HalfCauchy, Pareto, Weibull, Kumaraswamy,
InverseGamma, LogisticNormal, RelaxedBernoulli, LogitRelaxedBernoulli, RelaxedOneHotCategorical,
ExpRelaxedCategorical) and TransformedDistribution against torch (2.13) as the oracle, float64: log_prob,
cdf/icdf, entropy and moments with their gradients; shapes, expand, support, arg_constraints and repr;
rsample given the same base noise, with its gradients; validate_args refusals. Their kl_divergence, sampling
statistics and ExponentialFamily: test_distributions_transformed_kl.py."""
from __future__ import annotations


import numpy as np
import pytest

torch = pytest.importorskip("torch")
TD = torch.distributions

import distnn  # noqa: E402
import distnn.distributions as D  # noqa: E402

R = np.random.default_rng(11)  # (module-level draws only, at import: each test draws from its own below)


DRAW_PER_TEST = True  # (R: each test draws from its own generator, conftest's per_test_rng)
BATCH = (2, 3)


def _pos(shape, lo=0.3, hi=3.0):
    return R.uniform(lo, hi, shape)


def _simplex(shape):
    p = R.uniform(0.1, 1.0, shape)
    return p / p.sum(-1, keepdims=True)


# name -> (params() -> dict of arrays, value(shape) -> array inside the support, methods, ctor kwargs
#          that are not tensors needing a gradient)
CASES = {
    # (values where the cdf stays inside the base Uniform's support (tiny, 1 - eps): further left it underflows to
    # 0 and both torch and distnn refuse it; z = (x - loc) / scale >= -6 here)
    "Gumbel": (lambda: {"loc": R.uniform(-1.0, 1.0, BATCH), "scale": _pos(BATCH)}, lambda s: R.uniform(-0.8, 6.0, s),
               ("cdf", "icdf", "entropy", "mean", "mode", "variance", "stddev")),
    "HalfNormal": (lambda: {"scale": _pos(BATCH)}, lambda s: _pos(s, 0.0, 3.0),
                   ("cdf", "icdf", "entropy", "mean", "mode", "variance", "stddev")),
    "HalfCauchy": (lambda: {"scale": _pos(BATCH)}, lambda s: _pos(s, 0.0, 5.0),
                   ("cdf", "icdf", "entropy", "mean", "mode", "variance")),
    "Pareto": (lambda: {"scale": _pos(BATCH, 0.2, 1.0), "alpha": _pos(BATCH, 0.5, 4.0)},
               lambda s: _pos(s, 1.0, 6.0), ("cdf", "icdf", "entropy", "mean", "mode", "variance")),
    "Weibull": (lambda: {"scale": _pos(BATCH), "concentration": _pos(BATCH, 0.5, 4.0)},
                lambda s: _pos(s, 0.05, 5.0), ("cdf", "icdf", "entropy", "mean", "mode", "variance")),
    "Kumaraswamy": (lambda: {"concentration1": _pos(BATCH, 0.5, 4.0), "concentration0": _pos(BATCH, 0.5, 4.0)},
                    lambda s: _pos(s, 0.05, 0.95), ("entropy", "mean", "mode", "variance")),
    "InverseGamma": (lambda: {"concentration": _pos(BATCH, 0.5, 5.0), "rate": _pos(BATCH)},
                     lambda s: _pos(s, 0.1, 5.0), ("entropy", "mean", "mode", "variance")),
    "LogisticNormal": (lambda: {"loc": R.standard_normal(BATCH), "scale": _pos(BATCH)},
                       lambda s: _simplex(s[:-1] + (4,)), ()),
    "RelaxedBernoulli": (lambda: {"temperature": _pos(()), "probs": _pos(BATCH, 0.05, 0.95)},
                         lambda s: _pos(s, 0.05, 0.95), ()),
    "LogitRelaxedBernoulli": (lambda: {"temperature": _pos(()), "logits": R.standard_normal(BATCH)},
                              lambda s: R.standard_normal(s) * 2, ()),
    "RelaxedOneHotCategorical": (lambda: {"temperature": _pos(()), "probs": _simplex(BATCH)},
                                 lambda s: _simplex(s), ()),
    "ExpRelaxedCategorical": (lambda: {"temperature": _pos(()), "logits": R.standard_normal(BATCH)},
                              lambda s: np.log(_simplex(s)), ()),
}


def _ctor(name, lib):
    """The class ``name`` of distnn or torch (the base distributions of the relaxed ones live only in their
    modules, as torch's)."""
    top = D if lib == "distnn" else TD
    module = {"LogitRelaxedBernoulli": "relaxed_bernoulli", "ExpRelaxedCategorical": "relaxed_categorical"}.get(name)
    return getattr(getattr(top, module), name) if module else getattr(top, name)


def _build(name, params, lib):
    ctor = _ctor(name, lib)
    make = (lambda v: distnn.tensor(v, requires_grad=True)) if lib == "distnn" else (
        lambda v: torch.tensor(v, requires_grad=True))
    tensors = {k: make(v) for k, v in params.items()}
    return ctor(**tensors), tensors


def _close(a, b, rtol=1e-10, atol=1e-11, msg=""):
    a = np.asarray(a.data if isinstance(a, distnn.Tensor) else a, dtype=np.float64)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    assert a.shape == b.shape, (msg, a.shape, b.shape)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=msg)


# entropies through digamma take trigamma in their gradients, torch's up to 4.9e-10 relative off scipy's: its
# Kumaraswamy entropy gradient up to 1.2e-9 absolute off the analytic one, distnn's 3.6e-15 (test_distributions_oracle)
TRIGAMMA_GRAD_ATOL = 1e-8


def _compare(name, params, method, value=None):
    dd, dp = _build(name, params, "distnn")
    tt, tp = _build(name, params, "torch")
    if value is None:
        yd, yt = getattr(dd, method), getattr(tt, method)
        yd, yt = (yd(), yt()) if callable(yd) else (yd, yt)
    else:
        yd, yt = getattr(dd, method)(distnn.tensor(value)), getattr(tt, method)(torch.tensor(value))
    _close(yd, yt, rtol=1e-9, atol=1e-10, msg=method)
    if not yt.requires_grad or not np.isfinite(yt.detach().numpy()).all():
        return
    u = R.standard_normal(tuple(yt.shape))
    (yd * distnn.tensor(u)).sum().backward()
    (yt * torch.tensor(u)).sum().backward()
    for k in params:
        g_t = tp[k].grad.numpy() if tp[k].grad is not None else np.zeros(np.shape(params[k]))
        g_d = dp[k].grad if dp[k].grad is not None else np.zeros(np.shape(params[k]))
        atol = TRIGAMMA_GRAD_ATOL if method == "entropy" and name in ("Kumaraswamy", "InverseGamma") else 1e-10
        np.testing.assert_allclose(g_d, g_t, rtol=5e-8, atol=atol, err_msg=f"{method}: gradient of {k}")


@pytest.mark.parametrize("name", list(CASES))
def test_log_prob_cdf_icdf_moments_entropy_and_gradients_match_torch(name):
    make_params, make_value, methods = CASES[name]
    params = make_params()
    tt = _build(name, params, "torch")[0]
    shape = (4,) + tuple(tt.batch_shape) + tuple(tt.event_shape)
    _compare(name, params, "log_prob", make_value(shape))
    for method in methods:
        if method == "icdf":
            _compare(name, params, method, _pos(shape, 0.05, 0.95))
        elif method == "cdf":
            _compare(name, params, method, make_value(shape))
        else:
            _compare(name, params, method)


@pytest.mark.parametrize("name", list(CASES))
def test_shapes_expand_support_constraints_and_repr_match_torch(name):
    params = CASES[name][0]()
    dd, tt = _build(name, params, "distnn")[0], _build(name, params, "torch")[0]
    assert dd.batch_shape == tuple(tt.batch_shape) and dd.event_shape == tuple(tt.event_shape)
    assert dd.has_rsample == tt.has_rsample
    assert type(dd.support).__name__ == type(tt.support).__name__ and dd.support.event_dim == tt.support.event_dim
    if name == "Pareto":  # (a support of tensor bounds: its repr prints the tensor)
        _close(dd.support.lower_bound, tt.support.lower_bound)
    else:
        assert repr(dd.support) == repr(tt.support)
    assert {k: repr(v) for k, v in dd.arg_constraints.items()} == {k: repr(v) for k, v in tt.arg_constraints.items()}
    assert repr(dd) == repr(tt)
    assert tuple(dd.sample((5,)).shape) == tuple(tt.sample((5,)).shape)
    new_batch = (4,) + dd.batch_shape
    de, te = dd.expand(new_batch), tt.expand(new_batch)
    assert type(de) is type(dd) and de.batch_shape == tuple(te.batch_shape) and de.event_shape == dd.event_shape
    value = CASES[name][1]((3,) + new_batch + dd.event_shape)
    _close(de.log_prob(distnn.tensor(value)), te.log_prob(torch.tensor(value)), rtol=1e-9, msg="expanded log_prob")
    assert tuple(de.rsample().shape) == tuple(te.rsample().shape)


TRANSFORMED = ["Gumbel", "HalfNormal", "HalfCauchy", "Pareto", "Weibull", "Kumaraswamy", "InverseGamma",
               "LogisticNormal", "RelaxedBernoulli", "RelaxedOneHotCategorical"]


@pytest.mark.parametrize("name", TRANSFORMED)
def test_rsample_pushes_the_base_draw_through_torchs_transforms_with_torchs_gradients(name):
    """Given the same base draw, distnn's transforms give torch's sample and gradients w.r.t. the parameters
    (rsample is the base's rsample pushed through them)."""
    params = CASES[name][0]()
    (dd, dp), (tt, tp) = _build(name, params, "distnn"), _build(name, params, "torch")
    distnn.manual_seed(3)
    base = dd.base_dist.sample((5,))
    x_d, x_t = base, torch.tensor(base.data)
    for td, tr in zip(dd.transforms, tt.transforms):
        x_d, x_t = td(x_d), tr(x_t)
    _close(x_d, x_t, rtol=1e-10, atol=1e-12, msg="transformed draw")
    distnn.manual_seed(3)
    np.testing.assert_array_equal(dd.sample((5,)).data, x_d.data)  # (sample is that same push-forward)
    if not x_t.requires_grad:  # (transforms without parameters: the gradient is the base's, tested there)
        return
    u = R.standard_normal(tuple(x_t.shape))
    (x_d * distnn.tensor(u)).sum().backward()
    (x_t * torch.tensor(u)).sum().backward()
    for k in params:
        if tp[k].grad is not None:
            _close(dp[k].grad, tp[k].grad, rtol=1e-9, atol=1e-11, msg=f"gradient of {k}")


@pytest.mark.parametrize("name", ["LogitRelaxedBernoulli", "ExpRelaxedCategorical"])
def test_relaxed_rsample_given_the_same_uniforms_matches_torch(name, monkeypatch):
    from distnn.distributions import relaxed_bernoulli, relaxed_categorical

    params = CASES[name][0]()
    (dd, dp), (tt, tp) = _build(name, params, "distnn"), _build(name, params, "torch")
    shape = (6,) + dd.batch_shape + dd.event_shape
    u = R.uniform(0, 1, shape)
    module = relaxed_bernoulli if name == "LogitRelaxedBernoulli" else relaxed_categorical
    monkeypatch.setattr(module, "standard_uniform", lambda s, like: u.copy())
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.tensor(u))
    yd, yt = dd.rsample((6,)), tt.rsample((6,))
    _close(yd, yt, msg="rsample")
    w = R.standard_normal(shape)
    (yd * distnn.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    for k in params:
        _close(dp[k].grad, tp[k].grad, rtol=1e-9, atol=1e-11, msg=f"gradient of {k}")


def test_transformed_distribution_of_a_custom_chain_matches_torch():
    loc, scale = R.standard_normal((3, 2)), _pos((3, 2))

    def build(lib, T, a, b):
        return lib.TransformedDistribution(lib.Normal(a, b), [T.AffineTransform(0.5, -2.0), T.SigmoidTransform(),
                                                              T.AffineTransform(1.0, 3.0)])

    dp = [distnn.tensor(v, requires_grad=True) for v in (loc, scale)]
    tp = [torch.tensor(v, requires_grad=True) for v in (loc, scale)]
    dd, tt = build(D, D.transforms, *dp), build(TD, TD.transforms, *tp)
    v = R.uniform(1.2, 3.8, (4, 3, 2))
    q = R.uniform(0.05, 0.95, (4, 3, 2))
    yd = dd.log_prob(distnn.tensor(v)).sum() + dd.cdf(distnn.tensor(v)).sum() + dd.icdf(distnn.tensor(q)).sum()
    yt = tt.log_prob(torch.tensor(v)).sum() + tt.cdf(torch.tensor(v)).sum() + tt.icdf(torch.tensor(q)).sum()
    np.testing.assert_allclose(yd.item(), yt.item(), rtol=1e-12)
    yd.backward()
    yt.backward()
    for a, b in zip(dp, tp):
        _close(a.grad, b.grad, rtol=1e-10)
    assert repr(dd.support) == repr(tt.support)
    # a transform of a larger event dim reinterprets the base's batch dims, as torch's
    d2 = D.TransformedDistribution(D.Normal(*dp), D.transforms.StickBreakingTransform())
    t2 = TD.TransformedDistribution(TD.Normal(*tp), TD.transforms.StickBreakingTransform())
    assert d2.batch_shape == tuple(t2.batch_shape) and d2.event_shape == tuple(t2.event_shape)
    assert type(d2.base_dist).__name__ == type(t2.base_dist).__name__ == "Independent"
    with pytest.raises(ValueError, match="transforms must be a Transform or list"):
        D.TransformedDistribution(D.Normal(*dp), "exp")
    with pytest.raises(ValueError, match="needs to have shape with size at least 1"):
        D.TransformedDistribution(D.Normal(0.0, 1.0), D.transforms.StickBreakingTransform())


REFUSALS = [
    ("Gumbel", {"loc": 0.0, "scale": -1.0}), ("HalfNormal", {"scale": 0.0}), ("HalfCauchy", {"scale": -2.0}),
    ("Pareto", {"scale": 1.0, "alpha": -1.0}), ("Weibull", {"scale": -1.0, "concentration": 1.0}),
    ("Kumaraswamy", {"concentration1": 1.0, "concentration0": 0.0}),
    ("InverseGamma", {"concentration": -1.0, "rate": 1.0}), ("LogisticNormal", {"loc": 0.0, "scale": -1.0}),
    ("RelaxedBernoulli", {"temperature": 1.0, "probs": 1.5}),
    ("RelaxedOneHotCategorical", {"temperature": 1.0, "probs": [0.5, -0.5, 1.0]}),
]


@pytest.mark.parametrize("name,kwargs", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_validate_args_refuses_what_torch_refuses(name, kwargs):
    def conv(lib, v):
        if isinstance(v, list) or name in ("RelaxedBernoulli", "RelaxedOneHotCategorical"):
            return lib(np.asarray(v, dtype=np.float64))
        return v

    with pytest.raises(ValueError, match="Expected parameter"):
        getattr(TD, name)(**{k: conv(torch.tensor, v) for k, v in kwargs.items()}, validate_args=True)
    with pytest.raises(ValueError, match="Expected parameter"):
        getattr(D, name)(**{k: conv(distnn.tensor, v) for k, v in kwargs.items()}, validate_args=True)


@pytest.mark.parametrize("name,value", [("HalfNormal", -1.0), ("Pareto", 0.5), ("Kumaraswamy", 1.5),
                                        ("Weibull", -0.5), ("RelaxedBernoulli", 1.5)])
def test_log_prob_outside_the_support_is_refused_as_torch(name, value):
    params = {k: np.asarray(v) for k, v in CASES[name][0]().items()}
    params = {k: (v if v.ndim == 0 else v[0, 0]) for k, v in params.items()}
    if name == "Pareto":
        params["scale"] = np.asarray(1.0)
    tt = getattr(TD, name)(**{k: torch.tensor(v) for k, v in params.items()}, validate_args=True)
    dd = getattr(D, name)(**{k: distnn.tensor(v) for k, v in params.items()}, validate_args=True)
    with pytest.raises(ValueError, match="support"):
        tt.log_prob(torch.tensor(value, dtype=torch.float64))
    with pytest.raises(ValueError, match="support"):
        dd.log_prob(distnn.tensor(value))


def test_lowercase_module_aliases_exist_as_torch():
    for module in ("gumbel", "half_normal", "half_cauchy", "pareto", "weibull", "kumaraswamy", "inverse_gamma",
                   "logistic_normal", "relaxed_bernoulli", "relaxed_categorical", "transforms", "constraint_registry",
                   "transformed_distribution", "exp_family"):
        assert hasattr(TD, module) and hasattr(D, module), module
    for name in ("Gumbel", "HalfNormal", "TransformedDistribution", "ExponentialFamily", "biject_to",
                 "ExpTransform", "identity_transform"):
        assert name in TD.__all__ and name in D.__all__, name
    assert issubclass(D.Gumbel, D.TransformedDistribution) and issubclass(D.ExponentialFamily, D.Distribution)
