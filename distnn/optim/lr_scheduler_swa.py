"""SWALR (``torch.optim.swa_utils.SWALR``): anneal each group's rate to a fixed ``swa_lr`` over ``anneal_epochs``
steps, then hold it (re-exported by :mod:`distnn.optim.swa_utils`).

Unlike distnn's other schedules this one is not a closed form of the base rates: as PyTorch's, it anneals from
whatever rate it finds in the optimizer when it starts stepping (typically the one another schedule left
there at ``swa_start``). At step ``t`` (counted from its construction, which is step 0), with
``alpha(t) = anneal(clamp(t / max(1, anneal_epochs), 0, 1))``::

    start = (lr - alpha(t - 1) * swa_lr) / (1 - alpha(t - 1))     (the rate it annealed from; swa_lr if alpha = 1)
    lr    = swa_lr * alpha(t) + start * (1 - alpha(t))

where ``anneal`` is ``(1 - cos(pi * x)) / 2`` ('cos') or ``x`` ('linear'). ``anneal_epochs=0`` jumps to
``swa_lr`` at the first step. Being step-by-step, it cannot be composed by ``ChainedScheduler``,
``SequentialLR`` or ``LinearWarmup(after=...)``: step it on its own, as PyTorch's usage does.
"""
from __future__ import annotations

import math

from .lr_scheduler import LRScheduler, _check_optimizer, _per_group

__all__ = ["SWALR"]


def _linear_anneal(t):
    return t


def _cosine_anneal(t):
    return (1 - math.cos(math.pi * t)) / 2


class SWALR(LRScheduler):
    """``SWALR(optimizer, swa_lr, anneal_epochs=10, anneal_strategy='cos', last_epoch=-1)``, PyTorch's arguments,
    defaults and rate sequence. ``swa_lr`` is one rate or one per parameter group (stored as each group's
    ``swa_lr``, as PyTorch does). ``state_dict`` holds plain values only (the strategy by name)."""

    chainable = False

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy: str = "cos", last_epoch: int = -1):
        _check_optimizer(optimizer)
        groups = optimizer.param_groups
        if isinstance(swa_lr, (list, tuple)) and len(swa_lr) != len(groups):
            raise ValueError(f"swa_lr must have the same length as optimizer.param_groups. swa_lr has "
                             f"{len(swa_lr)} values, param_groups has {len(groups)}.")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy}")
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got {anneal_epochs}")
        for group, lr in zip(groups, _per_group("swa_lr", groups, swa_lr)):
            group["swa_lr"] = lr
        self._anneal_strategy = anneal_strategy
        self.anneal_epochs = anneal_epochs
        self._step_count = 0  # (PyTorch's counter: its rates follow it, not last_epoch)
        super().__init__(optimizer, last_epoch)

    def anneal_func(self, t: float) -> float:
        """The annealed fraction of the way to ``swa_lr`` at fraction ``t`` of the annealing."""
        return _cosine_anneal(t) if self._anneal_strategy == "cos" else _linear_anneal(t)

    @staticmethod
    def _get_initial_lr(lr, swa_lr, alpha):
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def _next_lrs(self) -> list:
        """The rates of step ``_step_count - 1`` from the rates now in the groups (PyTorch's ``get_lr``)."""
        self._check_groups(len(self.base_lrs))
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        groups = self.optimizer.param_groups
        prev_lrs = [self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha) for group in groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [group["swa_lr"] * alpha + lr * (1 - alpha) for group, lr in zip(groups, prev_lrs)]

    def get_lr(self) -> list:
        """The rates of the current step (those :meth:`step` set last)."""
        return self.get_last_lr()

    def step(self) -> None:
        """Advance one step and write the annealed rates into the optimizer's groups."""
        self._step_count += 1
        self.last_epoch += 1
        self._apply(self._next_lrs())

    def lr_at(self, step):
        raise TypeError("SWALR anneals step by step from the rate it finds in the optimizer (as PyTorch's): it has "
                        "no closed form for ChainedScheduler, SequentialLR or LinearWarmup(after=...) to compose; "
                        "step it on its own")
