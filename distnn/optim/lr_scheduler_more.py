"""More of PyTorch's LR schedulers, in closed form: LambdaLR, LinearLR, CosineAnnealingWarmRestarts,
SequentialLR (re-exported by :mod:`distnn.optim.lr_scheduler`)."""
from __future__ import annotations

import copy
import math
from bisect import bisect_right

from .lr_scheduler import LRScheduler


class LambdaLR(LRScheduler):
    """``lr = base * lr_lambda(step)`` (one function, or one per parameter group).

    As in PyTorch, ``state_dict`` leaves plain functions out (they cannot be saved): the scheduler
    rebuilt with the same functions continues from the loaded step.
    """

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        n = len(optimizer.param_groups)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(lambdas) != n:
            raise ValueError(f"LambdaLR: {len(lambdas)} lr_lambda functions for {n} parameter groups")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step):
        return [base * fn(step) for base, fn in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self):
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}


class LinearLR(LRScheduler):
    """The factor goes linearly from ``start_factor`` to ``end_factor`` over ``total_iters`` steps, then stays."""

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5,
                 last_epoch: int = -1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1], got "
                             f"{start_factor!r} and {end_factor!r}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, int(total_iters)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step):
        t = min(step, self.total_iters) / self.total_iters if self.total_iters else 1.0
        factor = self.start_factor + (self.end_factor - self.start_factor) * t
        return [base * factor for base in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine from ``base`` to ``eta_min`` over ``T_0`` steps, restarting; each period ``T_mult`` times longer."""

    def __init__(self, optimizer, T_0: int, T_mult: int = 1, eta_min: float = 0.0, last_epoch: int = -1):
        if int(T_0) != T_0 or T_0 <= 0:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_0 must be a positive integer, got {T_0!r}")
        if int(T_mult) != T_mult or T_mult < 1:
            raise ValueError(f"CosineAnnealingWarmRestarts: T_mult must be an integer >= 1, got {T_mult!r}")
        self.T_0, self.T_mult, self.eta_min = int(T_0), int(T_mult), eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step):
        if self.T_mult == 1:
            t_cur, t_i = step % self.T_0, self.T_0
        else:  # periods T_0, T_0 m, T_0 m^2, ...: the one holding this step, in integers (a closed
            # form through math.log lands just below a whole number at some restarts: 243 = 3^5 gives 4.999...)
            t_cur, t_i = int(step), self.T_0
            while t_cur >= t_i:
                t_cur -= t_i
                t_i *= self.T_mult
        c = (1 + math.cos(math.pi * t_cur / t_i)) / 2
        return [self.eta_min + (base - self.eta_min) * c for base in self.base_lrs]


class SequentialLR(LRScheduler):
    """``schedulers[i]`` from ``milestones[i - 1]`` on, each counting its steps from where it starts."""

    def __init__(self, optimizer, schedulers, milestones, last_epoch: int = -1):
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: {len(schedulers)} schedulers need {len(schedulers) - 1} milestones, "
                             f"got {len(milestones)}")
        for s in schedulers:
            if s.optimizer is not optimizer:
                raise ValueError("SequentialLR: every scheduler must be built on the same optimizer")
        self.schedulers, self.milestones = list(schedulers), [int(m) for m in milestones]
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step):
        i = bisect_right(self.milestones, step)
        start = self.milestones[i - 1] if i else 0
        return self.schedulers[i].lr_at(step - start)

    def state_dict(self):
        sd = {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in ("optimizer", "schedulers")}
        sd["schedulers"] = [s.state_dict() for s in self.schedulers]
        return sd

    def load_state_dict(self, state_dict):
        state_dict = dict(state_dict)
        for s, sd in zip(self.schedulers, state_dict.pop("schedulers", [])):
            s.load_state_dict(sd)
        self.__dict__.update(copy.deepcopy(state_dict))
        self._restore_rates()  # (this one's, over its schedulers')
