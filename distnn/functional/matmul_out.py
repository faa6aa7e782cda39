"""``torch.matmul(a, b, out=t)`` (and ``mm``, ``bmm``, ``dot``, ``mv``, which are its cases run alone): the
product written into ``out``, with PyTorch 2.13's rules, in its order (``mm`` with a sparse operand:
:func:`sparse_mm_into_out`, its own rules).

1. the parser: ``out`` must be a Tensor (``matmul(): argument 'out' must be Tensor, not list``);
2. autograd: no ``out=`` while grad mode is on and an argument, ``out`` included, requires grad;
3. the shape checks of the kernel that each case runs (distnn's own ``matmul`` refusals), then ``out``'s dtype.
   PyTorch's matrix kernels cast nothing: ``out`` must have the inputs' dtype, and each kernel words the refusal
   its own way:

   * vector . vector (``dot``): ``result dtype Double does not match input dtype Float``, checked *before* the
     lengths are;
   * matrix (or batch) @ vector (``addmv``): ``addmv input tensors must have the same dtype, but got Double,
     Float, and Float`` (out's, then the inputs'; a 2-D one into an ``out`` of another shape words it otherwise).
     A batch @ vector is folded into one mv into ``out`` viewed as a matrix, so ``out`` is resized (and warns)
     before any of these checks, as PyTorch's;
   * the rest (``mm``/``bmm``): ``Expected out tensor to have dtype float, but got double instead``, in C++'s
     type names.

   Inputs of two dtypes are refused before the shapes are checked, each case in its kernel's words and order
   (``out`` against the first input's dtype, or the second's where PyTorch broadcasts into ``bmm``, then the
   inputs against each other);
4. an ``out`` of the result's shape whose elements share memory (an expanded tensor) is refused by the matrix
   kernels (``mm``, a batch folded into one mm or mv, vector @ matrix's (1, n)); ``mv`` and ``bmm`` write it
   element by element, the last value written to a location staying (:mod:`.out_shared`). One of another shape
   is resized, which makes it contiguous. An ``out`` that is an input is fine (the product is computed before
   it is written);
5. the write (:mod:`.out_write`): ``out`` resized to the result's shape when it differs, with PyTorch's warning
   when it had elements. vector @ matrix is run by PyTorch as a (1, n) matrix product squeezed back, so ``out``
   warns unless it is empty or (1, n), even when it already has the result's shape (n,), and names [1, n].
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.grad_mode import no_grad
from distnn.autograd.mutation_guard import will_write
from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_inplace_methods import torch_dtype_name
from distnn.autograd.tensor_storage import _contiguous_strides, resize_storage

from .clamp_out import refuse_grad_with_out
from .out_common import check_out_argument
from .out_overlap import _has_internal_overlap, check_out_overlap
from .out_write import resize_out, warn_resized, write_into_out, write_resized
from .parser_refusal import invalid_combination
from .parser_refusal import parser_type_name as _type_name

__all__ = ["matmul_into_out", "sparse_mm_into_out"]

# (the names C++'s typeid gives the scalar types, which ``mm``'s and ``bmm``'s refusal prints)
_CPP_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half", "bfloat16": "c10::BFloat16",
              "int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char",
              "uint8": "unsigned char", "bool": "bool", "complex64": "c10::complex<float>",
              "complex128": "c10::complex<double>"}


def _cpp_name(dtype) -> str:
    name = np.dtype(dtype).name
    return _CPP_NAMES.get(name, name)


_MM_SIGNATURES = ("(Tensor input, Tensor mat2, *, Tensor out = None)",
                  "(Tensor input, Tensor mat2, torch.dtype out_dtype, *, Tensor out = None)")
_ARGUMENT_NAMES = {"matmul": ("input", "other"), "dot": ("input", "tensor"), "mv": ("input", "vec")}
# (the dims each named op takes: only there is a mixed-dtype refusal ahead of the op's own checks)
_DIMS = {"dot": (1, 1), "mv": (2, 1), "mm": (2, 2), "bmm": (3, 3)}


def matmul_into_out(compute, a, b, out, name: str = "matmul", parser_name: str | None = None) -> Tensor:
    """``compute(a, b)`` (distnn's ``matmul``, ``mm``, ``bmm``, ``dot`` or ``mv``: ``name``, run without
    recording) written into ``out``, which is returned (see the module docstring for the rules).
    ``parser_name``: the name the parser's refusals give, where it is not ``name`` (``linalg.matmul``'s)."""
    _parse(name, a, b, out, parser_name)
    refuse_grad_with_out(name, out, a, b)
    a_dims, b_dims = getattr(a, "ndim", None), getattr(b, "ndim", None)
    mixed = getattr(a, "dtype", None) != getattr(b, "dtype", None)
    folded_mv = name == "matmul" and a_dims is not None and a_dims >= 3 and b_dims == 1
    moved_from = None
    if folded_mv:  # (resized before anything is checked: PyTorch's folded mv, the refusals after)
        will_write(out)
        moved_from = resize_out(out, tuple(a.shape[:-1]))
    dims_taken = _DIMS.get(name, (a_dims, b_dims)) == (a_dims, b_dims) and a_dims and b_dims
    if dims_taken and (a_dims == 1 and b_dims == 1 or mixed):  # (dot's, and a mixed product's, before the shapes)
        _refuse_dtype(a, b, out)
    with no_grad():
        result = compute(a, b)
    _refuse_dtype(a, b, out)
    if a_dims == 1 and b_dims == 2:
        return _write_vector_matrix(out, result)
    if folded_mv:
        if moved_from is None:
            check_out_overlap(out)  # (out's own overlap: PyTorch's folded mv refuses an expanded out)
        write_resized(out, result.data, moved_from)
        return out
    # (mm's kernel refuses an expanded out of the result's shape, a batch folded into mm too; mv's and bmm's write)
    by_mm = a_dims == 2 and b_dims == 2 or (a_dims or 0) >= 3 and b_dims == 2
    write_into_out(out, result.data, shared=None if by_mm else "last")
    return out


def sparse_mm_into_out(compute, a, b, out) -> Tensor:
    """``mm(a, b, out=t)`` with a sparse COO operand, as PyTorch's sparse ``addmm``: only sparse @ dense (the
    others refused as PyTorch refuses them: ``expand is unsupported for Sparse tensors``), the dense matrix and
    ``out`` of the sparse one's dtype (``expected scalar type Float but found Double``), ``out`` resized silently
    to the product's shape (an ``out`` of that shape written in place), and returned."""
    _parse("mm", a, b, out)
    refuse_grad_with_out("mm", out, a, b)
    if _is_sparse(b):
        raise RuntimeError("expand is unsupported for Sparse tensors")
    for other in (b, out):
        if other.dtype != a.dtype:
            raise RuntimeError(f"expected scalar type {torch_dtype_name(a.dtype)} but found "
                               f"{torch_dtype_name(other.dtype)}")
    with no_grad():
        result = compute(a, b)
    will_write(out)
    shape = tuple(result.shape)
    moved_from = None if tuple(out.shape) == shape else resize_storage(out, shape, _contiguous_strides(shape))
    write_resized(out, result.data, moved_from)
    return out


def _is_sparse(x) -> bool:
    from distnn.autograd import tensor_operators

    return type(x) is tensor_operators._sparse_type


def _parse(name, a, b, out, parser_name=None) -> None:
    """The parser's refusals of an operand or ``out`` that is not a Tensor: ``mm`` and ``bmm`` have two overloads,
    and word it as a failed match of both; the others name the first argument that is not."""
    if name in ("mm", "bmm"):
        if not all(isinstance(x, Tensor) or _is_sparse(x) for x in (a, b, out)):
            given = ["Tensor" if _is_sparse(x) else _type_name(x) for x in (a, b)]
            raise invalid_combination(name, given, _MM_SIGNATURES, keywords=[f"out={_type_name(out)}"])
        return
    for position, (argument, argument_name) in enumerate(zip((a, b), _ARGUMENT_NAMES[name])):
        if not isinstance(argument, Tensor):
            raise TypeError(f"{parser_name or name}(): argument '{argument_name}' (position {position + 1}) must "
                            f"be Tensor, not {_type_name(argument)}")
    check_out_argument(parser_name or name, out)


def _refuse_dtype(a, b, out) -> None:
    """The refusal, worded as the kernel of the case (and of the check it fails) words it, of an ``out`` not of
    the inputs' dtype, or of inputs of two dtypes."""
    a_dims, b_dims, mixed = a.ndim, b.ndim, a.dtype != b.dtype
    if a_dims >= 2 and b_dims == 1:  # (addmv, but see _mv_into_a_fresh_result)
        if not out.dtype == a.dtype == b.dtype:
            fresh = _mv_into_a_fresh_result(a, out)
            if fresh and not mixed:
                raise _expected_out(a.dtype, out.dtype)
            first = b.dtype if fresh else out.dtype
            raise RuntimeError(f"addmv input tensors must have the same dtype, but got {torch_dtype_name(first)}, "
                               f"{torch_dtype_name(a.dtype)}, and {torch_dtype_name(b.dtype)}")
    elif a_dims == 1 and b_dims == 1:  # (dot)
        if out.dtype != a.dtype:
            raise RuntimeError(f"result dtype {torch_dtype_name(out.dtype)} does not match input dtype "
                               f"{torch_dtype_name(a.dtype)}")
        if mixed:
            raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                               f"{torch_dtype_name(a.dtype)} and {torch_dtype_name(b.dtype)}")
    elif b_dims >= 3:  # (bmm of the broadcast operands: out checked against the second's dtype)
        if out.dtype != b.dtype:
            raise _expected_out(b.dtype, out.dtype)
        if mixed:
            raise RuntimeError(f"expected scalar type {torch_dtype_name(a.dtype)} but found "
                               f"{torch_dtype_name(b.dtype)}")
    else:  # (mm, a batch folded into one mm included)
        if out.dtype != a.dtype:
            raise _expected_out(a.dtype, out.dtype)
        if mixed:
            raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {_cpp_name(a.dtype)} != "
                               f"{_cpp_name(b.dtype)}")


def _mv_into_a_fresh_result(a, out) -> bool:
    """Whether PyTorch's 2-D mv runs into a fresh result (then copied into ``out``): where ``out`` has not the
    result's shape. Its refusal then names that result's dtype (the vector's) first, and an ``out`` of the wrong
    dtype alone is refused in ``mm``'s words."""
    return a.ndim == 2 and tuple(out.shape) != (a.shape[0],)


def _expected_out(dtype, out_dtype) -> RuntimeError:
    return RuntimeError(f"Expected out tensor to have dtype {_cpp_name(dtype)}, but got {_cpp_name(out_dtype)} "
                        "instead")


def _write_vector_matrix(out, result) -> Tensor:
    """vector @ matrix written as PyTorch's: ``out`` taken to (1, n) (warning unless empty or (1, n) already),
    then squeezed to (n,), silently."""
    row = (1, *result.shape)
    if tuple(out.shape) != row:
        warn_resized(out, row)
    else:
        check_out_overlap(out)  # (the (1, n) matrix product's kernel refuses an expanded out)
    will_write(out)
    shape = tuple(result.shape)
    # (an out of the result's shape (n,) is resized to (1, n) first: an expanded one is made contiguous)
    kept = tuple(out.shape) == shape and not _has_internal_overlap(out.data)
    moved_from = None if kept else resize_storage(out, shape, _contiguous_strides(shape))
    write_resized(out, result.data, moved_from)
    return out
