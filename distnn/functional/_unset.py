"""``EVERY_DIM``, ``NOT_KEPT``, ``NO_OUT``: the defaults that tell an argument left out from one passed as its
default value (defined in :mod:`distnn.autograd.unset_defaults`, where Tensor's methods can import them)."""
from __future__ import annotations

from distnn.autograd.unset_defaults import EVERY_DIM, NO_OUT, NOT_KEPT

__all__ = ["EVERY_DIM", "NOT_KEPT", "NO_OUT"]
