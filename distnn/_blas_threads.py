"""Cap the threads of a BLAS that numpy has loaded already, through the library's own C API.

The cap in ``_threads`` sets environment variables, which a BLAS reads once, when it loads: a
script that imported numpy before distnn has loaded it already. This finds the BLAS libraries
mapped into the process (``/proc/self/maps``, so Linux only) and calls their set_num_threads
with ctypes, as threadpoolctl does (not a dependency). Known: OpenBLAS, including the
scipy-openblas that numpy's wheels bundle (its symbols carry a prefix and a suffix), and MKL's
``mkl_rt`` (not tried here: no MKL build at hand). Anything else (BLIS, Accelerate, another OS)
is left as it is, with a debug log.
"""
import ctypes
import logging
import os
import re

from ._threads import mapped_files

log = logging.getLogger("distnn.blas")

# (set, get) function names, tried in this order; the get verifies the set took
_FUNCTIONS = (
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),  # numpy >= 2 wheels (ILP64)
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),        # scipy-openblas32
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),                    # distro/conda OpenBLAS
    ("MKL_Set_Num_Threads", "MKL_Get_Max_Threads"),
)
_BLAS_FILE = re.compile(r"(openblas|mkl_rt)[^/]*\.so[.\d]*$")


def loaded_blas_libraries() -> list:
    """Paths of the BLAS libraries mapped into this process, each once; [] where there is no
    ``/proc/self/maps``."""
    return [path for path in mapped_files() if _BLAS_FILE.search(path)]


def _thread_functions(path):
    """The (set, get) functions of the library at ``path``, or None if it has neither known pair."""
    try:
        # RTLD_NOLOAD: only a library already loaded, never a second copy beside it
        lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 0))
    except OSError:
        return None
    for set_name, get_name in _FUNCTIONS:
        try:
            return getattr(lib, set_name), getattr(lib, get_name)
        except AttributeError:
            continue
    return None


def set_loaded_blas_threads(n: int) -> int:
    """Give every loaded BLAS library ``n`` threads; returns how many libraries now report ``n``.
    A library this cannot set is logged at debug level and left alone."""
    capped = 0
    for path, set_threads, get_threads in loaded_blas_thread_controls():
        set_threads(n)
        if get_threads() == n:
            capped += 1
        else:
            log.debug("%s: set %d BLAS threads, it reports %d", path, n, get_threads())
    return capped


def loaded_blas_thread_controls() -> list:
    """``(path, set_num_threads, get_num_threads)`` of each loaded BLAS library this can set; one it
    cannot is left out, with a debug log."""
    controls = []
    libraries = loaded_blas_libraries()
    if not libraries:
        log.debug("no loaded BLAS library found; its threads are not capped")
    for path in libraries:
        functions = _thread_functions(path)
        if functions is None:
            log.debug("%s: no known set_num_threads; its threads are not capped", path)
            continue
        controls.append((path, *functions))
    return controls
