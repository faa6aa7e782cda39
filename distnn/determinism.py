"""PyTorch's deterministic-algorithms switches: ``use_deterministic_algorithms``,
``are_deterministic_algorithms_enabled``, ``is_deterministic_algorithms_warn_only_enabled``,
``set_deterministic_debug_mode``/``get_deterministic_debug_mode``.

distnn records the flags and changes nothing: its ops are deterministic already. On the CPU they are numpy
ops, which give the same result on every run; the scatter-adds (index_add, embedding backward) use
``numpy.add.at``, which adds in index order. On a GPU the same ops run in cupy, whose scatter-adds use atomic
adds (float sums in a run-dependent order, so last-bit differences) as PyTorch's do: distnn does not refuse
them under the flag, which is, there, a statement of intent only.
"""
from __future__ import annotations

__all__ = ["use_deterministic_algorithms", "are_deterministic_algorithms_enabled",
           "is_deterministic_algorithms_warn_only_enabled", "set_deterministic_debug_mode",
           "get_deterministic_debug_mode"]

_flags = {"enabled": False, "warn_only": False}
_MODES = {"default": 0, "warn": 1, "error": 2}


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Record that deterministic algorithms are asked for (``mode``), and whether only with warnings."""
    if not isinstance(mode, bool):
        raise TypeError(f"use_deterministic_algorithms(): argument 'mode' must be bool, not {type(mode).__name__}")
    _flags["enabled"], _flags["warn_only"] = mode, bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    return _flags["enabled"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _flags["warn_only"]


def set_deterministic_debug_mode(debug_mode) -> None:
    """PyTorch's: ``"default"``/0 (off), ``"warn"``/1 (on, warn only), ``"error"``/2 (on)."""
    if isinstance(debug_mode, str):
        if debug_mode not in _MODES:
            raise RuntimeError("invalid value of debug_mode, expected one of `default`, `warn`, `error`, but got "
                               f"{debug_mode}")
        debug_mode = _MODES[debug_mode]
    elif isinstance(debug_mode, bool) or not isinstance(debug_mode, int):
        raise TypeError(f"debug_mode must be str or int, but got {type(debug_mode).__name__}")
    elif debug_mode not in (0, 1, 2):
        raise RuntimeError(f"invalid value of debug_mode, expected 0, 1, or 2, but got {debug_mode}")
    use_deterministic_algorithms(debug_mode != 0, warn_only=debug_mode == 1)


def get_deterministic_debug_mode() -> int:
    """0, 1 or 2 as :func:`set_deterministic_debug_mode` takes them."""
    if not _flags["enabled"]:
        return 0
    return 1 if _flags["warn_only"] else 2
