"""The linear scaling rule for data-parallel training (Goyal et al., 2017).

When the global batch grows k-fold (more ranks, or more accumulation steps),
multiply the learning rate by k: ``lr = base_lr * global_batch / reference_batch``.
Early in training the scaled rate is too large, so it is reached by a gradual
linear warmup, by default from the unscaled ``base_lr`` (start factor 1/k).
"""
from __future__ import annotations

from .lr_scheduler import LinearWarmup

__all__ = ["global_batch_size", "scaled_lr", "scale_lr_", "linear_scaling_warmup"]


def global_batch_size(batch_per_rank: int, world_size: int, accumulation_steps: int = 1) -> int:
    """Samples per optimizer step across all ranks."""
    for name, v in (("batch_per_rank", batch_per_rank), ("world_size", world_size),
                    ("accumulation_steps", accumulation_steps)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(batch_per_rank) * int(world_size) * int(accumulation_steps)


def scaled_lr(base_lr: float, global_batch: int, reference_batch: int = 256) -> float:
    """``base_lr * global_batch / reference_batch``: the rate tuned at ``reference_batch``, scaled."""
    if global_batch <= 0 or reference_batch <= 0:
        raise ValueError(f"batch sizes must be positive (global_batch={global_batch!r}, "
                         f"reference_batch={reference_batch!r})")
    if base_lr < 0:
        raise ValueError(f"Invalid learning rate base_lr: {base_lr!r} (must be >= 0)")
    return base_lr * global_batch / reference_batch


def scale_lr_(optimizer, global_batch: int, reference_batch: int = 256) -> float:
    """Scale every param group's ``lr`` in place by ``global_batch / reference_batch``; returns the factor.

    Call it before building any scheduler (schedulers remember the rate they
    started from as ``initial_lr``).
    """
    for i, group in enumerate(optimizer.param_groups):
        if "initial_lr" in group:
            raise RuntimeError(f"param_groups[{i}] already has a scheduler (initial_lr is set): scale the "
                               f"learning rate before creating schedulers")
    factor = scaled_lr(1.0, global_batch, reference_batch)
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * factor
    return factor


def linear_scaling_warmup(optimizer, global_batch: int, reference_batch: int = 256, warmup_steps: int = 0,
                          start_factor: float | None = None, after=None) -> LinearWarmup:
    """Scale the optimizer's rates by the linear scaling rule and return the warmup scheduler.

    ``start_factor`` defaults to ``reference_batch / global_batch`` (capped at
    1), so training starts at the unscaled rate. ``after`` is an optional
    callable ``after(optimizer) -> scheduler``, called once the rates are
    scaled, for the schedule that follows the warmup (e.g.
    ``lambda opt: CosineAnnealingLR(opt, T_max=total - warmup)``).
    """
    factor = scale_lr_(optimizer, global_batch, reference_batch)
    if start_factor is None:
        start_factor = min(1.0, 1.0 / factor)
    follower = after(optimizer) if after is not None else None
    return LinearWarmup(optimizer, warmup_steps, start_factor=start_factor, after=follower)
