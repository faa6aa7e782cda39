"""Sparse COO tensors (PyTorch's ``torch.sparse`` for layout ``sparse_coo``): :class:`SparseTensor`,
:func:`sparse_coo_tensor` (also ``distnn.sparse_coo_tensor``), ``sum``, ``mm`` (sparse @ dense, dense @ sparse,
sparse @ sparse), ``addmm``; ``t()``, ``transpose`` and their in-place and property forms are in
:mod:`.transpose`; the elementwise and matrix products of sparse operands (``*``, ``@``, ``distnn.mul``,
``distnn.mm``, ``distnn.matmul``) are in :mod:`.products`.

A sparse tensor's gradient is sparse, as PyTorch's: a leaf's ``.grad``, what ``register_hook`` hooks receive
and return, ``retain_grad()``'s ``.grad`` of a sparse tensor made by an op, and ``autograd.grad``'s answer for
one (:mod:`.hooks`). Where PyTorch's backward gives a sparse leaf a gradient off its own indices or flagged
otherwise (``sparse + sparse``, transposes, sparse products), the leaf gets PyTorch's (:mod:`.layout_grads`).

``nn.Embedding``/``nn.EmbeddingBag``/``F.embedding`` with ``sparse=True`` give their weight a sparse
gradient; ``optim.SGD``, ``optim.Adagrad`` and ``optim.SparseAdam`` take such gradients, as PyTorch's."""
from . import grads as _grads  # noqa: F401  (registers sparse gradients with the engine)
from .coo import SparseTensor
from .ops import addmm, mm, sparse_coo_tensor, sum  # noqa: A004
from . import transpose as _transpose  # noqa: F401,E402  (SparseTensor.t, transpose, T, ...)

__all__ = ["SparseTensor", "sparse_coo_tensor", "sum", "mm", "addmm"]
