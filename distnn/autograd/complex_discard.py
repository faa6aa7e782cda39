"""PyTorch's warning for a complex value cast to a real dtype, once a process.

PyTorch's ``copy_`` (under ``to``, ``float()``, ``x[...] = z``, ``fill_``) warns "Casting complex values to real
discards the imaginary part" with ``TORCH_WARN_ONCE``: the first such cast in the process warns (a UserWarning,
whatever Python's warning filters then do with it) and no later one does, whichever op casts. numpy warns its
ComplexWarning on every such cast, so those casts run with it silenced here and warn PyTorch's way instead.
(PyTorch's text ends with where it was triggered in its C++ source; distnn's names no file.)
"""
from __future__ import annotations

import warnings

import numpy as np

from distnn._stacklevel import caller_stacklevel

__all__ = ["MESSAGE", "discards_imaginary", "silently_discarding"]

MESSAGE = "Casting complex values to real discards the imaginary part"

_warned = [False]  # (the process's one warning, PyTorch's TORCH_WARN_ONCE flag)
_quiet = [0]  # (open blocks with warn=False: a cast inside one, as ``to()``'s, warns nothing either)


def discards_imaginary(src, dst) -> bool:
    """Whether casting dtype ``src`` to ``dst`` drops an imaginary part."""
    return src.kind == "c" and dst.kind != "c"


class silently_discarding:  # noqa: N801 (a context manager, used as ``with silently_discarding():``)
    """Runs its block with numpy's ComplexWarning silenced, then warns PyTorch's warning if none was yet (call it
    only around a cast that discards an imaginary part); ``warn=False``: a cast PyTorch makes without ``copy_``
    (``masked_fill_``'s number), which warns nothing."""

    __slots__ = ("_catch", "_warn")

    def __init__(self, warn: bool = True):
        self._warn = warn

    def __enter__(self):
        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        _quiet[0] += not self._warn
        return self

    def __exit__(self, kind, value, traceback):
        self._catch.__exit__(kind, value, traceback)
        _quiet[0] -= not self._warn
        if kind is None and self._warn and not _quiet[0] and not _warned[0]:
            _warned[0] = True
            warnings.warn(MESSAGE, UserWarning, stacklevel=caller_stacklevel())
        return False
