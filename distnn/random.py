"""distnn's random generators: one default ``numpy.random.Generator`` per thread.

Dropout, initializers and data shuffling draw from explicit generators; this
module supplies the default one. It is per thread because the in-process
communicator runs simulated ranks as threads, and each rank needs its own
stream; ``simulate`` starts each rank's from a copy of the caller's state, as
each MPI process of the same script would have it. ``get_state``/``set_state``
make it checkpointable.

PyTorch's ``torch.random`` names are here too: ``manual_seed``, ``initial_seed``, ``seed``,
``get_rng_state``/``set_rng_state`` (:mod:`distnn.rng_state`: the state as a uint8 tensor in distnn's own
PCG64 format), ``fork_rng`` and ``Generator`` (:mod:`distnn.generator`). PyTorch's ``default_generator``
object has no counterpart: here :func:`default_generator` is a function returning this thread's generator.

:func:`use_generator` lends the default role to another generator for a
while: the trainer runs each training forward pass under a generator that
belongs to the batch's samples (see :mod:`distnn.data.batch_random`), so
dropout masks are the same on any number of ranks. It lends it deferred
(:meth:`use_generator.deferred`): made only if the pass draws.
"""
from __future__ import annotations

import contextlib
import copy
import numbers
import threading

import numpy as np

_local = threading.local()


def default_generator() -> np.random.Generator:
    """This thread's default generator (seeded with 0 until ``manual_seed``; inside
    :func:`use_generator`, the generator lent)."""
    refusal = getattr(_local, "refusal", None)
    if refusal is not None:  # (inside vmap(randomness="error"): torch refuses every random op there)
        raise RuntimeError(refusal)
    lent = getattr(_local, "lent", None)
    if lent is None:
        return _own_generator()
    return lent if type(lent) is not _Deferred else _made(lent)


@contextlib.contextmanager
def refusing_draws(message: str):
    """Within the block, :func:`default_generator` raises ``RuntimeError(message)`` on this thread: every
    random op that draws from the default generator is refused (``distnn.func.vmap``'s
    ``randomness="error"``). An op given its own ``generator=`` is not seen."""
    previous = getattr(_local, "refusal", None)
    _local.refusal = message
    try:
        yield
    finally:
        _local.refusal = previous


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed this thread's default generator and return it."""
    _local.gen = np.random.default_rng(seed)
    _local.initial_seed = int(seed) if isinstance(seed, numbers.Integral) else seed  # (the trainer's: a SeedSequence)
    return _local.gen


class use_generator(contextlib.ContextDecorator):
    """Within the block, :func:`default_generator` is ``generator`` on this thread.

    ``manual_seed``, ``get_state`` and ``set_state`` keep acting on the thread's own
    generator, which continues after the block where it left off.

    (A class, not a generator-based context manager: the trainer enters one every training step, and this
    costs a fraction of a ``contextlib.contextmanager``'s generator round trip.)
    """

    __slots__ = ("generator", "_previous")

    def __init__(self, generator):
        self.generator = generator

    def __enter__(self):
        self._previous = getattr(_local, "lent", None)
        _local.lent = self.generator
        return self.generator if type(self.generator) is not _Deferred else None  # (deferred: not made yet)

    def __exit__(self, *exc):
        _local.lent = self._previous
        return False

    def _recreate_cm(self):  # (as a decorator: a fresh context per call, so recursive calls nest)
        return use_generator(self.generator)

    @classmethod
    def deferred(cls, make, *args):
        """Lends the generator ``make(*args)`` returns, made when something within the block first asks for
        the default generator (once; a nested lending's block asks its own). ``make`` must give a generator
        in the same state whenever it is called: a block that draws nothing then makes none, and one that
        draws gets what it would have got from ``use_generator(make(*args))``. Its ``as`` target is None.
        (The trainer lends its samples' generator every training step; most models' forward passes draw
        nothing.)"""
        return cls(_Deferred(make, args))


class _Deferred:
    """A generator to be made when first asked for (:meth:`use_generator.deferred`)."""

    __slots__ = ("make", "args")

    def __init__(self, make, args):
        self.make, self.args = make, args


def _made(deferred: _Deferred) -> np.random.Generator:
    """The generator of a deferred loan, made now and lent for the rest of its block (the block's exit
    gives back what was lent before it, as it does for any loan)."""
    _local.lent = generator = deferred.make(*deferred.args)
    return generator


def snapshot_default_generator():
    """A copy of the generator :func:`default_generator` gives now, in its current state (a lent one too: the
    trainer's per-sample generator), never refused (:func:`refusing_draws`). Lending it later
    (:func:`use_generator`) replays the draws that followed this point; the original is not advanced.
    Activation checkpointing's recomputation draws its dropout masks that way."""
    lent = getattr(_local, "lent", None)
    if type(lent) is _Deferred:
        lent = _made(lent)
    return copy.deepcopy(lent if lent is not None else _own_generator())


def draw_point(generators=()) -> list:
    """Where the generator :func:`default_generator` gives now and ``generators`` stand: a lent one not made yet
    (:meth:`use_generator.deferred`) as it is. :func:`rewind` puts them back there, in place, so the draws that
    followed this point are drawn again alike (DataParallel runs a forward again that met the others' backward,
    :mod:`distnn.distributed.sync_abandoned`). A numpy Generator is captured by its bit generator's state; a
    generator with a ``draw_state()``/``set_draw_state()`` pair (the trainer's per-sample
    :class:`~distnn.data.batch_random.BatchShareGenerator`, whose masks are counter-based) by that."""
    lent = getattr(_local, "lent", None)
    points = [(lent, None)] if type(lent) is _Deferred else []
    current = [] if points else [lent if lent is not None else _own_generator()]
    for g in current + [g for g in generators if g is not None]:
        points.append((g, _draw_state(g)))
    return points


def rewind(points) -> None:
    """Put the generators back where :func:`draw_point` found them (a deferred loan is lent again unmade)."""
    for g, state in points:
        if state is None:
            _local.lent = g
        elif hasattr(type(g), "set_draw_state"):
            g.set_draw_state(state)
        else:
            g.bit_generator.state = state


def _draw_state(g):
    """``g``'s own ``draw_state()`` where its class has one (looked up on the class: a look-alike that hands
    unknown names to a numpy generator would answer for that one), else its bit generator's state."""
    return g.draw_state() if hasattr(type(g), "draw_state") else g.bit_generator.state


def initial_seed() -> int:
    """The seed this thread's own default generator was last seeded with (0 until ``manual_seed``): an int,
    or what ``manual_seed`` was given where that was not one (the trainer seeds with a ``SeedSequence``)."""
    return getattr(_local, "initial_seed", 0)


def seed() -> int:
    """``torch.random.seed``: reseed this thread's default generator nondeterministically; return the seed."""
    from distnn.rng_state import seed as reseed  # (rng_state imports this module: imported on use)

    return reseed()


def get_rng_state():
    """``torch.random.get_rng_state``: the default generator's state as a uint8 tensor (see
    :mod:`distnn.rng_state` for its format)."""
    from distnn.rng_state import get_rng_state as get

    return get()


def set_rng_state(new_state) -> None:
    """``torch.random.set_rng_state``: restore a state :func:`get_rng_state` returned."""
    from distnn.rng_state import set_rng_state as put

    put(new_state)


@contextlib.contextmanager
def fork_rng(devices=None, enabled=True, _caller="fork_rng", _devices_kw="devices", device_type=None):
    """``torch.random.fork_rng``: after the block (however it ends), this thread's own default generator is
    back in the state it had before it, so draws inside do not change the draws after.

    ``enabled=False`` forks nothing. ``devices`` and ``device_type`` are accepted for PyTorch's signature:
    distnn draws every random number on the host from this one generator (a GPU tensor's are moved there),
    so there is no per-device state to fork. A generator lent by :func:`use_generator` is not forked."""
    if not enabled:
        yield
        return
    if devices is not None:
        list(devices)  # (PyTorch's check that it is an iterable)
    state = get_state()
    try:
        yield
    finally:
        set_state(state)


def __getattr__(name):
    if name == "Generator":  # (torch.random.Generator; distnn.generator imports Tensor: loaded on use)
        from distnn.generator import Generator

        return Generator
    raise AttributeError(f"module 'distnn.random' has no attribute {name!r}")


def _own_generator() -> np.random.Generator:
    gen = getattr(_local, "gen", None)
    if gen is None:
        gen = _local.gen = np.random.default_rng(0)
    return gen


def get_state() -> dict:
    """The thread's own default generator's bit-generator state (a plain dict, picklable)."""
    return _own_generator().bit_generator.state


def set_state(state: dict) -> None:
    _own_generator().bit_generator.state = state


# The states of the generators a model's layers were given, for a checkpoint (their own concept and file).
from distnn.module_generators import module_generator_states, set_module_generator_states  # noqa: E402,F401
