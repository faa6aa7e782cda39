"""distnn.stft / distnn.istft (and the Tensor methods) against torch's: values, shapes, dtypes and the gradients
of the signal and the window over hops, window lengths, centring and its pad modes, normalization, one- and
two-sided spectra, complex signals, align_to_window, length; the round trip; second order; the refusals."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import distnn as dn

_RNG = np.random.default_rng(5)
X = _RNG.standard_normal(37)
XB = _RNG.standard_normal((2, 37))
XC = _RNG.standard_normal(37) + 1j * _RNG.standard_normal(37)
TOL = {np.float64: dict(rtol=1e-9, atol=1e-10), np.float32: dict(rtol=2e-4, atol=2e-5)}

STFT_CASES = [dict(n_fft=8), dict(n_fft=8, hop_length=3), dict(n_fft=8, win_length=6, hop_length=2),
              dict(n_fft=8, center=False), dict(n_fft=8, pad_mode="constant", normalized=True),
              dict(n_fft=7, hop_length=2, pad_mode="replicate"), dict(n_fft=8, onesided=False, pad_mode="circular"),
              dict(n_fft=8, win_length=6, hop_length=2, center=False, align_to_window=True),
              dict(n_fft=8, return_complex=False)]
ISTFT_CASES = [dict(n_fft=8, hop_length=2), dict(n_fft=8, win_length=6, hop_length=2),
               dict(n_fft=8, hop_length=2, center=False), dict(n_fft=7, hop_length=3, normalized=True, length=30),
               dict(n_fft=8, hop_length=2, onesided=False)]


def _np(t):
    return t.detach().resolve_conj().numpy() if isinstance(t, torch.Tensor) else np.asarray(getattr(t, "data", t))


def _check(fn, arrays, precision=np.float64):
    """fn(module, *leaves) on distnn and torch: values and every leaf's gradient (a weighted real loss)."""
    outs = []
    for m in (dn, torch):
        leaves = [m.tensor(a.astype(precision if a.dtype.kind == "f" else np.result_type(precision, 1j)),
                           requires_grad=True) for a in arrays]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (the deprecation and rectangular-window warnings, on both sides)
            y = fn(m, *leaves)
        w = np.linspace(0.5, 1.5, y.numel()).reshape(tuple(y.shape)).astype(precision)
        loss = (y * m.tensor(w * (1 - 0.7j))).real.sum() if y.is_complex() else (y * m.tensor(w)).sum()
        loss.backward()
        outs.append([_np(y)] + [_np(x.grad) for x in leaves])
    for a, b in zip(*outs):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, **TOL[precision])


def _window(kw):
    return np.hanning(kw.get("win_length", kw["n_fft"])) + 0.1


@pytest.mark.parametrize("kw", STFT_CASES, ids=str)
@pytest.mark.parametrize("signal", ["1d", "batch", "complex"])
def test_stft_matches_torch_with_and_without_a_window(kw, signal):
    x = {"1d": X, "batch": XB, "complex": XC}[signal]
    kw = dict(kw)
    rc = kw.pop("return_complex", True)
    _check(lambda m, a: m.stft(a, return_complex=rc, **kw), [x])
    _check(lambda m, a, w: m.stft(a, window=w, return_complex=rc, **kw), [x, _window(kw)])


def test_stft_float32_and_a_complex_window_match_torch():
    _check(lambda m, a, w: m.stft(a, 8, hop_length=2, window=w, return_complex=True), [X, np.hanning(8)], np.float32)
    cw = np.hanning(8) * np.exp(0.3j * np.arange(8))
    _check(lambda m, a, w: m.stft(a, 8, hop_length=2, window=w), [X, cw])  # (complex window: two-sided, complex)


@pytest.mark.parametrize("kw", ISTFT_CASES, ids=str)
@pytest.mark.parametrize("batch", [False, True])
def test_istft_matches_torch(kw, batch):
    x = XB if batch else X
    w = _window(kw)
    keys = ("n_fft", "hop_length", "win_length", "center", "normalized", "onesided")
    spectra = torch.stft(torch.tensor(x), window=torch.tensor(w), return_complex=True,
                         **{k: v for k, v in kw.items() if k in keys}).numpy()
    _check(lambda m, s, win: m.istft(s, window=win, **kw), [spectra, w])
    if kw.get("onesided") is False:
        _check(lambda m, s, win: m.istft(s, window=win, return_complex=True, **kw), [spectra, w])


def test_istft_length_longer_than_the_signal_pads_with_zeros_as_torch():
    spectra = torch.stft(torch.tensor(X), 8, hop_length=2, window=torch.hann_window(8, dtype=torch.float64),
                         return_complex=True).numpy()
    with pytest.warns(UserWarning, match="padded with zeros"):
        dn.istft(dn.tensor(spectra), 8, hop_length=2, window=dn.hann_window(8, dtype=dn.float64), length=45)
    _check(lambda m, s, w: m.istft(s, 8, hop_length=2, window=w, length=45), [spectra, np.hanning(8) + 0.1])


def test_round_trip_and_tensor_methods():
    x = dn.tensor(XB)
    w = dn.hann_window(16, dtype=dn.float64)
    spectra = x.stft(16, hop_length=4, window=w, return_complex=True)
    assert spectra.shape == (2, 9, 10) and spectra.dtype == np.complex128
    back = spectra.istft(16, hop_length=4, window=w, length=37)
    np.testing.assert_allclose(back.data, XB, rtol=1e-10, atol=1e-12)


def test_second_order_through_stft_and_istft_matches_torch():
    outs = []
    for m in (dn, torch):
        x = m.tensor(X, requires_grad=True)
        w = m.tensor(np.hanning(8) + 0.1, requires_grad=True)
        s = m.stft(x, 8, hop_length=2, window=w, center=False, return_complex=True)
        y = m.istft(s * s, 8, hop_length=2, window=w, center=False)
        gx, gw = m.autograd.grad((y * y).sum(), (x, w), create_graph=True)
        ggx, ggw = m.autograd.grad((gx * gx).sum() + (gw * gw).sum(), (x, w))
        outs.append([_np(t) for t in (gx, gw, ggx, ggw)])
    for a, b in zip(*outs):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("call, error, match", [
    (lambda m: m.stft(m.tensor(X), 8), RuntimeError, "stft requires the return_complex parameter be given"),
    (lambda m: m.stft(m.tensor(np.zeros((2, 2, 9))), 4, return_complex=True), RuntimeError,
     "expected a 1D or 2D tensor"),
    (lambda m: m.stft(m.tensor(X), 4, win_length=5, return_complex=True), RuntimeError,
     "expected 0 < win_length <= n_fft"),
    (lambda m: m.stft(m.tensor(X), 4, hop_length=0, return_complex=True), RuntimeError, "expected hop_length > 0"),
    (lambda m: m.stft(m.tensor(X), 4, window=m.ones(3, dtype=m.float64), return_complex=True), RuntimeError,
     "expected a 1D window tensor of size equal to win_length=4"),
    (lambda m: m.stft(m.tensor(X), 4, pad_mode="bad", return_complex=True), NotImplementedError,
     "Unrecognised padding mode bad"),
    (lambda m: m.stft(m.tensor(XC), 4, onesided=True), RuntimeError, "Cannot have onesided output"),
    (lambda m: m.stft(m.tensor(X), 4, align_to_window=True, return_complex=True), RuntimeError,
     "align_to_window should only be set when center = false"),
    (lambda m: m.stft(m.tensor(X), 64, center=False, return_complex=True), RuntimeError, "expected 0 < n_fft <"),
    (lambda m: m.istft(m.tensor(np.ones((5, 4))), 8), RuntimeError, "istft requires a complex-valued input"),
    (lambda m: m.istft(m.tensor(np.ones((4, 4), complex)), 8), RuntimeError,
     "match n_fft / 2 \\+ 1 when onesided=True, but got 4"),
    (lambda m: m.istft(m.tensor(np.ones((8, 4), complex)), 8, onesided=True), RuntimeError,
     "when onesided=True, but got 8"),
    (lambda m: m.istft(m.tensor(np.ones((5, 4), complex)), 8, hop_length=6, win_length=4), RuntimeError,
     "expected 0 < hop_length <= win_length"),
    (lambda m: m.istft(m.tensor(np.ones((5, 4), complex)), 8, window=m.ones(5, dtype=m.float64)), RuntimeError,
     "Invalid window shape"),
    (lambda m: m.istft(m.tensor(np.ones((5, 4), complex)), 8, window=m.zeros(8, dtype=m.float64)), RuntimeError,
     "window overlap add min"),
    (lambda m: m.istft(m.tensor(np.ones((5, 4), complex)), 8, return_complex=True), RuntimeError,
     "Cannot have onesided output"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_refusals_match_torch(call, error, match):
    for m in (dn, torch):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(error, match=match):
                call(m)
