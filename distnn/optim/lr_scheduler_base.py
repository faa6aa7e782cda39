"""``LRScheduler``, the base of the closed-form LR schedules, and the state every scheduler shares.

A schedule is ``lr_at(step)``: the rates at ``step`` from the base rates (see :mod:`distnn.optim.lr_scheduler`
for why closed forms). Split out of :mod:`distnn.optim.lr_scheduler`, which still exports every name here.
"""
from __future__ import annotations

import copy

from .optimizer import Optimizer, _copied

__all__ = ["LRScheduler"]


def _check_optimizer(optimizer):
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"{type(optimizer).__name__} is not a distnn.optim.Optimizer")


class _SchedulerState:
    """What every scheduler shares: the last rates set, and its state without the optimizer."""

    def get_last_lr(self) -> list:
        """The rates most recently set by this scheduler (a copy)."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Everything but the optimizer: plain values only (pickle- and ``flatten_state``-friendly)."""
        return {k: _copied(v) for k, v in self.__dict__.items() if k != "optimizer"}

    #: attribute names this scheduler keeps from its construction when a state is loaded (set by whoever
    #: sized it from the run's length: a resumed run whose length changed follows its new length)
    keep_on_load: tuple = ()

    def load_state_dict(self, state_dict: dict) -> None:
        """Continue from ``state_dict``; the optimizer's rates become the saved ones (whichever of the two
        was built or loaded first: building a scheduler writes its step-0 rate into the optimizer)."""
        kept = {k: self.__dict__[k] for k in self.keep_on_load if k in self.__dict__}
        self.__dict__.update(copy.deepcopy(state_dict))
        changed = any(k in state_dict and state_dict[k] != v for k, v in kept.items())
        self.__dict__.update(kept)
        self._restore_rates()
        if changed and hasattr(self, "lr_at") and self.last_epoch >= 0:
            self._apply(self.lr_at(self.last_epoch))  # the rate of the new length, from the current step on

    def _restore_rates(self) -> None:
        """Put this scheduler's last rates (a loaded state's) back into the optimizer's groups."""
        last, groups = self.__dict__.get("_last_lr"), self.optimizer.param_groups
        if last is not None and len(last) == len(groups):
            for group, lr in zip(groups, last):
                group["lr"] = lr


class LRScheduler(_SchedulerState):
    """Base class: subclasses define ``lr_at(step) -> list of rates`` (one per param group).

    ``base_lrs`` are the groups' ``initial_lr`` unless a subclass passes its own (CyclicLR's ``base_lr``).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1, *, base_lrs=None):
        _check_optimizer(optimizer)
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming a "
                                   f"scheduler with last_epoch={last_epoch}; load the optimizer state first")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups] if base_lrs is None \
            else list(base_lrs)
        self.last_epoch = last_epoch
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self.step()

    def lr_at(self, step: int) -> list:  # pragma: no cover - interface
        raise NotImplementedError

    #: whether PyTorch's version multiplies the current rate at each step (so several can be chained), or
    #: sets a rate of its own whatever came before (LambdaLR, CyclicLR, OneCycleLR, CosineAnnealingWarmRestarts)
    chainable = True

    def _chainable_at(self, step: int) -> bool:
        return self.chainable

    def lr_from(self, step: int, base_lrs) -> list:
        """The rates at ``step`` had the base rates been ``base_lrs`` (how :class:`ChainedScheduler` passes one
        scheduler's rates on to the next); a scheduler that is not chainable gives its own rates."""
        if not self._chainable_at(step):
            return self.lr_at(step)
        saved = self.base_lrs
        self.base_lrs = list(base_lrs)
        try:
            return self.lr_at(step)
        finally:
            self.base_lrs = saved

    def get_lr(self) -> list:
        """The rates for the current step (``last_epoch``)."""
        return self.lr_at(self.last_epoch)

    def step(self) -> None:
        """Advance one step and write the new rates into the optimizer's groups."""
        self.last_epoch += 1
        self._apply(self.get_lr())

    def _check_groups(self, n_rates: int) -> None:
        """A group added to the optimizer after the scheduler was built has no rate (or ``initial_lr``) here."""
        if n_rates != len(self.optimizer.param_groups):
            raise RuntimeError(f"{type(self).__name__} has {n_rates} base rates but the optimizer has "
                               f"{len(self.optimizer.param_groups)} parameter groups (added after the scheduler?)")

    def _apply(self, lrs) -> None:
        self._check_groups(len(lrs))
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, last_lr={self._last_lr})"


def _per_group(name, groups, value):
    if isinstance(value, (list, tuple)):
        if len(value) != len(groups):
            raise ValueError(f"expected {len(groups)} values for {name}, got {len(value)}")
        return list(value)
    return [value] * len(groups)
