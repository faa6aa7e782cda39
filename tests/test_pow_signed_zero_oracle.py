"""pow at -0.0, ±inf, NaN, 0, ±1 against PyTorch, bit for bit (the sign of a zero, where NaN and inf fall),
forward and both gradients, in every form: ``t ** 0.5`` (a number exponent: PyTorch's sqrt, rsqrt, square
forms), ``t ** tensor`` (0-d or not), ``number ** t``, ``tensor ** t``, ``distnn.pow`` and ``Tensor.pow``
(C's pow: ``pow(-0.0, 0.5)`` is +0.0), ``sqrt``; the gradients with ``create_graph=True`` too.

distnn's ``t ** tensor(0.5)`` gave -0.0 at -0.0 and NaN at -inf (numpy's power takes sqrt for a broadcast
exponent 0.5), its exponent gradient was 0 for a base <= 0 (PyTorch: NaN for a negative base, ``a^b log a`` at
0 for b < 0) and its base gradient ``-0.0 * 1.5`` where PyTorch's is +0.0."""
import numpy as np
import pytest

import distnn
from distnn import Tensor, autograd

SPECIAL = np.array([-0.0, 0.0, -1.0, 1.0, 4.0, -np.inf, np.inf, np.nan])
EXPONENTS = [0.5, 1.5, -0.5, 2.0, 3.0, 1.0, 0.0, -1.0, -2.0, 0.25, np.inf, -np.inf]
BASES = [0.0, -0.0, 2.0, -0.5, 1.0, -1.0]

# (name, f(lib, t, c) -> tensor): t the tensor (requires grad), c the number (an exponent or a base)
FORMS = {
    "tensor ** number": lambda L, t, c: t ** c,
    "tensor.pow(number)": lambda L, t, c: t.pow(c),
    "pow(tensor, number)": lambda L, t, c: L.pow(t, c),
    "tensor ** 0-d tensor": lambda L, t, c: t ** L.tensor(c, dtype=t.dtype),
    "tensor ** tensor": lambda L, t, c: t ** L.full(tuple(t.shape), c, dtype=t.dtype),
    "pow(tensor, 0-d tensor)": lambda L, t, c: L.pow(t, L.tensor(c, dtype=t.dtype)),
    "number ** tensor": lambda L, t, c: c ** t,
    "pow(number, tensor)": lambda L, t, c: L.pow(c, t),
    "0-d tensor ** tensor": lambda L, t, c: L.tensor(c, dtype=t.dtype) ** t,
}
BASE_FORMS = {"number ** tensor", "pow(number, tensor)", "0-d tensor ** tensor"}


def _assert_same_bits(ours, theirs, what):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.dtype == theirs.dtype, what
    nan = np.isnan(theirs)
    np.testing.assert_array_equal(np.isnan(ours), nan, err_msg=f"{what}: NaN positions")
    np.testing.assert_array_equal(ours[~nan], theirs[~nan], err_msg=what)
    np.testing.assert_array_equal(np.signbit(ours[~nan]), np.signbit(theirs[~nan]), err_msg=f"{what}: signs")


def _run(lib, torch, form, c, dtype, create_graph):
    """(value, gradient of sum(f * u) in the tensor, and in the 0-d tensor where the form has one)."""
    mod, make = (distnn, lambda a: Tensor(a, requires_grad=True)) if lib == "distnn" else (
        torch, lambda a: torch.tensor(a, requires_grad=True))
    t = make(SPECIAL.astype(dtype))
    u = np.linspace(-1.5, 2.0, SPECIAL.size).astype(dtype)  # (negative weights: the gradient's zeros get signs)
    out = FORMS[form](mod, t, c)
    y = (out * (Tensor(u) if lib == "distnn" else torch.tensor(u))).sum()
    grad = autograd.grad if lib == "distnn" else torch.autograd.grad
    g, = grad(y, t, create_graph=create_graph)
    arrays = [out, g]
    return [np.array(a.data if lib == "distnn" else a.detach().numpy()) for a in arrays]


@pytest.mark.parametrize("create_graph", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("form", list(FORMS))
def test_pow_matches_torch_bit_for_bit_at_special_values(torch, form, dtype, create_graph):
    for c in (BASES if form in BASE_FORMS else EXPONENTS):
        with np.errstate(all="ignore"):
            ours = _run("distnn", torch, form, c, dtype, create_graph)
        theirs = _run("torch", torch, form, c, dtype, create_graph)
        _assert_same_bits(ours[0], theirs[0], f"{form}, c={c}: value")
        _assert_same_bits(ours[1], theirs[1], f"{form}, c={c}: gradient")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tensor_to_tensor_power_gradients_of_both_match_torch(torch, dtype):
    """Base and exponent tensors both requiring grad, every pair of special values (broadcast)."""
    a0 = SPECIAL.astype(dtype)[:, None]
    b0 = np.array([0.5, 1.5, -0.5, 0.0, 2.0, -1.0, np.nan, np.inf], dtype=dtype)[None, :]
    results = []
    for lib in ("distnn", "torch"):
        make = (lambda x: Tensor(x, requires_grad=True)) if lib == "distnn" else (
            lambda x: torch.tensor(x, requires_grad=True))
        a, b = make(a0), make(b0)
        out = a ** b
        grad = autograd.grad if lib == "distnn" else torch.autograd.grad
        with np.errstate(all="ignore"):
            ga, gb = grad(out.sum(), (a, b))
        results.append([np.array(x.data if lib == "distnn" else x.detach().numpy()) for x in (out, ga, gb)])
    for what, o, t in zip(("value", "base gradient", "exponent gradient"), *results):
        _assert_same_bits(o, t, what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sqrt_matches_torch_at_signed_zeros(torch, dtype):
    x = SPECIAL.astype(dtype)
    t, d = torch.tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    t.sqrt().sum().backward()
    d.sqrt().sum().backward()
    _assert_same_bits(distnn.sqrt(Tensor(x)).data, torch.sqrt(torch.tensor(x)).numpy(), "sqrt")
    _assert_same_bits(d.grad.data, t.grad.numpy(), "sqrt's gradient")


@pytest.mark.parametrize("form", ["tensor ** number", "tensor.pow(number)", "pow(tensor, number)"])
def test_float16_number_exponent_takes_c_pow_as_torch(torch, form):
    """PyTorch's float16 pow(Tensor, Scalar) is C's pow for every exponent (its sqrt/rsqrt forms are for the other
    float dtypes): ``(-0.0) ** 0.5`` is +0.0, ``(-inf) ** -0.5`` +0.0; in the gradient too (``x ** 1.5``'s reads
    ``x ** 0.5``). distnn took sqrt/rsqrt for float16 as for float32: -0.0 and NaN there."""
    for c in EXPONENTS:
        with np.errstate(all="ignore"):
            ours = _run("distnn", torch, form, c, np.float16, False)
        theirs = _run("torch", torch, form, c, np.float16, False)
        _assert_same_bits(ours[0], theirs[0], f"{form}, c={c}: value")
        _assert_same_bits(ours[1], theirs[1], f"{form}, c={c}: gradient")
