"""``out=`` on the reductions ``nansum``, ``nanmean``, ``std``, ``var``, ``logsumexp``, ``all`` and ``any``, with
PyTorch 2.13's rules (``sum``, ``prod``, ``mean``, ``amax``, ``amin``: :mod:`.reduce_out`, whose machinery this
reuses).

As there, in PyTorch's order: the parser (``out`` must be a Tensor), autograd (no ``out=`` while grad mode is on and
an argument requires grad; ``all``/``any`` are not differentiable and record nothing to refuse), the op's dtype
rules, the result written into ``out`` (resized to the result's shape, with PyTorch's deprecation warning when it
had elements; an ``out`` of that shape keeps its strides) and ``out`` itself returned. The dtype rules differ by op:

* ``nansum``: a complex input is refused; an integer or bool input is PyTorch's ``sum_out`` (the sum in
  ``out``'s dtype, any dtype); a floating one is cast to ``out``'s dtype and summed there, which must be floating
  (``"nansum_cpu" not implemented for 'Long'``); a ``dtype=`` other than ``out``'s is refused
  (``nansum: provided dtype must match dtype of result. Got Double and Float.``);
* ``nanmean``: a floating input only; PyTorch's ``nansum_out(out)`` then ``div_`` by the count of non-NaN
  elements (its refusals, the autograd one included, are ``nansum``'s);
* ``std``, ``var``: ``out`` of a dtype ``canCast`` allows
  (``result type Float can't be cast to the desired output type Long``); a result of one element is computed in
  the input's dtype (PyTorch's full reduction, which refuses float16 into another dtype) and cast into ``out``;
  any other in ``out``'s dtype, the input cast first, where a complex ``out`` has no kernel
  (``"std_cpu" not implemented for 'ComplexFloat'``, ``var`` too). An expanded ``out`` of the result's shape is
  written as PyTorch's kernel writes it: the dims it repeats (stride 0) are folded into the reduction, each
  location the spread of all the elements written there (``var(x, 1, out=zeros(1).expand(3))`` is ``var(x)``
  three times), ``out`` keeping its strides; other overlapping ``out`` tensors are refused;
* ``logsumexp``: ``out`` floating or complex (``logsumexp(): Expected floating point type for result tensor, but
  got: Long``); as PyTorch's ``logsumexp_out``, the max and ``exp`` in the input's dtype (float32 for an integer
  input), their sum in ``out``'s dtype (``sum_out``), the ``log`` and the max added back there;
* ``all``, ``any``: ``out`` bool or uint8 (``all only supports bool tensor for result, got: Float``);
* ``norm``: as ``torch.norm``, ``linalg.vector_norm``'s ``out`` (a number ``p``, or 'fro' over at most 2 dims) or
  ``linalg.matrix_norm``'s, the refusals under those names; ``out`` must have the result's dtype
  (``Expected out tensor to have dtype float, but got double instead``). ``matrix_norm``'s ``out`` (a 'nuc' or
  'fro' over more than 2 dims) takes a recording input, as PyTorch's composite ``linalg_matrix_norm_out``: the
  norm recorded, then ``out.copy_(norm)``, so ``out`` becomes a non-leaf whose ``grad_fn`` is ``CopyBackwards``.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from distnn.autograd.grad_mode import no_grad
from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_inplace_methods import torch_dtype_name
from distnn.backend import get_array_module, unwrap

from .clamp_out import refuse_grad_with_out
from .matmul_out import _cpp_name
from .out_common import check_out_argument, refuse_cast
from .out_write import write_into_out
from .parser_refusal import invalid_combination
from .reduce_out import sum_like_into_out

__all__ = ["logical_into_out", "logsumexp_into_out", "nanmean_into_out", "nansum_into_out", "norm_into_out",
           "spread_into_out"]

_SPREAD_SIGNATURES = ("(Tensor input, tuple of ints dim, bool unbiased = True, bool keepdim = False, *, "
                      "Tensor out = None)",
                      "(Tensor input, tuple of ints dim = None, *, Number correction = None, bool keepdim = False, "
                      "Tensor out = None)",
                      "(Tensor input, bool unbiased = True)")
_LOGICAL_SIGNATURES = ("(Tensor input, *, Tensor out = None)",
                       "(Tensor input, tuple of ints dim = None, bool keepdim = False, *, Tensor out = None)",
                       "(Tensor input, int dim, bool keepdim = False, *, Tensor out = None)")


def _refuse_non_tensor_out(name, out, dim, signatures, unmatched_keyword) -> None:
    """The parser's refusal of an ``out`` that is not a Tensor, for an op with several overloads (it names them
    all; after the one at index ``unmatched_keyword``, if any, the note that ``out`` is not its keyword)."""
    if isinstance(out, Tensor):
        return
    notes = None if unmatched_keyword is None else {
        unmatched_keyword: "didn't match because some of the keywords were incorrect: out"}
    raise invalid_combination(name, ["Tensor"] + ([] if dim is None else [type(dim).__name__]), signatures,
                              keywords=[f"out={type(out).__name__}"], notes=notes)


def nansum_into_out(nansum, a, out, dim, keepdim, dtype) -> Tensor:
    """``nansum(a, dim, keepdim)`` written into ``out``, which is returned (see the module docstring)."""
    check_out_argument("nansum", out)
    refuse_grad_with_out("nansum", out, a)
    kind = unwrap(a).dtype.kind
    if kind == "c":
        raise RuntimeError("nansum on CPU does not support complex inputs")
    if kind in "biu":  # (no NaN to skip: PyTorch's nansum_out is sum_out, its rules and words)
        from .reduce import sum as _sum

        return sum_like_into_out("nansum", lambda x, in_dtype: _sum(x, dim, keepdim, dtype=in_dtype), a, out, dtype)
    if dtype is not None and np.dtype(dtype) != out.dtype:
        raise RuntimeError(f"nansum: provided dtype must match dtype of result. Got {torch_dtype_name(out.dtype)} "
                           f"and {torch_dtype_name(dtype)}.")
    if out.dtype.kind != "f":  # (the kernel is dispatched on out's dtype, floating types only)
        raise NotImplementedError(f"\"nansum_cpu\" not implemented for '{torch_dtype_name(out.dtype)}'")
    with no_grad():
        result = nansum(a, dim, keepdim, dtype=out.dtype)
    write_into_out(out, unwrap(result), shared=np.add)
    return out


def nanmean_into_out(nansum, a, out, axes, keepdim, dtype) -> Tensor:
    """``nanmean`` over ``axes`` written into ``out`` as PyTorch's ``nansum_out(out).div_(count)``."""
    check_out_argument("nanmean", out)
    data = unwrap(a)
    if data.dtype.kind not in "fc":
        raise RuntimeError("nanmean(): integral types and 'Bool' are not supported for nanmean, even for empty "
                           "tensors.")
    nansum_into_out(nansum, a, out, axes, keepdim, dtype)
    xp = get_array_module(data)
    count = (~xp.isnan(data)).sum(axis=axes, keepdims=keepdim)
    with np.errstate(divide="ignore", invalid="ignore"):  # (a slice of NaN only: 0 / 0, NaN as PyTorch's)
        write_into_out(out, (out.data / count).astype(out.dtype, copy=False))
    return out


def spread_into_out(name: str, compute, a, out, dim, folded=None) -> Tensor:
    """``compute(a)`` (``std`` or ``var``, run without recording) cast into ``out``, which is returned. As PyTorch's
    ``std_var_out``: a result of one element is its full reduction's (the input's dtype, float16 refused); any
    other is computed on the input cast to ``out``'s (real) dtype. ``folded(x, repeated)``: the values for an
    expanded ``out`` of the result's shape, its repeated dims folded into the reduction (see the module
    docstring)."""
    _refuse_non_tensor_out(name, out, dim, _SPREAD_SIGNATURES, 2 if dim is None else None)
    refuse_grad_with_out(name, out, a)
    data = unwrap(a)
    if data.dtype.kind not in "fc":
        raise RuntimeError("std and var only support floating point and complex dtypes")
    # (the reduction's warnings, "degrees of freedom is <= 0", held: PyTorch's kernel gives them after out's resize,
    # and none where it folds dims into the reduction that leave enough elements)
    with warnings.catch_warnings(record=True) as held:
        warnings.simplefilter("always")
        result, data = _spread(compute, a, data, out)
    repeated = _repeated_dims(out, result.shape) if folded is not None else ()
    if repeated:
        with no_grad():
            values = folded(Tensor(data), repeated)
        values = values.real if values.dtype.kind == "c" else values
        result = get_array_module(values).broadcast_to(values, result.shape)
    write_into_out(out, result, shared="last" if repeated else None)  # (each location's values are one value)
    for caught in () if repeated else held:
        warnings.warn_explicit(caught.message, caught.category, caught.filename, caught.lineno)
    return out


def _spread(compute, a, data, out):
    """``(result, input)``: ``compute``'s result as ``spread_into_out`` writes it, after its dtype checks, and the
    input it was computed on (``data``, or it cast to ``out``'s dtype)."""
    with no_grad():
        result = unwrap(compute(a))
    if data.dtype.kind == "c":  # (the spread of complex values is real)
        result = result.real
    refuse_cast(result.dtype, out.dtype)
    if data.dtype.kind == "f" and result.size == 1 and data.size and out.dtype != np.float16:
        if data.dtype == np.float16:  # (the full reduction's kernel has no float16)
            raise RuntimeError("std_var_all: Unsupported dtype Half")
    elif out.dtype.kind == "c":
        raise NotImplementedError(f"\"std_cpu\" not implemented for '{torch_dtype_name(out.dtype)}'")
    elif data.dtype.kind == "f" and out.dtype != data.dtype:
        data = data.astype(out.dtype)
        with no_grad():
            result = unwrap(compute(Tensor(data)))
    return result, data


def _repeated_dims(out, shape) -> tuple:
    """The dims along which ``out``, of the result's ``shape``, repeats one memory location (an expanded tensor's
    stride 0, over more than one element): none where ``out`` will be resized."""
    if tuple(out.shape) != tuple(shape):
        return ()
    return tuple(i for i, (size, stride) in enumerate(zip(out.data.shape, out.data.strides)) if size > 1
                 and stride == 0)


def logsumexp_into_out(a, out, axes, keepdim) -> Tensor:
    """``logsumexp`` of ``a`` over ``axes`` (a tuple of wrapped dims) written into ``out`` as PyTorch's
    ``logsumexp_out`` computes it (see the module docstring)."""
    from .reduce import sum as _sum

    check_out_argument("logsumexp", out)
    refuse_grad_with_out("logsumexp", out, a)
    if out.dtype.kind not in "fc":
        raise RuntimeError(f"logsumexp(): Expected floating point type for result tensor, but got: "
                           f"{torch_dtype_name(out.dtype)}")
    data = unwrap(a)
    xp = get_array_module(data)
    if data.dtype.kind in "biu":  # (the default floating dtype, as PyTorch's)
        data = data.astype(np.float32)
    if data.size:
        peak = data.max(axis=axes, keepdims=True)
        peak = xp.where(xp.isinf(peak), xp.zeros((), peak.dtype), peak)  # (an infinite max shifts nothing)
    else:
        peak = xp.zeros([1 if i in axes else s for i, s in enumerate(data.shape)], data.dtype)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        with no_grad():
            total = unwrap(_sum(Tensor(xp.exp(data - peak)), axes, True, dtype=out.dtype))
        result = xp.log(total) + peak.astype(out.dtype)
    if not keepdim:
        result = result.reshape([s for i, s in enumerate(data.shape) if i not in axes])
    write_into_out(out, result.astype(out.dtype, copy=False))
    return out


def logical_into_out(name: str, compute, a, out, dim) -> Tensor:
    """``compute(a)`` (``all`` or ``any``) written into ``out``, bool or uint8, which is returned."""
    _refuse_non_tensor_out(name, out, dim, _LOGICAL_SIGNATURES, None if dim is None else 0)
    if out.dtype not in (np.bool_, np.uint8):
        raise RuntimeError(f"{name} only supports bool tensor for result, got: {torch_dtype_name(out.dtype)}")
    with no_grad():
        result = compute(a)
    # (an expanded out: each location the reduction of every result written there, as sum's)
    write_into_out(out, unwrap(result), shared=np.logical_and if name == "all" else np.logical_or)
    return out


def norm_into_out(norm, a, out, p, dim, keepdim, dtype) -> Tensor:
    """``norm(a, p, dim, keepdim, dtype=dtype)`` written into ``out``, of its dtype, which is returned: as
    ``torch.norm`` hands ``out`` to ``linalg.vector_norm`` or ``linalg.matrix_norm`` (see the module docstring)."""
    vector = not isinstance(p, str) or (p == "fro" and (dim is None or isinstance(dim, numbers.Integral)
                                                        or len(dim) <= 2))
    name = "linalg_vector_norm" if vector else "linalg_matrix_norm"
    check_out_argument(name, out)
    if not vector:  # (PyTorch's matrix_norm out= is composite: the norm, recorded, then copied into out)
        from distnn.linalg.norms_out import composite_norm_into_out

        return composite_norm_into_out(norm(a, p, dim, keepdim, dtype=dtype), out, "linalg.matrix_norm")
    refuse_grad_with_out(name, out, a)
    with no_grad():
        result = norm(a, p, dim, keepdim, dtype=dtype)  # (its refusals of the input come first, as PyTorch's)
    if result.dtype != out.dtype:
        raise RuntimeError(f"Expected out tensor to have dtype {_cpp_name(result.dtype)}, but got "
                           f"{_cpp_name(out.dtype)} instead")
    write_into_out(out, unwrap(result))
    return out
