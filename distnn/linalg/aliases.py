"""PyTorch's top-level names for linear algebra (``torch.det``, ``torch.inverse``...), exported as ``distnn.det``
and so on and used by the Tensor methods of the same names: each is the ``distnn.linalg`` function it stands
for, with PyTorch's arguments (``cholesky``'s deprecated ``upper``, ``pinverse``'s ``rcond``)."""
from __future__ import annotations

from .cholesky import cholesky_deprecated as cholesky
from .determinant import det, logdet, slogdet
from .inverse import inv as inverse
from .matrix_exp import matrix_exp
from .pinv import pinverse
from .products import matrix_power

__all__ = ["cholesky", "det", "inverse", "logdet", "matrix_exp", "matrix_power", "pinverse", "slogdet"]
