"""Global switch for graph recording (``no_grad`` / ``enable_grad``).

Thread-local, because the in-process communicator runs simulated ranks as threads.
"""
import functools
import threading

class _GradState(threading.local):
    enabled = True  # class default: every thread starts recording, and reads need no getattr fallback


_state = _GradState()


def is_grad_enabled() -> bool:
    return _state.enabled


class set_grad_enabled:
    """Turn recording on or off: at once when called, and back as it was when used as a context manager.

    ``set_grad_enabled(False)`` switches recording off for this thread;
    ``with set_grad_enabled(is_train): ...`` restores the previous mode on exit (as PyTorch).
    """

    def __init__(self, mode: bool):
        self._prev = _state.enabled
        _state.enabled = bool(mode)

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        _state.enabled = self._prev


class no_grad:
    """Context manager (and decorator, with or without parentheses) in which ops record no graph."""

    _mode = False

    def __new__(cls, fn=None):
        self = super().__new__(cls)
        self._prev = []  # a stack: the same instance may be entered again while active
        return self(fn) if callable(fn) else self

    def __enter__(self):
        self._prev.append(_state.enabled)
        _state.enabled = self._mode

    def __exit__(self, *exc):
        _state.enabled = self._prev.pop()

    def __call__(self, fn):
        mode_cls = type(self)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with mode_cls():
                return fn(*args, **kwargs)

        return wrapper


class enable_grad(no_grad):
    """Context manager (and decorator) that turns graph recording back on inside ``no_grad``."""

    _mode = True
