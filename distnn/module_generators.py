"""The generators a model's layers were given (``Dropout(generator=...)``), in a checkpoint and back.

A layer with its own generator draws its masks from it, not from distnn's default generator, so an exact
resume must carry that generator's state too. :func:`module_generator_states` reads one state per layer
that holds a generator, by module path; :func:`set_module_generator_states` puts them back. A state is
what :func:`generator_state` gives for the layer's generator:

- a ``numpy.random.Generator`` (``distnn.Generator`` included, on any bit generator): its bit generator's
  state dict, as numpy gives it (the format every checkpoint has used for these); a ``distnn.Generator``'s
  also holds its ``initial_seed()`` under ``"initial_seed"`` (a resumed run's is the uninterrupted run's:
  a state saved before it was kept, without that key, leaves the generator's own seed as it is);
- a generator whose class defines ``draw_state()``/``set_draw_state()`` (the protocol
  :func:`distnn.random.draw_point` rewinds with; :class:`~distnn.data.batch_random.BatchShareGenerator`,
  whose dropout masks are counter-based): ``{"kind": <class name>, "draw_state": <its draw_state()>}``.
  Its constructor's arguments (a BatchShareGenerator's seed and rows) are not saved: the code that builds
  the model builds the generator again, and the state says where its draws stood.

Anything else a layer may be given that draws like a generator (a look-alike with ``random``) cannot be
saved: it is left out with a warning (once per class), as the resume then draws its numbers afresh.
"""
from __future__ import annotations

import warnings

import numpy as np

__all__ = ["module_generator_states", "set_module_generator_states", "generator_state", "set_generator_state",
           "per_rank_layers"]

#: the key of a distnn.Generator's initial_seed() beside its bit generator's state
SEED_KEY = "initial_seed"
_INSTANCE_ONLY: dict = {}  # module class -> whether a "generator" attribute can only be an instance attribute
_WARNED: set = set()  # generator classes already warned about (module_generator_states runs at every save)


def _has_draw_state(g) -> bool:
    """Whether ``g``'s class has the draw_state()/set_draw_state() pair (looked up on the class: a look-alike
    that hands unknown names to a numpy generator, as BatchShareGenerator does, would answer for that one)."""
    cls = type(g)
    return hasattr(cls, "draw_state") and hasattr(cls, "set_draw_state")


def _checkpointable(g) -> bool:
    return isinstance(g, np.random.Generator) or _has_draw_state(g)


def _draws_like_a_generator(g) -> bool:
    """What a layer's ops would draw from (dropout asks for ``keep_mask`` or ``random``); a layer's
    ``generator`` that is something else (a GAN's generator network) is no random generator at all."""
    from distnn.nn.module import Module

    return not isinstance(g, Module) and (callable(getattr(g, "keep_mask", None))
                                          or callable(getattr(g, "random", None)))


def generator_state(g):
    """``g``'s state as a checkpoint stores it (see the module docstring); :func:`set_generator_state` puts
    it back. Raises TypeError for a generator of another kind."""
    if isinstance(g, np.random.Generator):
        seed = _initial_seed_of(g)
        return g.bit_generator.state if seed is None else {**g.bit_generator.state, SEED_KEY: seed}
    if _has_draw_state(g):
        return {"kind": type(g).__name__, "draw_state": g.draw_state()}
    raise TypeError(f"cannot save the state of a {type(g).__name__}: a layer's generator must be a "
                    "numpy.random.Generator (distnn.Generator is one) or have draw_state()/set_draw_state()")


def set_generator_state(g, state, where: str = "generator") -> None:
    """Put a :func:`generator_state` back into ``g``, in place. ``where`` names it in the errors: a ValueError
    when the state is of another kind of generator than ``g`` (the model's layer was given another one)."""
    saved_numpy = isinstance(state, dict) and "bit_generator" in state
    if isinstance(g, np.random.Generator):
        if not saved_numpy:
            raise ValueError(f"{where}: the checkpoint holds the state of a {_kind(state)}, but the generator is a "
                             f"numpy.random.Generator ({type(g.bit_generator).__name__})")
        bit_state = {k: v for k, v in state.items() if k != SEED_KEY}
        try:
            g.bit_generator.state = bit_state
        except (ValueError, TypeError, KeyError) as e:  # (another bit generator: numpy names it)
            raise ValueError(f"{where}: the checkpoint's generator state does not fit its "
                             f"{type(g.bit_generator).__name__} generator: {e}") from None
        if SEED_KEY in state and _initial_seed_of(g) is not None:  # (a plain numpy Generator has none to set)
            g._initial_seed = int(state[SEED_KEY])
        return
    if _has_draw_state(g):
        if saved_numpy or not isinstance(state, dict) or state.get("kind") != type(g).__name__:
            raise ValueError(f"{where}: the checkpoint holds the state of a {_kind(state)}, but the generator is a "
                             f"{type(g).__name__}")
        g.set_draw_state(state["draw_state"])
        return
    raise TypeError(f"{where}: cannot restore the state of a {type(g).__name__} (see generator_state)")


def per_rank_layers(model, saved: list) -> list[str]:
    """The layers whose generators a resume on another number of ranks cannot continue exactly, by module path.

    ``saved``: each saved rank's :func:`module_generator_states`. A generator's draws are per rank unless
    its class says otherwise with ``continues_on_any_world(draw_states)`` (a static method given every
    saved rank's ``draw_state()``; :class:`~distnn.data.batch_random.BatchShareGenerator`'s counter-based
    masks: see its method) and every saved rank holds such a state for the layer."""
    out = []
    for name, m in model.named_modules():
        g = _generator_of(m)
        if g is None or not _checkpointable(g):
            continue
        check = getattr(type(g), "continues_on_any_world", None) if _has_draw_state(g) else None
        states = [s.get(name) for s in saved]
        if check is None or not all(isinstance(st, dict) and st.get("kind") == type(g).__name__ for st in states) \
                or not check([st["draw_state"] for st in states]):
            out.append(name)
    return out


def _initial_seed_of(g):
    """A ``distnn.Generator``'s ``initial_seed()``; None for any other numpy generator (numpy keeps no seed)."""
    from distnn.generator import Generator

    return g.initial_seed() if isinstance(g, Generator) else None


def _kind(state) -> str:
    if isinstance(state, dict) and "bit_generator" in state:
        return f"numpy.random.Generator ({state['bit_generator']})"
    if isinstance(state, dict) and "kind" in state:
        return str(state["kind"])
    return f"generator of an unknown kind ({type(state).__name__})"


def module_generator_states(model) -> dict:
    """The states of the generators a model's layers were given (``Dropout(generator=...)``), by module path
    (see the module docstring for what a state is)."""
    states = {}
    for name, m in model.named_modules():
        g = _generator_of(m)
        if g is None:
            continue
        if _checkpointable(g):
            states[name] = generator_state(g)
        elif type(g) not in _WARNED and _draws_like_a_generator(g):
            _WARNED.add(type(g))
            warnings.warn(f"layer {name!r}: its generator, a {type(g).__name__}, cannot be saved in a checkpoint "
                          "(neither a numpy.random.Generator nor a class with draw_state()/set_draw_state()): "
                          "a resumed run draws its numbers afresh", RuntimeWarning, stacklevel=2)
    return states


def set_module_generator_states(model, states: dict) -> None:
    """Restore :func:`module_generator_states`. Modules without a saved state, and saved states of layers that
    hold no generator now, are left alone; a state of another kind of generator than the layer's is a
    ValueError naming the layer."""
    for name, m in model.named_modules():
        if name in states:
            g = _generator_of(m)
            if g is not None and _checkpointable(g):
                set_generator_state(g, states[name], where=f"layer {name!r}'s generator")


def _generator_of(m):
    """``getattr(m, "generator", None)`` for a module. A checkpoint asks at every save, and for a layer
    without one (most) getattr went through ``Module.__getattr__``, a Python call raising
    AttributeError: where the class defines no ``generator`` and looks attributes up as Module does,
    the instance's ``__dict__`` alone can hold one (Module.__getattr__ finds only parameters, buffers
    and submodules, never a generator)."""
    cls = type(m)
    plain = _INSTANCE_ONLY.get(cls)
    if plain is None:
        from distnn.nn.module import Module

        plain = _INSTANCE_ONLY[cls] = (
            isinstance(m, Module) and cls.__getattribute__ is object.__getattribute__
            and cls.__getattr__ is Module.__getattr__ and not any("generator" in vars(c) for c in cls.__mro__))
    if plain:
        return m.__dict__.get("generator")
    return getattr(m, "generator", None)
