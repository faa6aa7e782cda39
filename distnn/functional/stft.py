"""PyTorch's short-time Fourier transform and its inverse: ``stft`` and ``istft`` (also ``Tensor.stft``/``istft``).

The same arguments, defaults, shapes and checks as PyTorch's, computed as PyTorch computes them: ``stft`` cuts
(optionally centre-padded) signals into frames of ``n_fft`` every ``hop_length``, multiplies them by the window
(``win_length``, zero-padded to ``n_fft`` in the middle) and transforms each (:mod:`distnn.fft`); ``istft``
inverts each frame, windows it again and overlap-adds, dividing by the overlap-added squared window. Both are
differentiable through the signal and the window (frames and overlap-add are each other's adjoint).
"""
from __future__ import annotations

import warnings

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module

from .complex_numbers import complex, imag, real, view_as_real
from .join import concat
from .padding import PAD_MODES, pad
from .shape_more import as_tensor

__all__ = ["stft", "istft"]


def _frame_index(xp, n_frames, n_fft, hop):
    return xp.asarray(hop * np.arange(n_frames)[:, None] + np.arange(n_fft)[None, :])


def _overlap_add(frames, hop, length):
    """Frames ``(..., T, n_fft)`` summed into signals ``(..., length)`` at every ``hop``."""
    xp = get_array_module(frames)
    n_frames, n_fft = frames.shape[-2:]
    out = xp.zeros(frames.shape[:-2] + (length,), dtype=frames.dtype)
    if n_frames <= n_fft:  # (one add per frame, or one per position in the frame: the fewer)
        for t in range(n_frames):
            out[..., t * hop:t * hop + n_fft] += frames[..., t, :]
    else:
        for k in range(n_fft):
            out[..., k:k + hop * (n_frames - 1) + 1:hop] += frames[..., :, k]
    return out


class Frames(Function):
    """Signals ``(..., L)`` cut into ``n_frames`` frames ``(..., T, n_fft)`` every ``hop`` (copies; they may
    overlap). The gradient is the frames' overlap-add."""
    supports_complex = True
    saves_tensors = False

    def forward(self, a, n_fft, hop, n_frames):
        self.hop, self.length = hop, a.shape[-1]
        return a[..., _frame_index(get_array_module(a), n_frames, n_fft, hop)]

    def backward(self, g):
        return (_overlap_add(g, self.hop, self.length),)

    def backward_graph(self, g):
        return (OverlapAdd.apply(g, hop=self.hop, length=self.length),)


class OverlapAdd(Function):
    """Frames ``(..., T, n_fft)`` overlap-added into signals ``(..., length)``; the gradient is cut into frames."""
    supports_complex = True
    saves_tensors = False

    def forward(self, frames, hop, length):
        self.hop, (self.n_frames, self.n_fft) = hop, frames.shape[-2:]
        return _overlap_add(frames, hop, length)

    def backward(self, g):
        return (g[..., _frame_index(get_array_module(g), self.n_frames, self.n_fft, self.hop)],)

    def backward_graph(self, g):
        return (Frames.apply(g, n_fft=self.n_fft, hop=self.hop, n_frames=self.n_frames),)


def _window(name, window, win_length, n_fft, like):
    """The window (ones when None) checked and zero-padded in the middle to ``n_fft``, as PyTorch's."""
    if window is None:
        xp = get_array_module(like.data)
        window = as_tensor(xp.ones(win_length, dtype=like.data.real.dtype))
    window = as_tensor(window)
    if window.ndim != 1 or window.shape[0] != win_length:
        raise RuntimeError(f"{name}: expected a 1D window tensor of size equal to win_length={win_length}, but got "
                           f"window with size {tuple(window.shape)}")
    if win_length == n_fft:
        return window
    left = (n_fft - win_length) // 2
    zeros = get_array_module(window.data).zeros
    return concat([as_tensor(zeros(left, window.dtype)), window,
                   as_tensor(zeros(n_fft - win_length - left, window.dtype))])


def _sizes(name, n_fft, hop_length, win_length):
    hop = n_fft // 4 if hop_length is None else hop_length
    win = n_fft if win_length is None else win_length
    if not 0 < win <= n_fft:
        raise RuntimeError(f"{name}: expected 0 < win_length <= n_fft, but got win_length={win}")
    if hop <= 0:
        raise RuntimeError(f"{name}: expected hop_length > 0, but got hop_length={hop}")
    return hop, win


def _padded(x, amounts, mode):
    """``pad`` of the last dim, a complex signal by its parts (the padding modes are real ops)."""
    if x.dtype.kind == "c":
        return complex(pad(real(x), amounts, mode), pad(imag(x), amounts, mode))
    return pad(x, amounts, mode)


def stft(input, n_fft, hop_length=None, win_length=None, window=None, center=True, pad_mode="reflect",  # noqa: A002
         normalized=False, onesided=None, return_complex=None, align_to_window=None):
    """``torch.stft``: the spectra of windowed frames of a signal ``(L)`` or a batch ``(B, L)``, shape
    ``(B?, N, T)`` complex (``N``: ``n_fft // 2 + 1`` one-sided, the default for a real signal and window, else
    ``n_fft``; ``T`` frames), or ``(B?, N, T, 2)`` real with ``return_complex=False`` (deprecated, as in PyTorch).
    ``return_complex`` must be given for a real input and window, as PyTorch requires. ``center`` pads
    ``n_fft // 2`` on both sides (``pad_mode``); ``normalized`` scales by ``n_fft ** -0.5``; ``align_to_window``
    (only without ``center``) starts each frame at its window rather than at its ``n_fft`` span."""
    from distnn import fft

    x = as_tensor(input)
    is_complex = x.dtype.kind == "c" or (window is not None and as_tensor(window).dtype.kind == "c")
    if return_complex is None:
        if not is_complex:
            raise RuntimeError("stft requires the return_complex parameter be given for real inputs, and will "
                               "further require that return_complex=True in a future PyTorch release.")
        return_complex = True
    if not return_complex:
        warnings.warn("stft with return_complex=False is deprecated: use return_complex=True and view_as_real "
                      "for the old format", UserWarning, stacklevel=2)
    if center and align_to_window is not None:
        raise RuntimeError("stft align_to_window should only be set when center = false")
    if window is None:
        warnings.warn("A window was not provided. A rectangular window will be applied, which is known to cause "
                      "spectral leakage.", UserWarning, stacklevel=2)
    if x.ndim not in (1, 2):
        raise RuntimeError(f"stft: expected a 1D or 2D tensor, got {x.ndim}D")
    hop, win = _sizes("stft", n_fft, hop_length, win_length)
    if center:
        if pad_mode not in PAD_MODES:
            raise NotImplementedError(f"Unrecognised padding mode {pad_mode}")
        x = _padded(x, (n_fft // 2, n_fft // 2), pad_mode)
    window = _window("stft", window, win, n_fft, x)
    if align_to_window and win < n_fft:  # (frames start where their window does: PyTorch's frame count)
        left = (n_fft - win) // 2
        x = _padded(x, (left, n_fft - win - left), "constant")
    length = x.shape[-1]
    if not 0 < n_fft <= length:
        raise RuntimeError(f"stft: expected 0 < n_fft < {length}, but got n_fft={n_fft}")
    onesided = not is_complex if onesided is None else onesided
    if onesided and is_complex:
        raise RuntimeError("Cannot have onesided output if window or input is complex")
    frames = Frames.apply(x, n_fft=n_fft, hop=hop, n_frames=1 + (length - n_fft) // hop) * window
    norm = "ortho" if normalized else "backward"
    spectra = (fft.rfft if onesided else fft.fft)(frames, norm=norm).transpose(-1, -2)
    return spectra if return_complex else view_as_real(spectra)


def istft(input, n_fft, hop_length=None, win_length=None, window=None, center=True, normalized=False,  # noqa: A002
          onesided=None, length=None, return_complex=False):
    """``torch.istft``: the least-squares inverse of :func:`stft` from its complex output ``(B?, N, T)``: each
    frame inverted, windowed, overlap-added and divided by the overlap-added squared window (which must be
    nonzero everywhere: PyTorch's NOLA check). ``length`` trims or zero-pads the signal; ``return_complex`` for
    a complex signal (not one-sided)."""
    from distnn import fft

    x = as_tensor(input)
    if x.dtype.kind != "c":
        raise RuntimeError("istft requires a complex-valued input tensor matching the output from stft with "
                           "return_complex=True.")
    if window is None:
        warnings.warn("A window was not provided. A rectangular window will be applied. Please provide the same "
                      "window used by stft to make the inversion lossless.", UserWarning, stacklevel=2)
    if x.numel() == 0:
        raise RuntimeError("istft input tensor cannot be empty")
    if x.ndim not in (2, 3):
        raise RuntimeError(f"istft: expected a tensor with a 2 or 3 dimensions of complex dtype, but got {x.ndim}")
    hop, win = _sizes("istft", n_fft, hop_length, win_length)
    if not 0 < hop <= win:
        raise RuntimeError("istft: expected 0 < hop_length <= win_length")
    fft_size, n_frames = x.shape[-2:]
    onesided = fft_size != n_fft if onesided is None else onesided
    if onesided and fft_size != n_fft // 2 + 1:
        raise RuntimeError("istft: expected the frequency dimension (3rd to the last) of the input tensor to match "
                           f"n_fft / 2 + 1 when onesided=True, but got {fft_size}")
    if not onesided and fft_size != n_fft:
        raise RuntimeError("istft: expected the frequency dimension (3rd to the last) of the input tensor to match "
                           f"n_fft when onesided=False, but got {fft_size}")
    if window is not None and (as_tensor(window).ndim != 1 or as_tensor(window).shape[0] != win):
        raise RuntimeError("istft: Invalid window shape. window has to be 1D and length of `win_length`")
    window = _window("istft", window, win, n_fft, x)
    norm = "ortho" if normalized else "backward"
    spectra = x.transpose(-1, -2)  # (B?, T, N)
    if return_complex:
        if onesided:
            raise RuntimeError("Cannot have onesided output if window or input is complex")
        frames = fft.ifft(spectra, norm=norm)
    else:
        if window.dtype.kind == "c":
            raise RuntimeError("Complex windows are incompatible with return_complex=False")
        frames = fft.irfft(spectra if onesided else spectra[..., :n_fft // 2 + 1], n=n_fft, norm=norm)
    full = n_fft + hop * (n_frames - 1)
    signal = OverlapAdd.apply(frames * window, hop=hop, length=full)
    squares = (window * window).unsqueeze(0).expand(n_frames, n_fft)
    envelope = OverlapAdd.apply(squares, hop=hop, length=full)
    start = n_fft // 2 if center else 0
    end = start + length if length is not None else full - n_fft // 2 if center else full
    signal, envelope = signal[..., start:end], envelope[start:end]
    lowest = float(abs(envelope.data).min()) if envelope.numel() else 1.0
    if lowest < 1e-11:
        raise RuntimeError(f"istft: window overlap add min: {lowest} (the window's overlap must be nonzero "
                           "everywhere: NOLA)")
    signal = signal / envelope
    if end > full:
        warnings.warn("The length of signal is shorter than the length parameter. Result is being padded with zeros "
                      "in the tail. Please check your center and hop_length settings.", UserWarning, stacklevel=2)
        signal = _padded(signal, (0, end - full), "constant")
    return signal
