"""distnn.distributions against torch.distributions (2.13) as the oracle, float64 tight: log_prob, cdf, icdf,
entropy, mean, mode, variance and stddev, and their gradients with respect to the parameters, over a fuzz of
broadcasting parameter shapes and sample shapes; batch/event shapes, ``expand``, ``has_rsample``/``support``
and ``repr`` as torch's. (kl_divergence, the refusals and the sampling are in the neighbouring files.)"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TD = torch.distributions

import distnn  # noqa: E402
import distnn.distributions as D  # noqa: E402

R = np.random.default_rng(0)  # (module-level draws only, at import: each test draws from its own below)


DRAW_PER_TEST = True  # (R: each test draws from its own generator, conftest's per_test_rng)
# (shape of the first parameter, of the second, of the extra sample dims of the value)
SHAPES = [((), (), ()), ((3,), (), (2,)), ((2, 1), (4,), ()), ((4,), (3, 1), (2, 1, 1)), ((1, 3), (2, 3), ())]


def _pos(shape, lo=0.3, hi=3.0):
    return R.uniform(lo, hi, shape)


def _unit(shape):
    return R.uniform(0.05, 0.95, shape)


def _simplex(shape):
    p = R.uniform(0.1, 1.0, shape)
    return p / p.sum(-1, keepdims=True)


def _tril(shape, n):
    a = R.standard_normal(shape + (n, n)) * 0.3
    return np.tril(a, -1) + np.eye(n) * R.uniform(0.5, 1.5, shape + (n,))[..., None]


def _spd(shape, n):
    L = _tril(shape, n)
    return L @ np.swapaxes(L, -1, -2)


# name -> (distnn ctor, torch ctor, params(s1, s2) -> dict, value(batch_shape, sample) -> array, methods,
#          names of the parameters with no gradient)
CASES = {
    "Normal": (D.Normal, TD.Normal, lambda a, b: {"loc": R.standard_normal(a), "scale": _pos(b)},
               lambda s: R.standard_normal(s), ("cdf", "icdf", "entropy", "mean", "mode", "variance", "stddev")),
    "Uniform": (D.Uniform, TD.Uniform, lambda a, b: {"low": -np.abs(R.standard_normal(a)) - 0.1, "high": 1.6 + _pos(b)}, lambda s: R.uniform(0.5, 1.5, s),
        ("cdf", "icdf", "entropy", "mean", "variance", "stddev")),
    "Exponential": (D.Exponential, TD.Exponential, lambda a, b: {"rate": _pos(a)}, lambda s: _pos(s, 0.0, 4.0),
                    ("cdf", "icdf", "entropy", "mean", "mode", "variance", "stddev")),
    "Laplace": (D.Laplace, TD.Laplace, lambda a, b: {"loc": R.standard_normal(a), "scale": _pos(b)},
                lambda s: R.standard_normal(s) * 2, ("cdf", "icdf", "entropy", "mean", "mode", "variance",
                                                     "stddev")),
    "Cauchy": (D.Cauchy, TD.Cauchy, lambda a, b: {"loc": R.standard_normal(a), "scale": _pos(b)},
               lambda s: R.standard_normal(s) * 3, ("cdf", "icdf", "entropy", "mean", "mode", "variance")),
    "LogNormal": (D.LogNormal, TD.LogNormal, lambda a, b: {"loc": R.standard_normal(a) * 0.5, "scale": _pos(b)},
                  lambda s: _pos(s, 0.1, 5.0), ("cdf", "icdf", "entropy", "mean", "mode", "variance", "stddev")),
    "Gamma": (D.Gamma, TD.Gamma, lambda a, b: {"concentration": _pos(a, 0.3, 6.0), "rate": _pos(b)},
              lambda s: _pos(s, 0.05, 5.0), ("entropy", "mean", "mode", "variance", "stddev")),
    "Beta": (D.Beta, TD.Beta, lambda a, b: {"concentration1": _pos(a, 0.3, 5.0), "concentration0": _pos(b, 0.3, 5.0)},
             _unit, ("entropy", "mean", "mode", "variance", "stddev")),
    "Poisson": (D.Poisson, TD.Poisson, lambda a, b: {"rate": _pos(a, 0.2, 8.0)},
                lambda s: R.integers(0, 10, s).astype(np.float64), ("mean", "mode", "variance", "stddev")),
    "Bernoulli_probs": (D.Bernoulli, TD.Bernoulli, lambda a, b: {"probs": _unit(a)},
                        lambda s: R.integers(0, 2, s).astype(np.float64), ("entropy", "mean", "variance", "stddev")),
    "Bernoulli_logits": (D.Bernoulli, TD.Bernoulli, lambda a, b: {"logits": R.standard_normal(a) * 3},
                         lambda s: R.integers(0, 2, s).astype(np.float64), ("entropy", "mean", "variance")),
    "Binomial_probs": (D.Binomial, TD.Binomial, lambda a, b: {"total_count": R.integers(3, 9, b).astype(np.float64),
                                                              "probs": _unit(a)},
                       lambda s: R.integers(0, 4, s).astype(np.float64), ("mean", "mode", "variance")),
    "Binomial_logits": (D.Binomial, TD.Binomial, lambda a, b: {"total_count": np.full(b, 6.0),
                                                               "logits": R.standard_normal(a) * 2},
                        lambda s: R.integers(0, 7, s).astype(np.float64), ("mean", "variance", "entropy")),
}
NO_GRAD = {"total_count"}


def _build(ctor, params, lib):
    make = (lambda v: distnn.tensor(v, requires_grad=True)) if lib == "distnn" else (
        lambda v: torch.tensor(v, requires_grad=True))
    plain = (lambda v: distnn.tensor(v)) if lib == "distnn" else torch.tensor
    tensors = {k: (plain(v) if k in NO_GRAD else make(v)) for k, v in params.items()}
    return ctor(**tensors), tensors


# entropies of the gamma family differentiate digamma:
# torch's polygamma(1, x) is up to 4.9e-10 relative off scipy's (x in [0.15, 8]; distnn's ~1e-15), and the
# gradients taking it are differences like (a+b-2)ψ1(a+b) - (a-1)ψ1(a) that can cancel to ~0, so an rtol alone
# fails now and then: measured over 5000 draws of parameters in [0.3, 3], torch's entropy gradients are up to
# 2.6e-9 (Beta), 8.2e-10 (Gamma), 1.2e-9 (Kumaraswamy) absolute off the analytic ones, distnn's <= 1.1e-14.
TRIGAMMA_RTOL, TRIGAMMA_ATOL = 5e-8, 1e-8


def _compare(case_fn, params, method, value=None, rtol=1e-10, atol=1e-11):
    """One method of both distributions (on ``value`` when it takes one), then a weighted sum's gradients
    with respect to every parameter."""
    d_ctor, t_ctor = case_fn
    dd, dp = _build(d_ctor, params, "distnn")
    tt, tp = _build(t_ctor, params, "torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if value is None:
            yd, yt = getattr(dd, method), getattr(tt, method)
            yd, yt = (yd(), yt()) if callable(yd) else (yd, yt)
        else:
            yd, yt = getattr(dd, method)(distnn.tensor(value)), getattr(tt, method)(torch.tensor(value))
    assert tuple(yd.shape) == tuple(yt.shape), method
    assert np.dtype(yd.dtype) == np.dtype(str(yt.dtype).replace("torch.", "")), (method, yd.dtype, yt.dtype)
    np.testing.assert_allclose(np.asarray(yd.data, dtype=np.float64), yt.detach().numpy().astype(np.float64),
                               rtol=rtol, atol=atol, err_msg=method)
    if not yt.requires_grad or not np.isfinite(yt.detach().numpy()).all():
        return
    u = R.standard_normal(tuple(yt.shape))
    (yd * distnn.tensor(u)).sum().backward()
    (yt * torch.tensor(u)).sum().backward()
    for k in params:
        if k in NO_GRAD:
            continue
        g_t = tp[k].grad.numpy() if tp[k].grad is not None else np.zeros(params[k].shape)
        g_d = dp[k].grad if dp[k].grad is not None else np.zeros(params[k].shape)
        trigamma = method == "entropy" and d_ctor in (D.Gamma, D.Beta, D.Dirichlet)
        np.testing.assert_allclose(g_d, g_t, rtol=max(rtol, TRIGAMMA_RTOL) if trigamma else rtol,
                                   atol=max(atol, TRIGAMMA_ATOL) if trigamma else atol,
                                   err_msg=f"{method}: gradient of {k}")


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("name", list(CASES))
def test_log_prob_moments_entropy_cdf_icdf_and_their_gradients_match_torch(name, shapes):
    d_ctor, t_ctor, make_params, make_value, methods = CASES[name]
    s1, s2, sample = shapes
    params = make_params(s1, s2)
    batch = np.broadcast_shapes(*(np.shape(v) for v in params.values()))
    _compare((d_ctor, t_ctor), params, "log_prob", make_value(sample + batch))
    for method in methods:
        if method == "icdf":
            _compare((d_ctor, t_ctor), params, method, _unit(sample + batch))
        elif method == "cdf":
            _compare((d_ctor, t_ctor), params, method, make_value(sample + batch))
        else:
            _compare((d_ctor, t_ctor), params, method)


# distributions with an event shape: (distnn ctor, torch ctor, params(batch) -> dict, value(shape) -> array)
EVENT_CASES = {
    "Categorical_probs": (D.Categorical, TD.Categorical, lambda b: {"probs": R.uniform(0.1, 2.0, b + (4,))},
                          lambda s: R.integers(0, 4, s).astype(np.int64), ("entropy", "mode", "mean")),
    "Categorical_logits": (D.Categorical, TD.Categorical, lambda b: {"logits": R.standard_normal(b + (5,)) * 2},
                           lambda s: R.integers(0, 5, s).astype(np.int64), ("entropy", "mode")),
    "OneHotCategorical": (D.OneHotCategorical, TD.OneHotCategorical, lambda b: {"logits": R.standard_normal(b + (3,))},
                          lambda s: np.eye(3)[R.integers(0, 3, s[:-1])], ("entropy", "mean", "mode", "variance")),
    "Dirichlet": (D.Dirichlet, TD.Dirichlet, lambda b: {"concentration": _pos(b + (4,), 0.3, 5.0)},
                  lambda s: _simplex(s), ("entropy", "mean", "mode", "variance")),
    "MultivariateNormal_scale_tril": (
        D.MultivariateNormal, TD.MultivariateNormal,
        lambda b: {"loc": R.standard_normal(b + (3,)), "scale_tril": _tril(b[1:], 3)},
        lambda s: R.standard_normal(s), ("entropy", "mean", "mode", "variance", "stddev")),
    "MultivariateNormal_covariance": (
        D.MultivariateNormal, TD.MultivariateNormal,
        lambda b: {"loc": R.standard_normal(b[1:] + (3,)), "covariance_matrix": _spd(b, 3)},
        lambda s: R.standard_normal(s), ("entropy", "variance", "scale_tril", "precision_matrix")),
    "MultivariateNormal_precision": (
        D.MultivariateNormal, TD.MultivariateNormal,
        lambda b: {"loc": R.standard_normal((3,)), "precision_matrix": _spd(b, 3)},
        lambda s: R.standard_normal(s), ("entropy", "variance", "scale_tril", "covariance_matrix")),
}
EVENT_SHAPE = {"Categorical_probs": (), "Categorical_logits": (), "OneHotCategorical": (3,), "Dirichlet": (4,),
               "MultivariateNormal_scale_tril": (3,), "MultivariateNormal_covariance": (3,),
               "MultivariateNormal_precision": (3,)}


@pytest.mark.parametrize("batch,sample", [((), ()), ((2,), (3,)), ((2, 3), ()), ((1, 2), (4, 1))], ids=str)
@pytest.mark.parametrize("name", list(EVENT_CASES))
def test_event_distributions_match_torch(name, batch, sample):
    d_ctor, t_ctor, make_params, make_value, methods = EVENT_CASES[name]
    params = make_params(batch)
    if name.startswith("MultivariateNormal") and len(batch) == 2:
        batch = (batch[0], batch[1])
    full_batch = TD.__dict__[t_ctor.__name__](**{k: torch.tensor(v) for k, v in params.items()}).batch_shape
    _compare((d_ctor, t_ctor), params, "log_prob", make_value(sample + tuple(full_batch) + EVENT_SHAPE[name]),
             rtol=1e-9, atol=1e-10)
    for method in methods:
        _compare((d_ctor, t_ctor), params, method, rtol=1e-9, atol=1e-10)


def _normal_pair(shape):
    loc, scale = R.standard_normal(shape), _pos(shape)
    return {"loc": loc, "scale": scale}


@pytest.mark.parametrize("ndims", [0, 1, 2])
def test_independent_sums_the_reinterpreted_dims_as_torch(ndims):
    p = _normal_pair((2, 3, 4))
    dd = D.Independent(D.Normal(distnn.tensor(p["loc"], requires_grad=True), distnn.tensor(p["scale"])), ndims)
    tt = TD.Independent(TD.Normal(torch.tensor(p["loc"], requires_grad=True), torch.tensor(p["scale"])), ndims)
    assert dd.batch_shape == tuple(tt.batch_shape) and dd.event_shape == tuple(tt.event_shape)
    value = R.standard_normal((5, 2, 3, 4))
    for method in ("log_prob", "entropy"):
        args = (distnn.tensor(value),) if method == "log_prob" else ()
        targs = (torch.tensor(value),) if method == "log_prob" else ()
        np.testing.assert_allclose(getattr(dd, method)(*args).data, getattr(tt, method)(*targs).detach().numpy(),
                                   rtol=1e-12)
    np.testing.assert_allclose(dd.variance.data, tt.variance.numpy())
    assert repr(dd) == repr(tt)
    assert repr(dd.support) == repr(tt.support)
    e = dd.expand((7, 2)) if ndims == 2 else None
    if e is not None:
        te = tt.expand((7, 2))
        assert e.batch_shape == tuple(te.batch_shape) and e.event_shape == tuple(te.event_shape)
        np.testing.assert_allclose(e.log_prob(distnn.tensor(value[:1])).data,
                                   te.log_prob(torch.tensor(value[:1])).detach().numpy(), rtol=1e-12)


@pytest.mark.parametrize("event", [False, True])
def test_mixture_same_family_log_prob_moments_cdf_and_gradients_match_torch(event):
    logits = R.standard_normal((2, 3))
    loc, scale = R.standard_normal((2, 3, 4) if event else (2, 3)), _pos((2, 3, 4) if event else (2, 3))
    d_args = [distnn.tensor(a, requires_grad=True) for a in (logits, loc, scale)]
    t_args = [torch.tensor(a, requires_grad=True) for a in (logits, loc, scale)]

    def build(lib, args):
        comp = lib.Normal(args[1], args[2])
        comp = lib.Independent(comp, 1) if event else comp
        return lib.MixtureSameFamily(lib.Categorical(logits=args[0]), comp)

    dd, tt = build(D, d_args), build(TD, t_args)
    assert dd.batch_shape == tuple(tt.batch_shape) and dd.event_shape == tuple(tt.event_shape)
    value = R.standard_normal((5, 2, 4) if event else (5, 2))
    yd = dd.log_prob(distnn.tensor(value)).sum() + dd.mean.sum() + dd.variance.sum()
    yt = tt.log_prob(torch.tensor(value)).sum() + tt.mean.sum() + tt.variance.sum()
    if not event:
        yd = yd + dd.cdf(distnn.tensor(value)).sum()
        yt = yt + tt.cdf(torch.tensor(value)).sum()
    np.testing.assert_allclose(yd.item(), yt.item(), rtol=1e-12)
    yd.backward()
    yt.backward()
    for a, b in zip(d_args, t_args):
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert repr(dd) == repr(tt)
    e, te = dd.expand((4, 2)), tt.expand((4, 2))
    assert e.batch_shape == tuple(te.batch_shape)
    np.testing.assert_allclose(e.log_prob(distnn.tensor(value[0])).data,
                               te.log_prob(torch.tensor(value[0])).detach().numpy(), rtol=1e-12)


def _all_pairs():
    """(distnn distribution, torch distribution) of every kind, with 2-element batch parameters."""
    p, c = _pos((2,)), _unit((2,))
    loc, sp = R.standard_normal((2,)), _simplex((2, 3))
    tl = _tril((), 2)
    made = [
        ("Normal", (loc, p)), ("Uniform", (loc, loc + p)), ("Exponential", (p,)), ("Laplace", (loc, p)),
        ("Cauchy", (loc, p)), ("LogNormal", (loc, p)), ("Gamma", (p, p)), ("Beta", (p, p)), ("Poisson", (p,)),
        ("Dirichlet", (sp,)),
    ]
    pairs = [(getattr(D, n)(*map(distnn.tensor, a)), getattr(TD, n)(*map(torch.tensor, a))) for n, a in made]
    pairs += [(D.Bernoulli(probs=distnn.tensor(c)), TD.Bernoulli(probs=torch.tensor(c))),
              (D.Bernoulli(logits=distnn.tensor(loc)), TD.Bernoulli(logits=torch.tensor(loc))),
              (D.Binomial(5, probs=distnn.tensor(c)), TD.Binomial(5, probs=torch.tensor(c))),
              (D.Categorical(probs=distnn.tensor(sp)), TD.Categorical(probs=torch.tensor(sp))),
              (D.Categorical(logits=distnn.tensor(sp)), TD.Categorical(logits=torch.tensor(sp))),
              (D.OneHotCategorical(probs=distnn.tensor(sp)), TD.OneHotCategorical(probs=torch.tensor(sp))),
              (D.MultivariateNormal(distnn.tensor(np.zeros((2, 2))), scale_tril=distnn.tensor(tl)),
               TD.MultivariateNormal(torch.zeros(2, 2, dtype=torch.float64), scale_tril=torch.tensor(tl))),
              (D.Normal(0.0, 1.0), TD.Normal(0.0, 1.0)), (D.Bernoulli(0.3), TD.Bernoulli(0.3)),
              (D.Gamma(2.0, 3.0), TD.Gamma(2.0, 3.0)), (D.Beta(2.0, 3.0), TD.Beta(2.0, 3.0))]
    return pairs


@pytest.mark.parametrize("i", range(len(_all_pairs())))
def test_shapes_expand_flags_support_and_repr_are_torchs(i):
    dd, tt = _all_pairs()[i]
    assert repr(dd) == repr(tt)
    assert dd.batch_shape == tuple(tt.batch_shape) and dd.event_shape == tuple(tt.event_shape)
    assert dd.has_rsample == tt.has_rsample and dd.has_enumerate_support == tt.has_enumerate_support
    assert type(dd.support).__name__.lstrip("_") == type(tt.support).__name__.lstrip("_")
    if not D.constraints.is_dependent(type(dd).support):  # (a support of parameters shows tensors: reprs differ)
        assert repr(dd.support) == repr(tt.support)
    assert dd.support.event_dim == tt.support.event_dim and dd.support.is_discrete == tt.support.is_discrete
    new_batch = (4,) + tuple(tt.batch_shape)
    e, te = dd.expand(new_batch), tt.expand(new_batch)
    assert type(e) is type(dd)
    assert e.batch_shape == tuple(te.batch_shape) and e.event_shape == tuple(te.event_shape)
    assert repr(e) == repr(te)
    value = te.sample((3,))
    np.testing.assert_allclose(e.log_prob(distnn.tensor(value.numpy())).data, te.log_prob(value).numpy(),
                               rtol=1e-6, atol=1e-6)
    assert tuple(dd.sample((3, 1)).shape) == tuple(tt.sample((3, 1)).shape)
    if tt.has_enumerate_support:
        for expand in (True, False):
            np.testing.assert_array_equal(dd.enumerate_support(expand).data, tt.enumerate_support(expand).numpy())


def test_lazy_probs_and_logits_are_torchs():
    """Given probs, logits is computed on first use (and then shows in repr and in expand), as torch's."""
    p = _simplex((2, 3))
    dd, tt = D.Categorical(probs=distnn.tensor(p)), TD.Categorical(probs=torch.tensor(p))
    assert "logits" not in repr(dd)
    np.testing.assert_allclose(dd.logits.data, tt.logits.numpy(), rtol=1e-14)
    np.testing.assert_allclose(dd.expand((4, 2)).logits.data, tt.expand((4, 2)).logits.numpy(), rtol=1e-14)
    b = D.Bernoulli(logits=distnn.tensor(np.array([-30.0, 0.0, 30.0])))
    tb = TD.Bernoulli(logits=torch.tensor([-30.0, 0.0, 30.0], dtype=torch.float64))
    np.testing.assert_allclose(b.probs.data, tb.probs.numpy(), rtol=1e-14)
    np.testing.assert_allclose(b.entropy().data, tb.entropy().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(np.isnan(b.mode.data), np.isnan(tb.mode.numpy()))


def test_float32_parameters_stay_float32_and_match_loosely():
    loc, scale = R.standard_normal((3,)).astype(np.float32), _pos((3,)).astype(np.float32)
    dd, tt = D.Normal(distnn.tensor(loc), distnn.tensor(scale)), TD.Normal(torch.tensor(loc), torch.tensor(scale))
    v = R.standard_normal((2, 3)).astype(np.float32)
    out = dd.log_prob(distnn.tensor(v))
    assert out.dtype == np.float32 and dd.sample((2,)).dtype == np.float32 and dd.rsample().dtype == np.float32
    np.testing.assert_allclose(out.data, tt.log_prob(torch.tensor(v)).numpy(), rtol=1e-5, atol=1e-6)
    g = D.Gamma(distnn.tensor(scale), 1.0)
    assert g.rsample((4,)).dtype == np.float32 and g.rate.dtype == np.float32
    assert D.Normal(0.0, 1.0).loc.dtype == np.float32  # (numbers: the default dtype, as torch's)


@pytest.mark.parametrize("name", list(CASES))
def test_float32_log_prob_and_moments_with_gradients_match_torch_loosely(name):
    d_ctor, t_ctor, make_params, make_value, methods = CASES[name]
    params = {k: v.astype(np.float32) for k, v in make_params((3,), (2, 1)).items()}
    value = make_value((2, 3)).astype(np.float32)
    _compare((d_ctor, t_ctor), params, "log_prob", value, rtol=2e-4, atol=2e-5)
    for method in methods:
        if method not in ("cdf", "icdf"):
            _compare((d_ctor, t_ctor), params, method, rtol=2e-4, atol=2e-5)


def test_gamma_cdf_and_its_gradients_match_torch():
    c, r, v = _pos((3,), 0.3, 6.0), _pos((2, 1)), _pos((4, 2, 3), 0.05, 6.0)
    dr, tr = distnn.tensor(r, requires_grad=True), torch.tensor(r, requires_grad=True)
    dv, tv = distnn.tensor(v, requires_grad=True), torch.tensor(v, requires_grad=True)
    yd, yt = D.Gamma(distnn.tensor(c), dr).cdf(dv), TD.Gamma(torch.tensor(c), tr).cdf(tv)
    # (torch's igamma is ~1e-9 off the exact value, ours ~1e-12: see test_gamma_functions)
    np.testing.assert_allclose(yd.data, yt.detach().numpy(), rtol=1e-8)
    u = R.standard_normal(tuple(yt.shape))
    (yd * distnn.tensor(u)).sum().backward()
    (yt * torch.tensor(u)).sum().backward()
    np.testing.assert_allclose(dr.grad, tr.grad.numpy(), rtol=1e-8)
    np.testing.assert_allclose(dv.grad, tv.grad.numpy(), rtol=1e-8)
