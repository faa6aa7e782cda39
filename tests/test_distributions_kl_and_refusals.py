"""distnn.distributions.kl_divergence against torch's closed forms (values and gradients with respect to both
distributions' parameters, float64 tight, broadcasting batch shapes, the infinite cases), register_kl's
dispatch, and the refusals as torch's: the constraint errors of validate_args (message text and all), the
sample checks of log_prob, and the constructors' argument errors."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TD = torch.distributions

import distnn  # noqa: E402
import distnn.distributions as D  # noqa: E402

R = np.random.default_rng(1)  # (module-level draws only, at import: each test draws from its own below)


DRAW_PER_TEST = True  # (R: each test draws from its own generator, conftest's per_test_rng)


def _pos(shape, lo=0.3, hi=3.0):
    return R.uniform(lo, hi, shape)


def _tril(shape, n):
    a = R.standard_normal(shape + (n, n)) * 0.3
    return np.tril(a, -1) + np.eye(n) * R.uniform(0.5, 1.5, shape + (n,))[..., None]


def _simplex(shape):
    p = R.uniform(0.05, 1.0, shape)
    return p / p.sum(-1, keepdims=True)


# name -> (builder(lib, *params), params of p (shape a), params of q (shape b))
def _independent(lib, loc, scale):
    return lib.Independent(lib.Normal(loc, scale), 1)


KL_CASES = {
    "Normal": (lambda L, a, b: L.Normal(a, b), lambda s: (R.standard_normal(s), _pos(s))),
    "LogNormal": (lambda L, a, b: L.LogNormal(a, b), lambda s: (R.standard_normal(s), _pos(s))),
    "Laplace": (lambda L, a, b: L.Laplace(a, b), lambda s: (R.standard_normal(s), _pos(s))),
    "Cauchy": (lambda L, a, b: L.Cauchy(a, b), lambda s: (R.standard_normal(s), _pos(s))),
    "Exponential": (lambda L, a: L.Exponential(a), lambda s: (_pos(s),)),
    "Poisson": (lambda L, a: L.Poisson(a), lambda s: (_pos(s),)),
    "Gamma": (lambda L, a, b: L.Gamma(a, b), lambda s: (_pos(s, 0.3, 6), _pos(s))),
    "Beta": (lambda L, a, b: L.Beta(a, b), lambda s: (_pos(s, 0.3, 5), _pos(s, 0.3, 5))),
    "Bernoulli": (lambda L, a: L.Bernoulli(probs=a), lambda s: (R.uniform(0.05, 0.95, s),)),
    "Bernoulli_logits": (lambda L, a: L.Bernoulli(logits=a), lambda s: (R.standard_normal(s) * 3,)),
    "Binomial": (lambda L, a: L.Binomial(5, probs=a), lambda s: (R.uniform(0.05, 0.95, s),)),
    "Categorical": (lambda L, a: L.Categorical(probs=a), lambda s: (_simplex(s + (4,)),)),
    "Categorical_logits": (lambda L, a: L.Categorical(logits=a), lambda s: (R.standard_normal(s + (4,)),)),
    "OneHotCategorical": (lambda L, a: L.OneHotCategorical(logits=a), lambda s: (R.standard_normal(s + (3,)),)),
    "Dirichlet": (lambda L, a: L.Dirichlet(a), lambda s: (_pos(s + (3,), 0.3, 5),)),
    "MultivariateNormal": (lambda L, a, b: L.MultivariateNormal(a, scale_tril=b),
                           lambda s: (R.standard_normal(s + (3,)), _tril(s, 3))),
    "MultivariateNormal_cov": (lambda L, a, b: L.MultivariateNormal(a, covariance_matrix=b),
                               lambda s: (R.standard_normal(s + (3,)), (lambda t: t @ np.swapaxes(t, -1, -2))(
                                   _tril(s, 3)))),
    "Independent": (_independent, lambda s: (R.standard_normal(s + (4,)), _pos(s + (4,)))),
}
BATCHES = [((), ()), ((3,), (3,)), ((2, 1), (4,)), ((4,), ())]


@pytest.mark.parametrize("shapes", BATCHES, ids=str)
@pytest.mark.parametrize("name", list(KL_CASES))
def test_kl_divergence_and_its_gradients_match_torch(name, shapes):
    build, make = KL_CASES[name]
    if name.startswith("MultivariateNormal") and shapes[0] == (2, 1):
        shapes = ((2, 1), (4,))
    pp, qp = make(shapes[0]), make(shapes[1])
    dpp, dqp = [distnn.tensor(a, requires_grad=True) for a in pp], [distnn.tensor(a, requires_grad=True) for a in qp]
    tpp, tqp = [torch.tensor(a, requires_grad=True) for a in pp], [torch.tensor(a, requires_grad=True) for a in qp]
    yd = D.kl_divergence(build(D, *dpp), build(D, *dqp))
    if name.startswith("Bernoulli"):  # (torch's Bernoulli KL indexes with a mask: it needs one batch shape)
        common = np.broadcast_shapes(shapes[0], shapes[1])
        yt = TD.kl_divergence(build(TD, *[t.expand(common) for t in tpp]), build(TD, *[t.expand(common) for t in tqp]))
    else:
        yt = TD.kl_divergence(build(TD, *tpp), build(TD, *tqp))
    assert tuple(yd.shape) == tuple(yt.shape)
    np.testing.assert_allclose(yd.data, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    u = R.standard_normal(tuple(yt.shape))
    (yd * distnn.tensor(u)).sum().backward()
    (yt * torch.tensor(u)).sum().backward()
    rtol = 5e-8 if name in ("Gamma", "Beta", "Dirichlet") else 1e-9  # (torch's polygamma(1) is ~1e-9 off)
    for d, t in zip(dpp + dqp, tpp + tqp):
        g = t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
        np.testing.assert_allclose(d.grad if d.grad is not None else np.zeros(d.shape), g, rtol=rtol, atol=1e-10)


def _kl_both(build, p_args, q_args):
    yd = D.kl_divergence(build(D, *map(distnn.tensor, p_args)), build(D, *map(distnn.tensor, q_args)))
    yt = TD.kl_divergence(build(TD, *map(torch.tensor, p_args)), build(TD, *map(torch.tensor, q_args)))
    return yd.data, yt.numpy()


@pytest.mark.parametrize("case", [
    ("Uniform", lambda L, a, b: L.Uniform(a, b), ([0.0, 0.0, -1.0], [1.0, 2.0, 1.0]),
     ([-1.0, 0.5, -2.0], [2.0, 3.0, 0.5])),
    ("Categorical", lambda L, a: L.Categorical(probs=a), ([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]],),
     ([[0.3, 0.7, 0.0], [0.5, 0.5, 0.0]],)),
    ("Bernoulli", lambda L, a: L.Bernoulli(probs=a), ([0.0, 1.0, 0.3, 0.6],), ([0.5, 0.5, 0.0, 1.0],)),
    ("Binomial", lambda L, n, a: L.Binomial(n, probs=a), ([6.0, 5.0], [0.3, 0.4]), ([5.0, 5.0], [0.2, 0.4])),
], ids=lambda c: c[0])
def test_kl_infinite_and_zero_cases_are_torchs(case):
    _, build, p_args, q_args = case
    ours, ref = _kl_both(build, [np.array(a) for a in p_args], [np.array(a) for a in q_args])
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    assert np.isinf(ref).any()  # (the case checks where q puts no mass where p does)


@pytest.mark.usefixtures("kl_registries_restored")
def test_kl_of_unknown_pairs_and_register_kl_as_torch():
    with pytest.raises(NotImplementedError, match=r"No KL\(p \|\| q\) is implemented for p type Normal and q type"):
        D.kl_divergence(D.Normal(0.0, 1.0), D.Binomial(3, 0.5))
    with pytest.raises(NotImplementedError):
        TD.kl_divergence(TD.Normal(0.0, 1.0), TD.Binomial(3, 0.5))
    # (two exponential families with no closed form between them reach the Bregman pair, which refuses)
    with pytest.raises(NotImplementedError, match="different exponential families"):
        D.kl_divergence(D.Normal(0.0, 1.0), D.Poisson(1.0))
    with pytest.raises(NotImplementedError, match="different exponential families"):
        TD.kl_divergence(TD.Normal(0.0, 1.0), TD.Poisson(1.0))
    with pytest.raises(NotImplementedError):  # (different reinterpreted dims, as torch)
        D.kl_divergence(D.Independent(D.Normal(distnn.zeros(2, 3), 1.0), 1),
                        D.Independent(D.Normal(distnn.zeros(2, 3), 1.0), 2))
    with pytest.raises(ValueError, match="different event shapes"):
        D.kl_divergence(D.MultivariateNormal(distnn.zeros(2), distnn.eye(2)),
                        D.MultivariateNormal(distnn.zeros(3), distnn.eye(3)))

    class MyNormal(D.Normal):
        pass

    np.testing.assert_allclose(D.kl_divergence(MyNormal(0.0, 1.0), D.Normal(1.0, 2.0)).item(),
                               TD.kl_divergence(TD.Normal(0.0, 1.0), TD.Normal(1.0, 2.0)).item(), rtol=1e-6)

    @D.register_kl(MyNormal, D.Normal)
    def _mine(p, q):
        return distnn.tensor(42.0)

    assert D.kl_divergence(MyNormal(0.0, 1.0), D.Normal(1.0, 2.0)).item() == 42.0  # (the more specific one)
    assert D.kl_divergence(D.Normal(0.0, 1.0), MyNormal(1.0, 2.0)).item() != 42.0
    with pytest.raises(TypeError):
        D.register_kl(int, D.Normal)


def _message(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the caller compares type and text
        return type(e), str(e).split("\n")[0]
    return None, None


def _vec(values):
    return np.array(values, dtype=np.float64)


# (constructor on (library, tensor maker)): each must refuse, with torch's error type and first line
REFUSALS = {
    "normal_scale": lambda L, T: L.Normal(T(_vec([0.0, 1.0])), T(_vec([1.0, -1.0]))),
    "normal_nan_loc": lambda L, T: L.Normal(T(_vec([np.nan])), T(_vec([1.0]))),
    "normal_scalar_scale": lambda L, T: L.Normal(0.0, -1.0),
    "exponential_rate": lambda L, T: L.Exponential(T(_vec([0.0, 1.0]))),
    "gamma_concentration": lambda L, T: L.Gamma(T(_vec([-1.0])), T(_vec([1.0]))),
    "beta": lambda L, T: L.Beta(T(_vec([1.0, 2.0])), T(_vec([0.0, 1.0]))),
    "poisson_rate": lambda L, T: L.Poisson(T(_vec([-0.5]))),
    "bernoulli_probs": lambda L, T: L.Bernoulli(probs=T(_vec([0.5, 1.5]))),
    "bernoulli_both": lambda L, T: L.Bernoulli(probs=T(_vec([0.5])), logits=T(_vec([0.5]))),
    "bernoulli_neither": lambda L, T: L.Bernoulli(),
    "binomial_count": lambda L, T: L.Binomial(T(_vec([2.5])), probs=T(_vec([0.5]))),
    "categorical_probs": lambda L, T: L.Categorical(probs=T(_vec([0.5, -0.1, 0.6]))),
    "categorical_0d": lambda L, T: L.Categorical(probs=T(_vec(1.0))),
    "dirichlet": lambda L, T: L.Dirichlet(T(_vec([1.0, 0.0]))),
    "dirichlet_0d": lambda L, T: L.Dirichlet(T(_vec(1.0))),
    "laplace_scale": lambda L, T: L.Laplace(T(_vec([0.0])), T(_vec([0.0]))),
    "mvn_not_pd": lambda L, T: L.MultivariateNormal(T(_vec([0.0, 0.0])),
                                                    covariance_matrix=T(_vec([[1.0, 2.0], [2.0, 1.0]]))),
    "mvn_tril": lambda L, T: L.MultivariateNormal(T(_vec([0.0, 0.0])), scale_tril=T(_vec([[1.0, 1.0], [0.0, 1.0]]))),
    "mvn_two": lambda L, T: L.MultivariateNormal(T(_vec([0.0])), T(_vec([[1.0]])), scale_tril=T(_vec([[1.0]]))),
    "mvn_0d_loc": lambda L, T: L.MultivariateNormal(T(_vec(0.0)), T(_vec([[1.0]]))),
    "mvn_1d_cov": lambda L, T: L.MultivariateNormal(T(_vec([0.0])), T(_vec([1.0]))),
    "independent_ndims": lambda L, T: L.Independent(L.Normal(T(_vec([0.0])), T(_vec([1.0]))), 2),
    "mixture_not_categorical": lambda L, T: L.MixtureSameFamily(L.Normal(T(_vec([0.0])), T(_vec([1.0]))),
                                                                L.Normal(T(_vec([0.0])), T(_vec([1.0])))),
    "mixture_count": lambda L, T: L.MixtureSameFamily(L.Categorical(T(_vec([0.5, 0.5]))),
                                                      L.Normal(T(_vec([0.0, 1.0, 2.0])), T(_vec([1.0, 1.0, 1.0])))),
    # log_prob's sample checks
    "log_prob_outside_support": lambda L, T: L.Exponential(T(_vec([1.0]))).log_prob(T(_vec([-1.0]))),
    "log_prob_not_integer": lambda L, T: L.Poisson(T(_vec([1.0]))).log_prob(T(_vec([1.5]))),
    "log_prob_bernoulli_value": lambda L, T: L.Bernoulli(T(_vec([0.3]))).log_prob(T(_vec([0.5]))),
    "log_prob_categorical_range": lambda L, T: L.Categorical(T(_vec([0.5, 0.5]))).log_prob(T(np.array([2]))),
    "log_prob_event_shape": lambda L, T: L.Dirichlet(T(_vec([1.0, 1.0]))).log_prob(T(_vec([0.2, 0.3, 0.5]))),
    "log_prob_broadcast": lambda L, T: L.Normal(T(_vec([0.0, 1.0])), 1.0).log_prob(T(_vec([0.0, 1.0, 2.0]))),
    "log_prob_not_tensor": lambda L, T: L.Normal(T(_vec([0.0])), 1.0).log_prob(0.5),
    "log_prob_simplex": lambda L, T: L.Dirichlet(T(_vec([1.0, 1.0]))).log_prob(T(_vec([0.2, 0.3]))),
    "cdf_outside_support": lambda L, T: L.Exponential(T(_vec([1.0]))).cdf(T(_vec([-1.0]))),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refusals_are_torchs(name):
    ours = _message(lambda: REFUSALS[name](D, distnn.tensor))
    ref = _message(lambda: REFUSALS[name](TD, torch.tensor))
    assert ref[0] is not None and ours[0] is ref[0], (ours, ref)
    normalize = (lambda m: m.replace("torch.Size(", "(").replace("])", ")").replace("([", "(")
                 .replace(",)", ")").replace("torch.distributions.", ""))
    if name.startswith("mvn_not_pd") or "tensor(" in ref[1]:
        assert normalize(ours[1]).split(", but found")[0].split("(")[0] == normalize(ref[1]).split("(")[0]
    else:
        assert normalize(ours[1]) == normalize(ref[1]), (ours[1], ref[1])


def test_validate_args_false_and_the_default_switch():
    with np.errstate(invalid="ignore"):
        assert np.isnan(D.Normal(distnn.tensor(_vec([0.0])), distnn.tensor(_vec([-1.0])), validate_args=False)
                        .log_prob(distnn.tensor(_vec([0.0]))).data).all()
    assert np.isfinite(D.Exponential(distnn.tensor(_vec([1.0])), validate_args=False)
                       .log_prob(distnn.tensor(_vec([-1.0]))).data).all()
    D.Distribution.set_default_validate_args(False)
    try:
        D.Normal(0.0, -1.0)
    finally:
        D.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        D.Normal(0.0, -1.0)
    e = D.Normal(distnn.tensor(_vec([0.0])), 1.0, validate_args=False).expand((3,))
    assert e._validate_args is False
