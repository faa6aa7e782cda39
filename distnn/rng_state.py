"""PyTorch's process-wide RNG functions: ``get_rng_state``, ``set_rng_state``, ``initial_seed``, ``seed``.

They act on this thread's own default generator (:mod:`distnn.random`; the one ``manual_seed`` reseeds),
not on one lent by ``random.use_generator``. The state is a uint8 tensor, as PyTorch's, but in distnn's own
format (the generator is numpy's PCG64, not PyTorch's Mersenne Twister): 48 bytes, an 8-byte tag, the
PCG64 state and increment (128 bits each, little-endian), and the cached 32-bit half (flag, value: 4 bytes
each). Setting a state restores exactly the draws that followed it; a tensor that is not such a state is
refused.
"""
from __future__ import annotations

import numpy as np

from distnn import random
from distnn.autograd.tensor import Tensor

__all__ = ["get_rng_state", "set_rng_state", "initial_seed", "seed"]

_TAG = b"PCG64\x00\x00\x01"  # distnn's format, version 1
_SIZE = len(_TAG) + 16 + 16 + 4 + 4
_MASK = (1 << 128) - 1


def get_rng_state() -> Tensor:
    """The default generator's state as a uint8 tensor (see the module docstring for its format)."""
    return state_tensor(random.get_state())


def set_rng_state(new_state) -> None:
    """Restore a state :func:`get_rng_state` returned: the draws that follow are those that followed it."""
    random.set_state(state_dict(new_state))


def state_tensor(state: dict) -> Tensor:
    """A PCG64 bit generator's ``state`` dict as distnn's 48-byte uint8 state tensor (also
    ``distnn.Generator.get_state``'s)."""
    if state.get("bit_generator") != "PCG64":
        raise RuntimeError(f"get_rng_state: the generator is {state.get('bit_generator')}, not PCG64")
    pcg = state["state"]
    raw = (_TAG + pcg["state"].to_bytes(16, "little") + pcg["inc"].to_bytes(16, "little")
           + int(state["has_uint32"]).to_bytes(4, "little") + int(state["uinteger"]).to_bytes(4, "little"))
    return Tensor(np.frombuffer(raw, dtype=np.uint8).copy())


def state_dict(new_state) -> dict:
    """The PCG64 ``state`` dict a state tensor of :func:`state_tensor` holds; anything else is refused."""
    if not isinstance(new_state, Tensor):
        raise TypeError(f"expected a ByteTensor (a uint8 distnn Tensor), but got {type(new_state).__name__}")
    if new_state.dtype != np.uint8:
        raise TypeError(f"RNG state must be a ByteTensor (uint8), got dtype {new_state.dtype}")
    raw = np.ascontiguousarray(np.asarray(new_state.data.get() if hasattr(new_state.data, "get")
                                          else new_state.data)).reshape(-1).tobytes()
    if len(raw) != _SIZE:
        raise RuntimeError(f"Expected an RNG state of size {_SIZE} but found the input RNG state size to be "
                           f"{len(raw)}")
    if raw[:len(_TAG)] != _TAG:
        raise RuntimeError("the RNG state was not made by distnn.get_rng_state (its tag does not match)")
    body = raw[len(_TAG):]
    has_uint32, uinteger = int.from_bytes(body[32:36], "little"), int.from_bytes(body[36:40], "little")
    inc = int.from_bytes(body[16:32], "little")
    if has_uint32 not in (0, 1) or inc % 2 == 0:  # (PCG64's increment is always odd)
        raise RuntimeError("the RNG state is corrupt (not a state distnn.get_rng_state made)")
    return {"bit_generator": "PCG64", "state": {"state": int.from_bytes(body[:16], "little") & _MASK, "inc": inc},
            "has_uint32": has_uint32, "uinteger": uinteger}


def initial_seed() -> int:
    """The seed the default generator was last seeded with (``manual_seed``/``seed``; 0 at start)."""
    return random.initial_seed()


def seed() -> int:
    """Reseed the default generator with a nondeterministic 64-bit seed (from the OS's entropy) and return
    it; ``manual_seed(seed())``'s value reproduces the draws that follow."""
    value = int(np.random.SeedSequence().entropy) % (1 << 64)
    random.manual_seed(value)
    return value
