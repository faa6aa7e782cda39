"""``Join``: training with uneven inputs across ranks (PyTorch's ``torch.distributed.algorithms.Join``).

When ranks have different numbers of batches, a rank that runs out would
leave the others waiting in their next collective forever. Inside
``with Join([model, optimizer]):`` (or ``with model.join():`` for a
:class:`~.data_parallel.DataParallel`), a rank that leaves the loop *joins*:
in ``__exit__`` it keeps answering the collectives the other ranks' steps
make, through each participant's :class:`JoinHook`, until every rank has
joined; then every rank leaves the context together.

The protocol, as PyTorch's: every iteration, the first participant that has
a communicator (``join_process_group``) calls :meth:`Join.notify_join_context`
before its own collectives; that is one allreduce (a "round") in which each
active rank marks itself. A joined rank takes part in the same rounds from
``__exit__``: while some rank is active it runs every participant's
``main_hook()`` (which must make the collectives an active rank's iteration
makes, in the same order); when a round finds no active rank, every rank runs
``post_hook(is_last_joiner)`` and leaves. One round marks *which* ranks are
active (:attr:`Join.active_ranks`), so hooks can take an active rank's state
(DataParallel broadcasts buffers from the highest active rank, as PyTorch's
DDP does) without a collective of their own.

``throw_on_early_termination=True``: when the first rank joins, every rank
raises ``RuntimeError`` at the next round (the active ranks in their notify,
the joined ones in ``__exit__``), as PyTorch does. ``enable=False``: the
context does nothing. An exception inside the context propagates at once
(no shadowing): the other ranks' collectives then end as any failed job's do
(:func:`~.inprocess_comm.simulate` aborts its group, an MPI job ends through
its watchdog), never a hang. Joins do not nest.

Participants: :class:`~.data_parallel.DataParallel`, any :class:`Joinable`
(subclass it; PyTorch's pattern), and distnn optimizers, which a joined rank
steps after the other participants' hooks, so its optimizer state stays equal
to the active ranks' (see :class:`JoinableOptimizer`).
"""
from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Join", "Joinable", "JoinHook", "JoinableOptimizer"]

# Rounds a joined rank waits through before warning once (PyTorch's threshold).
_SKEW_WARNING = 1000


class JoinHook:
    """What a joined rank does for one participant: ``main_hook()`` every round in which some rank is
    still active (shadow one iteration's collectives), ``post_hook(is_last_joiner)`` once all have joined."""

    def main_hook(self) -> None:
        """Make the collectives one iteration of an active rank makes, in its order."""

    def post_hook(self, is_last_joiner: bool) -> None:
        """Called once every rank has joined; ``is_last_joiner``: this rank was active in the last round."""


class _JoinConfig(NamedTuple):
    enable: bool
    throw_on_early_termination: bool
    is_first_joinable: bool
    join: Any = None  # the active Join context (None: none)

    @staticmethod
    def construct_disabled_join_config():
        return _DISABLED


_DISABLED = _JoinConfig(False, False, False, None)


class Joinable(ABC):
    """A participant of :class:`Join`: implement :meth:`join_hook`, :attr:`join_device` and
    :attr:`join_process_group` (the communicator the context's rounds go over, or None when the
    participant makes no collectives of its own), and call :meth:`Join.notify_join_context` at the
    start of each iteration, before the iteration's collectives."""

    # (a class default as well, so a class mixing Joinable in need not call this __init__)
    _join_config = _DISABLED

    def __init__(self) -> None:
        super().__init__()
        self._join_config = _DISABLED

    @abstractmethod
    def join_hook(self, **kwargs) -> JoinHook:
        """This participant's hook; ``kwargs`` are the keyword arguments given to :class:`Join`."""

    @property
    @abstractmethod
    def join_device(self):
        """Where the context's rounds are computed (distnn: None, the host)."""

    @property
    @abstractmethod
    def join_process_group(self):
        """The communicator of the context's rounds (None: this participant has none)."""


class JoinableOptimizer(Joinable):
    """A distnn optimizer in a :class:`Join` (``Join`` wraps optimizers in this itself).

    A joined rank calls ``optimizer.step()`` once per round, after the other
    participants' hooks (DataParallel's installs the round's averaged
    gradients first), so parameters and optimizer state stay equal to the
    active ranks'. Only ``step()`` is repeated: an active rank that does more
    between backward and step (clipping, a GradScaler, an LR scheduler) needs
    a :class:`Joinable` of its own that repeats it.
    """

    def __init__(self, optimizer):
        super().__init__()
        self.optimizer = optimizer

    def join_hook(self, **kwargs) -> JoinHook:
        return _OptimizerJoinHook(self.optimizer)

    @property
    def join_device(self):
        return None

    @property
    def join_process_group(self):
        return None


class _OptimizerJoinHook(JoinHook):
    def __init__(self, optimizer):
        self.optimizer = optimizer

    def main_hook(self) -> None:
        self.optimizer.step()


class Join:
    """Context manager for uneven inputs: joined ranks shadow the active ranks' collectives.

    ``joinables``: the participants (:class:`Joinable` instances, such as
    DataParallel, and distnn optimizers). Their hooks run in list order,
    optimizers last. All participants that have a communicator must have the
    same one; the first of them notifies the context each iteration.
    ``enable=False`` makes the context a no-op; ``throw_on_early_termination``
    makes every rank raise as soon as one has joined. Other keyword arguments
    go to every participant's ``join_hook`` (DataParallel's takes
    ``divide_by_initial_world_size``). Every rank must enter the context.
    """

    def __init__(self, joinables, enable: bool = True, throw_on_early_termination: bool = False, **kwargs):
        joinables = [_as_joinable(j) for j in joinables]
        if not joinables:
            raise ValueError("Join needs at least one joinable (a DataParallel, an optimizer or a Joinable)")
        # optimizers step after the hooks that install the round's gradients (stable otherwise)
        joinables.sort(key=lambda j: isinstance(j, JoinableOptimizer))
        self._joinables = joinables
        self._hooks = [j.join_hook(**kwargs) for j in joinables]
        self._enable = bool(enable)
        self._throw = bool(throw_on_early_termination)
        self._comm = self._notifier = None
        for j in joinables:
            comm = j.join_process_group
            if comm is None:
                continue
            if self._comm is None:
                self._comm, self._notifier = comm, j
            elif comm is not self._comm:
                raise ValueError("Join: the participants use different communicators; all must share one "
                                 "(a DataParallel's is its comm)")
        if self._comm is None:
            raise ValueError("Join: no participant has a communicator (join_process_group); include the "
                             "DataParallel model or a Joinable that makes collectives")
        self.active_ranks = None  # the ranks active in the latest round (a tuple), None before the first
        self.last_active_ranks = None  # those of the latest round that had an active rank

    # ------------------------------------------------------------- context
    def __enter__(self):
        for j in self._joinables:
            if j._join_config.join is not None:
                raise RuntimeError(f"Join: {_describe(j)} is already in an active join context; joins do not nest")
        if self._enable:
            for j in self._joinables:
                j._join_config = _JoinConfig(True, self._throw, j is self._notifier, self)
        return self

    def __exit__(self, exc_type, exc, tb):
        if not self._enable:
            return False
        try:
            if exc_type is None:
                self._shadow_until_all_joined()
        finally:
            for j in self._joinables:
                j._join_config = _DISABLED
        return False  # an exception propagates (the others then fail in their collectives: no hang)

    def _shadow_until_all_joined(self) -> None:
        is_last_joiner = True
        rounds = 0
        while True:
            active, _ = self._round(active=False, terminate=self._throw)
            if not active:
                break
            if self._throw:
                raise RuntimeError(f"Rank {self._comm.rank} exhausted all inputs.")
            for hook in self._hooks:
                hook.main_hook()
            is_last_joiner = False
            rounds += 1
            if rounds == _SKEW_WARNING + 1:
                warnings.warn(f"Join: rank {self._comm.rank} has run more than {_SKEW_WARNING} iterations fewer "
                              "than the active ranks; so uneven a split wastes this rank's time", stacklevel=3)
        for hook in self._hooks:
            hook.post_hook(is_last_joiner)

    def _round(self, active: bool, terminate: bool = False):
        """One round: allreduce of [one slot per rank (1 where active), ranks that ask every rank to stop]."""
        comm = self._comm
        votes = np.zeros(comm.size + 1)
        if active:
            votes[comm.rank] = 1.0
        votes[-1] = float(terminate)
        votes = np.asarray(comm.allreduce(votes))
        ranks = tuple(int(r) for r in np.flatnonzero(votes[:-1] > 0))
        self.active_ranks = ranks
        if ranks:
            self.last_active_ranks = ranks
        return ranks, votes[-1] > 0

    @staticmethod
    def notify_join_context(joinable: Joinable):
        """An active rank's call at the start of an iteration, before its collectives (one allreduce).

        Does nothing (returns None) unless ``joinable`` is the participant that
        notifies for an enabled context. Returns the ranks active in this
        round. With ``throw_on_early_termination``, raises ``RuntimeError`` on
        every rank once some rank has joined.
        """
        config = joinable._join_config
        if not config.enable or not config.is_first_joinable:
            return None
        ranks, stop = config.join._round(active=True)
        if config.throw_on_early_termination and stop:
            raise RuntimeError("Detected at least one rank that exhausted inputs. Throwing across all ranks.")
        return ranks


def _as_joinable(obj) -> Joinable:
    from distnn.optim.optimizer import Optimizer

    if isinstance(obj, Joinable):
        return obj
    if isinstance(obj, Optimizer):
        return JoinableOptimizer(obj)
    raise TypeError(f"Join: {type(obj).__name__} is not joinable; pass a DataParallel, a distnn optimizer or a "
                    "Joinable subclass (a plain model must be wrapped in DataParallel first)")


def _describe(joinable) -> str:
    return type(joinable.optimizer if isinstance(joinable, JoinableOptimizer) else joinable).__name__
