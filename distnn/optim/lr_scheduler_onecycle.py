"""``OneCycleLR``: the 1cycle policy (Smith & Topin), the rate and the momentum in two or three annealed phases.

Split out of :mod:`distnn.optim.lr_scheduler`, which still exports it.
"""
from __future__ import annotations

import math

from .lr_scheduler_base import LRScheduler, _check_optimizer, _per_group

__all__ = ["OneCycleLR"]


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
