"""distnn.special's orthogonal polynomials (new): chebyshev_polynomial_t/u/v/w, shifted_chebyshev_polynomial_t/u/v/w,
hermite_polynomial_h/he, laguerre_polynomial_l and legendre_polynomial_p against PyTorch 2.13: values over wide x
and degrees -2 to 600 (non-integer, infinite and NaN degrees too) in float64 and float32, PyTorch's special cases
exactly, broadcasting and dtype promotion (numbers, integers, bools), no derivative, refusals."""
from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402

NAMES = ["chebyshev_polynomial_t", "chebyshev_polynomial_u", "chebyshev_polynomial_v", "chebyshev_polynomial_w",
         "shifted_chebyshev_polynomial_t", "shifted_chebyshev_polynomial_u", "shifted_chebyshev_polynomial_v",
         "shifted_chebyshev_polynomial_w", "hermite_polynomial_h", "hermite_polynomial_he", "laguerre_polynomial_l",
         "legendre_polynomial_p"]
X = np.concatenate([np.linspace(-3.0, 3.0, 601), np.linspace(-1.01, 1.01, 103), np.linspace(-30.0, 60.0, 91),
                    [0.0, -0.0, 1.0, -1.0, 0.5, 1e-20, -1 + 2**-53, 1 - 2**-53, 1 + 2**-52, 2**-55, math.inf,
                     -math.inf, 1e300, -1e300]])
DEGREES = np.concatenate([np.arange(-2, 40), np.arange(40, 620, 37), [-0.5, 0.5, 2.7, 6.9, 7.0, 8.9, 9.5],
                          [math.inf, -math.inf, math.nan, 1e30, -1e30]])


def _both(name, x, n):
    def wrap(v, lib):
        return lib.tensor(v) if isinstance(v, np.ndarray) else v
    return getattr(distnn.special, name)(wrap(x, distnn), wrap(n, distnn)), \
        getattr(torch.special, name)(wrap(x, torch), wrap(n, torch))


def _envelope(name, x, n):
    """A bound of |p_n(x)| where the recurrence or trigonometric form cancels (0 where it does not): the
    rounding differences (PyTorch's compiled kernel fuses multiply-adds) are relative to it."""
    x, n = x.astype(float), np.maximum(np.trunc(np.nan_to_num(n.astype(float), posinf=0, neginf=0)), 0)
    y = 2 * x - 1 if name.startswith("shifted") else x
    inside = np.abs(y) <= 1
    lgamma = np.vectorize(math.lgamma)
    with np.errstate(over="ignore"):
        if "chebyshev" in name:
            return np.where(inside, {"t": 1.0, "u": n + 1, "v": 2 * n + 1, "w": 2 * n + 1}[name[-1]], 0.0)
        if name == "legendre_polynomial_p":
            return np.where(inside, 1.0, 0.0)
        if name == "laguerre_polynomial_l":
            return np.where(x > 0, np.exp(x / 2), 0.0)  # (|L_n(x)| <= e^{x/2} for x >= 0)
        # (Cramér's inequality: |H_n(x)| < 1.09 sqrt(2^n n!) e^{x^2/2}, He_n(x) = 2^{-n/2} H_n(x/sqrt 2))
        if name == "hermite_polynomial_he":
            return 1.09 * np.exp(0.5 * lgamma(n + 1) + x * x / 4)
        return 1.09 * np.exp(0.5 * (n * math.log(2) + lgamma(n + 1)) + x * x / 2)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_values_match_torch(name, dtype):
    with np.errstate(over="ignore"):
        x, n = (a.astype(dtype) for a in np.meshgrid(X, DEGREES, indexing="ij"))
    ours, ref = _both(name, x, n)
    ours, ref = ours.data, ref.numpy()
    assert ours.dtype == ref.dtype == dtype
    # near the overflow threshold the last rounding decides between a huge value, inf, and NaN (inf - inf)
    big = np.finfo(dtype).max * 1e-3
    huge_ours, huge_ref = ~np.isfinite(ours) | (np.abs(ours) > big), ~np.isfinite(ref) | (np.abs(ref) > big)
    np.testing.assert_array_equal(huge_ours, huge_ref)
    fine = ~huge_ref
    # (the recurrence's rounding grows with the degree: measured at most 6.1 degree ulps of the envelope)
    degree = np.maximum(np.nan_to_num(np.trunc(n.astype(float)), posinf=1, neginf=1), 1)
    with np.errstate(over="ignore"):
        scale = np.maximum(np.abs(ref), _envelope(name, x, n)) * degree * np.finfo(dtype).eps
    err = np.abs(ours[fine].astype(float) - ref[fine])
    assert (err <= 16 * scale[fine]).all(), np.max(err / scale[fine])


def test_the_special_cases_are_torchs_exactly():
    x = np.array([1.0, -1.0, 0.0, -0.0, 0.5, 1e-20, -1 + 2**-53, 1 - 2**-53, 2**-55, 1 - 2**-54, math.inf, -math.inf])
    n = np.concatenate([np.arange(-3, 2), np.arange(2, 30, 3), [5.0, 6.0, 7.0, 9.0, 300.0, 601.0, -0.9, 0.9, 1.9]])
    xx, nn = np.meshgrid(x, n, indexing="ij")
    for name in NAMES:
        ours, ref = _both(name, xx, nn)
        ours, ref = ours.data, ref.numpy()
        edge = (nn < 2) | ~np.isfinite(xx)  # (degree 0, 1, below 0: no arithmetic)
        if name.startswith("shifted"):
            edge |= (xx == 1) | (xx == 0)
        elif "chebyshev" in name or "legendre" in name:
            edge |= np.abs(xx) == 1
        elif "laguerre" in name:
            edge |= xx == 0
        np.testing.assert_array_equal(ours[edge], ref[edge], err_msg=name)
        # (the recurrences on integers: at 0, and at 2^-55, whose 2x - 1 rounds to -1, for the shifted ones)
        exact = (nn > 1) & (nn < 30) & ~edge & np.isin(xx, [2**-55] if name.startswith("shifted") else [0.0])
        if "chebyshev" in name or "legendre" in name:
            np.testing.assert_array_equal(ours[exact], ref[exact], err_msg=name)
    # the trigonometric forms' fallbacks, where their denominator rounds to 0 next to x = -1 / 1
    s = distnn.special
    v = s.chebyshev_polynomial_v(distnn.tensor(np.array([-1 + 2**-53])), 10).data  # (sin(acos(x)/2) rounds to 1)
    assert v[0] == 21.0 == torch.special.chebyshev_polynomial_v(torch.tensor([-1 + 2**-53]), 10).item()
    # (W's next to 1: 2n + 1, but the shifted kernel's +-1 by parity, reachable in float32 only)
    below_one = np.array([1 - 2**-24], np.float32)
    for name, value in (("shifted_chebyshev_polynomial_w", -1.0), ("chebyshev_polynomial_w", 23.0)):
        ours, ref = _both(name, below_one, 11)
        assert ours.data[0] == ref.item() == value
    assert s.chebyshev_polynomial_w(distnn.tensor(np.array([1 - 2**-53])), 11).data[0] == 23.0 == \
        torch.special.chebyshev_polynomial_w(torch.tensor([1 - 2**-53]), 11).item()


@pytest.mark.parametrize("name", ["hermite_polynomial_h", "hermite_polynomial_he"])
def test_hermite_is_nan_above_its_degree_limit(name):
    x = np.array([0.0, 0.5, -3.0, 1.0])
    for dtype, limit in ((np.float64, 512), (np.float32, 128)):
        ours, ref = _both(name, x.astype(dtype), np.full(4, limit + 1.0, dtype))
        assert np.isnan(ours.data).all() and np.isnan(ref.numpy()).all()
    ours, ref = _both(name, x, np.full(4, 129.0))  # (float64's limit is higher: finite there)
    assert np.isfinite(ours.data).all()
    np.testing.assert_allclose(ours.data, ref.numpy(), rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_degrees_truncate_and_non_finite_degrees_give_zero(name):
    x = np.array([0.25, 1.5, -2.0, 0.75])
    for n, whole in [(-0.5, 0), (0.5, 0), (1.99, 1), (2.9, 2), (5.5, 5)]:
        ours, ref = _both(name, x, n)
        np.testing.assert_allclose(ours.data, ref.numpy(), rtol=1e-14)  # (sin/cos: numpy's, not libm's)
        np.testing.assert_array_equal(ours.data, _both(name, x, whole)[0].data)
    for n in (math.inf, -math.inf, math.nan, 1e30, -1e30, -1, -7):
        ours, ref = _both(name, x, n)
        np.testing.assert_array_equal(ours.data, np.zeros(4))
        np.testing.assert_array_equal(ref.numpy(), np.zeros(4))


@pytest.mark.parametrize("name", NAMES)
def test_a_nan_x_gives_nan_from_degree_one(name):
    # (from degree 2 some of PyTorch's kernels return an uninitialised value at NaN: only degrees < 2 compared)
    ours, ref = _both(name, np.full(6, math.nan), np.array([-1.0, 0.0, 1.0, 2.0, 7.0, 40.0]))
    np.testing.assert_array_equal(ours.data, [0.0, 1.0] + [math.nan] * 4)
    np.testing.assert_array_equal(ref.numpy()[:3], [0.0, 1.0, math.nan])


@pytest.mark.parametrize("name", NAMES)
def test_broadcasting_numbers_and_dtype_promotion(name):
    rng = np.random.default_rng(3)
    x, n = rng.uniform(-1.5, 1.5, (3, 1)), np.array([0.0, 3.0, 9.0, 12.0])
    ours, ref = _both(name, x, n)
    assert ours.shape == tuple(ref.shape) == (3, 4)
    np.testing.assert_allclose(ours.data, ref.numpy(), rtol=1e-13, atol=1e-13)
    cases = [(x.astype(np.float32), n), (x, n.astype(np.float32)), (x.astype(np.float32), 7),
             (np.array([2, -1, 0]), np.array([3, 2, 5])), (np.array([True, False]), np.array([4])),
             (0.3, np.array([3, 9])), (0.3, n), (np.array([1, 2]), 2.5), (x.astype(np.float32), np.array(5.0)),
             (np.array(0.5), np.array([1.0, 7.0, 10.0]))]
    for a, b in cases:
        ours, ref = _both(name, a, b)
        assert ours.dtype == ref.numpy().dtype and ours.shape == tuple(ref.shape), (a, b)
        np.testing.assert_allclose(ours.data, ref.numpy(), rtol=2e-6, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_no_derivative_and_refusals(name):
    fn, torch_fn = getattr(distnn.special, name), getattr(torch.special, name)
    x = np.array([[0.3, 1.7], [-0.4, 2.5]])
    for grad_x, grad_n in ((True, False), (False, True), (True, True)):
        d, t = distnn.tensor(x, requires_grad=grad_x), torch.tensor(x, requires_grad=grad_x)
        dn, tn = distnn.tensor(np.full(2, 4.0), requires_grad=grad_n), torch.tensor(np.full(2, 4.0),
                                                                                 requires_grad=grad_n)
        y, ty = fn(d, dn), torch_fn(t, tn)
        assert not ty.requires_grad and not y.requires_grad and y.grad_fn is None  # (PyTorch's: no derivative)
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-14)
        with pytest.raises(RuntimeError):
            y.sum().backward()
    with pytest.raises(TypeError, match="invalid combination of arguments - got \\(float, int\\)"):
        fn(0.5, 3)
    with pytest.raises(TypeError, match="invalid combination of arguments"):
        torch_fn(0.5, 3)
    with pytest.raises(TypeError, match="str"):
        fn("a", distnn.tensor(np.ones(2)))
    with pytest.raises(NotImplementedError, match="float16"):
        fn(distnn.tensor(np.ones(2, np.float16)), 2)
    with pytest.raises(NotImplementedError):
        torch_fn(torch.ones(2, dtype=torch.float16), 2)
    with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size of tensor b \(4\)"):
        fn(distnn.tensor(np.ones(3)), distnn.tensor(np.ones(4)))
    assert not hasattr(distnn.Tensor, name) and not hasattr(torch.Tensor, name) and not hasattr(torch, name)


def test_large_degrees_are_vectorized_over_elements():
    # 100,000 elements of degree up to 600: whole-array steps (a per-element Python loop would take minutes)
    x = np.linspace(-1.2, 1.2, 100_000)
    n = np.tile(np.array([600.0, 3.0, 17.0, 250.0]), 25_000)
    ours, ref = _both("legendre_polynomial_p", x, n)
    np.testing.assert_allclose(ours.data, ref.numpy(), rtol=1e-10, atol=1e-11)


def test_every_torch_special_function_is_in_distnn_special():
    names = {n for n in dir(torch.special) if not n.startswith("_") and callable(getattr(torch.special, n))}
    missing = sorted(n for n in names - {"Tensor"} if not hasattr(distnn.special, n))
    assert missing == [] and set(NAMES + ["airy_ai"]) <= set(distnn.special.__all__)
