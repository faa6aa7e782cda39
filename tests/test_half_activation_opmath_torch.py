"""float16 elu/celu/selu (alpha), softplus (beta, threshold), threshold (its cut and value) and a division by a
Python number rounded down or toward zero (``h // s``, ``div(h, s, rounding_mode='trunc')``): PyTorch's CPU
kernels compute them in float32 with the number parameters read as float32 ("opmath") and round once to float16.
distnn against torch 2.13 bit for bit, over every float16 value (subnormals, +-0, +-inf, NaNs, the largest
finite ones), forward bitwise. The backwards take an exp whose float32 PyTorch's (SLEEF's) vector code does not
always round correctly: one float16 step away in a few elements of 65536 where the product lands near a tie;
those are bounded (at most one step, in at most 4 elements), and threshold's backward is bitwise."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import distnn as dn
import distnn.nn.functional as DF
from half_units import EVERY_HALF, assert_same_half_bits, half_bits, units_apart

FINITE_HALF = EVERY_HALF[np.isfinite(EVERY_HALF)]
GRAD = np.random.default_rng(20261125).standard_normal(FINITE_HALF.size).astype(np.float16)
ALPHAS = [0.3, 1.7, 2.5, 1.0, 0.1, 3.14159, -0.5, -2.0]


def _assert_within_a_step_in_few(got, expected):
    apart = units_apart(got.view(np.float16), expected.view(np.float16))
    assert apart.max() <= 1
    assert np.count_nonzero(apart) <= 4, np.flatnonzero(apart)


def _grads(fn_dn, fn_torch, values=FINITE_HALF, grad=GRAD):
    xd, xt = dn.tensor(values.copy(), requires_grad=True), torch.tensor(values.copy(), requires_grad=True)
    fn_dn(xd).backward(dn.tensor(grad))
    fn_torch(xt).backward(torch.tensor(grad))
    return half_bits(xd.grad), half_bits(xt.grad)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_elu_and_celu_forward_are_torchs_bitwise(alpha):
    assert_same_half_bits(lambda x: DF.elu(x, alpha), lambda x: TF.elu(x, alpha))
    assert_same_half_bits(lambda x: DF.celu(x, alpha), lambda x: TF.celu(x, alpha))


def test_selu_forward_is_torchs_bitwise():
    assert_same_half_bits(DF.selu, TF.selu)


@pytest.mark.parametrize("alpha", [0.3, 1.7, 2.5, 1.0])
def test_elu_family_backward_is_torchs_within_a_step(alpha):
    for fd, ft in [(lambda x: DF.elu(x, alpha), lambda x: TF.elu(x, alpha)),
                   (lambda x: DF.celu(x, alpha), lambda x: TF.celu(x, alpha)), (DF.selu, TF.selu)]:
        _assert_within_a_step_in_few(*_grads(fd, ft))


@pytest.mark.parametrize("alpha", [0.3, 1.7])
def test_in_place_elu_and_celu_forward_and_backward_are_torchs_bitwise(alpha):
    for name in ["elu_", "celu_"]:
        # (the in-place node keeps the result: a leaf cannot be changed in place, so through a copy of it)
        # (its backward has no exp: bitwise)
        got, expected = _grads(lambda x: getattr(DF, name)(x * 1, alpha), lambda x: getattr(TF, name)(x * 1, alpha))
        np.testing.assert_array_equal(got, expected)
        assert_same_half_bits(lambda x: getattr(DF, name)(x, alpha), lambda x: getattr(TF, name)(x.clone(), alpha))


@pytest.mark.parametrize("beta,threshold", [(1.0, 20.0), (0.7, 5.0), (2.3, 3.0), (1.0, 1.3), (0.1, 100.0),
                                            (5.0, 20.0), (1.0, 0.30004)])
def test_softplus_forward_is_torchs_bitwise_and_backward_within_a_step(beta, threshold):
    assert_same_half_bits(lambda x: DF.softplus(x, beta, threshold), lambda x: TF.softplus(x, beta, threshold))
    _assert_within_a_step_in_few(*_grads(lambda x: DF.softplus(x, beta, threshold),
                                         lambda x: TF.softplus(x, beta, threshold)))


@pytest.mark.parametrize("cut,value", [(0.1, 0.3), (1.0, -2.7), (0.3333, 1e-5), (2.0, 60000.0), (0.30004, 1.0),
                                       (0.7001, 2.0), (1e-7, 3.0), (-0.30004, 5.0), (1e10, 1.0), (-1e10, 2.0),
                                       (0.0, float("inf")), (0.5, 1 + 2 ** -11 + 2 ** -40)])
def test_threshold_cut_and_value_are_torchs_bitwise(cut, value):
    assert_same_half_bits(lambda x: DF.threshold(x, cut, value), lambda x: TF.threshold(x, cut, value))
    got, expected = _grads(lambda x: DF.threshold(x, cut, value), lambda x: TF.threshold(x, cut, value))
    np.testing.assert_array_equal(got, expected)


def test_threshold_in_place_cut_is_torchs():
    x = dn.tensor(np.array([0.3, 0.2998, 0.3003], np.float16))
    DF.threshold_(x, 0.30004, -1.0)
    expected = TF.threshold_(torch.tensor(np.array([0.3, 0.2998, 0.3003], np.float16)), 0.30004, -1.0)
    np.testing.assert_array_equal(half_bits(x), half_bits(expected))


@pytest.mark.parametrize("dtype,value,name", [(np.float16, 70000.0, "c10::Half"), (np.float16, -65519.0, "c10::Half"),
                                              (np.float32, 1e40, "float")])
def test_threshold_value_out_of_range_is_refused_as_torch(dtype, value, name):
    message = f"value cannot be converted to type {name} without overflow"
    with pytest.raises(RuntimeError, match=message):
        TF.threshold(torch.zeros(2, dtype=getattr(torch, np.dtype(dtype).name)), 0.0, value)
    with pytest.raises(RuntimeError, match=message):
        DF.threshold(dn.tensor(np.zeros(2, dtype)), 0.0, value)


DIVISORS = [0.1, 3.0, 0.7, -2.3, 1e-3, 7, 0.0, -0.0, 1e-7, 100000, 70000.0, 1e30, 1e40, -1e-5,
            float("inf"), float("nan")]


@pytest.mark.parametrize("divisor", DIVISORS)
def test_floor_division_by_a_number_is_torchs_bitwise(divisor):
    assert_same_half_bits(lambda x: x // divisor, lambda x: x // divisor)
    assert_same_half_bits(lambda x: dn.floor_divide(x, divisor), lambda x: torch.floor_divide(x, divisor))
    assert_same_half_bits(lambda x: dn.div(x, divisor, rounding_mode="floor"),
                 lambda x: torch.div(x, divisor, rounding_mode="floor"))


@pytest.mark.parametrize("divisor", DIVISORS)
def test_truncated_division_by_a_number_is_torchs_bitwise(divisor):
    assert_same_half_bits(lambda x: dn.div(x, divisor, rounding_mode="trunc"),
                 lambda x: torch.div(x, divisor, rounding_mode="trunc"))


@pytest.mark.parametrize("divisor", [0.1, -2.3, 1e-3])
def test_in_place_floor_division_by_a_number_is_torchs_bitwise(divisor):
    def in_place(x):
        x //= divisor
        return x

    assert_same_half_bits(in_place, lambda x: in_place(x.clone()))
    assert_same_half_bits(lambda x: x.floor_divide_(divisor), lambda x: x.clone().floor_divide_(divisor))
    assert_same_half_bits(lambda x: x.div_(divisor, rounding_mode="trunc"),
                 lambda x: x.clone().div_(divisor, rounding_mode="trunc"))


def _divisor_tensors():
    rng = np.random.default_rng(3)
    random = np.concatenate([(rng.standard_normal(65536) + 0.1).astype(np.float16), EVERY_HALF[::-1],
                             EVERY_HALF[rng.permutation(65536)]])
    dividends = np.concatenate([EVERY_HALF, (rng.standard_normal(65536) * 100).astype(np.float16), EVERY_HALF])
    return dividends, random


@pytest.mark.parametrize("mode", ["floor", "trunc"])
def test_division_by_a_float16_tensor_is_torchs_bitwise(mode):
    """Many-element divisors (PyTorch: float16 arithmetic for floor), one-element ones (0-d or (1,): float32)."""
    dividends, divisors = _divisor_tensors()
    for b in [divisors, np.array(np.float16(0.1)), np.array([np.float16(-2.3)]), np.array([[np.float16(1e-3)]])]:
        got = dn.div(dn.tensor(dividends), dn.tensor(b), rounding_mode=mode)
        expected = torch.div(torch.tensor(dividends), torch.tensor(b), rounding_mode=mode)
        assert tuple(got.shape) == tuple(expected.shape)
        np.testing.assert_array_equal(half_bits(got), half_bits(expected))


@pytest.mark.parametrize("number", [0.1, -2.3, 7.0, 1e-3, 100000.0])
def test_number_floor_divided_by_a_float16_tensor_is_torchs_bitwise(number):
    assert_same_half_bits(lambda x: number // x, lambda x: number // x)


def test_float32_division_by_a_number_keeps_its_rule():
    """Guard: a float32 tensor was already PyTorch's."""
    a = (np.random.default_rng(3).standard_normal(4096) * 100).astype(np.float32)
    np.testing.assert_array_equal((dn.tensor(a) // 0.1).numpy(), (torch.tensor(a) // 0.1).numpy())
