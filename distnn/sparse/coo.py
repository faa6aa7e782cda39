"""``SparseTensor``: a sparse COO tensor (layout :data:`distnn.sparse_coo`), as PyTorch's ``torch.sparse_coo``.

A COO tensor of ``size`` holds ``indices``, an int64 array of shape ``(sparse_dim, nnz)``, and ``values``, a
Tensor of shape ``(nnz,) + size[sparse_dim:]``: entry k is the dense block at ``indices[:, k]``. An index may
repeat (the blocks add up) until :meth:`coalesce` sorts the indices and sums the repeats, as in PyTorch.

The values are an ordinary distnn Tensor, so a sparse tensor is differentiable through them: every op here is
written with recorded ops on the values (and :mod:`.rows`'s scatter and gather), and a sparse leaf made with
``requires_grad=True`` gets a sparse ``.grad`` on its own indices, as PyTorch's. What is not written for
sparse inputs is refused by name (``exp``, ``view``, numpy conversion...), never densified behind the scenes.
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.autograd.tensor_methods_meta import sparse_coo
from distnn.backend import get_array_module, to_numpy

from .rows import entries_of, gather_rows, scatter_rows


class SparseUnsupportedError(NotImplementedError, AttributeError):
    """An op or method without a sparse COO form (an AttributeError too, so ``hasattr`` is False)."""


def _unsupported(what):
    return SparseUnsupportedError(
        f"{what} is not supported for sparse COO tensors (layout=distnn.sparse_coo), as in PyTorch (\"Could not "
        f"run ... with arguments from the 'SparseCPU' backend\"); call .to_dense() first")


class SparseTensor:
    """A sparse COO tensor; make one with :func:`distnn.sparse_coo_tensor` or ``Tensor.to_sparse()``.

    PyTorch's methods for sparse COO tensors: ``indices()``, ``values()`` (coalesced only; ``_indices()`` and
    ``_values()`` always), ``coalesce()``, ``is_coalesced()``, ``_nnz()``, ``sparse_dim()``, ``dense_dim()``,
    ``to_dense()``, ``is_sparse``, ``layout``, ``shape``/``size()``, ``dtype``, ``requires_grad``, ``grad``,
    ``register_hook``, ``retain_grad``, ``backward``;
    ``sparse + sparse`` (sparse), ``dense + sparse`` and ``dense - sparse`` (dense), ``sparse * number``,
    ``sparse * dense``, ``dense * sparse`` and ``sparse * sparse`` (sparse, :mod:`.products`), ``sparse @
    dense`` and ``dense @ sparse`` (dense), ``sparse @ sparse`` (sparse).
    """

    is_sparse = True
    is_sparse_csr = False
    layout = sparse_coo
    __array_priority__ = 2000  # numpy defers to our reflected operators
    _dense_of = None  # (a sparse leaf's dense-layout gradient: the leaf's indices, see .dense_grads)
    _layout_of = None  # (a sparse leaf's gradient in PyTorch's sparse layout: the leaf's indices, .layout_grads)

    def __init__(self, indices, values: Tensor, size, coalesced: bool = False):
        # (internal: the arguments are checked by sparse_coo_tensor)
        self._idx = indices
        self._vals = values
        self._size = tuple(int(s) for s in size)
        self._coalesced = bool(coalesced)

    # ------------------------------------------------------------ metadata
    @property
    def shape(self):
        return self._size

    def size(self, dim=None):
        return self._size if dim is None else self._size[dim]

    def dim(self) -> int:
        return len(self._size)

    ndim = property(dim)

    def numel(self) -> int:
        return int(np.prod(self._size, dtype=np.int64))

    @property
    def dtype(self):
        return self._vals.dtype

    @property
    def device(self):
        return self._vals.device

    def sparse_dim(self) -> int:
        return int(self._idx.shape[0])

    def dense_dim(self) -> int:
        return len(self._size) - self.sparse_dim()

    def _nnz(self) -> int:
        return int(self._idx.shape[1])

    def is_coalesced(self) -> bool:
        return self._coalesced

    def _indices(self) -> Tensor:
        return Tensor(self._idx)

    def _values(self) -> Tensor:
        return self._vals

    def indices(self) -> Tensor:
        """The int64 indices ``(sparse_dim, nnz)``; only of a coalesced tensor, as PyTorch's."""
        if not self._coalesced:
            raise RuntimeError("Cannot get indices on an uncoalesced tensor, please call .coalesce() first")
        return Tensor(self._idx)

    def values(self) -> Tensor:
        """The values ``(nnz,) + dense sizes`` (in the graph); only of a coalesced tensor, as PyTorch's."""
        if not self._coalesced:
            raise RuntimeError("Cannot get values on an uncoalesced tensor, please call .coalesce() first")
        return self._vals

    # ------------------------------------------------------------- autograd
    @property
    def requires_grad(self) -> bool:
        return self._vals.requires_grad

    def requires_grad_(self, flag: bool = True) -> "SparseTensor":
        self._vals.requires_grad_(flag)
        if flag and self._vals.is_leaf:
            self._vals._sparse_leaf = True  # (PyTorch's leaf is the sparse tensor: see .dense_grads)
        return self

    @property
    def is_leaf(self) -> bool:
        return self._vals.is_leaf

    @property
    def grad_fn(self):
        return self._vals.grad_fn

    @property
    def grad(self):
        """A sparse leaf's gradient: a sparse tensor on its own indices (PyTorch's for ``sparse.mm``), or dense
        once a product that gives it a dense one (``torch.mm``, ``@``: :mod:`.dense_grads`) took part."""
        if not self._vals.is_leaf:  # (retain_grad's: sparse, coalesced, as PyTorch's)
            from .hooks import non_leaf_grad

            return non_leaf_grad(self)
        g = self._vals.grad
        return None if g is None else self._grad_of_values(g)

    def register_hook(self, hook):
        """``hook(grad)`` with this tensor's sparse gradient at each backward; it may return a sparse
        replacement, as PyTorch's (:mod:`.hooks`). Returns a handle with ``remove()``."""
        from .hooks import register_hook

        return register_hook(self, hook)

    def retain_grad(self) -> None:
        """Keep this non-leaf tensor's gradient in ``.grad`` (sparse, coalesced), as PyTorch's."""
        from .hooks import retain_grad

        retain_grad(self)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None) -> None:
        """``autograd.backward(self, gradient)``: ``gradient`` sparse, on this tensor's indices (:mod:`.hooks`)."""
        from distnn.autograd.grad_api import backward

        backward([self], None if gradient is None else [gradient], retain_graph, create_graph, inputs=inputs)

    @property
    def retains_grad(self) -> bool:
        return not self._vals.is_leaf and self._vals.retains_grad

    def _grad_of_values(self, g, as_flowed=False):
        """The sparse leaf's gradient (as :attr:`grad` hands it out) from ``g``, its values leaf's gradient: an
        array of the values' shape, or a dense- or sparse-layout carrier (:mod:`.dense_grads`, :mod:`.layout_grads`;
        ``as_flowed``: ``autograd.grad``'s, as PyTorch's returns the gradient before AccumulateGrad)."""
        if isinstance(g, SparseTensor) and g._layout_of is not None:
            from . import layout_grads

            return layout_grads.as_flowed(g) if as_flowed else layout_grads.handed_out(g)
        if isinstance(g, SparseTensor):
            if g._dense_of is None:
                return g
            return g._vals[0] if g._vals.requires_grad else Tensor(g._vals.data[0])  # (create_graph: its graph)
        g = g if isinstance(g, Tensor) else Tensor(g)  # (a Tensor: autograd.grad's with create_graph=True)
        if self._coalesced or self._nnz() <= 1:
            return SparseTensor(self._idx, g, self._size, self._coalesced)
        # Uncoalesced: PyTorch differentiates the tensor's (summed) content, so its gradient holds one entry per
        # index, on the coalesced indices; entries sharing an index carry that one gradient, taken once here.
        _, first = get_array_module(self._idx).unique(self._linear(), return_index=True)
        return SparseTensor(self._idx[:, first], entries_of(g, first) if g.requires_grad else Tensor(g.data[first]),
                            self._size)

    def detach(self) -> "SparseTensor":
        return SparseTensor(self._idx, self._vals.detach(), self._size, self._coalesced)

    def clone(self) -> "SparseTensor":
        return SparseTensor(self._idx.copy(), self._vals.clone(), self._size, self._coalesced)

    # ---------------------------------------------------------- conversion
    def to(self, dtype_or_device) -> "SparseTensor":
        """Values cast to a dtype, or indices and values moved to ``"cpu"``/``"cuda[:N]"`` (``self`` when
        nothing changes), as ``Tensor.to``."""
        vals = self._vals.to(dtype_or_device)
        if vals is self._vals:
            return self
        idx = self._idx
        if get_array_module(vals.data) is not get_array_module(idx):
            from distnn.backend import to_device

            idx = to_device(idx, dtype_or_device)
        return SparseTensor(idx, vals, self._size, self._coalesced)

    def astype(self, dtype) -> "SparseTensor":
        return self.to(np.dtype(dtype))

    def _linear(self):
        """Each entry's row in the ``(prod(sparse sizes),) + dense sizes`` block of the dense tensor."""
        xp = get_array_module(self._idx)
        sd = self.sparse_dim()
        if sd == 0:
            return xp.zeros(self._nnz(), dtype=np.int64)
        return xp.ravel_multi_index(tuple(self._idx), self._size[:sd]).astype(np.int64, copy=False)

    def _rows(self) -> int:
        return int(np.prod(self._size[:self.sparse_dim()], dtype=np.int64))

    def to_dense(self) -> Tensor:
        """The dense tensor (repeated indices add up); in the graph: its gradient is gathered to the values."""
        return scatter_rows(self._vals, self._linear(), self._rows(), to_dense=True).reshape(self._size)

    def to_sparse(self, sparse_dim=None) -> "SparseTensor":
        if sparse_dim is not None and sparse_dim != self.sparse_dim():
            raise RuntimeError(f"to_sparse: conversion from Sparse to Sparse with sparse_dim argument != "
                               f"self.sparse_dim() is not supported (sparse_dim={sparse_dim}, "
                               f"self.sparse_dim()={self.sparse_dim()})")
        return self

    to_sparse_coo = to_sparse

    def coalesce(self) -> "SparseTensor":
        """The same tensor with sorted, unique indices (the values of a repeated index summed); ``self`` when
        it is coalesced already, as PyTorch's."""
        if self._coalesced:
            return self
        xp = get_array_module(self._idx)
        lin = self._linear()
        uniq, inverse = xp.unique(lin, return_inverse=True)
        vals = scatter_rows(self._vals, inverse.reshape(-1), uniq.shape[0])
        sd = self.sparse_dim()
        idx = (xp.stack(xp.unravel_index(uniq, self._size[:sd])).astype(np.int64) if sd else
               xp.zeros((0, uniq.shape[0]), dtype=np.int64))
        return SparseTensor(idx, vals, self._size, coalesced=True)

    # ---------------------------------------------------------- arithmetic
    def _same_layout_check(self, other, op):
        if tuple(other.shape) != self._size:
            raise RuntimeError(f"{op}: expected sizes of the sparse tensors to match, got {self._size} and "
                               f"{tuple(other.shape)}")
        if other.sparse_dim() != self.sparse_dim():
            raise RuntimeError(f"{op}: expected sparse_dim of the operands to match, got {self.sparse_dim()} and "
                               f"{other.sparse_dim()}")

    def __add__(self, other):
        """sparse + sparse: sparse, PyTorch's entries in PyTorch's order (:func:`.addition.add`); sparse +
        dense is refused, as PyTorch's (dense + sparse is dense)."""
        if isinstance(other, SparseTensor):
            return self.add(other)
        if isinstance(other, Tensor):
            raise RuntimeError("add(sparse, dense) is not supported. Use add(dense, sparse) instead.")
        raise _unsupported(f"sparse + {type(other).__name__}")

    def __sub__(self, other):
        if isinstance(other, SparseTensor):
            return self.sub(other)
        if isinstance(other, Tensor):
            raise RuntimeError("sub(sparse, dense) is not supported. Use sub(dense, sparse) instead.")
        raise _unsupported(f"sparse - {type(other).__name__}")

    def add(self, other, *, alpha=1) -> "SparseTensor":
        """``self + alpha * other`` of two sparse tensors (:func:`.addition.add`)."""
        from .addition import add

        if not isinstance(other, SparseTensor):
            return self + other  # (the refusals above)
        return add(self, other, alpha)

    def sub(self, other, *, alpha=1) -> "SparseTensor":
        """``self - alpha * other``: PyTorch's ``add`` with ``-alpha``."""
        from distnn.autograd.dtype_rules import refuse_bool_subtraction

        if not isinstance(other, SparseTensor):
            return self - other
        refuse_bool_subtraction(self._vals, other._vals, arrays=True)
        return self.add(other, alpha=-alpha)

    def add_(self, other, *, alpha=1) -> "SparseTensor":
        """In-place :meth:`add` (the result keeps this tensor's dtype), as PyTorch's."""
        from .addition import add_

        if not isinstance(other, SparseTensor):
            raise _unsupported(f"Tensor.add_ with a {type(other).__name__} operand")
        return add_(self, other, alpha)

    def sub_(self, other, *, alpha=1) -> "SparseTensor":
        return self.add_(other, alpha=-alpha)

    def __radd__(self, other):  # dense + sparse -> dense (a sparse leaf's gradient dense, as PyTorch's)
        from .dense_grads import dense_grad_to_dense

        if isinstance(other, Tensor):
            return other + dense_grad_to_dense(self)
        raise _unsupported(f"{type(other).__name__} + sparse")

    def __rsub__(self, other):  # dense - sparse -> dense
        from .dense_grads import dense_grad_to_dense

        if isinstance(other, Tensor):
            return other - dense_grad_to_dense(self)
        raise _unsupported(f"{type(other).__name__} - sparse")

    def __neg__(self):
        return SparseTensor(self._idx, -self._vals, self._size, self._coalesced)

    def __mul__(self, other):
        """sparse * number, sparse * dense and sparse * sparse: sparse, as PyTorch's (:func:`.products.mul`)."""
        from .products import mul

        if isinstance(other, (numbers.Number, Tensor, SparseTensor)) and not isinstance(other, bool):
            return mul(self, other)
        raise _unsupported(f"sparse * {type(other).__name__}")

    def __rmul__(self, other):  # number * sparse, dense * sparse: sparse
        from .products import mul

        if isinstance(other, (numbers.Number, Tensor)) and not isinstance(other, bool):
            return mul(other, self)
        raise _unsupported(f"{type(other).__name__} * sparse")

    def __truediv__(self, other):
        if isinstance(other, numbers.Number) and not isinstance(other, bool):
            return SparseTensor(self._idx, self._vals / other, self._size, self._coalesced)
        raise _unsupported(f"sparse / {type(other).__name__} (distnn divides a sparse tensor by a number only)")

    def __rtruediv__(self, other):  # (the absent entries would divide by zero: never densified here)
        raise _unsupported(f"{type(other).__name__} / sparse")

    def __matmul__(self, other):
        """sparse @ dense (dense) and sparse @ sparse (sparse), as ``torch.matmul``."""
        from .products import matmul

        return matmul(self, other)

    def __rmatmul__(self, other):  # dense @ sparse: dense
        from .products import matmul

        return matmul(other, self)

    def zero_(self) -> "SparseTensor":
        """Drop every entry (nnz becomes 0), as PyTorch's ``zero_`` of a sparse tensor."""
        xp = get_array_module(self._idx)
        self._idx = xp.zeros((self.sparse_dim(), 0), dtype=np.int64)
        self._vals = Tensor(xp.zeros((0,) + self._size[self.sparse_dim():], dtype=self.dtype))
        self._coalesced = True
        return self

    def _gather_dense(self, x: Tensor) -> Tensor:
        """The blocks of the dense ``x`` (of this tensor's size) at this tensor's indices (``sparse_mask``'s
        values): ``(nnz,) + dense sizes``, in the graph."""
        return gather_rows(x.reshape((self._rows(),) + self._size[self.sparse_dim():]), self._linear())

    # --------------------------------------------------------- refusals
    def __array__(self, dtype=None, copy=None):
        raise _unsupported("conversion to a numpy array (a distnn op that takes dense tensors only)")

    def numpy(self):
        raise _unsupported("numpy()")

    def __getattr__(self, name):
        # A Tensor method called on a sparse tensor: PyTorch's sparse backend has no kernel for most of them.
        if name == "data":  # (what a dense-only op reads first)
            raise _unsupported("this op (it takes dense tensors only)")
        if not name.startswith("__") and hasattr(Tensor, name):
            raise _unsupported(f"Tensor.{name}")
        raise AttributeError(f"'SparseTensor' object has no attribute '{name}'")

    def __len__(self):
        return self._size[0]

    def __bool__(self):
        raise _unsupported("bool()")

    def __repr__(self):
        """What PyTorch prints (:func:`distnn.printing.sparse_repr`)."""
        from distnn.printing import sparse_repr

        if self._vals.grad_fn is not None:
            autograd = f"grad_fn=<{self._vals.grad_fn.name()}>"
        else:
            autograd = "requires_grad=True" if self.requires_grad else None
        return sparse_repr(to_numpy(self._idx), to_numpy(self._vals.data), self._size, self._nnz(), autograd)


__all__ = ["SparseTensor", "SparseUnsupportedError"]
