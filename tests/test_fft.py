"""distnn.fft against torch.fft (the oracle): the same inputs, values, dtypes and gradients (a real input gets a
real gradient) for every transform over shapes, n/s padding and trimming, dims, the three norms and odd/even
lengths; second order; finite differences; the refusals; fftfreq/rfftfreq and the shifts."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import distnn as dn

_RNG = np.random.default_rng(3)
R = _RNG.standard_normal((4, 6))  # even last length
R_ODD = _RNG.standard_normal((3, 5))
C = _RNG.standard_normal((4, 6)) + 1j * _RNG.standard_normal((4, 6))
C_ODD = _RNG.standard_normal((3, 5)) + 1j * _RNG.standard_normal((3, 5))
C3 = _RNG.standard_normal((2, 3, 5)) + 1j * _RNG.standard_normal((2, 3, 5))
TOL = {np.float64: dict(rtol=1e-10, atol=1e-11), np.float32: dict(rtol=2e-4, atol=2e-5)}
NORMS = [None, "backward", "ortho", "forward"]
ONE_D = ["fft", "ifft", "rfft", "irfft", "hfft", "ihfft"]
N_D = ["fft2", "ifft2", "fftn", "ifftn", "rfft2", "irfft2", "rfftn", "irfftn", "hfft2", "ihfft2", "hfftn", "ihfftn"]
REAL_ONLY = ("rfft", "ihfft")  # (and their 2-D and N-D forms)


def _np(t):
    return t.detach().resolve_conj().numpy() if isinstance(t, torch.Tensor) else np.asarray(getattr(t, "data", t))


def _run(fn, arrays, precision=np.float64):
    """fn(module, *leaves) on distnn and torch: (value, grads) of each. A complex result is reduced to a real
    loss with a fixed complex weight (so both its parts matter), a real one with a real weight."""
    out = []
    for m in (dn, torch):
        leaves = [m.tensor(a.astype(precision if a.dtype.kind == "f" else np.result_type(precision, 1j)),
                           requires_grad=True) for a in arrays]
        y = fn(m, *leaves)
        w = np.linspace(0.5, 1.5, y.numel()).reshape(tuple(y.shape)).astype(precision)
        loss = (y * m.tensor(w * (1 - 0.7j))).real.sum() if y.is_complex() else (y * m.tensor(w)).sum()
        loss.backward()
        out.append((_np(y), [_np(x.grad) for x in leaves]))
    return out


def _check(fn, arrays, precision=np.float64):
    (v, gs), (tv, tgs) = _run(fn, arrays, precision)
    assert v.dtype == tv.dtype and v.shape == tv.shape, (v.dtype, tv.dtype, v.shape, tv.shape)
    np.testing.assert_allclose(v, tv, **TOL[precision])
    for g, tg in zip(gs, tgs):
        assert g.dtype == tg.dtype, (g.dtype, tg.dtype)  # (a real input's gradient is real, as torch's)
        np.testing.assert_allclose(g, tg, **TOL[precision])


def _inputs(name):
    return [R, R_ODD] if name.startswith(REAL_ONLY) else [R, R_ODD, C, C_ODD]


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", ONE_D)
def test_one_dimensional_transforms_match_torch(name, norm):
    for x in _inputs(name):
        for n in (None, 1, 3, 4, 5, 9, 12):  # (trimmed and zero-padded, odd and even)
            for dim in (-1, 0):
                _check(lambda m, t: getattr(m.fft, name)(t, n=n, dim=dim, norm=norm), [x])


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("name", N_D)
def test_multi_dimensional_transforms_match_torch(name, norm):
    for x in _inputs(name) + ([] if name.startswith(REAL_ONLY) else [C3]):
        for s in (None, (3, 7), (-1, 4), (5, -1), (2, 2)):
            for dim in (None, (0, 1), (1, 0), (-1, -2)):
                if name.endswith("2") and dim is None:
                    continue
                kw = dict(s=s, norm=norm) if dim is None else dict(s=s, dim=dim, norm=norm)
                _check(lambda m, t: getattr(m.fft, name)(t, **kw), [x])


@pytest.mark.parametrize("name", ["fftn", "ifftn", "rfftn", "irfftn", "hfftn", "ihfftn"])
def test_n_dimensional_defaults_single_dims_and_three_dims(name):
    x = C3 if not name.startswith(REAL_ONLY) else C3.real.copy()
    for kw in (dict(), dict(dim=1), dict(dim=(-3, -1)), dict(s=(4,)), dict(s=(2, 4, 6)), dict(dim=(2, 0, 1))):
        _check(lambda m, t: getattr(m.fft, name)(t, **kw), [x])


@pytest.mark.parametrize("name", ONE_D + ["fft2", "rfftn", "irfftn", "hfft2", "ihfftn"])
def test_float32_and_complex64_match_torch_loosely(name):
    for x in _inputs(name):
        _check(lambda m, t: getattr(m.fft, name)(t, norm="ortho"), [x], precision=np.float32)


def test_dtypes_follow_torch_integers_promoted_half_refused():
    for a in (np.arange(6), np.array([True, False, True]), np.arange(6, dtype=np.int32)):
        for name in ("fft", "rfft", "irfft", "hfft", "ihfft", "fftn"):
            assert getattr(dn.fft, name)(dn.tensor(a)).dtype == np.dtype(
                str(getattr(torch.fft, name)(torch.tensor(a)).dtype).replace("torch.", ""))
    with pytest.raises(RuntimeError, match="Unsupported dtype Half"):
        dn.fft.fft(dn.tensor(R.astype(np.float16)))
    old = dn.get_default_dtype()
    dn.set_default_dtype(dn.float64)
    try:
        assert dn.fft.fft(dn.tensor(np.arange(4))).dtype == np.complex128  # (the default dtype's complex)
    finally:
        dn.set_default_dtype(old)


def test_zero_dim_and_no_dim_fftn_give_the_input_as_complex_with_its_gradient():
    _check(lambda m, t: m.fft.fftn(t, dim=()), [R])
    _check(lambda m, t: m.fft.fftn(t), [np.array(2.5)])


def test_second_order_matches_torch():
    cases = [("fft", C, dict(n=9, norm="ortho")), ("fft", R, {}), ("rfft", R_ODD, dict(n=7)),
             ("irfft", C, dict(n=7)), ("hfft", C_ODD, dict(norm="forward")), ("ihfft", R, {}),
             ("rfftn", R, dict(s=(3, 8))), ("irfft2", C, {}), ("hfftn", C, dict(s=(5, 5))), ("ifft2", C3, {})]
    for name, x, kw in cases:
        outs = []
        for m in (dn, torch):
            t = m.tensor(x, requires_grad=True)
            y = getattr(m.fft, name)(t, **kw)
            loss = (y * y.conj()).real.sum() if y.is_complex() else (y * y * y).sum()
            g, = m.autograd.grad(loss, t, create_graph=True)
            gg, = m.autograd.grad((g * g.conj()).real.sum() if g.is_complex() else (g * g).sum(), t)
            outs.append([_np(g), _np(gg)])
        for a, b in zip(*outs):
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


def test_gradients_match_finite_differences():
    def loss(x):
        return (dn.fft.irfft(dn.fft.rfft(x, n=7) * dn.tensor(np.linspace(1, 2, 4) * (1 + 0.5j)), n=5) ** 2).sum()

    x = dn.tensor(R[0].copy(), requires_grad=True)
    loss(x).backward()
    eps = 1e-6
    numeric = np.array([(float(loss(dn.tensor(R[0] + eps * e)).data) - float(loss(dn.tensor(R[0] - eps * e)).data))
                        / (2 * eps) for e in np.eye(R.shape[1])])
    np.testing.assert_allclose(x.grad, numeric, rtol=1e-6, atol=1e-8)

    def closs(z):  # (a complex leaf: d/dRe + i d/dIm, PyTorch's convention)
        return dn.fft.hfft(dn.fft.fft(z, n=4), n=5).abs().sum()

    z = dn.tensor(C[0].copy(), requires_grad=True)
    closs(z).backward()
    numeric = np.zeros(C.shape[1], dtype=complex)
    for i in range(C.shape[1]):
        for unit in (1, 1j):
            d = np.zeros(C.shape[1], dtype=complex)
            d[i] = eps * unit
            slope = (float(closs(dn.tensor(C[0] + d)).data) - float(closs(dn.tensor(C[0] - d)).data)) / (2 * eps)
            numeric[i] += unit * slope
    np.testing.assert_allclose(z.grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("call, error, match", [
    (lambda m: m.fft.fft(m.tensor(R), dim=2), IndexError, "Dimension out of range"),
    (lambda m: m.fft.fft(m.tensor(R), n=0), RuntimeError, r"Invalid number of data points \(0\) specified"),
    (lambda m: m.fft.irfft(m.tensor(C), n=-2), RuntimeError, r"Invalid number of data points \(-2\) specified"),
    (lambda m: m.fft.irfft(m.tensor(np.ones(1, complex))), RuntimeError, r"Invalid number of data points \(0\)"),
    (lambda m: m.fft.fft(m.tensor(R), norm="bad"), RuntimeError, 'Invalid normalization mode: "bad"'),
    (lambda m: m.fft.fft(m.tensor(R), norm="Ortho"), RuntimeError, "Invalid normalization mode"),
    (lambda m: m.fft.fft(m.tensor(R), norm=1), TypeError, "argument 'norm' must be str"),
    (lambda m: m.fft.fft(m.tensor(R), n=2.5), TypeError, "argument 'n' must be int, not float"),
    (lambda m: m.fft.fft(m.tensor(R), dim=1.0), TypeError, "argument 'dim' must be int, not float"),
    (lambda m: m.fft.rfft(m.tensor(C)), RuntimeError, "rfft expects a real input tensor, but got ComplexDouble"),
    (lambda m: m.fft.ihfftn(m.tensor(C)), RuntimeError, "ComplexDouble"),  # (torch words it otherwise here)
    (lambda m: m.fft.fftn(m.tensor(R), dim=(0, 0)), RuntimeError, "FFT dims must be unique"),
    (lambda m: m.fft.fftn(m.tensor(R), s=(3,), dim=(0, 1)), RuntimeError, "must have the same length"),
    (lambda m: m.fft.fftn(m.tensor(R), s=(3, 0)), RuntimeError, r"Invalid number of data points \(0\)"),
    (lambda m: m.fft.fftn(m.tensor(R), s=(3, 4, 5)), RuntimeError, "Got shape with 3 values but input tensor only"),
    (lambda m: m.fft.fft2(m.tensor(R[0])), IndexError, "Dimension out of range"),
    (lambda m: m.fft.fft(m.tensor(np.array(1.0))), IndexError, "tensor has no dimensions"),
    (lambda m: m.fft.rfftn(m.tensor(R), dim=()), RuntimeError, "rfftn must transform at least one axis"),
    (lambda m: m.fft.irfftn(m.tensor(C), dim=()), RuntimeError, "irfftn must transform at least one axis"),
    (lambda m: m.fft.fft(m.tensor(R), out=m.zeros(4, 6)), RuntimeError, "fft expects a complex output tensor"),
    (lambda m: m.fft.irfft(m.tensor(C), out=m.zeros(4, 10, dtype=m.complex64)), RuntimeError,
     "irfft expects a floating point output tensor"),
    (lambda m: m.fft.fft(m.tensor(R, requires_grad=True), out=m.zeros(4, 6, dtype=m.complex128)), RuntimeError,
     r"functions with out=\.\.\. arguments don't support automatic differentiation"),
    (lambda m: m.fft.fftfreq(4, dtype=m.int64), RuntimeError, "fftfreq requires a floating point"),
    (lambda m: m.fft.fftfreq(-1), RuntimeError, "negative dimension -1"),
    (lambda m: m.fft.fftshift(m.tensor(np.array(1.0))), RuntimeError, "`shifts` required"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_refusals_match_torch(call, error, match):
    for m in (dn, torch):
        with pytest.raises(error, match=match):
            call(m)


def test_out_is_written_resized_and_cast_as_torch():
    for m in (dn, torch):
        o = m.zeros(4, 6, dtype=m.complex128)
        assert m.fft.fft(m.tensor(R.astype(np.float32)), out=o) is o
        np.testing.assert_allclose(_np(o), np.fft.fft(R.astype(np.float32)), rtol=1e-5, atol=1e-5)
        o = m.zeros(0, dtype=m.float64)
        r = m.fft.irfft(m.tensor(C), n=7, out=o)
        assert r is o and tuple(o.shape) == (4, 7)
        np.testing.assert_allclose(_np(o), np.fft.irfft(C, n=7), rtol=1e-12)
        f = m.zeros(2, dtype=m.float64)
        with pytest.warns(UserWarning, match="resized"):
            m.fft.rfftfreq(5, out=f)
        np.testing.assert_allclose(_np(f), np.fft.rfftfreq(5))


def test_frequencies_match_torch():
    for n in (0, 1, 2, 5, 8):
        for d in (1.0, 0.5, 3):
            for name in ("fftfreq", "rfftfreq"):
                for dtype in (None, "float64", "float32"):
                    kw = {} if dtype is None else dict(dtype=getattr(dn, dtype))
                    tkw = {} if dtype is None else dict(dtype=getattr(torch, dtype))
                    v, tv = getattr(dn.fft, name)(n, d, **kw), getattr(torch.fft, name)(n, d, **tkw)
                    assert v.dtype == _np(tv).dtype
                    np.testing.assert_allclose(v.data, _np(tv), rtol=1e-7)
    assert dn.fft.fftfreq(3, requires_grad=True).requires_grad


def test_shifts_match_torch_and_are_differentiable():
    for shape in ((5,), (4, 6), (3, 5, 2)):
        a = np.arange(np.prod(shape)).reshape(shape)
        for dim in (None, 0, -1, (0, -1)):
            if dim is not None and len(shape) == 1 and dim != 0 and dim != -1:
                continue
            for name in ("fftshift", "ifftshift"):
                np.testing.assert_array_equal(getattr(dn.fft, name)(dn.tensor(a), dim=dim).data,
                                              getattr(torch.fft, name)(torch.tensor(a), dim=dim).numpy())
    _check(lambda m, t: m.fft.ifftshift(m.fft.fftshift(m.fft.fft(t), dim=1) * 2, dim=(0, 1)), [R_ODD])
    _check(lambda m, t: m.fft.fftshift(t), [C3])
