"""Products with sparse COO operands, as PyTorch 2.13's: elementwise ``sparse * dense``, ``dense * sparse`` and
``sparse * sparse`` (:func:`mul`), and the matrix products ``dense @ sparse`` and ``sparse @ sparse``
(:func:`dense_mm_sparse`, :func:`sparse_mm_sparse`; ``sparse @ dense`` is :func:`distnn.sparse.mm`).

Each is written with recorded ops on the sparse values (:mod:`.rows`'s gather and scatter), so gradients
reach the values of both operands, as PyTorch's; a sparse leaf's ``.grad`` is sparse on its own indices
(see :class:`~.coo.SparseTensor`). Which entries a result keeps and whether it is coalesced follow PyTorch's
kernels (said at each function), so ``_nnz()`` and ``is_coalesced()`` agree with torch's.
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.function import Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module
from distnn.dtypes import promote_types, result_type

from .coo import SparseTensor
from .layout_grads import distinct_grad, tap_operand, tap_result
from .rows import gather_rows, scatter_rows


# ------------------------------------------------------------------------------------- sparse * dense
class DenseAtEntries(Function):
    """The blocks of the dense ``x`` (broadcast to ``size``) at a sparse tensor's entries: ``(nnz,) + dense
    sizes``. Backward, as PyTorch's ``mul(sparse, dense)``: a leaf ``x`` of the sparse tensor's size gets a
    sparse gradient on those entries; a broadcast ``x`` is refused (PyTorch's backward fails there too)."""

    saves_tensors = False  # (backward reads the indices only)

    def forward(self, x, indices=None, lin=None, size=()):
        self.indices, self.lin, self.size, self.shape = indices, lin, size, tuple(x.shape)
        xp = get_array_module(x)
        full = xp.broadcast_to(x, size)  # (a view: a broadcast factor is never materialized at the full size)
        if indices.shape[0] == 0:  # (no sparse dim: every entry is the whole tensor)
            return xp.broadcast_to(full, (indices.shape[1],) + tuple(size)).copy()
        return full[tuple(indices)]

    def backward(self, grad):
        if self.shape != self.size:
            raise RuntimeError(f"mul(sparse, dense): the gradient of a dense operand of shape {list(self.shape)} "
                               f"broadcast to the sparse operand's {list(self.size)} is not supported, as in "
                               "PyTorch (its backward fails: \"Could not run 'aten::view' with arguments from the "
                               "'SparseCPU' backend\"); expand the dense operand to the sparse one's shape first")
        x = self.parents[0]
        if isinstance(x, Tensor) and x.is_leaf and not x._grad_hooks:  # PyTorch's gradient: sparse
            return (SparseTensor(self.indices, Tensor(grad.copy()), self.size),)
        out = get_array_module(grad).zeros((int(np.prod(self.size[:self.indices.shape[0]], dtype=np.int64)),)
                                           + tuple(grad.shape[1:]), dtype=grad.dtype)
        from distnn.functional.indexing import scatter_add

        scatter_add(out, self.lin, grad)
        return (out.reshape(self.size),)

    def backward_graph(self, g):  # (create_graph: the same gradient, recorded)
        if self.shape != self.size:
            return self.backward(g.data)  # (raises, as above)
        x = self.parents[0]
        if isinstance(x, Tensor) and x.is_leaf and not x._grad_hooks:
            return (SparseTensor(self.indices, g, self.size),)
        rows = int(np.prod(self.size[:self.indices.shape[0]], dtype=np.int64))
        return (scatter_rows(g, self.lin, rows).reshape(self.size),)


def _mul_dense(s: SparseTensor, d: Tensor) -> SparseTensor:
    """``sparse * dense``: the sparse tensor's own entries (the same indices, the same ``is_coalesced()``),
    each times the dense tensor there; ``d`` may broadcast to the sparse tensor's shape, as in PyTorch."""
    try:
        shape = np.broadcast_shapes(tuple(d.shape), s.shape)
    except ValueError:
        raise RuntimeError(f"mul(sparse, dense): the size of the dense operand {list(d.shape)} does not broadcast "
                           f"to the sparse operand's {list(s.shape)}") from None
    dtype = np.dtype(result_type(s._vals, d))  # (PyTorch's promotion: a 0-d factor is one, as a 0-d tensor)
    if shape != s.shape:
        lead = len(shape) - s.dim()
        if lead <= 0 or tuple(shape[lead:]) != s.shape:
            raise NotImplementedError(
                f"mul(sparse, dense): a dense operand of shape {list(d.shape)} would broadcast the sparse "
                f"operand's own dims (size {list(s.shape)} to {list(shape[max(lead, 0):])}); PyTorch 2.13 gives "
                "a result of the broadcast size that keeps only the sparse operand's entries (not the product), "
                "so distnn refuses it: expand the sparse operand first")
        return _mul_dense_grown(s, d, shape, dtype)
    at = DenseAtEntries.apply(d, indices=s._idx, lin=s._linear(), size=s.shape)
    return SparseTensor(s._idx, s._vals.to(dtype) * at.to(dtype), s.shape, s.is_coalesced())


class GrownProduct(Function):
    """The values of ``sparse * dense`` where the dense operand adds leading dims (PyTorch's result: the sparse
    operand coalesced, its entries repeated for each index of the new dims, each times the dense operand
    there). PyTorch's backward fails for either operand; so does this one, with PyTorch's messages."""

    saves_tensors = False

    def forward(self, vals, d, indices=None, repeat=1, size=()):
        xp = get_array_module(d)
        full = xp.broadcast_to(d, size)
        return xp.concatenate([vals] * repeat) * full[tuple(indices)]

    def backward(self, grad):
        if self.needs_input_grad[0]:
            raise RuntimeError("Could not run 'aten::view' with arguments from the 'SparseCPU' backend (the gradient "
                               "of the sparse operand of a sparse * dense product that broadcasts it to more dims, "
                               "as in PyTorch)")
        raise RuntimeError("sparse_binary_op_intersection_cpu(): expects sparse inputs with equal dimensionality, "
                           "number of sparse dimensions, and shape of sparse dimensions (the gradient of the dense "
                           "operand of a sparse * dense product that broadcasts the sparse one, as in PyTorch)")


def _mul_dense_grown(s: SparseTensor, d: Tensor, shape, dtype) -> SparseTensor:
    """``sparse * dense`` whose dense operand has more dims: PyTorch's coalesced result with ``sparse_dim``
    grown by the new leading dims (see :class:`GrownProduct`)."""
    xp = get_array_module(s._idx)
    c = s.coalesce()
    lead = len(shape) - s.dim()
    count = int(np.prod(shape[:lead], dtype=np.int64))
    outer = xp.stack(xp.unravel_index(xp.arange(count, dtype=np.int64), shape[:lead])).astype(np.int64)
    nnz = c._nnz()
    indices = xp.concatenate([xp.repeat(outer, nnz, axis=1), xp.tile(c._idx, (1, count))])
    vals = GrownProduct.apply(c._vals.to(dtype), d.to(dtype), indices=indices, repeat=count, size=tuple(shape))
    return SparseTensor(indices, vals, tuple(shape), coalesced=True)


def _mul_sparse(x: SparseTensor, y: SparseTensor) -> SparseTensor:
    """``sparse * sparse`` of one shape, PyTorch's intersection kernel: both coalesced, the result holds the
    indices in both (coalesced). Otherwise one operand is the *source* (the uncoalesced one when only one is
    coalesced, else the one with fewer entries, ``y`` on a tie): the result keeps every source entry, times
    the other operand's (summed) value at its index, 0 where it has none; uncoalesced. An empty operand makes
    an empty (coalesced) result."""
    if x.shape != y.shape or x.sparse_dim() != y.sparse_dim():
        raise RuntimeError("mul(sparse, sparse): sparse_binary_op_intersection_cpu(): expects sparse inputs with "
                           f"equal dimensionality, number of sparse dimensions, and shape of sparse dimensions, got "
                           f"sizes {list(x.shape)} and {list(y.shape)} with sparse_dim {x.sparse_dim()} and "
                           f"{y.sparse_dim()}")
    dtype = np.dtype(promote_types(x.dtype, y.dtype))
    box, plain_x, plain_y = {}, x.detach(), y.detach()  # (a sparse leaf gets PyTorch's grad * other: .layout_grads)
    x = tap_operand(x, box, lambda g: _mul_sparse(_result_grad(box, g), plain_y))
    y = tap_operand(y, box, lambda g: _mul_sparse(_result_grad(box, g), plain_x))
    box["out"] = out = _mul_sparse_kernel(x, y, dtype)
    return tap_result(out, box)


def _result_grad(box, g):
    """The result's sparse gradient (as ``to_dense()``'s backward makes it) from its values' gradient ``g``."""
    out = box["out"]
    return distinct_grad(out._idx, out.shape, out.is_coalesced(), g)


def _mul_sparse_kernel(x: SparseTensor, y: SparseTensor, dtype) -> SparseTensor:
    """:func:`_mul_sparse`'s entries and values (see there)."""
    if x._nnz() == 0 or y._nnz() == 0:  # (PyTorch's: an empty, coalesced result)
        empty = x if x._nnz() == 0 else y
        return SparseTensor(empty._idx, empty._vals.to(dtype) * 0, x.shape, coalesced=True)
    both = x.is_coalesced() and y.is_coalesced()
    if x.is_coalesced() != y.is_coalesced():
        source, other = (y, x) if x.is_coalesced() else (x, y)
    else:
        source, other = (y, x) if x._nnz() >= y._nnz() else (x, y)
    other = other.coalesce()  # (its value at an index: the sum of its repeats, in the graph)
    xp = get_array_module(source._idx)
    lin, olin = source._linear(), other._linear()
    pos = xp.searchsorted(olin, lin)
    safe = xp.minimum(pos, max(olin.shape[0] - 1, 0))
    found = (pos < olin.shape[0]) & (olin[safe] == lin) if olin.shape[0] else xp.zeros(lin.shape, dtype=bool)
    dense_sizes = source.shape[source.sparse_dim():]
    if both:  # the intersection only
        keep = xp.nonzero(found)[0]
        vals = gather_rows(source._vals, keep).to(dtype) * gather_rows(other._vals, safe[keep]).to(dtype)
        return SparseTensor(source._idx[:, keep], vals, source.shape, coalesced=True)
    mask = found.astype(dtype).reshape((-1,) + (1,) * len(dense_sizes))
    vals = source._vals.to(dtype) * (gather_rows(other._vals, safe).to(dtype) * Tensor(mask))
    return SparseTensor(source._idx, vals, source.shape, coalesced=False)


def mul(input, other):
    """``torch.mul`` with a sparse COO operand: ``sparse * number``, ``sparse * dense``, ``dense * sparse``
    and ``sparse * sparse`` (the same shape), each a sparse tensor as PyTorch's (see :func:`_mul_dense` and
    :func:`_mul_sparse` for which entries it holds and whether it is coalesced)."""
    if isinstance(input, SparseTensor) and isinstance(other, SparseTensor):
        return _mul_sparse(input, other)
    s, o = (input, other) if isinstance(input, SparseTensor) else (other, input)
    if not isinstance(s, SparseTensor):
        raise TypeError("sparse.mul: expected a sparse COO operand")
    if isinstance(o, numbers.Number) and not isinstance(o, bool):
        return SparseTensor(s._idx, s._vals * o, s.shape, s.is_coalesced())
    if isinstance(o, Tensor):
        return _mul_dense(s, o)
    raise TypeError(f"mul(sparse, {type(o).__name__}): expected a number, a Tensor or a sparse COO tensor")


# ------------------------------------------------------------------------------------- matrix products
def _check_matrix(s: SparseTensor, who: str, name: str):
    if s.dim() != 2 or s.sparse_dim() != 2:
        raise RuntimeError(f"{who}: {name} must be a 2-D sparse matrix with 2 sparse dims, got size "
                           f"{list(s.shape)} with sparse_dim {s.sparse_dim()}")


def dense_mm_sparse(mat1: Tensor, mat2: SparseTensor) -> Tensor:
    """``torch.mm(dense, sparse)``: the dense product of a dense matrix and a 2-D sparse one; gradients reach
    ``mat1`` and the sparse values. ``out[:, j] = sum over entries (i, j, v) of v * mat1[:, i]``."""
    check_dense_sparse(mat1, mat2)
    rows, cols = mat2._idx[0], mat2._idx[1]
    products = mat2._vals.reshape(-1, 1) * gather_rows(mat1.transpose(0, 1), rows)  # v_k * mat1[:, row_k]
    return scatter_rows(products, cols, mat2.shape[1]).transpose(0, 1)


def check_dense_sparse(mat1, mat2: SparseTensor):
    """``torch.mm(dense, sparse)``'s checks of its operands, with PyTorch's messages."""
    if not isinstance(mat1, Tensor):
        raise TypeError(f"mm: mat1 must be a Tensor or a sparse COO tensor, got {type(mat1).__name__}")
    _check_matrix(mat2, "mm", "mat2")
    if mat1.ndim != 2:
        raise RuntimeError(f"mm: mat1 must be a matrix, got a {mat1.ndim}-D tensor")
    if mat1.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({mat1.shape[0]}x{mat1.shape[1]} and "
                           f"{mat2.shape[0]}x{mat2.shape[1]})")
    if mat1.dtype != mat2.dtype:  # (PyTorch's runs it as (sparse.t() @ dense.t()).t(): the sparse one's dtype first)
        refuse_mixed_dtypes(mat2, mat1)


def refuse_mixed_dtypes(sparse, dense) -> None:
    """PyTorch's refusal of a sparse @ dense product whose dense operand has another dtype (no promotion)."""
    if dense.dtype != sparse.dtype:
        from distnn.autograd.tensor_inplace_methods import torch_dtype_name

        raise RuntimeError(f"expected scalar type {torch_dtype_name(sparse.dtype)} but found "
                           f"{torch_dtype_name(dense.dtype)}")


def sparse_mm_sparse(mat1: SparseTensor, mat2: SparseTensor) -> SparseTensor:
    """``torch.sparse.mm(sparse, sparse)``: a coalesced sparse product holding every index some pair of
    entries reaches (an entry whose products cancel stays, holding 0, as PyTorch's); gradients reach both
    operands' values."""
    _check_matrix(mat1, "sparse.mm", "mat1")
    _check_matrix(mat2, "sparse.mm", "mat2")
    if mat1.shape[1] != mat2.shape[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({mat1.shape[0]}x{mat1.shape[1]} and "
                           f"{mat2.shape[0]}x{mat2.shape[1]})")
    if mat1.dtype != mat2.dtype:  # (no promotion, as PyTorch's)
        from distnn.autograd.tensor_inplace_methods import torch_dtype_name

        raise RuntimeError(f"mat1 dtype {torch_dtype_name(mat1.dtype)} does not match mat2 dtype "
                           f"{torch_dtype_name(mat2.dtype)}")
    xp = get_array_module(mat1._idx)
    # Every pair (a, b) with mat1's column a equal to mat2's row b: mat2's entries sorted by row, then for
    # each entry of mat1 the run of mat2's entries in its column's row.
    n2 = mat2._nnz()
    order = xp.argsort(mat2._idx[0] * n2 + xp.arange(n2, dtype=np.int64))  # (ties by position: a stable order)
    rows2 = mat2._idx[0][order]
    start = xp.searchsorted(rows2, mat1._idx[1], side="left")
    count = xp.searchsorted(rows2, mat1._idx[1], side="right") - start
    ends = xp.cumsum(count)  # (pair p belongs to mat1's entry a: the run whose end is the first past p)
    pairs = xp.arange(int(ends[-1]) if ends.shape[0] else 0, dtype=np.int64)
    a = xp.searchsorted(ends, pairs, side="right")
    b = order[start[a] + pairs - (ends - count)[a]]
    idx = xp.stack([mat1._idx[0][a], mat2._idx[1][b]]).astype(np.int64).reshape(2, -1)
    dtype = np.dtype(promote_types(mat1.dtype, mat2.dtype))
    box = {}  # (a sparse leaf gets PyTorch's grad @ other.T or self.T @ grad, where it has entries: .layout_grads)
    plain1, plain2 = mat1.detach(), mat2.detach()
    mat1 = tap_operand(mat1, box, lambda g: sparse_mm_sparse(_result_grad(box, g), plain2.t()))
    mat2 = tap_operand(mat2, box, lambda g: sparse_mm_sparse(plain1.t(), _result_grad(box, g)))
    vals = gather_rows(mat1._vals, a).to(dtype) * gather_rows(mat2._vals, b).to(dtype)
    out = SparseTensor(idx, vals, (mat1.shape[0], mat2.shape[1])).coalesce()
    box["out"] = out
    return tap_result(out, box)


def mm(mat1, mat2):
    """``torch.mm`` with a sparse COO operand: :func:`distnn.sparse.mm`'s product, except that a sparse leaf
    multiplied with a dense matrix gets a dense ``.grad``, as PyTorch's (:mod:`.dense_grads`)."""
    from .dense_grads import dense_grad_mm, is_sparse_leaf
    from .ops import check_sparse_dense, mm as sparse_mm

    mixed = isinstance(mat1, SparseTensor) != isinstance(mat2, SparseTensor)
    if not mixed or not (is_sparse_leaf(mat1) or is_sparse_leaf(mat2)):
        return sparse_mm(mat1, mat2)
    if isinstance(mat1, SparseTensor):
        check_sparse_dense(mat1, mat2)
    else:
        check_dense_sparse(mat1, mat2)
    return dense_grad_mm(mat1, mat2)


def matmul(input, other):
    """``torch.matmul`` with a sparse COO operand: ``sparse @ dense`` (a dense vector or matrix), ``dense @
    sparse`` (dense leading dims kept) and ``sparse @ sparse``, as PyTorch's (a sparse leaf's gradient
    dense, as :func:`mm`'s)."""
    if isinstance(input, SparseTensor) and isinstance(other, SparseTensor):
        return sparse_mm_sparse(input, other)
    if isinstance(input, SparseTensor):
        if isinstance(other, Tensor) and other.ndim == 1:
            return mm(input, other.reshape(-1, 1)).reshape(-1)
        return mm(input, other)
    if not isinstance(input, Tensor):
        raise TypeError(f"matmul: expected a Tensor, got {type(input).__name__}")
    if input.ndim == 2:
        return mm(input, other)
    if input.ndim == 0:
        raise RuntimeError("both arguments to matmul need to be at least 1D, but they are 0D and 2D")
    lead = tuple(input.shape[:-1])
    return mm(input.reshape(-1, input.shape[-1]), other).reshape(lead + (other.shape[1],))


__all__ = ["mul", "dense_mm_sparse", "sparse_mm_sparse", "mm", "matmul", "check_dense_sparse"]
