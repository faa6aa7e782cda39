"""CyclicLR (``torch.optim.lr_scheduler.CyclicLR``): the rate cycles between ``base_lr`` and ``max_lr``
(Smith, 2017), the momentum inversely (re-exported by :mod:`distnn.optim.lr_scheduler`).

At step t, with a cycle of ``step_size_up + step_size_down`` steps::

    cycle = floor(1 + t / total);   x = 1 + t / total - cycle              (position in the cycle, in [0, 1))
    h     = x / ratio  if x <= ratio  else  (x - 1) / (ratio - 1)          (ratio = step_size_up / total)
    lr    = base_lr + (max_lr - base_lr) * h * scale
    mom   = max_momentum - (max_momentum - base_momentum) * h * scale      (cycle_momentum)

``scale`` is 1 ('triangular'), ``1 / 2 ** (cycle - 1)`` ('triangular2'), ``gamma ** t`` ('exp_range'), or
``scale_fn(cycle)`` / ``scale_fn(t)`` (``scale_mode`` 'cycle' / 'iterations').
"""
from __future__ import annotations

import copy
import math

from .lr_scheduler_base import LRScheduler, _check_optimizer, _per_group
from .lr_scheduler_onecycle import OneCycleLR

__all__ = ["CyclicLR"]


class CyclicLR(LRScheduler):
    """``CyclicLR(optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None, mode='triangular',
    gamma=1.0, scale_fn=None, scale_mode='cycle', cycle_momentum=True, base_momentum=0.8, max_momentum=0.9,
    last_epoch=-1)``, PyTorch's arguments and defaults.

    With ``cycle_momentum`` the optimizer's ``momentum`` (SGD, RMSprop, LARS) or ``betas[0]`` (the Adam
    family) cycles too; an optimizer with neither is refused, as in PyTorch. A ``scale_fn`` is not part of
    ``state_dict`` (as LambdaLR's functions): build the scheduler with it again before loading.
    """

    def __init__(self, optimizer, base_lr, max_lr, step_size_up: int = 2000, step_size_down: int | None = None,
                 mode: str = "triangular", gamma: float = 1.0, scale_fn=None, scale_mode: str = "cycle",
                 cycle_momentum: bool = True, base_momentum=0.8, max_momentum=0.9, last_epoch: int = -1):
        _check_optimizer(optimizer)
        groups = optimizer.param_groups
        base_lrs = _per_group("base_lr", groups, base_lr)
        self.max_lrs = _per_group("max_lr", groups, max_lr)
        up = _size("step_size_up", step_size_up, positive=True)
        down = up if step_size_down is None else _size("step_size_down", step_size_down, positive=False)
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError(f"CyclicLR: mode is invalid and scale_fn is None (mode={mode!r}; expected "
                             f"'triangular', 'triangular2' or 'exp_range')")
        if scale_fn is not None and scale_mode not in ("cycle", "iterations"):
            raise ValueError(f"CyclicLR: scale_mode must be 'cycle' or 'iterations', got {scale_mode!r}")
        self.mode, self.gamma = mode, gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode if scale_fn is not None else ("iterations" if mode == "exp_range" else "cycle")
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"CyclicLR: optimizer must support momentum or beta1 with `cycle_momentum` option "
                                 f"enabled ({type(optimizer).__name__} has neither; pass cycle_momentum=False)")
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = _per_group("base_momentum", groups, base_momentum)
            self.max_momentums = _per_group("max_momentum", groups, max_momentum)
        if last_epoch == -1:
            for group, lr in zip(groups, base_lrs):
                group["lr"] = lr
            if cycle_momentum:
                for group, mx, bs in zip(groups, self.max_momentums, self.base_momentums):
                    self._set_momentum(group, mx)
                    group["max_momentum"], group["base_momentum"] = mx, bs
        super().__init__(optimizer, last_epoch, base_lrs=base_lrs)

    chainable = False
    _set_momentum = OneCycleLR._set_momentum

    def scale_fn(self, x) -> float:
        """The amplitude's scale at cycle (or step) ``x``."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def _at(self, step):
        """(rates, momenta or None) at ``step``, one per group, in PyTorch's order of operations."""
        self._check_groups(len(self.base_lrs))
        cycle = math.floor(1 + step / self.total_size)
        x = 1.0 + step / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else step)
        lrs = [base + (mx - base) * scale_factor * scale for base, mx in zip(self.base_lrs, self.max_lrs)]
        moms = None
        if self.cycle_momentum:
            moms = [mx - (mx - bs) * scale_factor * scale for bs, mx in zip(self.base_momentums, self.max_momentums)]
        return lrs, moms

    def lr_at(self, step):
        return self._at(step)[0]

    def step(self):
        self.last_epoch += 1
        lrs, moms = self._at(self.last_epoch)
        if moms is not None:
            for group, m in zip(self.optimizer.param_groups, moms):
                self._set_momentum(group, m)
        self._apply(lrs)

    def _restore_rates(self):
        super()._restore_rates()
        if self.cycle_momentum and self.last_epoch >= 0:  # (the momenta of that step too)
            for group, m in zip(self.optimizer.param_groups, self._at(self.last_epoch)[1]):
                self._set_momentum(group, m)

    def state_dict(self):
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in ("optimizer", "_scale_fn_custom")}


def _size(name, value, positive):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (value > 0 if positive else value >= 0)
    if not ok:
        raise ValueError(f"CyclicLR: {name} must be a {'positive' if positive else 'non-negative'} number of steps, "
                         f"got {value!r}")
    return float(value)
