"""PyTorch's complex-number functions: ``complex``, ``polar``, ``real``, ``imag``, ``angle``, ``conj``,
``conj_physical``, ``resolve_conj``, ``resolve_neg``, ``is_conj``, ``is_neg``, ``view_as_real``,
``view_as_complex``.

Views as PyTorch's: ``real``/``imag`` of a complex tensor and ``view_as_real``/``view_as_complex`` share the
input's memory (and its version counter): ``view_as_real`` of complex64 is float32 of shape ``(..., 2)``.
distnn has no lazy conjugate or negative bit: ``conj`` of a complex tensor is a new tensor (what
PyTorch's ``resolve_conj`` would give), ``is_conj``/``is_neg`` are always False and ``resolve_*`` return
the input. Every function here is differentiable with PyTorch's complex convention (see
:mod:`distnn.autograd.complex_grad`); ``angle`` of a real tensor is in the graph with PyTorch's zero gradient.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import default_dtype, get_array_module

from .shape_more import as_tensor

__all__ = ["complex", "polar", "real", "imag", "angle", "conj", "conj_physical", "resolve_conj", "resolve_neg",
           "is_conj", "is_neg", "view_as_real", "view_as_complex"]

_COMPLEX_OF = {np.dtype(np.float32): np.complex64, np.dtype(np.float64): np.complex128,
               np.dtype(np.float16): np.complex64}  # (numpy has no complex32: half parts give complex64)


class _Part(Function):
    """A view of a complex tensor's real or imaginary part (``imaginary``), linked to its memory. The
    gradient (real) goes back as the real part of the input's gradient, or as its imaginary part."""
    supports_complex = True
    saves_tensors = False

    def forward(self, a, imaginary):
        self.dtype, self.imaginary = a.dtype, imaginary
        return a.imag if imaginary else a.real

    def backward(self, g):
        out = get_array_module(g).zeros(g.shape, dtype=self.dtype)
        if self.imaginary:
            out.imag = g  # (L = y: dL/dx + i dL/dy = i g)
        else:
            out.real = g
        return (out,)

    def backward_graph(self, g):
        zero = Tensor(get_array_module(g.data).zeros_like(g.data))
        return (complex(zero, g) if self.imaginary else complex(g, zero),)


class _AsReal(Function):
    """``view_as_real``: the real pairs ``(..., 2)`` of a complex tensor; the gradient pairs back to complex."""
    supports_complex = True
    saves_tensors = False

    def forward(self, a, part):
        self.dtype = a.dtype
        return _as_pairs(a, part)

    def backward(self, g):
        out = get_array_module(g).empty(g.shape[:-1], dtype=self.dtype)
        out.real, out.imag = g[..., 0], g[..., 1]
        return (out,)

    def backward_graph(self, g):
        return (_Complex.apply(g[..., 0], g[..., 1]),)  # (recorded: indexing and complex() differentiate again)


class _AsComplex(Function):
    """``view_as_complex``: pairs ``(..., 2)`` as complex numbers; the gradient splits back into pairs."""
    supports_complex = True
    saves_tensors = False

    def forward(self, a):
        return a.view(_COMPLEX_OF[a.dtype])[..., 0]

    def backward(self, g):
        return (get_array_module(g).stack([g.real, g.imag], axis=-1),)

    def backward_graph(self, g):
        from .join import stack

        return (stack([g.real, g.imag], -1),)  # (recorded: real, imag and stack differentiate again)


class _Complex(Function):
    """``complex(real, imag)``: the gradient of a part is that part of the output's gradient."""
    supports_complex = True
    saves_tensors = False

    def forward(self, a, b):
        out = get_array_module(a).empty(np.broadcast_shapes(a.shape, b.shape), dtype=_COMPLEX_OF[a.dtype])
        out.real, out.imag = a, b
        return out

    def backward(self, g):
        return g.real, g.imag

    def backward_graph(self, g):
        return g.real, g.imag


class _Conj(Function):
    """The conjugate (a new array: distnn has no lazy conjugate bit); the gradient is conjugated back."""
    supports_complex = True
    saves_tensors = False

    def forward(self, a):
        return get_array_module(a).conj(a)

    def backward(self, g):
        return (get_array_module(g).conj(g),)

    def backward_graph(self, g):
        return (conj(g),)


class _ComplexAngle(Function):
    """``angle`` of a complex tensor; PyTorch's gradient ``g * i z / |z|^2`` (0 at 0)."""
    reads = ((0,),)
    supports_complex = True

    def forward(self, z):
        self.z = z
        return get_array_module(z).angle(z)

    def backward_complex(self, g):
        xp = get_array_module(g)
        z = self.z
        r2 = z.real * z.real + z.imag * z.imag
        with np.errstate(divide="ignore", invalid="ignore"):
            return (xp.where(r2 == 0, 0, g * (1j * z / xp.where(r2 == 0, 1, r2))).astype(z.dtype),)


def _parts(name, a, b):
    a, b = as_tensor(a), as_tensor(b)
    if a.dtype.kind != "f" or b.dtype.kind != "f":
        raise RuntimeError(f"Expected both inputs to be Half, Float or Double tensors but got {a.dtype} and "
                           f"{b.dtype}")
    if a.dtype != b.dtype:
        raise RuntimeError(f"Expected object of scalar type {a.dtype} but got scalar type {b.dtype} for second "
                           "argument")
    return a, b


def complex(real, imag):  # noqa: A001
    """``torch.complex``: ``real + i imag`` of two float tensors of one dtype (broadcast); float32 gives
    complex64, float64 complex128. Differentiable: each part gets that part of the gradient."""
    a, b = _parts("complex", real, imag)
    return _Complex.apply(a, b)


def polar(abs, angle):  # noqa: A002
    """``torch.polar``: ``abs * (cos(angle) + i sin(angle))`` of two float tensors of one dtype
    (differentiable, through :func:`complex`)."""
    r, theta = _parts("polar", abs, angle)
    return complex(r * theta.cos(), r * theta.sin())


def real(input):  # noqa: A002
    """``torch.real``: the real part, a view of a complex tensor; a real tensor itself."""
    x = as_tensor(input)
    return _Part.apply(x, imaginary=False) if x.dtype.kind == "c" else x


def imag(input):  # noqa: A002
    """``torch.imag``: the imaginary part, a view of a complex tensor (refused for a real one, as PyTorch)."""
    x = as_tensor(input)
    if x.dtype.kind != "c":
        raise RuntimeError("imag is not implemented for tensors with non-complex dtypes.")
    return _Part.apply(x, imaginary=True)


class _RealAngle(Function):
    """``angle`` of a real tensor: pi where negative, else 0 (NaN stays); PyTorch's gradient is zero."""
    saves_tensors = False

    def forward(self, x):
        xp = get_array_module(x)
        out = xp.where(x < 0, np.pi, 0.0).astype(x.dtype)
        return xp.where(xp.isnan(x), x, out)

    def backward(self, g):
        return (get_array_module(g).zeros_like(g),)


def angle(input):  # noqa: A002
    """``torch.angle``: the argument of each element (a real dtype; integers give the default dtype)."""
    x = as_tensor(input)
    if x.dtype.kind == "c":
        return _ComplexAngle.apply(x)
    if x.dtype.kind != "f":
        x = Tensor(x.data.astype(default_dtype()))
    return _RealAngle.apply(x)


def conj(input):  # noqa: A002
    """``torch.conj``: the complex conjugate (a new tensor: distnn has no lazy conjugate); a real tensor
    itself."""
    x = as_tensor(input)
    return _Conj.apply(x) if x.dtype.kind == "c" else x


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
    t = _AsReal.apply(x, part=part)
    t.__dict__["_remade_as"] = "view_as_real"  # (re-made with that name after an in-place change: autograd/inplace)
    return t


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
    t = _AsComplex.apply(x)
    t.__dict__["_remade_as"] = "view_as_complex"  # (re-made with that name after an in-place change: autograd/inplace)
    return t
