"""float16 remainder/fmod by a Python number (``h % s``, ``torch.remainder``, ``fmod``, their in-place and
number-tensor forms) and float16 rounded division by a 0-d tensor of another dtype (``h // torch.tensor(0.1)``):
distnn against torch 2.13 bit for bit over every float16 value (subnormals, +-0, +-inf, NaNs, the largest finite).

PyTorch's float16 remainder/fmod kernels take the number rounded to float16 (no float32 opmath: fmod is exact, so
only the divisor's rounding matters), as distnn did already: those tests guard it. Its floor/trunc division kernel
reads a one-value divisor by ``original_scalar_value<float>``: a 0-d float32/float64/integer tensor's value as a
float32, not rounded to float16 first (the float16 result dtype would round it), so ``h // torch.tensor(0.1)``
differs from ``h // torch.tensor(0.1).half()`` in ~10 % of the elements."""
import numpy as np
import pytest
import torch

import distnn as dn
from half_units import EVERY_HALF, assert_same_half_bits, half_bits

DIVISORS = [0.1, 3.0, 0.7, -2.3, 1e-3, 7, 0.0, -0.0, 1e-7, 6e-8, 100000, 70000.0, 65504.0, 1e30, 1e40, -1e-5,
            float("inf"), float("-inf"), float("nan")]


def _both(fn):
    return fn, fn


def _modulo_in_place(divisor):
    def in_place(x):
        x %= divisor
        return x

    return in_place


@pytest.mark.parametrize("divisor", DIVISORS)
def test_remainder_and_fmod_by_a_number_are_torchs_bitwise(divisor):
    assert_same_half_bits(*_both(lambda x: x % divisor))
    assert_same_half_bits(lambda x: dn.remainder(x, divisor), lambda x: torch.remainder(x, divisor))
    assert_same_half_bits(lambda x: dn.fmod(x, divisor), lambda x: torch.fmod(x, divisor))
    assert_same_half_bits(*_both(lambda x: x.remainder(divisor)))
    assert_same_half_bits(*_both(lambda x: x.fmod(divisor)))


@pytest.mark.parametrize("divisor", [0.1, -2.3, 1e-3, 100000, float("inf")])
def test_remainder_and_fmod_in_place_by_a_number_are_torchs_bitwise(divisor):
    assert_same_half_bits(_modulo_in_place(divisor), lambda x: _modulo_in_place(divisor)(x.clone()))
    assert_same_half_bits(lambda x: x.remainder_(divisor), lambda x: x.clone().remainder_(divisor))
    assert_same_half_bits(lambda x: x.fmod_(divisor), lambda x: x.clone().fmod_(divisor))


@pytest.mark.parametrize("number", [0.1, -2.3, 7.0, 1e-3, 100000.0, -0.0, float("inf")])
def test_number_modulo_a_float16_tensor_is_torchs_bitwise(number):
    assert_same_half_bits(*_both(lambda x: number % x))
    assert_same_half_bits(lambda x: dn.remainder(number, x), lambda x: torch.remainder(number, x))


def _zero_dim(module, value, dtype):
    with np.errstate(over="ignore"):  # (1e40 as a float32: inf)
        array = np.array(value, dtype)
    return module.tensor(array) if module is dn else torch.tensor(array)


ZERO_DIM = [(v, np.float32) for v in DIVISORS] + [(v, np.float64) for v in [0.1, -2.3, 1e-7, 1e40, -1e-300]] + \
    [(v, np.int64) for v in [3, -7, 100000, 0]]


@pytest.mark.parametrize("value, dtype", ZERO_DIM)
def test_rounded_division_by_a_zero_dim_tensor_of_another_dtype_is_torchs_bitwise(value, dtype):
    """The 0-d divisor's value as a float32 (PyTorch's original_scalar_value), not its float16 rounding."""
    def rounded(module):
        return [lambda x, t: x // t, lambda x, t: module.floor_divide(x, t),
                lambda x, t: module.div(x, t, rounding_mode="floor"),
                lambda x, t: module.div(x, t, rounding_mode="trunc")]

    for fn_dn, fn_torch in zip(rounded(dn), rounded(torch)):
        assert_same_half_bits(lambda x: fn_dn(x, _zero_dim(dn, value, dtype)),
                     lambda x: fn_torch(x, _zero_dim(torch, value, dtype)))


@pytest.mark.parametrize("value", [0.1, -2.3, 1e-3])
def test_in_place_rounded_division_by_a_zero_dim_float32_tensor_is_torchs_bitwise(value):
    def floor_in_place(x, t):
        x //= t
        return x

    for fn in [floor_in_place, lambda x, t: x.floor_divide_(t), lambda x, t: x.div_(t, rounding_mode="trunc"),
               lambda x, t: x.div_(t, rounding_mode="floor")]:
        assert_same_half_bits(lambda x: fn(x, _zero_dim(dn, value, np.float32)),
                     lambda x: fn(x.clone(), _zero_dim(torch, value, np.float32)))


@pytest.mark.parametrize("value, dtype", [(0.1, np.float32), (-2.3, np.float64), (1e-7, np.float32)])
def test_remainder_and_fmod_by_a_zero_dim_tensor_are_torchs_bitwise(value, dtype):
    """Guard: PyTorch's remainder/fmod kernels round the 0-d divisor to float16, as distnn does."""
    assert_same_half_bits(lambda x: x % _zero_dim(dn, value, dtype), lambda x: x % _zero_dim(torch, value, dtype))
    assert_same_half_bits(lambda x: dn.fmod(x, _zero_dim(dn, value, dtype)),
                 lambda x: torch.fmod(x, _zero_dim(torch, value, dtype)))


def test_other_one_value_divisors_keep_their_rule():
    """Guard: a 0-d float16 divisor, a 0-d float32 dividend over a float16 tensor, a one-element float32 divisor
    with a dimension (a float32 result) and a float32 tensor by a 0-d float64."""
    rng = np.random.default_rng(5)
    half = (rng.standard_normal((64, 64)) * 100).astype(np.float16)
    single = (rng.standard_normal(4096) * 100).astype(np.float32)
    cases = [(half, np.array(0.1, np.float16)), (np.array(0.1, np.float32), half), (half, np.array([0.1], np.float32)),
             (single, np.array(0.1, np.float64))]
    _assert_rounded_divisions_are_torchs(cases)


def test_strided_float16_by_a_zero_dim_float32_tensor_is_torchs():
    half = (np.random.default_rng(5).standard_normal((64, 64)) * 100).astype(np.float16)
    _assert_rounded_divisions_are_torchs([(half.T, np.array(0.3, np.float32)), (half[::2, 1::3], np.array(-0.7))])


def _assert_rounded_divisions_are_torchs(cases):
    for a, b in cases:
        for mode in ["floor", "trunc"]:
            got = dn.div(dn.tensor(a), dn.tensor(b), rounding_mode=mode)
            expected = torch.div(torch.tensor(a), torch.tensor(b), rounding_mode=mode)
            assert got.dtype.name == str(expected.dtype).removeprefix("torch.")
            np.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_gradient_reaches_a_zero_dim_divisor_of_rounded_division():
    """A 0-d float32 divisor that requires grad: div's rounded modes give it a zero gradient, as PyTorch's."""
    x = dn.tensor(np.array([1.5, -2.5, 7.0], np.float16), requires_grad=True)
    t = dn.tensor(np.array(0.1, np.float32), requires_grad=True)
    dn.div(x, t, rounding_mode="floor").sum().backward()
    xt = torch.tensor(np.array([1.5, -2.5, 7.0], np.float16), requires_grad=True)
    tt = torch.tensor(0.1, requires_grad=True)
    torch.div(xt, tt, rounding_mode="floor").sum().backward()
    for got, expected in [(t.grad, tt.grad), (x.grad, xt.grad)]:
        got = np.asarray(getattr(got, "data", got))
        assert got.dtype == expected.numpy().dtype
        np.testing.assert_array_equal(got, expected.numpy())
