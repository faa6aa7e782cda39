"""float64 into float16 against torch 2.13 (the oracle), bit for bit: PyTorch rounds to float32 first, then to float16.

``c10::Half`` is made from a float only, so every float64 (a double tensor, a Python float) that becomes a float16
is rounded twice; numpy's cast rounds once. The draws are float64 values within a float32 rounding of a float16 tie
(normal and subnormal float16s, either sign, the 65520 overflow boundary), where the two roundings differ, beside
ordinary values, zeros, infs and NaN: every cast path (``half``, ``to``, ``type``, ``copy_``, the constructors,
writes, ``out=``, a ``dtype=`` argument, the gradient of ``double()``) and the ops that take a Python float into a
float16 tensor's dtype (``fill_``, ``full``, ``masked_fill``, ``where``, ``clamp``, ``+``/``-`` and their in-place
forms).
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import distnn  # noqa: E402
from distnn.autograd.half_rounding import to_half  # noqa: E402

F16 = np.float16


def near_ties(seed=0, count=400):
    """float64 values that round to float16 differently once (numpy) and through float32 (PyTorch), and others."""
    rng = np.random.default_rng(seed)
    halves = np.concatenate([rng.standard_normal(count // 2).astype(F16),  # (normal float16s)
                             (rng.integers(1, 1023, count // 2) * 2.0 ** -24).astype(F16)])  # (subnormals)
    halves = np.abs(halves[np.isfinite(halves)]) * rng.choice(np.array([-1, 1], F16), halves.size)
    up = np.nextafter(halves, np.copysign(F16(np.inf), halves))
    ties = (halves.astype(np.float64) + up.astype(np.float64)) / 2
    # (a nudge below float32's half step: float32 rounds it back onto the tie, float16 then rounds to even)
    nudge = np.abs(ties) * 2.0 ** -rng.integers(26, 40, ties.size) * rng.choice([-1.0, 1.0], ties.size)
    edges = np.array([65519.99999, 65520.000001, -65520.000001, 2.0 ** -25 + 2.0 ** -60, -(2.0 ** -25 + 2.0 ** -60),
                      1 + 2.0 ** -11 + 2.0 ** -40, 0.0, -0.0, np.inf, -np.inf, np.nan, 1e300, -1e-300, 0.1, 3.0])
    return np.concatenate([ties + nudge, ties, edges])


X = near_ties()


def assert_bitwise(got, want):
    got = np.asarray(got.data if isinstance(got, distnn.Tensor) else got)
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.dtype == F16 and want.dtype == F16 and got.shape == want.shape
    np.testing.assert_array_equal(got.view(np.uint16), want.view(np.uint16))


def test_draws_are_where_one_rounding_differs():
    # (the test's premise: without it every check below would pass on a single rounding too)
    with np.errstate(over="ignore"):
        differ = X.astype(F16).view(np.uint16) != X.astype(np.float32).astype(F16).view(np.uint16)
    assert differ.sum() > 150


@pytest.mark.parametrize("how", ["half", "to", "type", "type_name"])
def test_float64_tensor_to_float16_as_torch(how):
    def convert(t, lib):
        name = "distnn.HalfTensor" if lib is distnn else "torch.HalfTensor"
        return {"half": lambda: t.half(), "to": lambda: t.to(lib.float16), "type": lambda: t.type(lib.float16),
                "type_name": lambda: t.type(name)}[how]()

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (PyTorch's casts warn of nothing, overflow included)
        got = convert(distnn.tensor(X), distnn)
    assert_bitwise(got, convert(torch.tensor(X), torch))


def test_complex128_to_float16_takes_the_real_part_as_torch():
    z = X + 1j * X[::-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (both warn that the imaginary part is discarded)
        assert_bitwise(distnn.tensor(z).to(distnn.float16), torch.tensor(z).to(torch.float16))


def test_copy_into_float16_as_torch():
    want = torch.zeros(X.size, dtype=torch.float16).copy_(torch.tensor(X))
    assert_bitwise(distnn.zeros(X.size, dtype=distnn.float16).copy_(distnn.tensor(X)), want)
    assert_bitwise(distnn.zeros(X.size, dtype=distnn.float16).copy_(X), want)  # (an array source)
    # (broadcast from a row, into a transposed destination)
    t_dst = torch.zeros(X.size, 3, dtype=torch.float16).t()
    t_dst.copy_(torch.tensor(X))
    d_dst = distnn.zeros(X.size, 3, dtype=distnn.float16).t()
    d_dst.copy_(distnn.tensor(X))
    assert_bitwise(d_dst, t_dst)


@pytest.mark.parametrize("make", ["tensor_array", "tensor_list", "as_tensor", "new_tensor"])
def test_float16_constructors_of_float64_data_as_torch(make):
    def build(lib):
        return {"tensor_array": lambda: lib.tensor(X, dtype=lib.float16),
                "tensor_list": lambda: lib.tensor(X.tolist(), dtype=lib.float16),
                "as_tensor": lambda: lib.as_tensor(X, dtype=lib.float16),
                "new_tensor": lambda: lib.zeros(2, dtype=lib.float16).new_tensor(X.tolist())}[make]()

    assert_bitwise(build(distnn), build(torch))


def test_float16_writes_of_float64_values_as_torch():
    for lib in (distnn, torch):
        whole = lib.zeros(X.size, dtype=lib.float16)
        whole[:] = lib.tensor(X)
        strided = lib.zeros(2 * X.size, dtype=lib.float16)
        strided[::2] = lib.tensor(X)
        added = lib.zeros(X.size, dtype=lib.float16)
        lib.add(lib.tensor(X), 0.0, out=added)
        if lib is distnn:
            got = (whole, strided, added)
        else:
            want = (whole, strided, added)
    for g, w in zip(got, want):
        assert_bitwise(g, w)


def test_float16_write_while_recording_as_torch():
    d = distnn.zeros(X.size, dtype=distnn.float16, requires_grad=True).clone()
    d[:] = distnn.tensor(X, requires_grad=True)
    t = torch.zeros(X.size, dtype=torch.float16, requires_grad=True).clone()
    t[:] = torch.tensor(X, requires_grad=True)
    assert_bitwise(d, t)


def test_sum_with_float16_dtype_of_float64_as_torch():
    for value in X[:200]:
        x = np.array([value])
        assert_bitwise(distnn.tensor(x).sum(dtype=distnn.float16), torch.tensor(x).sum(dtype=torch.float16))


def test_gradient_cast_back_to_float16_as_torch():
    # (double()'s backward casts the float64 gradient to float16: PyTorch's ToCopyBackward0, rounded twice)
    h = X[np.isfinite(X)].astype(F16)
    scale = np.where(np.isfinite(X), X, 1.0)[np.isfinite(X)]
    d = distnn.tensor(h, requires_grad=True)
    (d.double() * distnn.tensor(scale)).sum().backward()
    t = torch.tensor(h, requires_grad=True)
    (t.double() * torch.tensor(scale)).sum().backward()
    assert_bitwise(d.grad, t.grad)


# (finite numbers past 65504 left out: PyTorch refuses some in some ops, "value cannot be converted to type
# c10::Half without overflow", where distnn writes inf: a refusal, not a rounding)
NUMBERS = [float(v) for v in X[::3] if not abs(v) > 65504 or np.isinf(v)]


@pytest.mark.parametrize("op", ["fill_", "full", "full_like", "new_full", "new_full_dtype", "setitem", "masked_fill", "where", "clamp_min", "clamp_max",
                                "clamp_method", "add", "radd", "sub", "rsub", "iadd", "add_", "sub_"])
def test_python_float_into_float16_as_torch(op):
    h = np.random.default_rng(1).standard_normal(64).astype(F16)

    def run(lib, s):
        x = lib.tensor(h)
        return {"fill_": lambda: x.clone().fill_(s), "full": lambda: lib.full((3,), s, dtype=lib.float16),
                "full_like": lambda: lib.full_like(x, s), "new_full": lambda: x.new_full((3,), s),
                "new_full_dtype": lambda: lib.zeros(2).new_full((3,), s, dtype=lib.float16),
                "setitem": lambda: (x.__setitem__(slice(0, 9), s), x)[1],
                "masked_fill": lambda: x.masked_fill(x > 0, s), "where": lambda: lib.where(x > 0, x, s),
                "clamp_min": lambda: lib.clamp(x, min=s), "clamp_max": lambda: lib.clamp(x, max=s),
                "clamp_method": lambda: x.clamp(min=s), "add": lambda: x + s, "radd": lambda: s + x,
                "sub": lambda: x - s, "rsub": lambda: s - x, "iadd": lambda: x.__iadd__(s),
                "add_": lambda: x.add_(s), "sub_": lambda: x.sub_(s)}[op]()

    with np.errstate(all="ignore"):
        for s in NUMBERS:
            assert_bitwise(run(distnn, s), run(torch, s))


def test_to_half_of_float64_rounds_as_torch():
    # (the float16 path of half_rounding.to_half: its tiny-value branch, 256 values and up, and the plain cast)
    tiny = near_ties(2, 2000)
    tiny = tiny[np.abs(tiny) < 2.0 ** -14]
    for values in (X, tiny, X[:10]):
        assert_bitwise(to_half(values), torch.tensor(values).half())
