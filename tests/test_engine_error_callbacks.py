"""``engine.queue_error_callback``: a hook asks to be told when its backward pass raises.

DataParallel builds on it (a rank whose backward raised still finishes the step's collectives), so: the
callback gets the pass's exception (from a hook, a Function's backward, or a ``queue_callback`` callback),
runs after the pass has unwound and never on success, and what it raises replaces the error; the same
through ``autograd.backward``'s walker.
"""
import numpy as np
import pytest

import distnn
from distnn import autograd
from distnn.autograd.engine import backward_depth, queue_callback, queue_error_callback


def _leaf():
    return distnn.Tensor(np.arange(3.0), requires_grad=True)


def _raiser(exc):
    def hook(*args):
        raise exc
    return hook


def _watched(log, replace=None):
    """A gradient hook that queues an error callback (logging what it saw), and a callback."""
    def on_error(exc):
        log.append(("error", type(exc).__name__, str(exc), backward_depth()))
        if replace is not None:
            raise replace from exc

    def hook(g):
        queue_error_callback(on_error)
        queue_callback(lambda: log.append(("callback",)))
    return hook


@pytest.mark.parametrize("walk", ["backward", "autograd.backward"])
def test_the_error_callback_sees_the_pass_error_after_the_pass_unwound_and_the_error_goes_on(walk):
    x, log = _leaf(), []
    y = x * 2
    y.register_hook(_watched(log))  # (runs first: the pass's error comes after it)
    x.register_hook(_raiser(ValueError("bad gradient")))
    loss = (y * y).sum()
    with pytest.raises(ValueError, match="bad gradient") as info:
        loss.backward() if walk == "backward" else autograd.backward([loss], inputs=[x])
    assert log == [("error", "ValueError", "bad gradient", 0)]  # the callback dropped, the error unchanged
    assert info.value.__cause__ is None


def test_what_the_error_callback_raises_replaces_the_error_chained_from_it():
    x, log = _leaf(), []
    y = x * 2
    y.register_hook(_watched(log, replace=RuntimeError("agreed")))
    x.register_hook(_raiser(ValueError("bad gradient")))
    with pytest.raises(RuntimeError, match="agreed") as info:
        (y * y).sum().backward()
    assert isinstance(info.value.__cause__, ValueError)


def test_no_error_callback_runs_when_the_pass_succeeds():
    x, log = _leaf(), []
    y = x * 2
    y.register_hook(_watched(log))
    (y * y).sum().backward()
    assert log == [("callback",)]
    np.testing.assert_array_equal(x.grad, 8 * np.arange(3.0))


def test_a_callback_that_raises_calls_the_error_callbacks_and_drops_the_later_callbacks():
    x, log = _leaf(), []
    y = x * 2

    def hook(g):
        queue_callback(_raiser(KeyError("callback failed")))
        queue_error_callback(lambda exc: log.append(("error", type(exc).__name__)))
        queue_callback(lambda: log.append(("later callback",)))

    y.register_hook(hook)
    with pytest.raises(KeyError, match="callback failed"):
        (y * y).sum().backward()
    assert log == [("error", "KeyError")]


def test_a_keyboard_interrupt_passes_the_error_callbacks_by():
    x, log = _leaf(), []
    y = x * 2
    y.register_hook(_watched(log))
    x.register_hook(_raiser(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        (y * y).sum().backward()
    assert log == []
    assert backward_depth() == 0


def test_queue_error_callback_outside_backward_is_refused():
    with pytest.raises(RuntimeError, match="only be called while a backward pass is running"):
        queue_error_callback(lambda exc: None)
