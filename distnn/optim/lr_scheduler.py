"""Learning-rate schedules with ``torch.optim.lr_scheduler``'s names and LR sequences.

Usage is PyTorch's: build the scheduler on an optimizer (this sets each group's
``lr`` to the schedule's value at step 0), then call ``optimizer.step()`` and
``scheduler.step()`` once per epoch or iteration; ``get_last_lr()`` returns
the rates now in the groups.

Design: every schedule here except ``ReduceLROnPlateau`` is a *closed form*
``lr_at(step)`` of the base rates (each group's ``initial_lr``) and the step
counter. PyTorch's schedulers instead multiply the group's current rate step by
step; the sequences agree (up to rounding), but a closed form cannot drift, a
restored scheduler is just its counter, and composition is plain function
composition:

* ``LinearWarmup(opt, warmup_steps, start_factor, after=sched)`` ramps the rate
  linearly from ``start_factor * base`` to ``base`` over ``warmup_steps`` steps,
  then hands over to ``after``, whose own step 0 is the first step after the
  warmup (PyTorch's ``SequentialLR([LinearLR, after], milestones=[warmup_steps])``).
  A schedule meant to count from the start of training (MultiStepLR epochs, say)
  takes its milestones shifted by ``warmup_steps``.
* Without ``after``, the warmup leaves the rate alone once it reaches the base,
  so a ``ReduceLROnPlateau`` (which changes the current rate, like PyTorch) can
  take over from there.

Two things follow from the closed form: a rate changed by hand is overwritten at
the next ``step()``, and ``step(epoch)`` (deprecated in PyTorch) is not offered;
set ``last_epoch`` and call ``step()`` instead.

This module holds the simple closed forms (StepLR, MultiStepLR, ExponentialLR,
CosineAnnealingLR) and ``LinearWarmup``; the others have modules of their own
and are importable from here: the base class (:mod:`.lr_scheduler_base`),
``OneCycleLR`` (:mod:`.lr_scheduler_onecycle`), ``ReduceLROnPlateau``
(:mod:`.lr_scheduler_plateau`), ``CyclicLR`` (:mod:`.lr_scheduler_cyclic`) and
the rest of PyTorch's (:mod:`.lr_scheduler_more`).
"""
from __future__ import annotations

import copy
import math
from bisect import bisect_right

from . import lr_scheduler_base as _base
from .lr_scheduler_base import LRScheduler
from .lr_scheduler_cyclic import CyclicLR
from .lr_scheduler_more import (ChainedScheduler, ConstantLR, CosineAnnealingWarmRestarts, LambdaLR, LinearLR,
                                MultiplicativeLR, PolynomialLR, SequentialLR)
from .lr_scheduler_onecycle import OneCycleLR
from .lr_scheduler_plateau import ReduceLROnPlateau

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearWarmup",
           "OneCycleLR", "ReduceLROnPlateau", "LambdaLR", "LinearLR", "CosineAnnealingWarmRestarts", "SequentialLR",
           "ConstantLR", "PolynomialLR", "MultiplicativeLR", "ChainedScheduler", "CyclicLR"]
# (the base's private helpers, importable from here as before)
_check_optimizer, _SchedulerState, _per_group = _base._check_optimizer, _base._SchedulerState, _base._per_group


class StepLR(LRScheduler):
    """``lr = base * gamma ** (step // step_size)``."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size = int(step_size)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step):
        return [base * self.gamma ** (step // self.step_size) for base in self.base_lrs]


class MultiStepLR(LRScheduler):
    """``lr = base * gamma ** (number of milestones <= step)`` (a repeated milestone counts twice)."""

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step):
        return [base * self.gamma ** bisect_right(self.milestones, step) for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    """``lr = base * gamma ** step``."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step):
        return [base * self.gamma ** step for base in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (base - eta_min) * (1 + cos(pi * step / T_max)) / 2`` (periodic past T_max, as PyTorch)."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be > 0, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step):
        c = (1 + math.cos(math.pi * step / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * c for base in self.base_lrs]


class LinearWarmup(LRScheduler):
    """Linear warmup from ``start_factor * base`` to ``base`` over ``warmup_steps``, then ``after``.

    ``lr = base * (start_factor + (1 - start_factor) * step / warmup_steps)`` for
    ``step < warmup_steps`` (PyTorch's ``LinearLR(start_factor, total_iters=
    warmup_steps)``). From ``warmup_steps`` on, ``after`` (a scheduler built on
    the same optimizer, before this one) runs from its own step 0; with no
    ``after`` the rate is set to ``base`` once and then left alone.
    """

    def __init__(self, optimizer, warmup_steps: int, start_factor: float = 1.0 / 3, after: LRScheduler | None = None,
                 last_epoch: int = -1):
        if int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise ValueError(f"LinearWarmup: warmup_steps must be a non-negative integer, got {warmup_steps!r}")
        if not 0.0 <= start_factor <= 1.0:
            raise ValueError(f"LinearWarmup: start_factor must be in [0, 1], got {start_factor!r}")
        if after is not None:
            if not isinstance(after, LRScheduler):
                raise TypeError(f"LinearWarmup: after must be a closed-form LRScheduler (StepLR, CosineAnnealingLR, "
                                f"...), got {type(after).__name__}; step a ReduceLROnPlateau separately instead")
            if after.optimizer is not optimizer:
                raise ValueError("LinearWarmup: after must be built on the same optimizer")
        self.warmup_steps = int(warmup_steps)
        self.start_factor = start_factor
        self.after = after
        super().__init__(optimizer, last_epoch)

    def _warmup_factor(self, step):
        return self.start_factor + (1.0 - self.start_factor) * step / self.warmup_steps

    def lr_at(self, step):
        if step < self.warmup_steps:
            f = self._warmup_factor(step)
            return [base * f for base in self.base_lrs]
        if self.after is None:
            return list(self.base_lrs)
        return self.after.lr_at(step - self.warmup_steps)

    def _chainable_at(self, step):
        return step < self.warmup_steps or self.after is None or self.after._chainable_at(step - self.warmup_steps)

    def lr_from(self, step, base_lrs):
        if step >= self.warmup_steps and self.after is not None:
            return self.after.lr_from(step - self.warmup_steps, base_lrs)
        return super().lr_from(step, base_lrs)

    def step(self):
        self.last_epoch += 1
        t = self.last_epoch
        if t < self.warmup_steps:
            self._apply(self.lr_at(t))
        elif self.after is not None:
            self.after.last_epoch = t - self.warmup_steps - 1
            self.after.step()  # lets the follower apply its side effects too (OneCycleLR's momentum)
            self._last_lr = self.after.get_last_lr()
        elif t == self.warmup_steps:
            self._apply(list(self.base_lrs))
        else:
            self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        sd = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in ("optimizer", "after")}
        sd["after"] = self.after.state_dict() if self.after is not None else None
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        after = state_dict.pop("after", None)
        self.__dict__.update(copy.deepcopy(state_dict))
        if after is not None and self.after is not None:
            self.after.load_state_dict(after)
        self._restore_rates()  # (this one's, over the follower's)

