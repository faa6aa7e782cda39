"""The GPU (cupy) against the CPU (numpy) for the special functions and the distributions' densities changed
since the last run on a GPU (commit c209826), written without a GPU (a static review): cupyx.scipy.special's
gammaln/digamma/polygamma/zeta, i0/i0e/i1/i1e, erfcx/ndtri on a GPU, distnn's own series on the CPU. gpu_oracle.py
says how a case draws its inputs and how the devices are compared."""
from functools import partial

import numpy as np
import pytest

import distnn as dn
from distnn import backend

from gpu_oracle import DTYPES, NO_GPU, assert_op_matches_the_cpu, on

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)


def _distributions_log_densities(a, b, value):
    """Beta's log-density (lgamma, digamma and xlogy through the Dirichlet), Gamma's entropy and a Normal KL on
    the inputs' device: the distributions compute with the parameters' array module (no validation: the host
    array ``value`` is moved there)."""
    import distnn.distributions as D

    beta = D.Beta(a, b, validate_args=False)
    gamma = D.Gamma(a, b, validate_args=False)
    kl = D.kl_divergence(D.Normal(a, b, validate_args=False), D.Normal(b, a, validate_args=False))
    return beta.log_prob(value) + gamma.entropy() + kl


_CORR_CHOLESKY = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8]])  # (rows of unit norm, exactly)


def _constraint_checks_on_device(x):
    """cat, stack and corr_cholesky check their pieces as raw arrays (cupy's on a GPU, which np.asarray refused in
    the pieces' constraints); LKJCholesky's validated log_prob checks its support so. No value on a boundary."""
    import distnn.distributions as D
    from distnn.distributions import constraints as C

    device = backend.device_of(x.data)
    v = x.detach()
    cat = C.cat([C.positive, C.real, C.greater_than(-0.5)], dim=1, lengths=[1, 2, 1]).check(v)
    stack = C.stack([C.positive, C.real, C.greater_than(-0.5), C.less_than(0.5)], dim=1).check(v)
    corr = C.corr_cholesky.check(dn.Tensor(on(device, _CORR_CHOLESKY.astype(x.data.dtype))))
    weight = dn.Tensor(cat) * 1.0 + dn.Tensor(stack) * 2.0 + dn.Tensor(corr) * 0.5
    lkj = D.LKJCholesky(3, x[:, 0].abs() + 0.5, validate_args=True)
    return x * weight + lkj.log_prob(dn.Tensor(on(device, _CORR_CHOLESKY.astype(x.data.dtype))))[:, None]


CASES = {
    # cupyx.scipy.special's gammaln/digamma on a GPU (new with distnn.distributions); igamma is differentiable in
    # its second argument only: its shape a host array
    "lgamma": lambda R: ([R.uniform(-4.5, 9.0, (3, 4))], dn.lgamma),
    "digamma": lambda R: ([R.uniform(-4.5, 9.0, (3, 4))], dn.digamma),
    "igamma": lambda R: ([R.uniform(0.05, 10.0, (3, 4))], partial(
        lambda x, shape: dn.igamma(shape.astype(x.dtype), x), shape=R.uniform(0.3, 8.0, (3, 4)))),
    # distnn.special: i0/i0e/i1/i1e, polygamma and zeta (values past 8 take the other Chebyshev series, negative
    # ones the odd/even symmetry)
    "special_i0_family": lambda R: ([R.uniform(-12.0, 12.0, (3, 4))], lambda x: (
        dn.i0(x) + x.i0() * 0.5 + dn.special.i0e(x) + dn.special.i1(x) + dn.special.i1e(x) * 3)),
    "polygamma": lambda R: ([R.uniform(0.2, 9.0, (3, 4))], lambda x: dn.polygamma(2, x) + x.polygamma(3) * 0.5),
    "special_zeta": lambda R: ([R.uniform(0.2, 9.0, (3, 4))], lambda q: dn.special.zeta(3.5, q)),
    # the normal CDF family: erfcx/ndtri and erf/erfc, log_ndtr's two branches either side of -1, erfcx's
    # reflection left of 0
    "special_ndtr_family": lambda R: ([R.uniform(-6.0, 6.0, (3, 4))], lambda x: (
        dn.special.ndtr(x) + dn.special.log_ndtr(x * 2) + dn.special.erfcx(x) * 0.5)),
    "special_ndtri": lambda R: ([R.uniform(0.01, 0.99, (3, 4))], dn.special.ndtri),
    "special_entr_xlog1py": lambda R: ([R.uniform(0.05, 3.0, (3, 4)), R.uniform(-0.9, 3.0, (3, 4))],
                                       lambda x, y: dn.special.entr(x) + dn.special.xlog1py(x, y)),
    # a host 0-d tensor beside a device one (PyTorch takes a CPU scalar tensor with a CUDA one): as the input
    # (the array module came from it alone, and numpy's asarray refused the device degrees) and as the degree;
    # degrees a quarter past integers (truncated: no tie), x inside (-1, 1), the trigonometric forms past degree 6
    "orthogonal_polynomials_host_0d": lambda R: ([R.integers(0, 12, (3, 4)) + 0.25, R.uniform(-0.95, 0.95, (3, 4))],
                                                 lambda n, x: (n + x) * 0.01 + (
        dn.special.chebyshev_polynomial_t(dn.tensor(np.array(0.3)), n)
        + dn.special.legendre_polynomial_p(x, dn.tensor(np.array(5.0))) * 0.5
        + dn.special.hermite_polynomial_he(dn.tensor(np.array(0.7)), n) * 1e-3)),
    "constraint_checks_on_device": lambda R: ([R.standard_normal((3, 4))], _constraint_checks_on_device),
    "distributions_log_densities": lambda R: (
        [R.uniform(0.5, 3.0, (3, 4)), R.uniform(0.5, 3.0, (3, 4))],
        partial(_distributions_log_densities, value=R.uniform(0.1, 0.9, (3, 4)))),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(CASES))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype, per_test_rng):
    assert_op_matches_the_cpu(*CASES[op](per_test_rng), dtype)
