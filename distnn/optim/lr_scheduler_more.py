"""More of PyTorch's LR schedulers, in closed form: LambdaLR, LinearLR, CosineAnnealingWarmRestarts,
SequentialLR, ConstantLR, PolynomialLR, MultiplicativeLR, ChainedScheduler (re-exported by
:mod:`distnn.optim.lr_scheduler`)."""
from __future__ import annotations

import copy
import math
import numbers
from bisect import bisect_right

from .lr_scheduler_base import LRScheduler
from .lr_scheduler_plateau import ReduceLROnPlateau


class LambdaLR(LRScheduler):
    """``lr = base * lr_lambda(step)`` (one function, or one per parameter group).

    As in PyTorch, ``state_dict`` leaves plain functions out (they cannot be saved): the scheduler
    rebuilt with the same functions continues from the loaded step.
    """

    chainable = False  # (PyTorch's sets base * lr_lambda(step), whatever came before)

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

    chainable = False  # (PyTorch's too sets its rate from its own base rates)

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


def _nested_state_dict(scheduler, key):
    """The state of a scheduler made of others (SequentialLR, ChainedScheduler): its attributes but the
    optimizer, with the inner schedulers (``key``, PyTorch's name for them) as their own state dicts."""
    sd = {k: copy.deepcopy(v) for k, v in scheduler.__dict__.items() if k not in ("optimizer", key)}
    sd[key] = [s.state_dict() for s in getattr(scheduler, key)]
    return sd


def _load_nested_state_dict(scheduler, state_dict, key):
    """Inverse of _nested_state_dict; the optimizer's rates are then the outer scheduler's, over its
    inner schedulers' own."""
    state_dict = dict(state_dict)
    for s, sd in zip(getattr(scheduler, key), state_dict.pop(key, [])):
        s.load_state_dict(sd)
    scheduler.__dict__.update(copy.deepcopy(state_dict))
    scheduler._restore_rates()


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

    def _active(self, step):
        i = bisect_right(self.milestones, step)
        return self.schedulers[i], step - (self.milestones[i - 1] if i else 0)

    def lr_at(self, step):
        scheduler, t = self._active(step)
        return scheduler.lr_at(t)

    def _chainable_at(self, step):
        scheduler, t = self._active(step)
        return scheduler._chainable_at(t)

    def lr_from(self, step, base_lrs):
        scheduler, t = self._active(step)
        return scheduler.lr_from(t, base_lrs)

    def state_dict(self):
        return _nested_state_dict(self, "schedulers")

    def load_state_dict(self, state_dict):
        _load_nested_state_dict(self, state_dict, "schedulers")


class ConstantLR(LRScheduler):
    """``lr = base * factor`` for the first ``total_iters`` steps, then ``base``.

    With ``total_iters=0`` that is ``base`` throughout (PyTorch's closed form; its step-by-step update
    applies the factor at step 0 and never removes it).
    """

    def __init__(self, optimizer, factor: float = 1.0 / 3, total_iters: int = 5, last_epoch: int = -1):
        if not _is_number(factor) or factor > 1.0 or factor < 0:
            raise ValueError(f"ConstantLR: Constant multiplicative factor expected to be between 0 and 1, "
                             f"got {factor!r}")
        self.factor, self.total_iters = factor, _count("ConstantLR", "total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step):
        factor = self.factor if step < self.total_iters else 1.0
        return [base * factor for base in self.base_lrs]


class PolynomialLR(LRScheduler):
    """``lr = base * (1 - min(step, total_iters) / total_iters) ** power`` (0 from ``total_iters`` on)."""

    def __init__(self, optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1):
        if not _is_number(power):
            raise ValueError(f"PolynomialLR: power must be a number, got {power!r}")
        self.total_iters, self.power = _count("PolynomialLR", "total_iters", total_iters), power
        super().__init__(optimizer, last_epoch)

    def lr_at(self, step):
        if self.total_iters == 0:  # (PyTorch's rate stays put then: it decays only while step <= total_iters)
            return list(self.base_lrs)
        factor = (1.0 - min(self.total_iters, step) / self.total_iters) ** self.power
        return [base * factor for base in self.base_lrs]


class MultiplicativeLR(LRScheduler):
    """``lr = base * lr_lambda(1) * ... * lr_lambda(step)`` (one function, or one per parameter group).

    The product so far is part of the state (steps are not recomputed on resume); as with
    :class:`LambdaLR`, the functions themselves are not, and the rebuilt scheduler needs them again.
    """

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        n = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"MultiplicativeLR: Expected {n} lr_lambdas, but got {len(lr_lambda)}")
            lambdas = list(lr_lambda)
        else:
            lambdas = [lr_lambda] * n
        for fn in lambdas:
            if not callable(fn):
                raise TypeError(f"MultiplicativeLR: lr_lambda should be a function, but got {type(fn).__name__}")
        self.lr_lambdas = lambdas
        self._products = [0, [1.0] * n, None]  # [step, each group's product of factors up to it, the step before's]
        super().__init__(optimizer, last_epoch)

    def _factors(self, step):
        t, products, previous = self._products
        if step == t - 1 and previous is not None:  # (ChainedScheduler asks for the step before too)
            return list(previous)
        if step < t:  # (asked for an earlier step: start over)
            t, products, previous = 0, [1.0] * len(self.lr_lambdas), None
        while t < step:
            t += 1
            previous, products = products, [f * fn(t) for f, fn in zip(products, self.lr_lambdas)]
        self._products = [t, list(products), previous]
        return list(products)

    def lr_at(self, step):
        return [base * f for base, f in zip(self.base_lrs, self._factors(step))]

    def state_dict(self):
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}


class ChainedScheduler(LRScheduler):
    """Several schedulers on one optimizer at once, each stepped at every ``step()``: the rates of one are the
    base rates of the next (``ChainedScheduler([ConstantLR(...), ExponentialLR(...)])`` is
    ``base * factor(t) * gamma ** t``), as PyTorch's chains their multiplicative updates.

    A scheduler that sets its rate outright (LambdaLR, CyclicLR, OneCycleLR, CosineAnnealingWarmRestarts)
    overrides what came before it, and the chainable ones after it scale that rate by their factor of the
    step (``lr(t) / lr(t - 1)``), as in PyTorch. One difference: PyTorch's CosineAnnealingLR with an
    ``eta_min`` other than 0 is not multiplicative; chained after others, it anneals their product here
    (``eta_min + (product - eta_min) * cos-factor``), while PyTorch's result depends on the path.
    """

    def __init__(self, schedulers, optimizer=None):
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("ChainedScheduler expects at least one scheduler to be chained, but got no scheduler.")
        optimizer = optimizer if optimizer is not None else getattr(schedulers[0], "optimizer", None)
        for i, s in enumerate(schedulers):
            if isinstance(s, ReduceLROnPlateau):
                raise ValueError(f"ChainedScheduler does not support `ReduceLROnPlateau` scheduler as it requires "
                                 f"additional kwargs to be specified when calling `step`, but got one at index {i} "
                                 f"in the given schedulers sequence.")
            if not isinstance(s, LRScheduler):
                raise TypeError(f"ChainedScheduler: the scheduler at index {i} is a {type(s).__name__}, not a "
                                f"distnn LRScheduler")
            if s.optimizer is not optimizer:
                raise ValueError(f"ChainedScheduler expects all schedulers to belong to the same optimizer, but "
                                 f"got scheduler {type(s).__name__} at index {i} has another optimizer")
        self.optimizer = optimizer
        self._schedulers = schedulers
        self.base_lrs = list(schedulers[0].base_lrs)
        self.last_epoch = schedulers[0].last_epoch
        self._apply(self._chain())  # (building each one left its own rate in the optimizer)

    def _chain(self, step=None, base_lrs=None):
        """The chained rates: each chainable scheduler scales the rates before it; one that is not sets its own,
        and a chainable one after it then scales those by its factor of this step alone (PyTorch's step
        multiplies the current rate by ``lr(t) / lr(t - 1)``, and the current rate was just set)."""
        lrs, after_outright = base_lrs, False
        for s in self._schedulers:
            t = s.last_epoch if step is None else step
            if not s._chainable_at(t):
                lrs, after_outright = s.lr_at(t), True
            elif not after_outright:
                lrs = s.lr_at(t) if lrs is None else s.lr_from(t, lrs)
            else:
                now, before = s.lr_at(t), (s.lr_at(t - 1) if t > 0 else s.base_lrs)
                lrs = [lr * (a / b if b != 0 else 1.0) for lr, a, b in zip(lrs, now, before)]
        return lrs

    def _chainable_at(self, step):
        return all(s._chainable_at(step) for s in self._schedulers)

    def lr_at(self, step):
        return self._chain(step)

    def lr_from(self, step, base_lrs):
        return self._chain(step, base_lrs)

    def step(self):
        """Step every scheduler (their side effects too, such as CyclicLR's momentum), then set the chained rates."""
        for s in self._schedulers:
            s.step()
        self.last_epoch += 1
        self._apply(self._chain())

    def state_dict(self):
        return _nested_state_dict(self, "_schedulers")

    def load_state_dict(self, state_dict):
        _load_nested_state_dict(self, state_dict, "_schedulers")


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _count(owner, name, value) -> int:
    if not _is_number(value) or int(value) != value or value < 0:
        raise ValueError(f"{owner}: {name} must be a non-negative integer, got {value!r}")
    return int(value)
