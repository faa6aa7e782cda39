"""PyTorch's complex-number functions: ``complex``, ``polar``, ``real``, ``imag``, ``angle``, ``conj``,
``conj_physical``, ``resolve_conj``, ``resolve_neg``, ``is_conj``, ``is_neg``, ``view_as_real``,
``view_as_complex``.

Views as PyTorch's: ``real``/``imag`` of a complex tensor and ``view_as_real``/``view_as_complex`` share the
input's memory (and its version counter): ``view_as_real`` of complex64 is float32 of shape ``(..., 2)``.
distnn has no lazy conjugate or negative bit: ``conj`` of a complex tensor is a new tensor (what
PyTorch's ``resolve_conj`` would give), ``is_conj``/``is_neg`` are always False and ``resolve_*`` return
the input. distnn has no complex autograd (a complex tensor cannot require a gradient): an op here that
would take a gradient from a real input that requires one into a complex result (``complex``, ``polar``,
``view_as_complex``) refuses, by name, while grad mode is on. ``angle`` of a real tensor is in the graph
with PyTorch's zero gradient.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.grad_mode import is_grad_enabled
from distnn.autograd.tensor import Tensor
from distnn.backend import default_dtype, get_array_module

from .shape_more import as_tensor

__all__ = ["complex", "polar", "real", "imag", "angle", "conj", "conj_physical", "resolve_conj", "resolve_neg",
           "is_conj", "is_neg", "view_as_real", "view_as_complex"]

_COMPLEX_OF = {np.dtype(np.float32): np.complex64, np.dtype(np.float64): np.complex128,
               np.dtype(np.float16): np.complex64}  # (numpy has no complex32: half parts give complex64)


class _View(Function):
    """A view of a tensor that needs no gradient (complex tensors never do), linked to its memory."""
    saves_tensors = False

    def forward(self, a, make):
        return make(a)


def _no_complex_grad(name, *tensors):
    if is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in tensors):
        raise RuntimeError(f"{name}: distnn has no complex autograd, so a complex result cannot carry the "
                           "gradient of an input that requires grad; detach the inputs or use no_grad()")


def _parts(name, a, b):
    a, b = as_tensor(a), as_tensor(b)
    if a.dtype.kind != "f" or b.dtype.kind != "f":
        raise RuntimeError(f"Expected both inputs to be Half, Float or Double tensors but got {a.dtype} and "
                           f"{b.dtype}")
    if a.dtype != b.dtype:
        raise RuntimeError(f"Expected object of scalar type {a.dtype} but got scalar type {b.dtype} for second "
                           "argument")
    _no_complex_grad(name, a, b)
    return a, b


def complex(real, imag):  # noqa: A001
    """``torch.complex``: ``real + i imag`` of two float tensors of one dtype (broadcast); float32 gives
    complex64, float64 complex128."""
    a, b = _parts("complex", real, imag)
    xp = get_array_module(a.data)
    out = xp.empty(np.broadcast_shapes(a.shape, b.shape), dtype=_COMPLEX_OF[a.dtype])
    out.real, out.imag = a.data, b.data
    return Tensor(out)


def polar(abs, angle):  # noqa: A002
    """``torch.polar``: ``abs * (cos(angle) + i sin(angle))`` of two float tensors of one dtype."""
    r, theta = _parts("polar", abs, angle)
    xp = get_array_module(r.data)
    return complex(Tensor(r.data * xp.cos(theta.data)), Tensor(r.data * xp.sin(theta.data)))


def real(input):  # noqa: A002
    """``torch.real``: the real part, a view of a complex tensor; a real tensor itself."""
    x = as_tensor(input)
    return _View.apply(x, make=lambda a: a.real) if x.dtype.kind == "c" else x


def imag(input):  # noqa: A002
    """``torch.imag``: the imaginary part, a view of a complex tensor (refused for a real one, as PyTorch)."""
    x = as_tensor(input)
    if x.dtype.kind != "c":
        raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
    return _View.apply(x, make=lambda a: a.imag)


class _RealAngle(Function):
    """``angle`` of a real tensor: pi where negative, else 0 (NaN stays); PyTorch's gradient is zero."""
    saves_tensors = False

    def forward(self, x):
        xp = get_array_module(x)
        out = xp.where(x < 0, np.pi, 0.0).astype(x.dtype)
        return xp.where(xp.isnan(x), x, out)

    def backward(self, grad):
        return (get_array_module(grad).zeros_like(grad),)


def angle(input):  # noqa: A002
    """``torch.angle``: the argument of each element (a real dtype; integers give the default dtype)."""
    x = as_tensor(input)
    if x.dtype.kind == "c":
        return Tensor(get_array_module(x.data).angle(x.data))
    if x.dtype.kind != "f":
        x = Tensor(x.data.astype(default_dtype()))
    return _RealAngle.apply(x)


def conj(input):  # noqa: A002
    """``torch.conj``: the complex conjugate (a new tensor: distnn has no lazy conjugate); a real tensor
    itself."""
    x = as_tensor(input)
    return Tensor(get_array_module(x.data).conj(x.data)) if x.dtype.kind == "c" else x


def conj_physical(input):  # noqa: A002
    """``torch.conj_physical``: the conjugate, computed (as ``conj`` here); a real tensor itself."""
    return conj(input)


def resolve_conj(input):  # noqa: A002
    """``torch.resolve_conj``: ``input`` (distnn never has a lazy conjugate to resolve)."""
    return as_tensor(input)


def resolve_neg(input):  # noqa: A002
    """``torch.resolve_neg``: ``input`` (distnn never has a lazy negative to resolve)."""
    return as_tensor(input)


def is_conj(input) -> bool:  # noqa: A002
    """``torch.is_conj``: False (distnn has no conjugate bit)."""
    return False


def is_neg(input) -> bool:  # noqa: A002
    """``torch.is_neg``: False (distnn has no negative bit)."""
    return False


def _steps(a):
    return [s // a.itemsize for s in a.strides]


def view_as_real(input):  # noqa: A002
    """``torch.view_as_real``: a complex tensor as a real view of shape ``(..., 2)`` (real, imaginary)."""
    x = as_tensor(input)
    if x.dtype.kind != "c":
        raise RuntimeError("view_as_real is only supported for complex tensors")
    part = np.dtype(x.dtype.char.lower()) if x.dtype.char in "FD" else np.float64
    return _View.apply(x, make=lambda a: _as_pairs(a, part))


def _as_pairs(a, part):
    # (a contiguous last axis: a dtype view then a split of that axis, which cupy does as numpy; a strided one
    # takes a new unit axis first, which numpy accepts)
    if a.ndim and (a.strides[-1] == a.itemsize or a.shape[-1] <= 1):
        return a.view(part).reshape(a.shape + (2,))
    return a.reshape(1).view(part) if a.ndim == 0 else a[..., None].view(part)


def view_as_complex(input):  # noqa: A002
    """``torch.view_as_complex``: a float tensor of shape ``(..., 2)`` whose last dim is contiguous and whose
    other strides are even, as a complex view of shape ``(...)``; refused otherwise, as PyTorch."""
    x = as_tensor(input)
    if x.dtype.kind != "f" or x.dtype not in _COMPLEX_OF:
        raise RuntimeError("view_as_complex is only supported for half, float and double tensors, but got a "
                           f"tensor of scalar type: {x.dtype}")
    if x.dim() == 0:
        raise RuntimeError("Input tensor must have one or more dimensions")
    if x.shape[-1] != 2:
        raise RuntimeError("Tensor must have a last dimension of size 2")
    if x.dtype == np.float16:
        raise RuntimeError("view_as_complex: numpy has no complex32, so half tensors have no complex view")
    steps = _steps(x.data)
    if steps[-1] != 1:
        raise RuntimeError("Tensor must have a last dimension with stride 1")
    if any(s % 2 for s, n in zip(steps[:-1], x.shape[:-1]) if n > 1):
        raise RuntimeError("Tensor must have a stride divisible by 2 for all but last dimension")
    _no_complex_grad("view_as_complex", x)
    return _View.apply(x, make=lambda a: a.view(_COMPLEX_OF[a.dtype])[..., 0])
