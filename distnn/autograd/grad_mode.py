"""Global switch for graph recording (``no_grad`` / ``enable_grad``).

Thread-local, because the in-process communicator runs simulated ranks as threads.
"""
import threading

class _GradState(threading.local):
    enabled = True  # class default: every thread starts recording, and reads need no getattr fallback


_state = _GradState()


def is_grad_enabled() -> bool:
    return _state.enabled


def set_grad_enabled(mode: bool) -> None:
    _state.enabled = bool(mode)


class no_grad:
    """Context manager (and decorator) in which ops record no graph."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(False)

    def __exit__(self, *exc):
        set_grad_enabled(self._prev)

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        wrapper.__wrapped__ = fn
        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


class enable_grad(no_grad):
    """Context manager that turns graph recording back on inside ``no_grad``."""

    def __enter__(self):
        self._prev = is_grad_enabled()
        set_grad_enabled(True)
