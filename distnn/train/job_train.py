"""Phase 3 of a job (see :mod:`distnn.train.job`): train a built :class:`~distnn.train.job_setup.Job` into its
run directory (the callbacks, checkpoints and resume attached), evaluate it on the test split and write its
results. An ensemble trains each member with it too (:mod:`distnn.train.ensemble_run`, through
``distnn.train.job._train``)."""
from __future__ import annotations

import os

import numpy as np

from . import run_dir as rd
from .callbacks import EarlyStopping, MetricsLogger, PlotCurves
from .job_setup import _as_dict, tag_config_errors
from .logging_utils import get_logger

log = get_logger("job")


def _train(job, path):
    from distnn.train.config import dump_run_config

    comm, trainer = job.comm, job.trainer
    if comm.rank == 0:
        log.info("run directory %s", path)
        log.info("%s; %d rank%s, global batch %d (%d per rank), %d steps per epoch, precision %s",
                 job.splits.summary(), comm.size, "s" if comm.size > 1 else "", trainer.batch_size,
                 trainer.local_batch, trainer.steps_per_epoch, trainer.amp.precision)
    trainer.callbacks.append(MetricsLogger(path))
    if job.cfg.run.plots:
        ranks = f"{comm.size} rank" + ("s" if comm.size > 1 else "")
        trainer.callbacks.append(PlotCurves(path, title=f"{job.config_name} ({ranks})"))
    if job.cfg.run.get("profile"):  # (runs before the checkpoints: a step's checkpoint is part of the step profiled)
        from .callbacks.profiling import ProfileSteps

        wait, warmup, active = job.cfg.run.profile_steps
        trainer.callbacks.append(ProfileSteps(job.cfg.run.profile, int(getattr(comm, "world_rank", comm.rank)),
                                              wait, warmup, active, summary=comm.rank == 0, log=log))
    # Checkpoints (the callback that runs last), SIGTERM/SIGUSR1 preemption, the non-finite policy; resume (collective).
    from .callbacks.checkpoint_setup import attach, extra_files_for

    # (a resume's error names the checkpoint, not the key: it is about checkpoint.resume, which --set may give)
    with tag_config_errors(job.cfg, ("checkpoint.resume",) if _as_dict(job.cfg.checkpoint).get("resume") else ()):
        attach(trainer, path, job.cfg.checkpoint, nonfinite=job.cfg.train.nonfinite,
               max_nonfinite=job.cfg.train.max_nonfinite,
               extra_files=extra_files_for(job.model_meta(), dump_run_config(job.cfg)))
    if comm.rank == 0:  # after a resume was accepted: a refused one leaves the run's config.toml as it was
        try:
            rd.write_run_files(path, {rd.CONFIG: dump_run_config(job.cfg)})
        except BaseException:
            if trainer.step_guard is not None:  # (no fit follows to stop it watching the preemption flag)
                trainer.step_guard.release()
            raise
    history = trainer.fit()
    from .preemption import fault_point

    fault_point("after-training", int(getattr(comm, "world_rank", comm.rank)))
    wall = trainer.state.elapsed  # training wall time, earlier sessions of a resumed run included
    test = trainer.evaluate(job.splits.test, prefix="test_") if job.splits.test is not None else {}
    es = next((cb for cb in trainer.callbacks if isinstance(cb, EarlyStopping)), None)
    best_epoch = (es.best_epoch if es is not None and es.best_epoch >= 0 else trainer.state.best_epoch)
    summary = {
        "config": job.config_name, "run_dir": os.path.abspath(path),
        "test_accuracy": test.get("test_accuracy"), "test_loss": test.get("test_loss"),
        "test_samples": test.get("test_count"),
        "best_epoch": best_epoch + 1 if best_epoch >= 0 else None,
        "best_" + trainer.monitor: (es.best if es is not None and es.best_epoch >= 0 else trainer.state.best_metric),
        "epochs_run": len(history), "epochs": trainer.epochs, "stopped_early": trainer.state.stopped_early,
        "world_size": comm.size, "global_batch_size": trainer.batch_size, "per_rank_batch_size": trainer.local_batch,
        # where it ran (what run.device = "auto" resolved to) and in what precision: not in config.toml
        "device": _device_of(trainer.model), "dtype": str(job.cfg.run.dtype),
        "accumulation_steps": trainer.accumulation_steps, "global_steps": trainer.state.global_step,
        "skipped_steps": trainer.state.skipped_steps,  # non-finite steps skipped (train.nonfinite = "skip")
        "precision": trainer.amp.precision,  # train.precision; with "16-mixed" the loss scaler's record too
        **({"scaler_skipped_steps": trainer.state.scaler_skipped_steps,
            "loss_scale": trainer.amp.scaler.get_scale()} if trainer.amp.enabled else {}),
        "samples_per_sec": float(np.mean([h["samples_per_sec"] for h in history])) if history else None,
        "wall_time": wall,
        "final_train_loss": history[-1]["train_loss"] if history else None,
        "final_val_accuracy": history[-1].get("val_accuracy") if history else None,
    }
    if comm.rank == 0:
        rd.save_model(path, job.model, job.model_meta(), step=trainer.state.global_step)
        rd.write_json(os.path.join(path, rd.SUMMARY), summary)
        if summary["test_accuracy"] is not None:
            log.info("test accuracy %.4f, test loss %.4f", summary["test_accuracy"], summary["test_loss"])
    if comm.size > 1:
        comm.barrier()  # nobody leaves before rank 0 has written the results
    return summary if comm.rank == 0 else None


def _device_of(model) -> str:
    """``"gpu"`` or ``"cpu"``: where the model's parameters live."""
    from distnn.backend import get_array_module

    p = next(iter(model.parameters()), None)
    return "cpu" if p is None or get_array_module(p.data) is np else "gpu"
