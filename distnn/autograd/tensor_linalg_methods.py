"""PyTorch's Tensor methods for the older top-level linear-algebra forms (a mixin of
:class:`~distnn.autograd.tensor.Tensor`): ``cholesky_solve``, ``cholesky_inverse``, ``qr``, ``svd`` and
``triangular_solve`` are :mod:`distnn.torch_toplevel_linalg`'s functions with this tensor first; ``lstsq``,
``solve``, ``eig`` and ``symeig`` were removed from PyTorch and raise, as its, pointing to ``distnn.linalg``
(:mod:`distnn.linalg.removed`).
"""
from __future__ import annotations

import importlib


def _toplevel():
    return importlib.import_module("distnn.torch_toplevel_linalg")


def _removed():
    return importlib.import_module("distnn.linalg.removed")


class TensorLinalgMethods:
    __slots__ = ()

    def cholesky_solve(self, input2, upper=False):
        """``X`` with ``A X = self``, ``A = L L^T`` for the Cholesky factor ``input2`` (``upper``: ``U^T U``)."""
        return _toplevel().cholesky_solve(self, input2, upper)

    def cholesky_inverse(self, upper=False):
        """The inverse of ``A = L L^T`` from this Cholesky factor ``L`` (``upper``: ``A = U^T U``)."""
        return _toplevel().cholesky_inverse(self, upper)

    def qr(self, some=True):
        return _toplevel().qr(self, some)

    def svd(self, some=True, compute_uv=True):
        return _toplevel().svd(self, some, compute_uv)

    def triangular_solve(self, A, upper=True, transpose=False, unitriangular=False):  # noqa: N803 - PyTorch's name
        return _toplevel().triangular_solve(self, A, upper, transpose, unitriangular)

    def lstsq(self, other):
        return _removed().lstsq(self, other)

    def solve(self, other):
        return _removed().solve(self, other)

    def eig(self, eigenvectors=False):
        return _removed().eig(self, eigenvectors)

    def symeig(self, eigenvectors=False):  # (PyTorch's method has no ``upper``)
        return _removed().symeig(self, eigenvectors)
