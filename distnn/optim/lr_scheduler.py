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
"""
from __future__ import annotations

import copy
import math
from bisect import bisect_right

from .optimizer import Optimizer, _copied

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearWarmup",
           "OneCycleLR", "ReduceLROnPlateau", "LambdaLR", "LinearLR", "CosineAnnealingWarmRestarts", "SequentialLR",
           "ConstantLR", "PolynomialLR", "MultiplicativeLR", "ChainedScheduler", "CyclicLR"]


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


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin), PyTorch's ``OneCycleLR`` with the same arguments and defaults.

    The rate rises from ``max_lr / div_factor`` to ``max_lr`` over
    ``pct_start`` of ``total_steps``, then anneals to ``initial / final_div_factor``
    (three phases with ``three_phase``); with ``cycle_momentum`` the momentum
    (or Adam's beta1) moves inversely between ``max_momentum`` and ``base_momentum``.
    """

    chainable = False

    def __init__(self, optimizer, max_lr, total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum=0.85, max_momentum=0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False, last_epoch: int = -1):
        _check_optimizer(optimizer)
        if total_steps is not None:
            if int(total_steps) != total_steps or total_steps <= 0:
                raise ValueError(f"OneCycleLR: expected a positive integer total_steps, got {total_steps!r}")
            self.total_steps = int(total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            if int(epochs) != epochs or epochs <= 0:
                raise ValueError(f"OneCycleLR: expected a positive integer epochs, got {epochs!r}")
            if int(steps_per_epoch) != steps_per_epoch or steps_per_epoch <= 0:
                raise ValueError(f"OneCycleLR: expected a positive integer steps_per_epoch, got {steps_per_epoch!r}")
            self.total_steps = int(epochs) * int(steps_per_epoch)
        else:
            raise ValueError("OneCycleLR: define either total_steps or (epochs and steps_per_epoch)")
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be a float in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        n = self.total_steps
        if three_phase:
            self._phases = [
                (float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (float(2 * pct_start * n) - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                (n - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"),
            ]
        else:
            self._phases = [
                (float(pct_start * n) - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                (n - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"),
            ]
        groups = optimizer.param_groups
        max_lrs = _per_group("max_lr", groups, max_lr)
        if last_epoch == -1:
            for group, m in zip(groups, max_lrs):
                group["initial_lr"] = m / div_factor
                group["max_lr"] = m
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("OneCycleLR: optimizer must support momentum or beta1 with cycle_momentum=True")
            self.use_beta1 = "betas" in optimizer.defaults
            if last_epoch == -1:
                for group, mx, bs in zip(groups, _per_group("max_momentum", groups, max_momentum),
                                         _per_group("base_momentum", groups, base_momentum)):
                    self._set_momentum(group, mx)
                    group["max_momentum"] = mx
                    group["base_momentum"] = bs
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _set_momentum(self, group, value):
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _at(self, step):
        """(rates, momenta) at ``step``, one per group."""
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times; the specified number of total steps is "
                             f"{self.total_steps}")
        self._check_groups(len(self.base_lrs))  # before reading a new group's missing initial_lr / max_lr
        lrs, moms = [], []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, (end_step, lr0, lr1, m0, m1) in enumerate(self._phases):
                if step <= end_step or i == len(self._phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(group[lr0], group[lr1], pct))
                    moms.append(self._anneal(group[m0], group[m1], pct) if self.cycle_momentum else None)
                    break
                start_step = end_step
        return lrs, moms

    def lr_at(self, step):
        return self._at(step)[0]

    def _restore_rates(self):
        super()._restore_rates()
        if self.cycle_momentum and 0 <= self.last_epoch <= self.total_steps:  # (the momenta of that step too)
            for group, m in zip(self.optimizer.param_groups, self._at(self.last_epoch)[1]):
                self._set_momentum(group, m)

    def step(self):
        self.last_epoch += 1
        lrs, moms = self._at(self.last_epoch)
        if self.cycle_momentum:
            for group, m in zip(self.optimizer.param_groups, moms):
                self._set_momentum(group, m)
        self._apply(lrs)


def _per_group(name, groups, value):
    if isinstance(value, (list, tuple)):
        if len(value) != len(groups):
            raise ValueError(f"expected {len(groups)} values for {name}, got {len(value)}")
        return list(value)
    return [value] * len(groups)


class ReduceLROnPlateau(_SchedulerState):
    """Multiply the rates by ``factor`` when a metric has stopped improving (``torch.optim.lr_scheduler``'s).

    ``step(metric)`` once per evaluation. An improvement means
    ``metric < best * (1 - threshold)`` (mode 'min', threshold_mode 'rel'),
    ``< best - threshold`` ('abs'), or the mirror images for mode 'max'.
    After more than ``patience`` evaluations without one, every group's rate
    becomes ``max(lr * factor, min_lr)`` (ignored when the change is below
    ``eps``), then ``cooldown`` evaluations pass before bad ones count again.
    In data-parallel runs pass the same (globally reduced) metric on every rank.
    """

    def __init__(self, optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr=0.0,
                 eps: float = 1e-8):
        _check_optimizer(optimizer)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor should be < 1.0, got {factor!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.optimizer = optimizer
        self.factor = factor
        if isinstance(min_lr, (list, tuple)):
            self.default_min_lr = None
            self.min_lrs = _per_group("min_lr", optimizer.param_groups, min_lr)
        else:
            self.default_min_lr = min_lr
            self.min_lrs = [min_lr] * len(optimizer.param_groups)
        self.patience = patience
        self.cooldown = cooldown
        self.eps = eps
        self.mode = mode
        self.threshold = threshold
        self.threshold_mode = threshold_mode
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self.best = math.inf if mode == "min" else -math.inf
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def is_better(self, a: float, best: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def step(self, metrics) -> None:
        current = float(metrics)
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.in_cooldown:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"ReduceLROnPlateau: the optimizer has {len(groups)} parameter groups but "
                                   f"min_lr lists {len(self.min_lrs)}")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old = float(group["lr"])
            new = max(old * self.factor, min_lr)
            if old - new > self.eps:
                group["lr"] = new


# PyTorch's other closed-form schedulers (files of their own; they build on LRScheduler above)
from .lr_scheduler_more import (ChainedScheduler, ConstantLR, CosineAnnealingWarmRestarts, LambdaLR,  # noqa: E402
                                LinearLR, MultiplicativeLR, PolynomialLR, SequentialLR)
from .lr_scheduler_cyclic import CyclicLR  # noqa: E402
