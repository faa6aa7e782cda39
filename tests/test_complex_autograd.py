"""Complex autograd against PyTorch (the oracle): the same inputs, values and gradients compared, PyTorch's
convention (``L = |z|^2`` gives ``2z``); mixed real/complex operands (the real one gets a real gradient), chains,
second order, accumulation into a complex leaf, finite differences, and the refusal of the ops not covered."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import distnn as dn

_RNG = np.random.default_rng(7)
Z1 = _RNG.standard_normal((3, 4)) + 1j * _RNG.standard_normal((3, 4))
Z2 = _RNG.standard_normal((3, 4)) + 1j * _RNG.standard_normal((3, 4))
R1 = _RNG.standard_normal((3, 4))
SQ = _RNG.standard_normal((4, 4)) + 1j * _RNG.standard_normal((4, 4))
TOL = {np.complex128: dict(rtol=1e-10, atol=1e-12), np.complex64: dict(rtol=2e-4, atol=2e-5)}
REAL_OF = {np.complex128: np.float64, np.complex64: np.float32}


def _np(t):
    return t.detach().resolve_conj().numpy()


def _run(fn, arrays, dtype):
    """fn(module, *leaves) for distnn and torch from the same arrays: (value, grads) of each. A complex
    result is reduced to a real loss with a fixed complex weight; a real one summed."""
    out = {}
    for m in (dn, torch):
        leaves = [m.tensor(a.astype(dtype if a.dtype.kind == "c" else REAL_OF[dtype]), requires_grad=True)
                  for a in arrays]
        y = fn(m, *leaves)
        w = np.linspace(0.5, 1.5, y.numel()).reshape(tuple(y.shape))
        if y.dtype in (dn.complex64, dn.complex128, torch.complex64, torch.complex128):
            w = w * (1 - 0.7j)
        loss = (y * m.tensor(w.astype(dtype if y.is_complex() else REAL_OF[dtype]))).real.sum() if y.is_complex() \
            else (y * m.tensor(w.astype(REAL_OF[dtype]))).sum()
        loss.backward()
        out[m] = (_np(y) if m is torch else np.asarray(y.data),
                  [_np(x.grad) if m is torch else np.asarray(x.grad) for x in leaves])
    return out[dn], out[torch]


def _check(fn, arrays, dtype, tol=None):
    (v, gs), (tv, tgs) = _run(fn, arrays, dtype)
    tol = tol or TOL[dtype]
    assert v.dtype == tv.dtype, (v.dtype, tv.dtype)
    np.testing.assert_allclose(v, tv, **tol)
    for g, tg, a in zip(gs, tgs, arrays):
        assert g.dtype == tg.dtype, (g.dtype, tg.dtype)  # (a real leaf gets a real gradient, as torch's)
        np.testing.assert_allclose(g, tg, **tol)


UNARY = {
    "neg": lambda m, z: -z,
    "conj": lambda m, z: z.conj(),
    "conj_physical": lambda m, z: m.conj_physical(z),
    "real": lambda m, z: z.real,
    "imag": lambda m, z: z.imag,
    "abs": lambda m, z: z.abs(),
    "angle": lambda m, z: m.angle(z),
    "sgn": lambda m, z: m.sgn(z),
    "exp": lambda m, z: m.exp(z),
    "log": lambda m, z: m.log(z),
    "sqrt": lambda m, z: m.sqrt(z),
    "sin": lambda m, z: m.sin(z),
    "cos": lambda m, z: m.cos(z),
    "tan": lambda m, z: m.tan(z),
    "tanh": lambda m, z: m.tanh(z),
    "sinh": lambda m, z: m.sinh(z),
    "cosh": lambda m, z: m.cosh(z),
    "square": lambda m, z: m.square(z),
    "reciprocal": lambda m, z: m.reciprocal(z),
    "rdiv": lambda m, z: 2.5 / z,
    "pow_real_number": lambda m, z: z ** 2.5,
    "pow_int_number": lambda m, z: z ** 3,
    "pow_complex_number": lambda m, z: z ** (0.5 + 1j),
    "number_base": lambda m, z: 2.0 ** z,
    "sum": lambda m, z: z.sum(0),
    "mean": lambda m, z: z.mean(1, keepdim=True),
    "reshape_view_flatten": lambda m, z: z.reshape(4, 3).view(2, 6).flatten(),
    "transpose_permute": lambda m, z: z.transpose(0, 1).permute(1, 0).T,
    "expand_squeeze": lambda m, z: z.unsqueeze(0).expand(2, 3, 4).squeeze(),
    "index": lambda m, z: z[1:, ::2] + z[[0, 0, 2]][:, 1:3].sum(0),
    "clone": lambda m, z: z.clone() * z.detach(),
    "view_as_real": lambda m, z: m.view_as_real(z),
    "vdot": lambda m, z: m.vdot(z[0], z[1]),
    "dot": lambda m, z: m.dot(z[0], z[2]),
    "to_complex64": lambda m, z: z.to(m.complex64),
}
BINARY = {
    "add": lambda m, a, b: a + b,
    "sub": lambda m, a, b: a - b,
    "mul": lambda m, a, b: a * b,
    "div": lambda m, a, b: a / b,
    "pow": lambda m, a, b: a ** b,
    "matmul": lambda m, a, b: a @ b.T,
    "mm": lambda m, a, b: m.mm(a.T, b),
    "bmm": lambda m, a, b: m.bmm(a.reshape(3, 2, 2), b.reshape(3, 2, 2)),
    "cat_stack": lambda m, a, b: m.cat([a, b], 1) * m.stack([a, b]).sum(0).repeat(1, 2),
}


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_ops_match_torch(name, dtype):
    # (through complex64, torch rounds the gradient to complex64 on the way back, distnn keeps complex128)
    _check(UNARY[name], [Z1], dtype, TOL[np.complex64] if name == "to_complex64" else None)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_ops_match_torch(name, dtype):
    _check(BINARY[name], [Z1, Z2], dtype)


@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow"])
def test_a_real_operand_gets_a_real_gradient(name):
    # (R1 + 2: a positive real base, so torch's log of it is the real one for a complex exponent)
    _check(BINARY[name], [Z1, R1 + 2], np.complex128)
    _check(BINARY[name], [R1 + 2, Z1], np.complex128)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_complex_polar_view_as_complex_and_casts_from_real(dtype):
    _check(lambda m, x, y: m.complex(x, y) * m.polar(y.abs(), x), [R1, R1[::-1].copy()], dtype)
    _check(lambda m, x: m.view_as_complex(m.stack([x, x * x], -1)).exp(), [R1], dtype)
    _check(lambda m, x, z: x.to(z.dtype) * z, [R1, Z1], dtype)
    _check(lambda m, z: z.abs().to(z.dtype) * z, [Z1], dtype)


def test_chain_of_power_spectrum_of_a_dft_matrix_product():
    n = 4
    k = np.arange(n)
    dft = np.exp(-2j * np.pi * np.outer(k, k) / n)

    def spectrum(m, z, x):
        f = m.tensor(dft)
        y = f @ (z * x.to(z.dtype))  # (a real leaf scaling a complex one)
        return (y.abs() ** 2).sum(0).sqrt() + m.angle(y).mean(0)

    _check(spectrum, [SQ, np.abs(SQ.real) + 0.5], np.complex128)


def test_abs_squared_gives_two_z_and_accumulates_in_a_complex_leaf():
    z = dn.tensor(Z1, requires_grad=True)
    (z.abs() ** 2).sum().backward()
    np.testing.assert_allclose(z.grad, 2 * Z1)
    (z * z.conj()).real.sum().backward()  # (the same loss again: added into the complex .grad)
    assert z.grad.dtype == np.complex128
    np.testing.assert_allclose(z.grad, 4 * Z1)


def test_autograd_grad_and_finite_differences_on_real_and_imaginary_parts():
    def loss(z):
        return (dn.sin(z) * z.conj() / (z + 3)).abs().sum() + dn.angle(z.exp()).sum()

    z = dn.tensor(Z1, requires_grad=True)
    (g,) = dn.autograd.grad(loss(z), z)
    eps = 1e-6
    numeric = np.zeros_like(Z1)
    for idx in np.ndindex(Z1.shape):
        for unit in (1, 1j):  # dL/dx + i dL/dy, PyTorch's convention
            d = np.zeros_like(Z1)
            d[idx] = eps * unit
            slope = (float(loss(dn.tensor(Z1 + d)).data) - float(loss(dn.tensor(Z1 - d)).data)) / (2 * eps)
            numeric[idx] += slope * unit
    np.testing.assert_allclose(g.data, numeric, rtol=1e-6, atol=1e-7)


def test_second_order_matches_torch():
    def first(m, z, w, create):
        y = (z * w).exp() - z * z.conj() + (z - w).sum()
        loss = (y.real * y.imag).sum()
        return m.autograd.grad(loss, z, create_graph=create)[0]

    outs = []
    for m in (dn, torch):
        z, w = m.tensor(Z1, requires_grad=True), m.tensor(Z2, requires_grad=True)
        g = first(m, z, w, True)
        gz, gw = m.autograd.grad((g * g.conj()).real.sum(), (z, w))
        outs.append([_np(t) if m is torch else np.asarray(t.data) for t in (g, gz, gw)])
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_backward_on_a_complex_output_needs_an_explicit_gradient_as_torch():
    for m in (dn, torch):
        y = (m.tensor(Z1[0, 0], requires_grad=True) * 2)
        with pytest.raises(RuntimeError, match="grad can be implicitly created only for real scalar outputs"):
            y.backward()
        with pytest.raises(RuntimeError, match="grad can be implicitly created only for real scalar outputs"):
            m.autograd.grad(y, y)
    z = dn.tensor(Z1, requires_grad=True)
    (z * 2).backward(dn.tensor(np.full(Z1.shape, 1 - 1j)))
    tz = torch.tensor(Z1, requires_grad=True)
    (tz * 2).backward(torch.tensor(np.full(Z1.shape, 1 - 1j)))
    np.testing.assert_allclose(z.grad, tz.grad.numpy())


@pytest.mark.parametrize("call", [
    lambda z: z.prod(),
    lambda z: dn.arcsin(z),
    lambda z: z.var(),
    lambda z: dn.sigmoid(z),
    lambda z: dn.log1p(z),
    lambda z: dn.cumsum(z, 0),
], ids=["prod", "asin", "var", "sigmoid", "log1p", "cumsum"])
def test_ops_without_complex_autograd_refuse_by_name(call):
    z = dn.tensor(Z1, requires_grad=True)
    with pytest.raises(NotImplementedError, match="does not support complex autograd"):
        call(z)
    with dn.no_grad():
        call(z)  # (no graph: computed as before)
    call(z.detach())


def test_a_real_input_into_an_uncovered_complex_result_refuses():
    x = dn.tensor(R1, requires_grad=True)
    with pytest.raises(NotImplementedError, match="its result is complex"):
        dn.arcsin(x * 1j)


def test_second_order_through_an_op_without_a_complex_double_backward_refuses():
    z = dn.tensor(Z1, requires_grad=True)
    loss = (dn.sin(z) * z).real.sum()
    with pytest.raises(NotImplementedError, match="Sin .* has no complex double backward"):
        dn.autograd.grad(loss, z, create_graph=True)


def test_requires_grad_on_integers_still_refused_and_complex_allowed():
    with pytest.raises(TypeError, match="only floating-point and complex tensors can require gradients"):
        dn.tensor([1, 2], requires_grad=True)
    assert dn.tensor(Z1, requires_grad=True).requires_grad


@pytest.mark.parametrize("kw", [dict(lr=0.1), dict(lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)])
def test_sgd_steps_a_complex_parameter_as_torch(kw):
    res = []
    for m in (dn, torch):
        p = m.nn.Parameter(m.tensor(Z1[0]))
        opt = m.optim.SGD([p], **kw)
        for _ in range(3):
            opt.zero_grad()
            ((p * p.conj()).real.sum() + (p * (1 + 1j)).real.sum()).backward()
            opt.step()
        res.append(_np(p) if m is torch else np.asarray(p.data))
    np.testing.assert_allclose(res[0], res[1], rtol=1e-12)


def test_optimizers_that_square_the_gradient_refuse_complex_parameters():
    p = dn.nn.Parameter(dn.tensor(Z1[0]))
    for opt in (dn.optim.Adam, dn.optim.RMSprop, dn.optim.Adagrad):
        with pytest.raises(NotImplementedError, match=f"{opt.__name__} does not support complex parameters"):
            opt([p], lr=0.1)


@pytest.mark.parametrize("name", ["mH", "adjoint", "H"])
@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_conjugate_transposes_conjugate_complex_tensors_as_torch(name, dtype):
    take = {"mH": lambda z: z.mH, "adjoint": lambda z: z.adjoint(), "H": lambda z: z.H}[name]
    _check(lambda m, z: take(z) @ z, [SQ], dtype)
    real = dn.tensor(R1)
    assert np.array_equal(np.asarray(take(real).data), R1.T)  # (a real tensor's: the transpose)
