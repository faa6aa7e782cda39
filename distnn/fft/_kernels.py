"""The differentiable FFT ops behind :mod:`distnn.fft`: complex-to-complex, real-to-complex (one-sided),
complex-to-real, and the zero-padding/trimming that ``n``/``s`` ask for; numpy.fft or cupy.fft by the input's
array module.

Each transform is linear, so its backward is its adjoint, and PyTorch's formulas are exactly that:

* c2c: the conjugate transform with the *dual* norm (an unscaled transform's adjoint is unscaled, one scaled
  by ``1/n`` has an adjoint scaled by ``1/n``: numpy's ``norm`` names the scaled direction, so "backward" and
  "forward" swap and "ortho" stays);
* r2c (``fft_r2c_backward``): the half spectrum's gradient zero-padded to the full length, then the c2c
  backward, real part;
* c2r (``fft_c2r_backward``): the r2c transform of the gradient (dual norm), the bins whose mirror image the
  forward filled in doubled: ``1 .. n - (n // 2 + 1)`` along the last axis.

Every backward is also written with these same ops (``backward_graph``), so ``create_graph=True`` works
through them, to any order.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.backend import get_array_module
from distnn.functional.complex_numbers import real

from ._args import complex_of, dual


def resized(a, axes, sizes):
    """``a`` trimmed or zero-padded at the end of each of ``axes`` to ``sizes`` (``a`` itself when it fits)."""
    shape = list(a.shape)
    for axis, n in zip(axes, sizes):
        shape[axis] = n
    if tuple(shape) == a.shape:
        return a
    out = get_array_module(a).zeros(shape, dtype=a.dtype)
    common = tuple(slice(0, min(m, n)) for m, n in zip(a.shape, shape))
    out[common] = a[common]
    return out


class Resize(Function):
    """``n``/``s``: the signal trimmed or zero-padded along ``axes`` before a transform; the gradient is resized
    back (the trimmed part gets zero, the padding's gradient is dropped)."""
    supports_complex = True
    saves_tensors = False

    def forward(self, a, axes, sizes):
        self.axes, self.before = axes, tuple(a.shape[axis] for axis in axes)
        return resized(a, axes, sizes)

    def backward(self, g):
        return (resized(g, self.axes, self.before),)

    def backward_graph(self, g):
        return (Resize.apply(g, axes=self.axes, sizes=self.before),)


def c2c(a, axes, norm, inverse):
    """``fftn`` (``ifftn`` when ``inverse``) of ``a`` over ``axes``, in ``a``'s complex dtype; no axes: ``a`` as
    complex (a copy)."""
    if not axes:
        return a.astype(complex_of(a.dtype))
    fft = get_array_module(a).fft
    return (fft.ifftn if inverse else fft.fftn)(a, axes=axes, norm=norm).astype(complex_of(a.dtype), copy=False)


class C2C(Function):
    """``fftn``/``ifftn`` over ``axes``; a real input is taken as complex (its gradient is real: the engine's
    rule for a real input of a complex op)."""
    supports_complex = True
    saves_tensors = False

    def forward(self, a, axes, norm, inverse):
        self.axes, self.norm, self.inverse = axes, norm, inverse
        return c2c(a, axes, norm, inverse)

    def backward(self, g):
        return (c2c(g, self.axes, dual(self.norm), not self.inverse),)

    def backward_graph(self, g):
        return (C2C.apply(g, axes=self.axes, norm=dual(self.norm), inverse=not self.inverse),)


class R2C(Function):
    """``rfftn`` of a real input over ``axes``: the one-sided spectrum, ``n // 2 + 1`` bins along the last."""
    supports_complex = True
    saves_tensors = False

    def forward(self, a, axes, norm):
        self.axes, self.norm, self.n = axes, norm, a.shape[axes[-1]]
        spectrum = get_array_module(a).fft.rfftn(a, axes=axes, norm=norm)
        return spectrum.astype(complex_of(a.dtype), copy=False)

    def backward(self, g):
        # (the bins the one-sided output left out had no part in the loss: zeros, then the c2c adjoint)
        full = resized(g, self.axes[-1:], (self.n,))
        return (c2c(full, self.axes, dual(self.norm), True).real,)

    def backward_graph(self, g):
        full = Resize.apply(g, axes=self.axes[-1:], sizes=(self.n,)) if g.shape[self.axes[-1]] != self.n else g
        return (real(C2C.apply(full, axes=self.axes, norm=dual(self.norm), inverse=True)),)


class C2R(Function):
    """``irfftn`` over ``axes`` to ``n`` real points along the last (the input has ``n // 2 + 1`` bins there;
    the other axes keep their sizes). A real input is taken as complex, and gets the real part of the
    gradient."""
    supports_complex = True
    saves_tensors = False

    def forward(self, a, axes, norm, n):
        self.axes, self.norm, self.n, self.real_input = axes, norm, n, a.dtype.kind != "c"
        sizes = [a.shape[axis] for axis in axes[:-1]] + [n]
        out = get_array_module(a).fft.irfftn(a, s=sizes, axes=axes, norm=norm)
        return out.astype(complex_of(a.dtype).char.lower(), copy=False)

    def _doubled(self, ndim, xp, dtype):
        """Per bin of the last axis: 2 for those whose mirror image the forward filled in (it reads them
        twice), else 1; shaped to broadcast along that axis."""
        half = self.n // 2 + 1
        weights = np.ones(half, dtype=dtype)
        weights[1:1 + self.n - half] = 2
        shape = [1] * ndim
        shape[self.axes[-1]] = half
        return xp.asarray(weights.reshape(shape))

    def backward(self, g):
        xp = get_array_module(g)
        grad = xp.fft.rfftn(g, axes=self.axes, norm=dual(self.norm)).astype(complex_of(g.dtype), copy=False)
        grad = grad * self._doubled(g.ndim, xp, g.dtype)
        return (grad.real if self.real_input else grad,)

    def backward_graph(self, g):
        grad = R2C.apply(g, axes=self.axes, norm=dual(self.norm))
        grad = grad * self._doubled(g.ndim, get_array_module(g.data), g.dtype)
        return (real(grad) if self.real_input else grad,)
