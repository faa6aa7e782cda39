"""vmap's (and jacfwd's) ``randomness`` modes on distnn's default generator (:mod:`distnn.random`).

``"error"`` refuses any draw from the default generator while ``func`` runs; ``"different"`` lets each sample
draw on (independent numbers per sample); ``"same"`` restores the generator's state before each sample, so
every sample gets the numbers the first drew, and the generator ends where one sample's draws leave it.
Random ops given their own ``generator=`` are not seen (they draw as asked, in every mode).
"""
from __future__ import annotations

import contextlib

from distnn import random as _random

_MODES = ("error", "different", "same")
_REFUSAL = ("vmap: called random operation while in randomness error mode. Please either use the 'same' or "
            "'different' randomness flags on vmap or perform the randomness operation out of vmap")


def check_randomness(randomness) -> None:
    if randomness not in _MODES:
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or 'same'. Got {randomness}")


def refuse_random():
    """A context in which a draw from the default generator raises torch's randomness-error message."""
    return _random.refusing_draws(_REFUSAL)


class SampleDraws:
    """Per-sample randomness for a loop over a batch: ``with draws.sample():`` around each sample's call."""

    def __init__(self, randomness: str):
        check_randomness(randomness)
        self.randomness = randomness
        self._state = None
        if randomness == "same":
            try:
                self._generator = _random.default_generator()
            except RuntimeError:  # (inside an outer vmap(randomness="error"): every draw is refused anyway)
                return
            self._state = self._generator.bit_generator.state

    @contextlib.contextmanager
    def sample(self):
        if self.randomness == "error":
            with refuse_random():
                yield
            return
        if self._state is not None:
            self._generator.bit_generator.state = self._state
        yield
