"""``distnn.signal.windows``: PyTorch's ``torch.signal.windows`` (SciPy's window functions).

``bartlett``, ``blackman``, ``cosine``, ``exponential``, ``gaussian``, ``general_cosine``, ``general_hamming``,
``hamming``, ``hann``, ``kaiser``, ``nuttall``: PyTorch's formulas, arguments, defaults and refusals
(ValueErrors naming the function, as PyTorch's: ``hann``, ``hamming``, ``general_hamming`` and ``nuttall``
are ``general_cosine`` underneath and are refused under that name, as there). ``sym=True`` (the default) is
the symmetric window, for filter design; ``sym=False`` the periodic one, for spectral analysis (``stft``).

Values are computed in float64 and given in ``dtype`` (float32 or float64; default: the default dtype), on
``device`` (default: the default device). They are constants: ``requires_grad=True`` makes a leaf that
requires grad (PyTorch's is the non-leaf output of its linspace arithmetic; nothing upstream can get a
gradient either way). ``layout`` can only be ``distnn.strided``, distnn's one layout.
"""
from __future__ import annotations

import math
import operator
from collections.abc import Iterable

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_methods_meta import strided
from distnn.backend import default_dtype, to_device
from distnn.default_device import get_default_device

__all__ = ["bartlett", "blackman", "cosine", "exponential", "gaussian", "general_cosine", "general_hamming",
           "hamming", "hann", "kaiser", "nuttall"]


def _checked(name, M, dtype, layout):
    """PyTorch's ``_window_function_checks``: ``(M, dtype)`` with ``M`` an int >= 0 and ``dtype`` float32/64."""
    try:
        M = operator.index(M)  # (an int, a bool or a 0-d integer tensor, as PyTorch takes)
    except TypeError:
        raise TypeError(f"{name}(): M must be an int, not {type(M).__name__}") from None
    if M < 0:
        raise ValueError(f"{name} requires non-negative window length, got M={M}")
    if layout is not strided:
        raise ValueError(f"{name} is implemented for strided tensors only, got: {layout}")
    dtype = np.dtype(dtype if dtype is not None else default_dtype())
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{name} expects float32 or float64 dtypes, got: {dtype}")
    return M, dtype


def _made(values, dtype, device, requires_grad):
    """The window ``values`` (float64 numpy) as a tensor of ``dtype`` on ``device``."""
    data = np.asarray(values, dtype=np.float64).astype(dtype)
    return Tensor(to_device(data, device if device is not None else get_default_device()),
                  requires_grad=requires_grad)


def _positions(M, start, step):
    """``start + step * n`` for ``n = 0 .. M - 1``: PyTorch's ``linspace(start, start + (M - 1) step, M)``."""
    return start + step * np.arange(M, dtype=np.float64)


def exponential(M, *, center=None, tau=1.0, sym=True, dtype=None, layout=strided, device=None,
                requires_grad=False) -> Tensor:
    """``torch.signal.windows.exponential`` (the Poisson window): ``exp(-|n - center| / tau)``.

    ``center`` defaults to the middle (``(M - 1) / 2``, or ``M / 2`` when ``sym=False``); a symmetric window
    cannot be given one."""
    M, dtype = _checked("exponential", M, dtype, layout)
    if tau <= 0:
        raise ValueError(f"Tau must be positive, got: {tau} instead.")
    if sym and center is not None:
        raise ValueError("Center must be None for symmetric windows")
    if center is None:
        center = (M if not sym and M > 1 else M - 1) / 2.0
    return _made(np.exp(-np.abs(_positions(M, -center / tau, 1.0 / tau))), dtype, device, requires_grad)


def cosine(M, *, sym=True, dtype=None, layout=strided, device=None, requires_grad=False) -> Tensor:
    """``torch.signal.windows.cosine`` (the sine window): ``sin(pi (n + 0.5) / M)``."""
    M, dtype = _checked("cosine", M, dtype, layout)
    step = math.pi / (M + 1 if not sym and M > 1 else max(M, 1))
    return _made(np.sin(_positions(M, 0.5 * step, step)), dtype, device, requires_grad)


def gaussian(M, *, std=1.0, sym=True, dtype=None, layout=strided, device=None, requires_grad=False) -> Tensor:
    """``torch.signal.windows.gaussian``: ``exp(-(n - (M - 1) / 2)^2 / (2 std^2))``."""
    M, dtype = _checked("gaussian", M, dtype, layout)
    if std <= 0:
        raise ValueError(f"Standard deviation must be positive, got: {std} instead.")
    step = 1.0 / (std * math.sqrt(2))
    start = -(M if not sym and M > 1 else M - 1) / 2.0
    return _made(np.exp(-_positions(M, start * step, step) ** 2), dtype, device, requires_grad)


def kaiser(M, *, beta=12.0, sym=True, dtype=None, layout=strided, device=None, requires_grad=False) -> Tensor:
    """``torch.signal.windows.kaiser``: ``I0(beta sqrt(1 - (2 n / (M - 1) - 1)^2)) / I0(beta)``."""
    M, dtype = _checked("kaiser", M, dtype, layout)
    if beta < 0:
        raise ValueError(f"beta must be non-negative, got: {beta} instead.")
    if M <= 1:
        return _made(np.ones(M), dtype, device, requires_grad)
    beta = float(beta)
    # (the positions run from -beta; clipped to beta, so rounding never takes the root of a negative number)
    k = np.minimum(_positions(M, -beta, 2.0 * beta / (M if not sym else M - 1)), beta)
    return _made(np.i0(np.sqrt(beta * beta - k * k)) / np.i0(beta), dtype, device, requires_grad)


def bartlett(M, *, sym=True, dtype=None, layout=strided, device=None, requires_grad=False) -> Tensor:
    """``torch.signal.windows.bartlett``: the triangle ``1 - |2 n / (M - 1) - 1|``."""
    M, dtype = _checked("bartlett", M, dtype, layout)
    if M <= 1:
        return _made(np.ones(M), dtype, device, requires_grad)
    return _made(1.0 - np.abs(_positions(M, -1.0, 2.0 / (M if not sym else M - 1))), dtype, device, requires_grad)


def general_cosine(M, *, a, sym=True, dtype=None, layout=strided, device=None, requires_grad=False) -> Tensor:
    """``torch.signal.windows.general_cosine``: ``sum_i (-1)^i a_i cos(2 pi i n / (M - 1))`` for the
    coefficients ``a`` (a non-empty list or tuple; not looked at when ``M`` is 0 or 1, as PyTorch's)."""
    M, dtype = _checked("general_cosine", M, dtype, layout)
    if M <= 1:
        return _made(np.ones(M), dtype, device, requires_grad)
    if not isinstance(a, Iterable):
        raise TypeError("Coefficients must be a list/tuple")
    if not a:
        raise ValueError("Coefficients cannot be empty")
    coefficients = [(-1) ** i * float(w) for i, w in enumerate(a)]
    phase = _positions(M, 0.0, 2.0 * math.pi / (M if not sym else M - 1))
    values = sum(c * np.cos(i * phase) for i, c in enumerate(coefficients))
    return _made(values, dtype, device, requires_grad)


def general_hamming(M, *, alpha=0.54, sym=True, dtype=None, layout=strided, device=None,
                    requires_grad=False) -> Tensor:
    """``torch.signal.windows.general_hamming``: ``alpha - (1 - alpha) cos(2 pi n / (M - 1))``."""
    return general_cosine(M, a=[alpha, 1.0 - alpha], sym=sym, dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)


def hamming(M, *, sym=True, dtype=None, layout=strided, device=None, requires_grad=False) -> Tensor:
    """``torch.signal.windows.hamming``: ``general_hamming`` with ``alpha=0.54``."""
    return general_hamming(M, sym=sym, dtype=dtype, layout=layout, device=device, requires_grad=requires_grad)


def hann(M, *, sym=True, dtype=None, layout=strided, device=None, requires_grad=False) -> Tensor:
    """``torch.signal.windows.hann``: ``general_hamming`` with ``alpha=0.5``, ``sin^2(pi n / (M - 1))``."""
    return general_hamming(M, alpha=0.5, sym=sym, dtype=dtype, layout=layout, device=device,
                           requires_grad=requires_grad)


def blackman(M, *, sym=True, dtype=None, layout=strided, device=None, requires_grad=False) -> Tensor:
    """``torch.signal.windows.blackman``: ``general_cosine`` with ``a = [0.42, 0.5, 0.08]``."""
    _checked("blackman", M, dtype, layout)  # (PyTorch checks under this name first)
    return general_cosine(M, a=[0.42, 0.5, 0.08], sym=sym, dtype=dtype, layout=layout, device=device,
                          requires_grad=requires_grad)


def nuttall(M, *, sym=True, dtype=None, layout=strided, device=None, requires_grad=False) -> Tensor:
    """``torch.signal.windows.nuttall`` (Nuttall's minimum 4-term Blackman-Harris): ``general_cosine`` with
    ``a = [0.3635819, 0.4891775, 0.1365995, 0.0106411]``."""
    return general_cosine(M, a=[0.3635819, 0.4891775, 0.1365995, 0.0106411], sym=sym, dtype=dtype,
                          layout=layout, device=device, requires_grad=requires_grad)
