"""The transformed distributions of test_distributions_transformed.py against torch (2.13), float64, continued:
kl_divergence between them and with the other families (values and gradients); sampling statistics of each
new sampler from distnn's seeded generator; ExponentialFamily's Bregman-divergence entropy and KL."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TD = torch.distributions

import distnn  # noqa: E402
import distnn.distributions as D  # noqa: E402
from test_distributions_transformed import _build, _close  # noqa: E402

R = np.random.default_rng(12)  # (module-level draws only, at import: each test draws from its own below)


DRAW_PER_TEST = True  # (R: each test draws from its own generator, conftest's per_test_rng)


def _pos(shape, lo=0.3, hi=3.0):
    return R.uniform(lo, hi, shape)



KL_PAIRS = [
    ("Gumbel", "Gumbel"), ("HalfNormal", "HalfNormal"), ("Pareto", "Pareto"), ("Exponential", "Gumbel"),
    ("Gamma", "Gumbel"), ("Gumbel", "Normal"), ("Normal", "Gumbel"), ("Uniform", "Gumbel"),
    ("Pareto", "Exponential"), ("Pareto", "Gamma"), ("Pareto", "Normal"), ("Uniform", "Pareto"),
    ("Normal", "Pareto"), ("Gumbel", "Uniform"), ("Pareto", "Beta"), ("Beta", "Pareto"), ("Laplace", "Pareto"),
    ("Weibull", "Weibull"), ("InverseGamma", "InverseGamma"),
]
KL_PARAMS = {
    "Gumbel": lambda: {"loc": R.standard_normal(4), "scale": _pos(4)},
    "HalfNormal": lambda: {"scale": _pos(4)},
    "Pareto": lambda: {"scale": _pos(4, 0.5, 1.5), "alpha": np.array([0.8, 1.5, 2.5, 4.0])},
    "Exponential": lambda: {"rate": _pos(4)},
    "Gamma": lambda: {"concentration": _pos(4), "rate": _pos(4)},
    "Normal": lambda: {"loc": R.standard_normal(4), "scale": _pos(4)},
    "Laplace": lambda: {"loc": R.standard_normal(4), "scale": _pos(4)},
    "Uniform": lambda: {"low": np.array([0.2, 0.8, 1.0, 1.5]), "high": np.array([1.5, 2.0, 3.0, 2.5])},
    "Beta": lambda: {"concentration1": _pos(4), "concentration0": _pos(4)},
    "Weibull": lambda: {"scale": _pos(4), "concentration": _pos(4)},
    "InverseGamma": lambda: {"concentration": _pos(4), "rate": _pos(4)},
}


@pytest.mark.parametrize("p_name,q_name", KL_PAIRS, ids=[f"{p}-{q}" for p, q in KL_PAIRS])
def test_kl_divergence_matches_torch_with_gradients(p_name, q_name):
    pp, qp = KL_PARAMS[p_name](), KL_PARAMS[q_name]()
    (pd, pdt), (pt, ptt) = _build(p_name, pp, "distnn"), _build(p_name, pp, "torch")
    (qd, qdt), (qt, qtt) = _build(q_name, qp, "distnn"), _build(q_name, qp, "torch")
    try:
        kt = TD.kl_divergence(pt, qt)
    except NotImplementedError:
        with pytest.raises(NotImplementedError):
            D.kl_divergence(pd, qd)
        return
    kd = D.kl_divergence(pd, qd)
    _close(kd, kt, rtol=1e-9, atol=1e-11)
    if not kt.requires_grad:
        return
    finite = np.isfinite(kt.detach().numpy())
    w = np.where(finite, R.standard_normal(4), 0.0)
    (distnn.where(distnn.tensor(finite), kd, 0.0) * distnn.tensor(w)).sum().backward()
    (torch.where(torch.tensor(finite), kt, 0.0) * torch.tensor(w)).sum().backward()
    for params_d, params_t in ((pdt, ptt), (qdt, qtt)):
        for k in params_d:
            g_t = params_t[k].grad.numpy() if params_t[k].grad is not None else np.zeros(4)
            g_d = params_d[k].grad if params_d[k].grad is not None else np.zeros(4)
            np.testing.assert_allclose(g_d, g_t, rtol=5e-8, atol=1e-10, err_msg=k)


# sampling statistics: (name, params, exact mean, exact variance) from distnn's seeded generator
def _sampling_cases():
    t = torch.tensor
    return [("Gumbel", {"loc": 0.5, "scale": 2.0}), ("HalfNormal", {"scale": 1.5}),
            ("Pareto", {"scale": 1.0, "alpha": 5.0}), ("Weibull", {"scale": 2.0, "concentration": 1.5}),
            ("Kumaraswamy", {"concentration1": 2.0, "concentration0": 3.0}),
            ("InverseGamma", {"concentration": 6.0, "rate": 2.0}),
            ("RelaxedBernoulli", {"temperature": t(0.5), "probs": t(0.3)}),
            ("LogisticNormal", {"loc": t([0.2, -0.3]), "scale": t([0.5, 1.0])}),
            ("RelaxedOneHotCategorical", {"temperature": t(0.7), "probs": t([0.2, 0.3, 0.5])})]


@pytest.mark.parametrize("name,params", _sampling_cases(), ids=[c[0] for c in _sampling_cases()])
def test_sample_mean_and_variance_are_within_a_few_standard_errors(name, params):
    n = 40000
    distnn.manual_seed(1234)
    dd = getattr(D, name)(**{k: distnn.tensor(v.numpy()) if isinstance(v, torch.Tensor) else v
                             for k, v in params.items()})
    x = np.asarray(dd.sample((n,)).data, dtype=np.float64)
    assert np.all(np.asarray(dd.support.check(distnn.tensor(x))))
    tt = getattr(TD, name)(**params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        ref = tt.sample((400000,)).numpy()  # (a large torch sample: the reference where no closed form exists)
    try:
        mean, var = tt.mean.numpy(), tt.variance.numpy()
    except NotImplementedError:
        mean, var = ref.mean(0), ref.var(0)
    se = np.sqrt(var / n)
    assert np.all(np.abs(x.mean(0) - mean) < 5 * se), (x.mean(0), mean, se)
    # the variance's standard error from the fourth central moment (of the reference sample)
    m4 = ((ref - ref.mean(0)) ** 4).mean(0)
    se_var = np.sqrt(np.maximum(m4 - var ** 2, 0) / n)
    assert np.all(np.abs(x.var(0) - var) < 5 * se_var + 1e-12), (x.var(0), var, se_var)


class _ExpFamilyExponential(D.ExponentialFamily):
    """Exponential(rate) declared as an exponential family (natural parameter -rate, F = -log(-theta)), as
    torch's Exponential declares it, to test the base class's Bregman entropy and KL."""

    arg_constraints = {"rate": D.constraints.positive}
    support = D.constraints.nonnegative

    def __init__(self, rate):
        self.rate = rate
        super().__init__(tuple(rate.shape))

    @property
    def _natural_params(self):
        return (-self.rate,)

    def _log_normalizer(self, x):
        return -(-x).log()

    @property
    def _mean_carrier_measure(self):
        return 0


def test_exponential_family_entropy_and_kl_by_bregman_divergence_match_torch():
    rate_p, rate_q = _pos(4), _pos(4)
    dp = _ExpFamilyExponential(distnn.tensor(rate_p))
    tp = TD.Exponential(torch.tensor(rate_p))
    _close(dp.entropy(), TD.ExponentialFamily.entropy(tp), rtol=1e-12)
    _close(dp.entropy(), tp.entropy(), rtol=1e-12)  # (the closed form agrees)
    q_rate = distnn.tensor(rate_q, requires_grad=True)
    tq_rate = torch.tensor(rate_q, requires_grad=True)
    kd = D.kl_divergence(dp, _ExpFamilyExponential(q_rate))
    kt = TD.kl._kl_expfamily_expfamily(tp, TD.Exponential(tq_rate))
    _close(kd, kt, rtol=1e-12)
    _close(kd, TD.kl_divergence(tp, TD.Exponential(torch.tensor(rate_q))), rtol=1e-12)
    kd.sum().backward()
    kt.sum().backward()
    _close(q_rate.grad, tq_rate.grad, rtol=1e-12)

    class Other(_ExpFamilyExponential):
        pass

    with pytest.raises(NotImplementedError, match="different exponential families"):
        D.kl_divergence(dp, Other(distnn.tensor(rate_q)))
