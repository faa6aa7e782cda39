"""Making sparse COO tensors and PyTorch's ``torch.sparse`` functions on them: ``sparse_coo_tensor``,
``Tensor.to_sparse``, ``sum``, ``mm`` and ``addmm``. All are written with recorded ops on the values, so
gradients reach the values (and the dense operands) as PyTorch's do."""
from __future__ import annotations

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import default_dtype, get_array_module

from .coo import SparseTensor
from .rows import gather_rows, scatter_rows


def _as_values(values, dtype):
    if isinstance(values, Tensor):
        return values if dtype is None or values.dtype == np.dtype(dtype) else values.to(dtype)
    arr = np.asarray(values) if isinstance(values, (list, tuple, int, float)) else values
    xp = get_array_module(arr)
    arr = xp.asarray(arr)
    if dtype is None and arr.dtype.kind == "f" and isinstance(values, (list, tuple, float)):
        dtype = default_dtype()  # Python floats become the default dtype, as in PyTorch
    return Tensor(arr.astype(dtype) if dtype is not None else arr)


def sparse_coo_tensor(indices, values, size=None, *, dtype=None, device=None, requires_grad=False,
                      check_invariants=None, is_coalesced=None):
    """``torch.sparse_coo_tensor``: a sparse COO tensor (:class:`SparseTensor`) from ``indices``
    ``(sparse_dim, nnz)`` and ``values`` ``(nnz,) + dense sizes``.

    ``size`` defaults to the smallest that holds the indices (then the values' dense sizes).
    ``check_invariants=True`` checks that the indices lie in ``size`` (and, with ``is_coalesced=True``, that
    they are sorted and unique); PyTorch leaves the check off by default, distnn always refuses indices
    outside ``size`` (numpy would wrap or fail later). Values that are a Tensor are used as they are (in the
    graph); with ``requires_grad=True`` the result is a leaf whose ``.grad`` is sparse.
    """
    vals = _as_values(values, dtype)
    if device is not None:
        vals = vals.to(device)
    idx_src = indices.data if isinstance(indices, Tensor) else indices
    xp = get_array_module(vals.data)
    idx = xp.asarray(np.asarray(idx_src) if isinstance(idx_src, (list, tuple)) else idx_src)  # (on the values' device)
    if idx.ndim != 2:
        raise RuntimeError(f"indices must be sparse_dim x nnz, but got: {list(idx.shape)}")
    if idx.dtype.kind not in "iuf" or idx.dtype.kind == "f" and idx.size and bool((idx != xp.round(idx)).any()):
        raise TypeError(f"sparse_coo_tensor: indices must be integers, got dtype {idx.dtype}")
    idx = idx.astype(np.int64)
    if requires_grad:
        vals = vals.detach().requires_grad_(True)
        vals._sparse_leaf = True  # (PyTorch's leaf is the sparse tensor: see .dense_grads)
    sd, nnz = idx.shape
    if vals.ndim == 0:
        raise RuntimeError("values must have at least one dimension (nnz, dense sizes...), got a 0-d tensor")
    if vals.shape[0] != nnz:
        raise RuntimeError(f"indices and values must have same nnz, but got nnz from indices: {nnz}, "
                           f"nnz from values: {vals.shape[0]}")
    dense = tuple(vals.shape[1:])
    if size is None:
        size = tuple(int(m) + 1 for m in (idx.max(axis=1) if nnz else xp.full(sd, -1))) + dense
    size = tuple(int(s) for s in size)
    if len(size) != sd + len(dense):
        raise RuntimeError(f"'len(size) == sparse_dim + dense_dim' is not satisfied: len(size) = {len(size)}, "
                           f"sparse_dim = {sd}, dense_dim = {len(dense)}")
    if size[sd:] != dense:
        raise RuntimeError(f"values has incorrect size, expected {[nnz, *size[sd:]]}, got {[nnz, *dense]}")
    if nnz:
        low, high = idx.min(axis=1), idx.max(axis=1)
        for d in range(sd):
            if int(low[d]) < 0:
                raise RuntimeError(f"found negative index {int(low[d])} for dim {d}")
            if int(high[d]) >= size[d]:
                raise RuntimeError(f"size is inconsistent with indices: for dim {d}, size is {size[d]} but found "
                                   f"index {int(high[d])}")
    out = SparseTensor(idx, vals, size, coalesced=bool(is_coalesced) or nnz <= 1 and is_coalesced is not False)
    if is_coalesced and check_invariants and nnz > 1:
        lin = out._linear()
        if bool((lin[1:] <= lin[:-1]).any()):
            raise RuntimeError("cannot set is_coalesced to true if indices correspond to uncoalesced COO tensor")
    return out


def dense_to_sparse(x: Tensor, sparse_dim=None) -> SparseTensor:
    """``Tensor.to_sparse(sparse_dim)``: the entries of the first ``sparse_dim`` dims whose block holds a
    nonzero, coalesced; the values are gathered in the graph."""
    sd = x.ndim if sparse_dim is None else int(sparse_dim)
    if not 0 <= sd <= x.ndim:
        raise RuntimeError(f"to_sparse: sparse_dim {sparse_dim} must be in [0, {x.ndim}] for a {x.ndim}-d tensor")
    xp = get_array_module(x.data)
    size = tuple(x.shape)
    nonzero = x.data != 0
    if sd < x.ndim:
        nonzero = nonzero.any(axis=tuple(range(sd, x.ndim)))
    idx = xp.stack(xp.nonzero(nonzero)).astype(np.int64) if sd else xp.zeros((0, 1), dtype=np.int64)
    rows = int(np.prod(size[:sd], dtype=np.int64))
    lin = xp.ravel_multi_index(tuple(idx), size[:sd]).astype(np.int64) if sd else xp.zeros(1, dtype=np.int64)
    vals = gather_rows(x.reshape((rows,) + size[sd:]), lin)
    return SparseTensor(idx, vals, size, coalesced=True)


def _check_sparse(x, who):
    if not isinstance(x, SparseTensor):
        raise TypeError(f"{who}: expected a sparse COO tensor (layout=distnn.sparse_coo), got "
                        f"{type(x).__name__}")


def sum(input, dim=None, dtype=None):  # noqa: A001 - PyTorch's name (torch.sparse.sum)
    """``torch.sparse.sum``: the sum of all entries (a 0-d dense Tensor), or over ``dim``: a sparse tensor
    (coalesced) while some sparse dim remains, else a dense Tensor, as PyTorch's."""
    _check_sparse(input, "sparse.sum")
    vals = input._vals if dtype is None else input._vals.to(dtype)
    if dim is None:
        return vals.sum()
    n, sd = input.dim(), input.sparse_dim()
    dims = [dim] if isinstance(dim, int) else list(dim)
    wrapped = []
    for d in dims:
        if not -n <= d < n:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})")
        d %= n
        if d in wrapped:
            raise RuntimeError(f"dim {d} appears multiple times in the list of dims")
        wrapped.append(d)
    dense_axes = tuple(d - sd + 1 for d in wrapped if d >= sd)
    if dense_axes:
        vals = vals.sum(dense_axes)
    keep = [d for d in range(sd) if d not in wrapped]
    if not keep:  # every sparse dim summed: the result is dense
        return vals.sum(0) if sd else vals.reshape(vals.shape[1:])
    size = tuple(s for d, s in enumerate(input.shape) if d not in wrapped)
    return SparseTensor(input._idx[keep], vals, size).coalesce()


def mm(mat1, mat2, reduce=None):
    """``torch.sparse.mm``: ``sparse @ dense`` and ``dense @ sparse`` (dense results) and ``sparse @ sparse``
    (a coalesced sparse result, :func:`.products.sparse_mm_sparse`), of 2-D operands; the gradient reaches the
    dense operand and the sparse values (a sparse leaf's on its own indices, as PyTorch's). ``reduce`` is
    refused, as PyTorch refuses it for COO operands (it is for CSR ones, which distnn has not)."""
    from .products import dense_mm_sparse, sparse_mm_sparse

    if reduce is not None:
        raise NotImplementedError(f"sparse.mm: reduce={reduce!r} is supported for a sparse CSR mat1 only (PyTorch's "
                                  "'_sparse_mm_reduce_impl' has no sparse COO kernel); distnn has COO tensors only")

    if isinstance(mat1, SparseTensor) and isinstance(mat2, SparseTensor):
        return sparse_mm_sparse(mat1, mat2)
    if isinstance(mat2, SparseTensor):
        if not isinstance(mat1, Tensor):
            raise TypeError(f"sparse.mm: mat1 must be a Tensor or a sparse COO tensor, got {type(mat1).__name__}")
        return dense_mm_sparse(mat1, mat2)
    check_sparse_dense(mat1, mat2)
    rows, cols = mat1._idx[0], mat1._idx[1]
    products = mat1._vals.reshape(-1, 1) * gather_rows(mat2, cols)  # entry k: value_k * mat2[col_k]
    return scatter_rows(products, rows, mat1.shape[0])


def check_sparse_dense(mat1, mat2):
    """``mm(sparse, dense)``'s checks of its operands, with PyTorch's messages."""
    _check_sparse(mat1, "sparse.mm")
    if not isinstance(mat2, Tensor):
        raise TypeError(f"sparse.mm: mat2 must be a dense Tensor, got {type(mat2).__name__}")
    if mat1.dim() != 2 or mat1.sparse_dim() != 2:
        raise RuntimeError(f"sparse.mm: mat1 must be a 2-D sparse matrix with 2 sparse dims, got size "
                           f"{mat1.shape} with sparse_dim {mat1.sparse_dim()}")
    if mat2.ndim != 2:
        raise RuntimeError(f"sparse.mm: mat2 must be a matrix, got a {mat2.ndim}-D tensor")
    if mat2.shape[0] != mat1.shape[1]:
        raise RuntimeError(f"addmm: Argument #3 (dense): Expected dim 0 size {mat1.shape[1]}, got {mat2.shape[0]}")
    from .products import refuse_mixed_dtypes

    refuse_mixed_dtypes(mat1, mat2)


def addmm(mat, mat1, mat2, *, beta=1.0, alpha=1.0):
    """``torch.sparse.addmm``: ``beta * mat + alpha * mm(mat1, mat2)`` with a sparse ``mat1``, a dense ``mat2``
    and a dense ``mat``; other layouts are refused, as PyTorch's ``addmm_sparse_dense``."""
    if isinstance(mat, SparseTensor):
        raise RuntimeError("addmm_sparse_dense: expected strided result tensor, got tensor with layout Sparse")
    if not isinstance(mat1, SparseTensor) or isinstance(mat2, SparseTensor):
        lay = lambda t: "Sparse" if isinstance(t, SparseTensor) else "Strided"  # noqa: E731
        raise RuntimeError(f"addmm_sparse_dense: expected either 'mat1' to have sparse layout and 'mat2' to have "
                           f"strided layout, got 'mat1' with layout {lay(mat1)} and 'mat2' with layout {lay(mat2)}")
    return mat * beta + mm(mat1, mat2) * alpha


__all__ = ["sparse_coo_tensor", "dense_to_sparse", "sum", "mm", "addmm"]
