"""``distnn.linalg``: PyTorch's ``torch.linalg`` (2.13) for real matrices, differentiable, batched over leading dims;
``eig``/``eigvals`` and the core ops (inv, solve, det, slogdet, eigh, svd, qr, cholesky, the norms) take complex
matrices too, with PyTorch's complex gradients (``distnn.autograd.complex_grad``); the others refuse them by name.

numpy's ``np.linalg`` computes on the CPU and cupy's ``cupy.linalg`` on a GPU; the gradients are PyTorch's
formulas (``FunctionsManual.cpp``), written beside each forward. Results that PyTorch returns as named tuples
are named tuples here (``slogdet`` -> ``(sign, logabsdet)``, ``eigh``, ``svd``, ``qr``, ``lu``, ``lu_factor``).
A singular or indefinite matrix raises :class:`LinAlgError` (a ``RuntimeError``, as ``torch.linalg.LinAlgError``)
naming the batch element (the LU factorizations succeed on one: ``lu_factor_ex``'s ``info``); integer inputs are
refused as PyTorch refuses them. numpy and cupy have no LU, Householder reflectors or Bunch-Kaufman LDL on stacks
of matrices: those are written here (``lu.py``, ``householder.py``, ``ldl.py``). Also here, though PyTorch has them
at the top level: the randomized ``svd_lowrank``/``pca_lowrank`` (``lowrank.py``), ``lobpcg`` (``lobpcg.py``) and the
removed ``torch.solve``/``eig``/... that raise (``removed.py``).
"""
from ._common import LinAlgError
from .cholesky import cholesky
from .determinant import det, slogdet
from .eig import eig, eigvals
from .eigh import eigh, eigvalsh
from .cond import cond
from .ex import cholesky_ex, inv_ex, solve_ex
from .householder import householder_product
from .inverse import inv, solve
from .ldl import ldl_factor, ldl_factor_ex, ldl_solve
from .lstsq import lstsq
from .lu import lu, lu_factor, lu_factor_ex
from .lu_solve import lu_solve
from .matrix_exp import matrix_exp
from .norms import matrix_norm, norm, vector_norm
from .pinv import matrix_rank, pinv
from .products import cross, diagonal, matmul, matrix_power, multi_dot, vander, vecdot
from .qr import qr
from .svd import svd, svdvals
from .tensor_solve import tensorinv, tensorsolve
from .triangular import solve_triangular

__all__ = [
    "LinAlgError", "cholesky", "cholesky_ex", "cond", "cross", "det", "diagonal", "eig", "eigh", "eigvals", "eigvalsh",
    "householder_product", "inv", "inv_ex", "ldl_factor", "ldl_factor_ex", "ldl_solve", "lstsq", "lu", "lu_factor",
    "lu_factor_ex", "lu_solve", "matmul", "matrix_exp", "matrix_norm", "matrix_power", "matrix_rank", "multi_dot",
    "norm", "pinv", "qr", "slogdet", "solve", "solve_ex", "solve_triangular", "svd", "svdvals", "tensorinv",
    "tensorsolve", "vander", "vecdot", "vector_norm",
]
