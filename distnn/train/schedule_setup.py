"""The learning-rate schedules of a job: ``[schedule]`` (and the linear scaling rule) as LR callbacks.

Apart from :mod:`.job_setup` (which builds the rest of a job and calls :func:`build_schedule` once the
trainer knows its steps per epoch) because it reads the config's schedule table alone and is used on
its own (a trainer of the caller's, the schedule tests); :mod:`.job_setup` and :mod:`distnn.train.job`
re-export it.
"""
from __future__ import annotations

from .callbacks import LRSchedulerCallback


def build_schedule(cfg, optimizer, steps_per_epoch: int) -> list:
    """The LR callbacks of ``[schedule]`` (and the linear scaling rule), built on ``optimizer``.

    Closed-form schedules run per epoch, or per optimizer step with
    ``schedule.interval = "step"``. A warmup (``warmup_steps`` or
    ``warmup_epochs``) always counts optimizer steps; the schedule that follows
    it is then also stepped per optimizer step, its epoch counts
    (``step_size``, ``milestones``, ``T_max``) converted to steps.
    ``plateau`` is driven by the agreed validation metric once per epoch.
    """
    from distnn.optim import lr_scheduler as L
    from distnn.optim import scale_lr_

    s, epochs = cfg.schedule, int(cfg.train.epochs)
    if s.linear_scaling:  # lr * global batch / reference batch (Goyal et al.), before any scheduler exists
        scale_lr_(optimizer, int(cfg.data.batch_size), int(s.reference_batch))
    warm = int(s.warmup_steps or 0) or int(s.warmup_epochs or 0) * steps_per_epoch
    per_step = s.interval == "step" or warm > 0 or s.name in ("onecycle", "cyclic")
    unit = steps_per_epoch if per_step and s.interval == "epoch" else 1   # epoch counts -> steps
    run_steps = epochs * steps_per_epoch
    if cfg.train.get("max_steps"):  # the run ends there: so do the schedules that span "the whole run"
        run_steps = min(run_steps, int(cfg.train.max_steps))
    total = run_steps if per_step else -(-run_steps // steps_per_epoch)
    main, plateau = None, None
    if s.name == "step":
        if not s.get("step_size"):
            raise ValueError("schedule.step_size is required with schedule.name = 'step'")
        main = L.StepLR(optimizer, step_size=int(s.get("step_size")) * unit, gamma=s.gamma)
    elif s.name == "multistep":
        main = L.MultiStepLR(optimizer, milestones=[int(m) * unit for m in s.milestones], gamma=s.gamma)
    elif s.name == "exponential":
        main = L.ExponentialLR(optimizer, gamma=float(s.gamma) ** (1.0 / unit))
    elif s.name == "cosine":
        t_max = int(s.get("T_max")) * unit if s.get("T_max") else max(1, total - warm)
        main = L.CosineAnnealingLR(optimizer, T_max=t_max, eta_min=s.eta_min)
        if not s.get("T_max"):  # sized by the run: a resumed run of another length follows its new length
            main.keep_on_load = ("T_max",)
    elif s.name == "onecycle":
        if warm:
            raise ValueError("schedule.name = 'onecycle' warms up by itself; leave schedule.warmup_* at 0")
        main = L.OneCycleLR(optimizer, max_lr=s.get("max_lr") or optimizer.param_groups[0]["lr"],
                            total_steps=run_steps)
        main.keep_on_load = ("total_steps", "_phases")  # (as cosine's T_max)
    elif s.name == "polynomial":
        main = L.PolynomialLR(optimizer, total_iters=max(1, total - warm), power=s.power)
        main.keep_on_load = ("total_iters",)  # (as cosine's T_max)
    elif s.name == "cyclic":
        if s.get("max_lr") is None or s.get("step_size_up") is None:
            raise ValueError("schedule.max_lr and schedule.step_size_up are required with schedule.name = 'cyclic'")
        down = s.get("step_size_down")
        has_momentum = "momentum" in optimizer.defaults or "betas" in optimizer.defaults
        main = L.CyclicLR(optimizer, base_lr=optimizer.param_groups[0]["lr"], max_lr=s.get("max_lr"),
                          step_size_up=int(s.get("step_size_up")) * unit,
                          step_size_down=None if down is None else int(down) * unit, mode=s.cycle_mode,
                          gamma=s.gamma, cycle_momentum=has_momentum)
    elif s.name == "constant_factor":
        main = L.ConstantLR(optimizer, factor=s.factor, total_iters=int(s.total_iters) * unit)
    elif s.name == "plateau":
        from .callbacks.base import monitor_mode

        plateau = L.ReduceLROnPlateau(optimizer, mode=monitor_mode(s.monitor, s.mode), factor=s.factor,
                                      patience=s.patience, threshold=s.threshold, cooldown=s.cooldown,
                                      min_lr=s.min_lr)
    out = []
    if warm:
        out.append(LRSchedulerCallback(L.LinearWarmup(optimizer, warm, start_factor=s.warmup_start_factor,
                                                      after=main), interval="step", name="lr_warmup"))
    elif main is not None:
        out.append(LRSchedulerCallback(main, interval="step" if per_step else "epoch", name="lr_schedule"))
    if plateau is not None:
        out.append(LRSchedulerCallback(plateau, monitor=s.monitor, name="lr_plateau"))
    return out
