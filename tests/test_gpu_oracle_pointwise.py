"""The GPU (cupy) against the CPU (numpy) for the pointwise ops changed since the last run on a GPU (commit
c209826), written without a GPU (a static review): clamp with tensor and numpy-scalar bounds, maximum/minimum
with ties (the gradient split in halves) and with NaN, where with a host mask, remainder, the pointwise math
(one elementwise kernel each; the edge rows hold zeros and ties where PyTorch's gradient conventions apply).
gpu_oracle.py says how a case draws its inputs and how the devices are compared."""
from functools import partial

import numpy as np
import pytest

import distnn as dn
from distnn import backend
from distnn import functional as F

from gpu_oracle import DTYPES, NO_GPU, assert_op_matches_the_cpu, on, run_fn
from test_torch_reference import RTOL

if not backend.gpu_available():  # (one skip for the module, not one per test)
    pytest.skip(NO_GPU, allow_module_level=True)

_PW_EDGE_A = np.array([[0.0, 0.0, 1.0, -2.0], [0.5, 3.0, 0.0, -1.0]])
_PW_EDGE_B = np.array([[0.0, 1.5, 1.0, -2.0], [-0.5, 0.0, 2.0, 4.0]])


def _ties(R):
    """Small integers: maximum/minimum of equal values, the gradient split in halves."""
    return np.round(R.standard_normal((3, 4)))


def _inside_minus_one_one(R):
    return R.uniform(-0.95, 0.95, (3, 4))


def _with_exact_zeros(R):
    x = R.standard_normal((3, 4))
    x[0, 1] = x[2, 0] = x[1, 3] = 0.0
    return x


def _raw_device_operands(x, e):
    """Raw arrays of the data's device (``t.data``) where the ops take arrays: np.asarray refused them (ldexp's
    exponent, square's and mvlgamma's input, trapezoid's coordinates, unravel_index's indices)."""
    raw = e.data
    flat = (abs(raw) * 4).astype(np.int64) % 12  # (flat positions in a (3, 4) tensor)
    return (dn.ldexp(x, raw) + dn.square(raw > 0) + dn.mvlgamma(raw * raw + 1.0, 2)
            + dn.trapezoid(x, raw[0] * 0.5)[:, None]  # (any coordinates: their differences weigh the rows)
            + dn.unravel_index(flat, (3, 4))[1] * 0.25)


CASES = {
    # host constants beside device arrays, bounds as tensors, ties, exact 0 and 1
    "clamp_tensor_bounds": lambda R: (
        [R.standard_normal((3, 4)), R.standard_normal((1, 4)) - 0.5, R.standard_normal((3, 1)) + 0.5], F.clip),
    "clamp_min_tensor": lambda R: ([R.standard_normal((3, 4)), R.standard_normal((4,))],
                                   lambda a, lo: a.clamp(min=lo)),
    "clamp_numpy_scalar": lambda R: ([R.standard_normal((3, 4))], lambda a: F.clip(a, np.float64(-0.5), None)),
    "maximum_ties": lambda R: ([_ties(R), np.round(R.standard_normal((3, 4)))], F.maximum),
    "minimum_ties": lambda R: ([_ties(R), np.round(R.standard_normal((1, 4)))], F.minimum),
    "maximum_int_tensor": lambda R: ([R.standard_normal((3, 4)) * 3],
                                     lambda a: F.maximum(a, (a * 0.5).astype(np.int64))),
    "where_numpy_scalar": lambda R: ([R.standard_normal((3, 4))], partial(
        lambda a, cond: F.where(cond, a, np.float64(0.25)), cond=R.random((3, 4)) > 0.5)),  # (a host mask)
    "remainder": lambda R: ([R.standard_normal((3, 4)) * 3, R.uniform(0.5, 2.0, (3, 4))], lambda a, b: a % b),
    "remainder_scalar": lambda R: ([R.standard_normal((3, 4)) * 3], lambda a: a % 0.7),
    "logsigmoid": lambda R: ([R.standard_normal((3, 4)) * 40], F.logsigmoid),  # (|x| up to ~100: both tails)
    # the pointwise math: erf/erfc/erfinv are cupyx.scipy.special's on the GPU (distnn's own series on the CPU)
    "pointwise_trig": lambda R: ([R.standard_normal((3, 4))], lambda x: (
        x.sin() * x.cos() + dn.tan(x * 0.4) + dn.atan(x) + x.sinh() - dn.cosh(x * 0.5))),
    "pointwise_inverse_trig": lambda R: ([_inside_minus_one_one(R)], lambda x: (
        dn.asin(x) + x.acos() * dn.atanh(x) + dn.asinh(x * 3) + dn.acosh(x.abs() + 1.5))),
    "pointwise_logs_exps": lambda R: ([R.uniform(0.1, 3.0, (3, 4))], lambda x: (
        x.log1p() + dn.expm1(x) - x.log2() * dn.log10(x) + dn.exp2(x) + x.rsqrt() + dn.reciprocal(x) + x.square())),
    "pointwise_erf_family": lambda R: ([_inside_minus_one_one(R) * 2], lambda x: dn.erf(x) + x.erfc() * 3),
    "pointwise_erfinv": lambda R: ([_inside_minus_one_one(R)], dn.erfinv),
    "pointwise_logit_sinc_misc": lambda R: ([_inside_minus_one_one(R)], lambda x: (
        dn.logit(x.abs(), eps=0.1) + dn.sinc(x * 2) + x.frac() + dn.deg2rad(x) + x.rad2deg() + dn.nan_to_num(x)
        + dn.sgn(x) - x.neg())),
    "atan2_origin": lambda R: ([_PW_EDGE_A, _PW_EDGE_B], dn.atan2),  # (zero gradients at (0, 0), as PyTorch's)
    "hypot": lambda R: ([R.standard_normal((3, 4)), R.standard_normal((3, 1))], dn.hypot),
    "remainder_fmod_divide": lambda R: (
        [R.standard_normal((3, 4)) * 4, R.uniform(0.5, 2.0, (4,)) * np.array([1, -1, 1, -1])],
        lambda a, b: (dn.remainder(a, b) + dn.fmod(a, b) + dn.divide(a, b, rounding_mode="trunc")
                      + dn.true_divide(a, b))),
    "logaddexp_pair": lambda R: ([R.standard_normal((3, 4)) * 5, R.standard_normal((1, 4)) * 5],
                                 lambda a, b: dn.logaddexp(a, b) + dn.logaddexp2(a, b)),
    "xlogy_zero_x": lambda R: ([_PW_EDGE_A, R.uniform(0.5, 2.0, (2, 4))], dn.xlogy),
    "copysign_fmax_fmin_ties": lambda R: ([_PW_EDGE_A, _PW_EDGE_B],
                                          lambda a, b: dn.copysign(a, b) + dn.fmax(a, b) * 2 + dn.fmin(a, b)),
    "lerp_tensor_weight": lambda R: (
        [R.standard_normal((3, 4)), R.standard_normal((3, 4)), R.uniform(-0.5, 1.5, (4,))], dn.lerp),
    "float_power": lambda R: ([R.uniform(0.5, 2.0, (3, 4)), R.standard_normal((3, 4))],
                              lambda a, b: dn.float_power(a, b).astype(a.dtype)),
    "addcmul_addcdiv": lambda R: (
        [R.standard_normal((3, 1)), R.standard_normal((1, 4)), R.uniform(0.5, 2.0, (3, 4))],
        lambda a, b, c: dn.addcmul(a, b, c, value=0.5) + dn.addcdiv(a, b, c, value=-2)),
    "ldexp": lambda R: ([R.standard_normal((3, 4)), R.standard_normal(4)], lambda x, e: dn.ldexp(x, e)),
    "frexp_mantissa": lambda R: ([R.standard_normal((3, 4)) * 50], lambda x: dn.frexp(x).mantissa),
    # a host exponent beside a GPU input (a number; a CPU 0-d tensor, as PyTorch takes one): 2 ** e stayed on the
    # host and the backward's g * 2 ** e mixed cupy and numpy
    "ldexp_host_exponent": lambda R: ([R.standard_normal((3, 4))],
                                      lambda x: dn.ldexp(x, 3) + dn.ldexp(x, dn.tensor(np.array(-2.0))) * 5),
    # heaviside with a CPU 0-d ``values`` beside a GPU input, through its node (x requires grad; the result is
    # detached, as its backward is refused) and its no-grad path; exact zeros in x pick ``values``
    "raw_device_operands": lambda R: ([R.standard_normal((3, 4)), R.standard_normal((3, 4))], _raw_device_operands),
    "heaviside_host_values": lambda R: ([_with_exact_zeros(R)], lambda x: x + (
        dn.heaviside(x, dn.tensor(np.array(0.25, x.data.dtype))).detach()
        + dn.heaviside(x.detach(), dn.tensor(np.array(-0.5, x.data.dtype))) * 2)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("op", list(CASES))
def test_op_changed_since_the_last_gpu_run_matches_the_cpu(op, dtype, per_test_rng):
    assert_op_matches_the_cpu(*CASES[op](per_test_rng), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_nan_through_maximum_minimum_and_clamp_as_on_the_cpu(dtype, per_test_rng):
    """A NaN wins maximum/minimum and its gradient goes to both operands (PyTorch's rule, new since the last GPU
    run); clamp keeps a NaN input NaN, and a NaN in a Tensor bound makes its column NaN, as numpy's clip and
    PyTorch's clamp (cupy's clip kernel passes over a NaN bound: Clip takes maximum and minimum on a GPU).
    cupy's kernels are not numpy's: compared with NaN in place."""
    R = per_test_rng
    a = R.standard_normal((3, 4))
    a[0, 1] = a[2, 3] = np.nan
    b, lo, hi = R.standard_normal((3, 4)), R.standard_normal((1, 4)) - 0.5, R.standard_normal((3, 1)) + 0.5
    lo[0, 2] = np.nan
    fns = {"maximum": lambda x, y: F.maximum(x, y), "minimum": lambda x, y: F.minimum(x, y),
           "clamp": lambda x, y: F.clip(x, dn.Tensor(on(backend.device_of(x.data), lo.astype(dtype))),
                                        dn.Tensor(on(backend.device_of(x.data), hi.astype(dtype))))}
    for name, fn in fns.items():
        out_c, grads_c = run_fn(fn, [a, b], "cpu", dtype, 0)
        out_g, grads_g = run_fn(fn, [a, b], "cuda", dtype, 0)
        assert np.isnan(out_c[0, 1]) and np.isnan(out_c[2, 3]), name
        assert name != "clamp" or np.isnan(out_c[:, 2]).all()
        np.testing.assert_allclose(out_g, out_c, rtol=RTOL[dtype], equal_nan=True, err_msg=f"{name}: forward")
        for i, (g, c) in enumerate(zip(grads_g, grads_c)):
            np.testing.assert_allclose(g, c, rtol=RTOL[dtype], equal_nan=True, err_msg=f"{name}: gradient {i}")
