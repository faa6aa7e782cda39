"""PyTorch's top-level linear-algebra functions that were deprecated in 1.9 and are removed since:
``torch.lstsq``, ``torch.solve``, ``torch.eig``, ``torch.symeig`` and ``torch.matrix_rank`` (and the Tensor methods
``lstsq``, ``solve``, ``eig``, ``symeig``). PyTorch 2.13 keeps the names with their old signatures, and calling
one raises a ``RuntimeError`` saying which ``torch.linalg`` function replaces it; so do these, with its words.
"""
from __future__ import annotations

_REMOVED = "This function was deprecated since version 1.9 and is now removed."

_LSTSQ = (
    f"{_REMOVED} `torch.lstsq` is deprecated in favor of `torch.linalg.lstsq`.\n"
    "`torch.linalg.lstsq` has reversed arguments and does not return the QR decomposition in the returned tuple "
    "(although it returns other information about the problem).\n\n"
    "To get the QR decomposition consider using `torch.linalg.qr`.\n\n"
    "The returned solution in `torch.lstsq` stored the residuals of the solution in the last m - n columns of the "
    "returned value whenever m > n. In torch.linalg.lstsq, the residuals are in the field 'residuals' of the "
    "returned named tuple.\n\n"
    "The unpacking of the solution, as in\nX, _ = torch.lstsq(B, A).solution[:A.size(1)]\nshould be replaced with:\n"
    "X = torch.linalg.lstsq(A, B).solution")
_SOLVE = (
    f"{_REMOVED} `torch.solve` is deprecated in favor of `torch.linalg.solve`. `torch.linalg.solve` has its arguments "
    "reversed and does not return the LU factorization.\n\n"
    "To get the LU factorization see `torch.lu`, which can be used with `torch.lu_solve` or `torch.lu_unpack`.\n"
    "X = torch.solve(B, A).solution should be replaced with:\nX = torch.linalg.solve(A, B)")
_EIG = (
    f"{_REMOVED} `torch.linalg.eig` returns complex tensors of dtype `cfloat` or `cdouble` rather than real tensors "
    "mimicking complex tensors.\n\n"
    "L, _ = torch.eig(A) should be replaced with:\nL_complex = torch.linalg.eigvals(A)\n\nand\n\n"
    "L, V = torch.eig(A, eigenvectors=True) should be replaced with:\nL_complex, V_complex = torch.linalg.eig(A)")
_SYMEIG = (
    f"{_REMOVED} The default behavior has changed from using the upper triangular portion of the matrix by default "
    "to using the lower triangular portion.\n\n"
    "L, _ = torch.symeig(A, upper=upper) should be replaced with:\n"
    "L = torch.linalg.eigvalsh(A, UPLO='U' if upper else 'L')\n\nand\n\n"
    "L, V = torch.symeig(A, eigenvectors=True) should be replaced with:\n"
    "L, V = torch.linalg.eigh(A, UPLO='U' if upper else 'L')")
_MATRIX_RANK = (
    f"{_REMOVED}\nPlease use the `torch.linalg.matrix_rank` function instead. The parameter 'symmetric' was renamed "
    "in `torch.linalg.matrix_rank()` to 'hermitian'.")


def lstsq(input, A, *, out=None):  # noqa: A002 - PyTorch's names
    """``torch.lstsq``: removed; raises, pointing to :func:`distnn.linalg.lstsq`."""
    raise RuntimeError(_LSTSQ)


def solve(input, A, *, out=None):  # noqa: A002
    """``torch.solve``: removed; raises, pointing to :func:`distnn.linalg.solve`."""
    raise RuntimeError(_SOLVE)


def eig(self, eigenvectors=False, *, e=None, v=None):
    """``torch.eig``: removed; raises, pointing to ``linalg.eig``/``eigvals``."""
    raise RuntimeError(_EIG)


def symeig(input, eigenvectors=False, upper=True, *, out=None):  # noqa: A002
    """``torch.symeig``: removed; raises, pointing to :func:`distnn.linalg.eigh` and ``eigvalsh``."""
    raise RuntimeError(_SYMEIG)


def matrix_rank(input, tol=None, symmetric=False, *, out=None):  # noqa: A002
    """``torch.matrix_rank``: removed; raises, pointing to :func:`distnn.linalg.matrix_rank`."""
    raise RuntimeError(_MATRIX_RANK)


__all__ = ["lstsq", "solve", "eig", "symeig", "matrix_rank"]
