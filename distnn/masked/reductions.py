"""torch.masked's reductions (torch 2.13): ``sum``, ``prod``, ``amax``, ``amin``, ``argmax``, ``argmin``, ``mean``,
``median``, ``logsumexp``, ``norm``, ``var``, ``std``, with torch's signatures ``(input, dim, *, keepdim, dtype,
mask)``.

``mask`` (None: every element) broadcasts to the input's shape (never from more dims) and is read as bool. The
masked-out elements take the reduction's identity (0 for sum, 1 for prod, -inf for amax, ...), so a row whose
elements are all masked out gives that identity; mean, median, var and std give NaN there, as torch's. Each is
differentiable through ``input`` as the distnn op it is built on; a masked-out element's gradient is 0 (but
NaN for var/std in a row with nothing masked in, as torch's).
``dtype`` is torch's: the dtype the reduction runs in for sum/prod/norm/mean/var/std, the dtype the result is
cast to for the others (so argmax/argmin return the input's dtype unless told otherwise, as torch's).

A MaskedTensor input is reduced over its own mask (``mask`` is then not read for the values), as torch's; torch's
mean, var and std still count the elements of ``mask`` (every element when it is None), and so do these: give
``mask=mt.get_mask()``, as ``mt.mean()`` does, for the mean of the specified elements.
"""
from __future__ import annotations

import numpy as np

import distnn as dn
from distnn.autograd import Tensor

from ._common import array_of, as_input, canonical_dim, combine, input_mask, is_float_or_complex, is_floating, sum_dtype


def sum(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:  # noqa: A001 - torch's name
    """``torch.masked.sum``: the sum of the masked-in elements over ``dim`` (0 where none is)."""
    input = as_input(input, "sum")
    dtype = sum_dtype(input, dtype)
    dims = canonical_dim(dim, input.ndim)
    return dn.sum(combine("sum", input, mask), dims, bool(keepdim), dtype=dtype)


def prod(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:
    """``torch.masked.prod``: the product of the masked-in elements over ``dim`` (1 where none is)."""
    input = as_input(input, "prod")
    dtype = sum_dtype(input, dtype)
    dims = canonical_dim(dim, input.ndim)
    out = combine("prod", input, mask).to(dtype)
    for d in reversed(dims):  # (one dim at a time, as torch: prod takes a single dim)
        out = dn.prod(out, d, bool(keepdim))
    return out


def amax(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:
    """``torch.masked.amax``: the largest masked-in element over ``dim`` (-inf, or the integer minimum, where
    none is). The gradient is split evenly among ties, as torch's amax."""
    input = as_input(input, "amax")
    out = dn.amax(combine("amax", input, mask), canonical_dim(dim, input.ndim), bool(keepdim))
    return out.to(input.dtype if dtype is None else dtype)


def amin(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:
    """``torch.masked.amin``: the smallest masked-in element over ``dim`` (inf, or the integer maximum, where
    none is)."""
    input = as_input(input, "amin")
    out = dn.amin(combine("amin", input, mask), canonical_dim(dim, input.ndim), bool(keepdim))
    return out.to(input.dtype if dtype is None else dtype)


def argmax(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:
    """``torch.masked.argmax``: the index of the largest masked-in element along ``dim`` (an int or None: the
    flattened input), cast to ``dtype``, which is the input's by default (torch's: float indices for a float
    input). A row whose elements are all masked out gives index 0."""
    input = as_input(input, "argmax")
    out = dn.argmax(combine("argmax", input, mask), dim, bool(keepdim))
    return out.to(input.dtype if dtype is None else dtype)


def argmin(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:
    """``torch.masked.argmin``: the index of the smallest masked-in element along ``dim``, as :func:`argmax`."""
    input = as_input(input, "argmin")
    out = dn.argmin(combine("argmin", input, mask), dim, bool(keepdim))
    return out.to(input.dtype if dtype is None else dtype)


def _count(input, dims, keepdim, mask):
    """How many elements are masked in along ``dims`` (an int64 tensor)."""
    if mask is None:
        n = int(np.prod([input.shape[d] for d in dims], dtype=np.int64))
        shape = [1 if d in dims else s for d, s in enumerate(input.shape) if keepdim or d not in dims]
        xp = dn.get_array_module(array_of(input))
        return dn.tensor(xp.full(shape, n, dtype=np.int64))  # (on the input's device)
    return dn.sum(input_mask(input, mask).to(np.int64), dims, keepdim)


def mean(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:
    """``torch.masked.mean``: the mean of the masked-in elements over ``dim``; NaN where none is (0 / 0). The
    dtype (the input's, or ``dtype``) must be floating point or complex, as torch's."""
    input = as_input(input, "mean")
    source = "Input" if dtype is None else "Optional"
    dtype = np.dtype(input.dtype if dtype is None else dtype)
    if not is_float_or_complex(dtype):
        raise ValueError(f"mean(): Could not infer output dtype. {source} dtype must be either a floating point or "
                         f"complex dtype. Got: {_torch_name(dtype)}")
    dims = canonical_dim(dim, input.ndim)
    total = sum(input, dims, keepdim=keepdim, dtype=dtype, mask=mask)
    return total / _count(input, dims, bool(keepdim), mask).to(total.dtype)


def median(input, dim=-1, *, keepdim=False, dtype=None, mask=None) -> Tensor:
    """``torch.masked.median``: the (lower) median of the masked-in elements along the single ``dim``; NaN where
    none is. An integer input is taken as float32 and its result cast back, so a row with no masked-in element
    is refused for it (torch's ValueError). The gradient goes to the median element, as torch's."""
    input = as_input(input, "median")
    dtype = input.dtype if dtype is None else dtype
    d = canonical_dim(dim, input.ndim)[0]
    floating = is_floating(input.dtype)
    if not floating:
        input = input.to(np.float32)
    out = dn.nanmedian(combine("median", input, mask), d, bool(keepdim)).values
    if floating:
        return out
    if bool(dn.isnan(out).any()):
        raise ValueError("masked median expects no fully masked out rows if dtype is not floating point")
    return out.to(dtype)


def logsumexp(input, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:
    """``torch.masked.logsumexp``: ``log(sum(exp(x)))`` over the masked-in elements; -inf where none is."""
    input = as_input(input, "logsumexp")
    out = dn.logsumexp(combine("logsumexp", input, mask), canonical_dim(dim, input.ndim), bool(keepdim))
    return out.to(input.dtype if dtype is None else dtype)


def norm(input, ord=2.0, dim=None, *, keepdim=False, dtype=None, mask=None) -> Tensor:  # noqa: A002
    """``torch.masked.norm``: ``torch.linalg.vector_norm`` of the masked-in elements (masked-out ones count as 0,
    or inf for ``ord=-inf``), so 0 where none is (inf for ``ord=-inf``)."""
    input = as_input(input, "norm")
    dtype = input.dtype if dtype is None else dtype
    filled = combine("norm", input, mask, ord)
    return dn.linalg.vector_norm(filled, ord, canonical_dim(dim, input.ndim), bool(keepdim), dtype=dtype)


def _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, take_sqrt, op):
    """torch's masked var/std: the masked mean, then the masked sum of squared deviations over
    ``max(count - correction, 0)``, so NaN where no element is masked in (and inf where too few are)."""
    input = as_input(input, op)
    if input.dtype == np.bool_:  # (torch's subtraction of the mean refuses a bool tensor)
        raise RuntimeError("Subtraction, the `-` operator, with a bool tensor is not supported. If you are trying "
                           "to invert a mask, use the `~` or `logical_not()` operator instead.")
    if unbiased is not None and correction is not None:
        raise AssertionError("Only one of unbiased and correction may be given")
    corr = 1.0
    if unbiased is not None:
        corr = 1.0 if unbiased else 0.0
    if correction is not None:
        corr = float(correction)
    if dtype is None:
        dtype = input.dtype if is_float_or_complex(input.dtype) else np.float32
    dtype = np.dtype(dtype)
    compute = dtype if is_float_or_complex(dtype) else np.dtype(np.float32)
    dims = canonical_dim(dim, input.ndim)
    count = _count(input, dims, True, mask)
    sample_mean = sum(input, dims, keepdim=True, dtype=dtype, mask=mask) / count.to(dtype)
    x = input - sample_mean  # (a MaskedTensor input gives a MaskedTensor, summed over its own mask)
    total = sum(x * (x.conj() if np.dtype(x.dtype).kind == "c" else x), dims, keepdim=keepdim, dtype=compute, mask=mask)
    count = count.reshape(tuple(total.shape))
    real = np.dtype(compute.char.lower()) if compute.kind == "c" else compute
    count = count.to(real)
    if corr != 0:
        count = dn.clamp(count - corr, min=0.0)
    out = (total / count).to(dtype)
    return dn.sqrt(out) if take_sqrt else out


def var(input, dim=None, unbiased=None, *, correction=None, keepdim=False, dtype=None, mask=None) -> Tensor:
    """``torch.masked.var``: the variance of the masked-in elements over ``dim``, with Bessel's correction by
    default (``unbiased=False`` or ``correction=0`` for none; giving both is torch's AssertionError); NaN where
    no element is masked in. An integer input gives float32. The deviations are taken of every element, as
    torch's, so in a row with no element masked in (a NaN mean) the gradient is NaN, as torch's."""
    return _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, False, "var")


def std(input, dim=None, unbiased=None, *, correction=None, keepdim=False, dtype=None, mask=None) -> Tensor:
    """``torch.masked.std``: the square root of :func:`var`."""
    return _std_var(input, dim, unbiased, correction, keepdim, dtype, mask, True, "std")


def _torch_name(dtype) -> str:
    return "torch." + np.dtype(dtype).name


__all__ = ["sum", "prod", "amax", "amin", "argmax", "argmin", "mean", "median", "logsumexp", "norm", "var", "std"]
