"""Shared by the optimizer tests: how much a call allocates at its peak (Python and numpy allocations)."""
import tracemalloc


def peak_bytes(fn) -> int:
    """The peak of memory traced while ``fn()`` runs, in bytes."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
