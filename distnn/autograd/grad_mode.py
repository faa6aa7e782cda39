"""Global switch for graph recording (``no_grad`` / ``enable_grad``).

Thread-local, because the in-process communicator runs simulated ranks as threads.
"""
import functools
import inspect
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
        self.mode = bool(mode)
        _state.enabled = self.mode

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        _state.enabled = self._prev

    def __call__(self, fn):
        """As a decorator (``@set_grad_enabled(False)``): the mode holds while ``fn`` runs, not from here on."""
        _state.enabled = self._prev  # (as in PyTorch: __init__ switched it already)
        return _decorate(fn, lambda: set_grad_enabled(self.mode))


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
        return _decorate(fn, type(self))


def _decorate(fn, mode):
    """``fn`` run inside ``mode()`` (a context manager factory); a generator function's body too, at
    every resumption, as PyTorch does (a generator otherwise runs after the decorator's block ended)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            gen = fn(*args, **kwargs)
            try:
                with mode():
                    response = gen.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:
                        with mode():
                            gen.close()
                        raise
                    except BaseException as e:
                        with mode():
                            response = gen.throw(e)
                    else:
                        with mode():
                            response = gen.send(request)
            except StopIteration as done:
                return done.value

        return generator

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with mode():
            return fn(*args, **kwargs)

    return wrapper


class enable_grad(no_grad):
    """Context manager (and decorator) that turns graph recording back on inside ``no_grad``."""

    _mode = True


class _InferenceState(threading.local):
    enabled = False


_inference = _InferenceState()


def is_inference_mode_enabled() -> bool:
    """Whether this thread is inside ``inference_mode()`` (PyTorch's name)."""
    return _inference.enabled


class inference_mode:
    """PyTorch's ``inference_mode``: a context manager (and decorator, with or without parentheses).

    Ops record no graph inside, as under ``no_grad``; ``is_inference_mode_enabled()`` says so. As PyTorch's,
    ``inference_mode(False)`` turns recording back on (``not mode``), whatever the mode outside. What is made
    inside is an inference tensor (``Tensor.is_inference()``; a view of a normal tensor stays normal): outside
    the mode it cannot be saved for backward, changed in place, or made to require grad (PyTorch's refusals).
    """

    def __new__(cls, mode=True):
        if callable(mode):  # ``@inference_mode`` without parentheses
            return cls(True)(mode)
        self = super().__new__(cls)
        self.mode = bool(mode)
        self._prev = []  # a stack: the same instance may be entered again while active
        return self

    def __enter__(self):
        self._prev.append((_state.enabled, _inference.enabled))
        _state.enabled, _inference.enabled = not self.mode, self.mode

    def __exit__(self, *exc):
        _state.enabled, _inference.enabled = self._prev.pop()

    def __call__(self, fn):
        mode = self.mode
        return _decorate(fn, lambda: inference_mode(mode))

    def clone(self) -> "inference_mode":
        return inference_mode(self.mode)
