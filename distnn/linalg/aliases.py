"""PyTorch's top-level names for linear algebra (``torch.det``, ``torch.inverse``, ``torch.lu``...), exported as
``distnn.det`` and so on and used by the Tensor methods of the same names: each is the ``distnn.linalg`` function
it stands for, with PyTorch's arguments (``cholesky``'s deprecated ``upper``, ``pinverse``'s ``rcond``, the
deprecated ``lu``'s ``get_infos`` and ``lu_solve``'s right-hand side first)."""
from __future__ import annotations

from .cholesky import cholesky_deprecated as cholesky
from .determinant import det, logdet, slogdet
from .householder import geqrf, orgqr, ormqr
from .inverse import inv as inverse
from .lu import lu_deprecated as lu, lu_unpack
from .lu_solve import lu_solve_deprecated as lu_solve
from .matrix_exp import matrix_exp
from .pinv import pinverse
from .products import matrix_power

__all__ = ["cholesky", "det", "geqrf", "inverse", "logdet", "lu", "lu_solve", "lu_unpack", "matrix_exp", "matrix_power",
           "orgqr", "ormqr", "pinverse", "slogdet"]
