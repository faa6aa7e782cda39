"""torch.fft's transforms: ``fft``/``ifft``/``fft2``/``ifft2``/``fftn``/``ifftn`` (complex to complex),
``rfft``/``rfft2``/``rfftn`` and ``ihfft``/``ihfft2``/``ihfftn`` (real to one-sided complex), ``irfft``/
``irfft2``/``irfftn`` and ``hfft``/``hfft2``/``hfftn`` (one-sided complex to real).

PyTorch's signatures, defaults and dtypes: float32 gives complex64 and float64 complex128 (a complex-to-real
transform gives the real dtype back); integers and bool are taken in the default dtype; half is refused (numpy
has no complex32). ``n``/``s`` trim or zero-pad the input first (``-1`` in ``s``: keep that size), and a
complex-to-real transform's ``n``/``s[-1]`` is its *output* length (default ``2 * (m - 1)`` from ``m`` bins).
``norm`` is "backward" (the default: the inverse transforms scale by ``1/n``), "ortho" (both by ``1/sqrt(n)``)
or "forward" (the forward ones by ``1/n``). The Hermitian ones are the others conjugated, with the norms
swapped, as PyTorch computes them: ``hfft(x, norm)`` is ``irfft(conj(x))`` scaled as a forward transform and
``ihfft(x, norm)`` is ``conj(rfft(x))`` scaled as an inverse one.

All are differentiable (see :mod:`distnn.fft._kernels`), a real input getting a real gradient; ``out=`` is
taken as PyTorch's (resized when its shape differs, refused while recording a gradient).
"""
from __future__ import annotations

from distnn.functional.complex_numbers import conj

from ._args import c2r_last_size, check_norm, dim_and_n, dims_and_shape, dual, promote, write_out
from ._kernels import C2C, C2R, R2C, Resize

__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2", "rfftn", "irfftn",
           "hfft", "ihfft", "hfft2", "ihfft2", "hfftn", "ihfftn"]

_LAST_TWO = (-2, -1)


def _resize(x, axes, shape):
    if all(x.shape[axis] == n for axis, n in zip(axes, shape)):
        return x
    return Resize.apply(x, axes=tuple(axes), sizes=tuple(shape))


def _one_dim(name, input, n, dim):  # noqa: A002
    """A 1-D transform's input, axis and size (the input's, or ``n``)."""
    x = promote(name, input, real=name in ("rfft", "ihfft"))
    axis, n = dim_and_n(name, x, n, dim)
    return x, (axis,), (x.shape[axis] if n is None else n,)


# ----------------------------------------------------------------- complex to complex
def _c2c(name, input, s, dim, norm, out, inverse, one_dim):  # noqa: A002
    norm = check_norm(name, norm)
    if one_dim:
        x, axes, shape = _one_dim(name, input, s, dim)
    else:
        x = promote(name, input)
        axes, shape = dims_and_shape(name, x, s, dim)
    y = C2C.apply(_resize(x, axes, shape), axes=axes, norm=norm, inverse=inverse)
    return write_out(name, y, out, inputs=(input,))


def fft(input, n=None, dim=-1, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.fft``: the 1-D discrete Fourier transform along ``dim`` (``n`` points: trimmed or
    zero-padded)."""
    return _c2c("fft", input, n, dim, norm, out, False, True)


def ifft(input, n=None, dim=-1, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.ifft``: the 1-D inverse transform along ``dim`` (scaled by ``1/n`` under the default norm)."""
    return _c2c("ifft", input, n, dim, norm, out, True, True)


def fft2(input, s=None, dim=_LAST_TWO, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.fft2``: :func:`fftn` over the last two dims by default."""
    return _c2c("fft2", input, s, dim, norm, out, False, False)


def ifft2(input, s=None, dim=_LAST_TWO, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.ifft2``: :func:`ifftn` over the last two dims by default."""
    return _c2c("ifft2", input, s, dim, norm, out, True, False)


def fftn(input, s=None, dim=None, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.fftn``: the N-D transform over ``dim`` (default: the last ``len(s)`` dims, or all)."""
    return _c2c("fftn", input, s, dim, norm, out, False, False)


def ifftn(input, s=None, dim=None, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.ifftn``: the N-D inverse transform over ``dim`` (default: the last ``len(s)`` dims, or all)."""
    return _c2c("ifftn", input, s, dim, norm, out, True, False)


# ----------------------------------------------------------------- real to one-sided complex
def _r2c(name, input, s, dim, norm, out, hermitian, one_dim):  # noqa: A002
    norm = check_norm(name, norm)
    if one_dim:
        x, axes, shape = _one_dim(name, input, s, dim)
    else:
        x = promote(name, input, real=True)
        axes, shape = dims_and_shape(name, x, s, dim, at_least_one=True)
    x = _resize(x, axes, shape)
    # (ihfft: the inverse transform of a real signal is the conjugate of its forward one, scaled as an inverse)
    y = conj(R2C.apply(x, axes=axes, norm=dual(norm))) if hermitian else R2C.apply(x, axes=axes, norm=norm)
    return write_out(name, y, out, inputs=(input,))


def rfft(input, n=None, dim=-1, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.rfft``: the transform of a real signal, one-sided (``n // 2 + 1`` bins)."""
    return _r2c("rfft", input, n, dim, norm, out, False, True)


def rfft2(input, s=None, dim=_LAST_TWO, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.rfft2``: :func:`rfftn` over the last two dims by default."""
    return _r2c("rfft2", input, s, dim, norm, out, False, False)


def rfftn(input, s=None, dim=None, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.rfftn``: the N-D transform of a real signal, one-sided along the last of ``dim``."""
    return _r2c("rfftn", input, s, dim, norm, out, False, False)


def ihfft(input, n=None, dim=-1, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.ihfft``: the inverse of :func:`hfft`: a real signal's inverse transform, one-sided."""
    return _r2c("ihfft", input, n, dim, norm, out, True, True)


def ihfft2(input, s=None, dim=_LAST_TWO, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.ihfft2``: :func:`ihfftn` over the last two dims by default."""
    return _r2c("ihfft2", input, s, dim, norm, out, True, False)


def ihfftn(input, s=None, dim=None, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.ihfftn``: the N-D inverse transform of a real signal, one-sided along the last of ``dim``."""
    return _r2c("ihfftn", input, s, dim, norm, out, True, False)


# ----------------------------------------------------------------- one-sided complex to real
def _c2r(name, input, s, dim, norm, out, hermitian, one_dim):  # noqa: A002
    norm = check_norm(name, norm)
    if one_dim:
        x, axes, shape = _one_dim(name, input, s, dim)
        last = shape[0] if s is not None else c2r_last_size(None, x, axes, shape)
    else:
        x = promote(name, input)
        axes, shape = dims_and_shape(name, x, s, dim, at_least_one=True)
        last = c2r_last_size(s, x, axes, shape)
    x = _resize(x, axes, shape[:-1] + (last // 2 + 1,))
    # (hfft: a Hermitian signal's forward transform is the inverse one of its conjugate, scaled as a forward one)
    y = C2R.apply(conj(x), axes=axes, norm=dual(norm), n=last) if hermitian else \
        C2R.apply(x, axes=axes, norm=norm, n=last)
    return write_out(name, y, out, inputs=(input,))


def irfft(input, n=None, dim=-1, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.irfft``: the inverse of :func:`rfft`: ``n`` real points (default ``2 * (m - 1)``) from a
    one-sided spectrum of ``m`` bins."""
    return _c2r("irfft", input, n, dim, norm, out, False, True)


def irfft2(input, s=None, dim=_LAST_TWO, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.irfft2``: :func:`irfftn` over the last two dims by default."""
    return _c2r("irfft2", input, s, dim, norm, out, False, False)


def irfftn(input, s=None, dim=None, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.irfftn``: the inverse of :func:`rfftn` (``s[-1]``, default ``2 * (m - 1)``, real points
    along the last of ``dim``)."""
    return _c2r("irfftn", input, s, dim, norm, out, False, False)


def hfft(input, n=None, dim=-1, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.hfft``: the transform of a Hermitian-symmetric signal given by its first half (real
    output of ``n`` points, default ``2 * (m - 1)``)."""
    return _c2r("hfft", input, n, dim, norm, out, True, True)


def hfft2(input, s=None, dim=_LAST_TWO, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.hfft2``: :func:`hfftn` over the last two dims by default."""
    return _c2r("hfft2", input, s, dim, norm, out, True, False)


def hfftn(input, s=None, dim=None, norm=None, *, out=None):  # noqa: A002
    """``torch.fft.hfftn``: the N-D transform of a Hermitian-symmetric signal, one-sided along the last of
    ``dim`` (real output)."""
    return _c2r("hfftn", input, s, dim, norm, out, True, False)
