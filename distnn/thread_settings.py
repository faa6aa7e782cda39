"""PyTorch's ``set_num_threads``/``get_num_threads`` and ``set_num_interop_threads``/``get_num_interop_threads``.

distnn's ops run in numpy (or cupy), whose only thread pool is the BLAS library's (matmul, conv through
GEMM, linalg); elementwise numpy ops run on one thread. So ``set_num_threads(n)`` sets the threads of every
BLAS library loaded into the process (OpenBLAS, MKL: see :mod:`distnn._blas_threads`), and
``get_num_threads`` reports what the first one says. Where no such library can be set (another BLAS,
another OS) the number is recorded only, and ``get_num_threads`` returns it. distnn sets these threads
itself when several ranks share a host (:mod:`distnn._threads`); a call here overrides that for this process.

distnn has no inter-op pool: ``set_num_interop_threads`` checks and records its argument, which nothing
uses, and ``get_num_interop_threads`` returns it (1 until set).
"""
from __future__ import annotations

import numbers

__all__ = ["set_num_threads", "get_num_threads", "set_num_interop_threads", "get_num_interop_threads"]

_recorded = {"intra": None, "interop": 1}


def _positive(name, n) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"{name}(): argument 'int' must be int, not {type(n).__name__}")
    if n <= 0:
        raise RuntimeError(f"{name} expects a positive integer")
    return int(n)


def set_num_threads(int) -> None:  # noqa: A002  (PyTorch's parameter name)
    """Use ``int`` threads in the BLAS libraries numpy uses (see the module docstring)."""
    from ._blas_threads import set_loaded_blas_threads

    _recorded["intra"] = n = _positive("set_num_threads", int)
    set_loaded_blas_threads(n)


def get_num_threads() -> int:
    """The BLAS threads (the first loaded library's own count), or the number last set where no library can
    tell (1 if none was set)."""
    from ._blas_threads import loaded_blas_thread_controls

    controls = loaded_blas_thread_controls()
    if controls:
        return int(controls[0][2]())
    return _recorded["intra"] or 1


def set_num_interop_threads(int) -> None:  # noqa: A002
    """Record ``int`` (positive); distnn has no inter-op thread pool, so nothing uses it."""
    _recorded["interop"] = _positive("set_num_interop_threads", int)


def get_num_interop_threads() -> int:
    """The number :func:`set_num_interop_threads` recorded (1 until then)."""
    return _recorded["interop"]
