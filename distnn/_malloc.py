"""Keep large freed buffers inside the process (glibc only).

A training step allocates and frees the same large activation and gradient
buffers every step. With glibc's defaults, buffers above the mmap threshold go
back to the OS on free and are page-faulted in again on the next step
(thousands of faults per step, measured). Raising the mmap and trim thresholds
makes glibc reuse them, as the frameworks' caching allocators do. The cost is
that freed memory stays with the process. Set ``DISTNN_MALLOC_TUNING=0`` to
leave the allocator alone.
"""
import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc() -> bool:
    """Apply the thresholds once; True when applied."""
    if os.environ.get("DISTNN_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1 and ok
    return ok
