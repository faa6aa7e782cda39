"""distnn's random generators: one default ``numpy.random.Generator`` per thread.

Dropout, initializers and data shuffling draw from explicit generators; this
module supplies the default one. It is per thread because the in-process
communicator runs simulated ranks as threads, and each rank needs its own
stream; ``simulate`` starts each rank's from a copy of the caller's state, as
each MPI process of the same script would have it. ``get_state``/``set_state``
make it checkpointable.
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


def module_generator_states(model) -> dict:
    """The states of the generators a model's layers were given (``Dropout(generator=...)``), by module path.

    A layer with its own generator draws its masks from it, not from the default
    generator, so an exact resume must carry that generator's state too.
    """
    return {name: m.generator.bit_generator.state for name, m in model.named_modules()
            if isinstance(getattr(m, "generator", None), np.random.Generator)}


def set_module_generator_states(model, states: dict) -> None:
    """Restore :func:`module_generator_states` (modules without a saved state are left alone)."""
    for name, m in model.named_modules():
        if name in states and isinstance(getattr(m, "generator", None), np.random.Generator):
            m.generator.bit_generator.state = states[name]
