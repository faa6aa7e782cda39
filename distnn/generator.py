"""``distnn.Generator``: PyTorch's ``torch.Generator``, a random generator an op is given as ``generator=``.

It is a ``numpy.random.Generator`` (on numpy's PCG64, as distnn's default generator), so every distnn op and
layer that takes ``generator=`` takes it unchanged, and a layer's generator is checkpointed as any other.
With PyTorch's methods: ``manual_seed`` (the stream ``distnn.manual_seed`` gives the default generator for
the same seed), ``seed``, ``initial_seed``, ``get_state``/``set_state`` (a uint8 tensor in distnn's 48-byte
PCG64 format, the one ``distnn.get_rng_state`` uses: see :mod:`distnn.rng_state`) and ``device``. distnn
draws its random numbers on the host and moves them, so a generator for ``"cuda"`` draws the numbers a CPU
one would. PyTorch's ``get_offset``/``set_offset``/``graphsafe_*``/``clone_state`` (Philox and CUDA-graph
state) have no counterpart.
"""
from __future__ import annotations

import numbers

import numpy as np

from distnn.backend import resolve_device
from distnn.rng_state import state_dict, state_tensor

__all__ = ["Generator"]

#: the seed of a new generator, as PyTorch's (``torch.Generator().initial_seed()``)
DEFAULT_SEED = 67280421310721


class Generator(np.random.Generator):
    """``torch.Generator(device="cpu")``: a generator seeded with PyTorch's default seed, 67280421310721."""

    def __init__(self, device="cpu"):
        super().__init__(np.random.PCG64(DEFAULT_SEED))
        name = str(device)  # (a torch.device prints as its name)
        try:
            self._device = resolve_device(name)
        except ValueError:
            raise RuntimeError(f"Expected one of cpu, cuda device type at start of device string: {name}") from None
        self._initial_seed = DEFAULT_SEED

    @property
    def device(self) -> str:
        """``"cpu"`` or ``"cuda:N"``, as ``Tensor.device``."""
        return self._device

    def manual_seed(self, seed) -> "Generator":
        """Reseed with ``seed`` (an int; a negative one is taken modulo 2**64, as PyTorch's) and return self."""
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise RuntimeError(f"manual_seed expected a long, but got {type(seed).__name__}")
        seed = int(seed)
        if not -(1 << 63) <= seed < (1 << 64):
            raise ValueError(f"manual_seed: the seed {seed} is out of range [-2**63, 2**64)")
        seed %= 1 << 64
        self.bit_generator.state = np.random.PCG64(seed).state
        self._initial_seed = seed
        return self

    def seed(self) -> int:
        """Reseed with a nondeterministic 64-bit seed (from the OS's entropy) and return it."""
        value = int(np.random.SeedSequence().entropy) % (1 << 64)
        self.manual_seed(value)
        return value

    def initial_seed(self) -> int:
        """The seed of the last ``manual_seed``/``seed`` (67280421310721 before either)."""
        return self._initial_seed

    def get_state(self):
        """The state as a uint8 tensor; :meth:`set_state` with it repeats the draws that followed."""
        return state_tensor(self.bit_generator.state)

    def set_state(self, new_state) -> "Generator":
        """Restore a state :meth:`get_state` (or ``distnn.get_rng_state``) returned; returns self."""
        self.bit_generator.state = state_dict(new_state)
        return self

    def __reduce__(self):  # (numpy's would pickle a plain numpy Generator, losing the class and the seed)
        return _rebuilt, (self._device, self._initial_seed, self.bit_generator.state)

    def __repr__(self):
        return f"<distnn.Generator device={self._device!r}>"


def _rebuilt(device, initial_seed, state):
    gen = Generator(device)
    gen.bit_generator.state = state
    gen._initial_seed = initial_seed
    return gen
