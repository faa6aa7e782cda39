"""distnn's random generators: one default ``numpy.random.Generator`` per thread.

Dropout, initializers and data shuffling draw from explicit generators; this
module supplies the default one. It is per thread because the in-process
communicator runs simulated ranks as threads, and each rank needs its own
stream. ``get_state``/``set_state`` make it checkpointable.
"""
from __future__ import annotations

import threading

import numpy as np

_local = threading.local()


def default_generator() -> np.random.Generator:
    """This thread's default generator (seeded with 0 until ``manual_seed``)."""
    gen = getattr(_local, "gen", None)
    if gen is None:
        gen = _local.gen = np.random.default_rng(0)
    return gen


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed this thread's default generator and return it."""
    _local.gen = np.random.default_rng(seed)
    return _local.gen


def get_state() -> dict:
    """The default generator's bit-generator state (a plain dict, picklable)."""
    return default_generator().bit_generator.state


def set_state(state: dict) -> None:
    default_generator().bit_generator.state = state
