"""How the shape ops take their arguments: ``as_tensor`` (a Tensor as it is, an array wrapped, not copied) and
``_ints`` (an int, a sequence of ints or a Tensor of them, as a tuple of ints).

Kept apart from ``shape_more.py`` (which re-exports ``as_tensor``: many modules import it from there) so that
the shape ops' other modules (``shape_split.py``, ``shape_broadcast.py``) can use them without importing
``shape_more.py``, which re-exports theirs.
"""
from __future__ import annotations

import numbers

from distnn.autograd.tensor import Tensor


def as_tensor(x) -> Tensor:
    """``x`` as a Tensor (an array is wrapped, not copied)."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _ints(v) -> tuple:
    if isinstance(v, Tensor):
        v = v.data.tolist()
    return (int(v),) if isinstance(v, numbers.Integral) else tuple(int(s) for s in v)
