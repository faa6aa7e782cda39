"""What hooks can do around one backward pass (of :func:`~.engine.backward` or ``autograd.grad``).

Backward-begin hooks (:func:`register_backward_begin_hook`) see each pass's root and the leaves it will
reach before any gradient flows, and may scale its seed. From inside a pass, hooks queue callbacks for its
end (:func:`queue_callback`) or for its failure (:func:`queue_error_callback`), and note facts for the pass's
ops (:func:`backward_context`). Passes nest (a hook may call backward), so each thread keeps a stack.
"""
from __future__ import annotations

import threading

# Callbacks queued (from hooks) during the backward pass running in this thread; a stack
# because a hook may itself call backward. Thread-local: simulated ranks are threads.
_callbacks = threading.local()


def queue_callback(fn) -> None:
    """Run ``fn()`` once the backward pass now running in this thread has finished.

    Call it from a hook (e.g. a post-accumulate-grad hook): ``fn`` runs after every
    leaf gradient of this backward is final and every hook has fired, just before
    ``backward()`` returns, in the order queued. Data parallelism uses it to wait
    for its gradient allreduces, so grads are averaged when ``backward()`` returns.
    Callbacks are dropped if backward raises (see :func:`queue_error_callback`).
    """
    stack = getattr(_callbacks, "stack", None)
    if not stack:
        raise RuntimeError("queue_callback() can only be called while a backward pass is running (from a hook)")
    stack[-1].append(fn)


class _OnError:
    """A :func:`queue_error_callback` entry among a pass's callbacks (skipped when the pass succeeds)."""
    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn


def queue_error_callback(fn) -> None:
    """Run ``fn(exc)`` if the backward pass now running in this thread raises ``exc`` (an ``Exception``).

    Call it from a hook, as :func:`queue_callback`. ``exc`` may come from a gradient computation, a hook
    (``register_hook``, a custom Function's backward) or a callback of :func:`queue_callback` of this pass;
    the callbacks that did not run yet are dropped, and ``fn`` runs once the pass has unwound (no longer
    counted by :func:`backward_depth`), before the error leaves ``backward()``. An exception ``fn`` raises
    replaces ``exc`` (chain it: ``raise ... from exc``); error callbacks of the same pass still run, with it.
    Data parallelism uses it so that a rank whose backward raised still goes through the step's collectives,
    which the other ranks wait in. ``BaseException``s that are not ``Exception``s (KeyboardInterrupt) pass.
    """
    queue_callback(_OnError(fn))


def _wants_errors(queued) -> bool:
    """Whether a pass's callbacks include an error callback."""
    for fn in queued:
        if type(fn) is _OnError:
            return True
    return False


def _end_pass(queued, failed) -> None:
    """After a pass that queued callbacks: ``failed`` None (it succeeded), they run in order; else, or when
    one of them raises, the error callbacks run (each with the error so far) and the error is raised."""
    if failed is None:
        for fn in queued:
            if type(fn) is not _OnError:
                try:
                    fn()
                except Exception as exc:  # (costs nothing while nothing raises)
                    if not _wants_errors(queued):
                        raise
                    failed = exc
                    break
        else:
            return
    for entry in queued:
        if type(entry) is _OnError:
            try:
                entry.fn(failed)
            except Exception as exc:
                failed = exc
    raise failed


# Hooks called at the start of every backward pass (any thread); see register_backward_begin_hook.
_begin_hooks: list = []


class _BeginHookHandle:
    def __init__(self, hook):
        self._hook = hook

    def remove(self) -> None:
        try:
            _begin_hooks.remove(self._hook)
        except ValueError:
            pass


def register_backward_begin_hook(hook):
    """Call ``hook(root, leaves)`` at the start of every backward pass; returns a handle with ``remove()``.

    ``root`` is the tensor ``backward()`` was called on; ``leaves`` the leaf
    tensors (requiring grad) this pass will give a gradient to, a mapping that
    supports ``in`` and iteration (do not modify or keep it). The hook runs
    in the thread of the backward pass, after the graph was walked and before
    any gradient is computed; it may call :func:`queue_callback` and note
    facts in :func:`backward_context`. It returns
    None, or a number the root gradient (the implicit ones or the
    ``gradient`` argument) is multiplied by: every gradient of the pass is
    then scaled by it (backward is linear in the seed), at no cost per
    gradient. Factors of several hooks multiply. Hooks are global (all
    threads); one must ignore passes that are none of its business (e.g. by
    checking ``leaves``) and be cheap.
    """
    _begin_hooks.append(hook)
    return _BeginHookHandle(hook)


def _seed_factor(root, leaves):
    factor = None
    for hook in tuple(_begin_hooks):  # a copy: another thread may register or remove meanwhile
        f = hook(root, leaves)
        if f is not None:
            factor = f if factor is None else factor * f
    return factor


def backward_depth() -> int:
    """How many backward passes are running in this thread (1 inside a top-level pass, 0 outside)."""
    return len(getattr(_callbacks, "stack", None) or ())


def backward_context():
    """A dict private to the backward pass now running in this thread (None outside backward).

    Hooks note facts about the pass there for the ``Function.backward`` calls
    of the same pass to read (e.g. DataParallel marks a pass whose seed carries
    this rank's weight, which SyncBatchNorm's backward must know); it is
    discarded when the pass ends.
    """
    contexts = getattr(_callbacks, "contexts", None)
    return contexts[-1] if contexts else None
