"""``vector_norm``, ``matrix_norm`` and ``norm`` (which picks one of them as PyTorch does).

``vector_norm``'s gradient is PyTorch's ``norm_backward``: ``ord`` 2 gives ``x / |x|`` (0 at a zero vector), 1
``sign(x)``, +-inf shares the gradient evenly among the tied extreme entries, 0 (the count of non-zeros) none, and
any other ``p`` ``sign(x) |x|^(p-1) / |x|_p^(p-1)`` (0 where the norm is 0, and where ``x`` is 0 for ``p < 1``);
for a complex ``x`` (a real norm) ``sign`` is ``sgn(x) = x / |x|`` and ``x`` itself stays complex in those
formulas, PyTorch's. ``matrix_norm`` is built from differentiable pieces as in PyTorch: Frobenius is a vector norm,
'nuc' and +-2 the sum, largest and smallest singular values, +-1 and +-inf the max/min of absolute column/row sums.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.half_accumulate import widened
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module
from distnn.functional._dims import wrap_dim
from distnn.functional._elementwise_common import _silent
from distnn.functional.rounding import real_sign

from ._common import as_tensor, check_float, dtype_name


def _axes(dim, ndim):
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
    axes = tuple(wrap_dim(d, ndim, "linalg.vector_norm", named=False) for d in dims)  # (PyTorch's IndexError)
    for i, a in enumerate(axes):
        if a in axes[:i]:  # (PyTorch's message: the dim as wrapped)
            raise RuntimeError(f"dim {a} appears multiple times in the list of dims")
    return axes if ndim else ()  # (a 0-d tensor's dim 0 or -1 names no axis of its array)


def _sgn(xp, x):
    """PyTorch's ``sgn``: ``sign`` of a real ``x``, ``x / |x|`` (0 at 0) of a complex one (written out: cupy's
    complex ``sign`` is not that)."""
    if x.dtype.kind == "f":
        return real_sign(xp, x)  # (0 at NaN, PyTorch's)
    if x.dtype.kind != "c":
        return xp.sign(x)
    ax = xp.abs(x)
    return xp.where(ax == 0, 0, x / xp.where(ax == 0, 1, ax))


class VectorNorm(Function):
    torch_name = "LinalgVectorNormBackward0"
    reads = ((0, OUTPUT),)
    supports_complex = True  # (with sgn for sign the formulas hold as written)

    def forward(self, x, ord=2.0, axis=(), keepdim=False):  # noqa: A002
        xp = get_array_module(x)
        wide = widened(x)  # (float16 powered and added up in float32, rounded once, as PyTorch's)
        ax = xp.abs(wide)  # (real, also for a complex x: so is the norm)
        with _silent():  # (sums or powers past the float's range: an inf norm, as PyTorch's, with no warning)
            out = self._norm(xp, wide, ax, ord, axis).astype(x.real.dtype, copy=False)
        self.x, self.norm, self.ord, self.axis = x, out, ord, axis
        return out if keepdim else out.reshape([s for i, s in enumerate(out.shape) if i not in axis])

    @staticmethod
    def _norm(xp, x, ax, ord, axis):  # noqa: A002
        if ord != 0 and all(x.shape[a] == 1 for a in axis):
            return ax  # (one element per norm: |x|, as PyTorch's, where squaring 3e38 or 1e-45 leaves the range)
        if ord == math.inf:
            out = ax.max(axis=axis, keepdims=True)
        elif ord == -math.inf:
            out = ax.min(axis=axis, keepdims=True)
        elif ord == 0:
            out = (x != 0).sum(axis=axis, keepdims=True).astype(ax.dtype)
        elif ord == 1:
            out = ax.sum(axis=axis, keepdims=True)
        elif ord == 2:
            sq = x * x if x.dtype.kind != "c" else x.real * x.real + x.imag * x.imag
            out = xp.sqrt(sq.sum(axis=axis, keepdims=True))
        else:  # (a negative ord with a zero entry: inf inside, 0 out, as PyTorch)
            out = (ax ** ord).sum(axis=axis, keepdims=True) ** (1.0 / ord)
        return out

    def backward(self, g):
        # (a float16 gradient in float16 arithmetic, op by op: PyTorch's norm_backward is composed of such ops)
        xp = get_array_module(g)
        x, n, p = self.x, self.norm, self.ord
        g = g.reshape(n.shape)
        if p == 0:  # (a count: PyTorch's norm_backward returns an undefined gradient, no zeros: x.grad stays None)
            return (None,)
        if p == 1:
            return (_sgn(xp, x) * g,)
        zero = n == 0
        if p == 2:  # (PyTorch's order: x / n first, so a denormal x over its own norm is 1, not inf)
            return (g * xp.where(zero, 0, x / xp.where(zero, 1, n)),)
        if math.isinf(p):
            ax = xp.abs(x)
            mask = (ax == n) | xp.isnan(ax)
            return (_sgn(xp, x) * mask * (g / mask.sum(axis=self.axis, keepdims=True)),)
        ax = xp.abs(x)
        if p < 1:
            with np.errstate(divide="ignore", invalid="ignore"):
                scaled = _sgn(xp, x) * xp.where(x == 0, 0, ax ** (p - 1))
            return (scaled * g * n ** (1 - p),)
        scaled = _sgn(xp, x) * ax ** (p - 1) if p < 2 else x * ax ** (p - 2)
        return (scaled * xp.where(zero, 0, g / xp.where(zero, 1, n) ** (p - 1)),)


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None, out=None) -> Tensor:  # noqa: A002
    """``torch.linalg.vector_norm``: ``(sum |x|^ord)^(1/ord)`` over ``dim`` (all dims when None), with ``ord``
    inf (max |x|), -inf (min |x|) and 0 (the number of non-zeros) too; real, also for a complex ``x``.
    ``dtype`` may widen the input (computed in it, as PyTorch's), never narrow it or change real to complex.
    ``out``: PyTorch's structured kernel's rules (:func:`.norms_out.vector_norm_into_out`)."""
    if out is not None:
        from .norms_out import vector_norm_into_out

        return vector_norm_into_out(x, out, ord, dim, keepdim, dtype)
    if isinstance(ord, str) or not isinstance(ord, numbers.Real):
        raise TypeError(f"linalg_vector_norm(): argument 'ord' (position 2) must be Number, not {type(ord).__name__}")
    t = as_tensor(x)
    # (PyTorch's order: the input's dtype, an empty reduction with no identity, then dtype=, then the dims)
    check_float(t.data, "linalg.vector_norm", complex_ok=True, half_ok=True)
    refuse_empty_without_identity(t.shape, ord, dim)
    if dtype is not None:
        check_norm_dtype(t.dtype, dtype, "linalg.vector_norm")
        t = t.to(dtype)
    return VectorNorm.apply(t, ord=float(ord), axis=_axes(dim, t.ndim), keepdim=bool(keepdim))


def refuse_empty_without_identity(shape, ord, dim):  # noqa: A002
    """inf and negative orders (a max, a min, a sum of inverse powers) have no value over no elements: an
    empty reduced dim (``dim`` as given, the first empty one) or, with no ``dim``, an empty tensor is refused
    with PyTorch's RuntimeError (numpy's is a ValueError about maximum's identity)."""
    if 0 not in shape or not (ord < 0 or ord == math.inf):
        return
    if dim is None or (isinstance(dim, (tuple, list)) and len(dim) == 0):
        raise RuntimeError(f"linalg.vector_norm cannot compute the {ord:g} norm on an empty tensor because the "
                           "operation does not have an identity")
    for d in (dim,) if isinstance(dim, numbers.Integral) else dim:
        if -len(shape) <= d < len(shape) and shape[d] == 0:  # (PyTorch's message, its missing space included)
            raise RuntimeError(f"linalg.vector_norm cannot compute the {ord:g} norm on the dimension {d}because "
                               "this dimension is empty and the operation does not have an identity")


_MATRIX_ORDS = ("fro", "nuc", math.inf, -math.inf, 1, -1, 2, -2)


def check_norm_dtype(input_dtype, dtype, op):
    """PyTorch's checks of a norm's ``dtype=``: a floating or complex one, complex exactly when the input is,
    and one the input's dtype converts to without narrowing (float32 -> float16 is refused)."""
    src, dst = np.dtype(input_dtype), np.dtype(dtype)
    if dst.kind not in "fc":
        raise RuntimeError(f"{op}: dtype should be floating point or complex, but got {dtype_name(dst)}")
    if (src.kind == "c") != (dst.kind == "c"):
        kind = "complex" if src.kind == "c" else "real"
        raise RuntimeError(f"{op}: dtype should be {kind} for {kind} inputs, but got {dtype_name(dst)}")
    if np.promote_types(src, dst) != dst:
        raise RuntimeError(f"{op}: the dtype of the input ({dtype_name(src)}) should be convertible without "
                           f"narrowing to the specified dtype ({dtype_name(dst)})")


def matrix_norm(A, *args, **kwargs) -> Tensor:  # noqa: A002
    """``torch.linalg.matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None)``: the norm ``ord``
    ('fro', 'nuc', inf, -inf, 1, -1, 2, -2) of the (real or complex) matrices spanned by the two dims ``dim``;
    real. A float16 input takes 'fro', +-1 and +-inf (sums added up in float32 and rounded once, as PyTorch's) and
    is refused for 'nuc' and +-2 (singular values: LAPACK has no half precision), with PyTorch's message; ``dtype``
    may widen the input, never narrow it. The checks run in PyTorch's order: ``ord``, then the input, then ``dim``,
    then ``dtype``; a ``dim`` that is no sequence of ints (``dim=1``) is PyTorch's argument parser's TypeError,
    naming what was given, before any of them. ``out``: PyTorch's composite rules
    (:func:`.norms_out.composite_norm_into_out`)."""
    from ._arguments import matrix_norm_arguments

    *arguments, out = matrix_norm_arguments(A, args, kwargs)
    if out is None:
        return _matrix_norm(*arguments)
    from .norms_out import composite_norm_into_out

    return composite_norm_into_out(_matrix_norm(*arguments), out, "linalg.matrix_norm")


def _matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, dtype=None) -> Tensor:  # noqa: A002
    """:func:`matrix_norm` of arguments its parser accepted (``torch.norm``'s string orders come here too)."""
    if ord not in _MATRIX_ORDS:
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    t = as_tensor(A)
    if t.ndim < 2:
        raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 dimensions.")
    check_float(t.data, "linalg.matrix_norm", complex_ok=True, half_ok=True)
    if t.dtype == np.float16 and ord in ("nuc", 2, -2):
        raise RuntimeError(f"linalg.matrix_norm: Low precision dtypes not supported. Got {dtype_name(t.dtype)}")
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:  # (PyTorch prints the dims space-separated)
        shown = " ".join(map(str, dim)) if isinstance(dim, (tuple, list)) else dim
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {shown}")
    d0, d1 = (wrap_dim(d, t.ndim, "linalg.matrix_norm", named=False) for d in dim)  # (PyTorch's IndexError)
    if d0 == d1:  # (wrapped first, as PyTorch: (1, -1) of a matrix is "(1, 1)")
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({d0}, {d1})")
    if dtype is not None:
        check_norm_dtype(t.dtype, dtype, "linalg.matrix_norm")
        t = t.to(dtype)
    if ord == "fro":
        return vector_norm(t, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        from .svd import svdvals

        rest = [i for i in range(t.ndim) if i not in (d0, d1)]
        s = svdvals(t.permute(*rest, d0, d1))
        out = s.sum(-1) if ord == "nuc" else s.amax(-1) if ord == 2 else s.amin(-1)  # (ties share the gradient)
        if keepdim:
            for d in sorted((d0, d1)):
                out = out.unsqueeze(d)
        return out
    # (1: the largest absolute column sum, over rows d0 first; inf: the largest absolute row sum)
    inner, outer = (d0, d1) if abs(ord) == 1 else (d1, d0)
    sums = t.abs().sum(inner, keepdim=True)
    out = sums.amax(outer, keepdim=True) if ord > 0 else sums.amin(outer, keepdim=True)
    return out if keepdim else out.reshape([s for i, s in enumerate(out.shape) if i not in (d0, d1)])


def norm(A, *args, **kwargs) -> Tensor:  # noqa: A002
    """``torch.linalg.norm(A, ord=None, dim=None, keepdim=False, *, dtype=None, out=None)``: a vector norm when
    ``dim`` is one dim (or, with ``ord`` None and ``dim`` None, of all the entries), a matrix norm when ``dim`` is
    two dims, or, ``dim`` None and ``ord`` given, for a 1-D input a vector norm and for a 2-D one a matrix norm.
    ``out``: PyTorch's composite rules (:func:`.norms_out.composite_norm_into_out`), whichever norm it is."""
    from ._arguments import norm_arguments

    *arguments, out = norm_arguments(A, args, kwargs)
    if out is None:
        return _norm(*arguments)
    from .norms_out import composite_norm_into_out

    return composite_norm_into_out(_norm(*arguments), out, "linalg.norm")


def _norm(A, ord, dim, keepdim, dtype) -> Tensor:  # noqa: A002
    t = as_tensor(A)
    if dim is not None:
        dims = (dim,) if isinstance(dim, numbers.Integral) else tuple(dim)
        if len(dims) == 1:
            return vector_norm(t, 2 if ord is None else ord, dims, keepdim, dtype=dtype)
        return matrix_norm(t, "fro" if ord is None else ord, dims, keepdim, dtype=dtype)
    if ord is None:
        return vector_norm(t, 2, None, keepdim, dtype=dtype)
    if isinstance(ord, str) or t.ndim == 2:
        return matrix_norm(t, ord, (-2, -1), keepdim, dtype=dtype)
    if t.ndim == 1:
        return vector_norm(t, ord, None, keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
                       f"Got {t.ndim}D.")
