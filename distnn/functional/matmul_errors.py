"""PyTorch's refusals of ``matmul`` operands (torch 2.13), each in the words of the kernel its case runs.

``torch.matmul`` is no kernel of its own: it sends each pair of ranks to one (ATen's ``_matmul_impl``), and the
refusal is that kernel's:

* a 0-d operand: ``both arguments to matmul need to be at least 1D, but they are 0D and 2D``;
* vector . vector: ``dot`` (its dtype check comes before its length check);
* matrix @ vector: ``mv`` (``size mismatch, got input (2), mat (2x3), vec (4)``);
* vector @ matrix: ``mm`` of the vector as a (1, n) matrix; matrix @ matrix: ``mm``
  (``mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)``);
* a batch beside a matrix or vector: ``mm`` or ``mv`` of the batch folded into a matrix, where PyTorch folds
  (``should_fold``: the larger operand's batch dims are contiguous, or the smaller operand requires grad; a
  matrix on the left beside a batch is folded only then); else ``bmm`` of both broadcast to one batch
  (``infer_size``'s refusal of batch dims that do not broadcast, then
  ``Expected size for first two dimensions of batch2 tensor to be: [2, 3] but got: [2, 4].``).

Shapes are checked before dtypes (but in ``dot``), and a mixed-dtype refusal is the kernel's too: ``dot``'s,
``addmv``'s (the result's dtype, the vector's, named first), ``mm``'s (in C++'s type names) or ``bmm``'s.
The refusals of shapes are :class:`~.shape_checks.ShapeError`: PyTorch's RuntimeError, and the ValueError distnn
always raised there.
"""
from __future__ import annotations

from math import prod

from distnn.autograd.tensor_inplace_methods import torch_dtype_name

from .shape_checks import ShapeError
from .strides import torch_strides

__all__ = ["refuse_matmul"]

# (the names C++'s typeid gives the scalar types, which ``mm``'s refusal prints)
_CPP_NAMES = {"float32": "float", "float64": "double", "float16": "c10::Half", "bfloat16": "c10::BFloat16",
              "int64": "long int", "int32": "int", "int16": "short int", "int8": "signed char",
              "uint8": "unsigned char", "bool": "bool", "complex64": "c10::complex<float>",
              "complex128": "c10::complex<double>"}


def refuse_matmul(a, b, a_requires_grad: bool = False, b_requires_grad: bool = False) -> None:
    """Raise PyTorch's refusal of ``matmul(a, b)`` (arrays; whether each operand requires grad, which decides
    PyTorch's folding: see the module docstring); nothing where PyTorch would multiply them."""
    da, db = a.ndim, b.ndim
    if da == 0 or db == 0:
        raise ShapeError(f"both arguments to matmul need to be at least 1D, but they are {da}D and {db}D")
    if da == 1 and db == 1:
        return _dot(a, b)
    if da == 2 and db == 1:
        return _mv(a.shape, b.shape, b.dtype, a.dtype, b.dtype)
    if da == 1 and db == 2:
        return _mm((1, a.shape[0]), b.shape, a.dtype, b.dtype)
    if da == 2 and db == 2:
        return _mm(a.shape, b.shape, a.dtype, b.dtype)
    if _folds(a, b, a_requires_grad, b_requires_grad):
        if da >= db:  # (the batch of a folded into its rows)
            rows = (prod(a.shape[:-1]), a.shape[-1])
            if db == 1:
                return _mv(rows, b.shape, b.dtype, a.dtype, b.dtype)
            return _mm(rows, b.shape, a.dtype, b.dtype)
        rows = (prod(b.shape[:-2]) * b.shape[-1], b.shape[-2])  # (b transposed, folded: a . b^T^T)
        if da == 1:
            return _mv(rows, a.shape, a.dtype, b.dtype, a.dtype)
        return _mm(rows, a.shape[::-1], b.dtype, a.dtype)
    return _batched(a, b)


def _folds(a, b, a_requires_grad, b_requires_grad) -> bool:
    """ATen's ``should_fold(a, b)`` (its ``has_out`` false): whether a batch beside a matrix or vector is run as one
    ``mm``/``mv`` of the batch's rows."""
    larger_first = a.ndim >= b.ndim
    big, small_dims = (a, b.ndim) if larger_first else (b, a.ndim)
    if not (big.ndim >= 3 and small_dims <= 2):
        return False
    if (b_requires_grad if larger_first else a_requires_grad):
        return True
    if a.ndim == 2:
        return False
    if big.size == 0:
        return True
    shape, strides = list(big.shape), list(torch_strides(big))
    if not larger_first:  # (b.mT)
        shape[-2:], strides[-2:] = shape[:-3:-1], strides[:-3:-1]
    return all(strides[i] == strides[i + 1] * shape[i + 1] for i in range(big.ndim - 2))


def _dot(a, b) -> None:
    if a.dtype != b.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                           f"{torch_dtype_name(a.dtype)} and {torch_dtype_name(b.dtype)}")
    n, m = a.shape[0], b.shape[0]
    if n != m:
        raise ShapeError(f"inconsistent tensor size, expected tensor [{n}] and src [{m}] to have the same number of "
                         f"elements, but got {n} and {m} elements respectively")


def _mv(mat, vec, result_dtype, mat_dtype, vec_dtype) -> None:
    if mat[1] != vec[0]:
        raise ShapeError(f"size mismatch, got input ({mat[0]}), mat ({mat[0]}x{mat[1]}), vec ({vec[0]})")
    if mat_dtype != vec_dtype:
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got {torch_dtype_name(result_dtype)}, "
                           f"{torch_dtype_name(mat_dtype)}, and {torch_dtype_name(vec_dtype)}")


def _mm(m1, m2, m1_dtype, m2_dtype) -> None:
    if m1[1] != m2[0]:
        raise ShapeError(f"mat1 and mat2 shapes cannot be multiplied ({m1[0]}x{m1[1]} and {m2[0]}x{m2[1]})")
    if m1_dtype != m2_dtype:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {_cpp_name(m1_dtype)} != "
                           f"{_cpp_name(m2_dtype)}")


def _batched(a, b) -> None:
    """The unfolded case: both broadcast to one batch and multiplied by ``bmm``."""
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    batch = _broadcast_batch(batch_a, batch_b)
    inner_a = a.shape[-1]
    inner_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if inner_a != inner_b:
        count = prod(batch)
        raise ShapeError(f"Expected size for first two dimensions of batch2 tensor to be: [{count}, {inner_a}] "
                         f"but got: [{count}, {inner_b}].")
    if a.dtype != b.dtype:
        raise RuntimeError(f"expected scalar type {torch_dtype_name(a.dtype)} but found "
                           f"{torch_dtype_name(b.dtype)}")


def _broadcast_batch(first, second) -> tuple:
    """ATen's ``infer_size`` of two batch shapes, with its refusal (the last dim that differs, named in the
    broadcast shape's dims)."""
    ndim = max(len(first), len(second))
    out = []
    for dim in range(ndim - 1, -1, -1):
        offset = ndim - 1 - dim
        size_a = first[len(first) - 1 - offset] if offset < len(first) else 1
        size_b = second[len(second) - 1 - offset] if offset < len(second) else 1
        if size_a != size_b and size_a != 1 and size_b != 1:
            raise ShapeError(f"The size of tensor a ({size_a}) must match the size of tensor b ({size_b}) at "
                             f"non-singleton dimension {dim}")
        out.append(size_a if size_a != 1 else size_b)
    return tuple(reversed(out))


def _cpp_name(dtype) -> str:
    name = getattr(dtype, "name", str(dtype))
    return _CPP_NAMES.get(name, name)
