"""From a config to a finished run directory: the glue behind ``distnn train|evaluate|predict``.

``run_training`` runs on every rank in three phases:

1. **Validate** (every rank, no files written): load the config, the data and
   the transforms, build the model, optimizer, schedulers and the Trainer
   (which checks batch sizes against the shards). Each rank records its error,
   if any; one ``allgather`` tells every rank whether ANY rank failed, and all
   raise the same one-line :class:`JobError` together, so a problem that only
   rank 1 hits (an unreadable per-rank file) still ends the whole job at once.
2. **Run directory**: rank 0 creates it and checks it is writable; the outcome
   is broadcast. Nothing exists on disk before this point.
3. **Train**: ``Trainer.fit`` with the callbacks, then the test evaluation
   (collective), then rank 0 writes model, metrics, curves and summary.
"""
from __future__ import annotations

import os
import time

import numpy as np

import distnn

from . import run_dir as rd
from .callbacks import EarlyStopping, LRSchedulerCallback, MetricsLogger, PlotCurves, ProgressBar
from .evaluation import classification_report, confusion_matrix, format_confusion_matrix
from .logging_utils import get_logger, set_rank, setup_logging
from .trainer import Trainer, default_comm, evaluate_arrays

log = get_logger("job")


class JobError(ValueError):
    """A setup error agreed by all ranks; ``report`` is True on the rank that should print it."""

    def __init__(self, message: str, report: bool = True):
        super().__init__(message)
        self.report = report


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    if isinstance(exc, KeyError) and len(msg) > 1 and msg[0] == msg[-1] == "'":
        msg = msg[1:-1]
    return msg or type(exc).__name__


def agree_on_errors(comm, error: str | None) -> None:
    """Collective: raise the same JobError on every rank if any rank had an error."""
    errors = comm.allgather_object(error) if comm.size > 1 else [error]
    failed = [(r, e) for r, e in enumerate(errors) if e is not None]
    if not failed:
        return
    first_rank, msg = failed[0]
    if comm.size > 1 and len(failed) < comm.size:
        msg = f"rank {first_rank}: {msg}"
    raise JobError(msg, report=comm.rank == 0)


# --------------------------------------------------------------------- config
def _as_dict(section) -> dict:
    if section is None:
        return {}
    if isinstance(section, dict):
        return dict(section)
    if hasattr(section, "to_dict"):
        return section.to_dict()
    return dict(vars(section))


# ------------------------------------------------------------------ the setup
class Job:
    """Everything one rank needs to train, built from a config (phase 1: nothing is written)."""

    def __init__(self, config, overrides, comm, quiet=False, cfg=None):
        from distnn.train.config import load_config
        from distnn.train.ensemble import member_splits

        self.comm = comm
        self.cfg = cfg if cfg is not None else load_config(config, overrides)  # cfg: an ensemble member's
        self.config_name = self.cfg.get("name") or os.path.splitext(os.path.basename(str(config)))[0]
        self.quiet = bool(quiet or self.cfg.run.quiet)
        self.splits = member_splits(self.cfg, self._load_data())  # an ensemble member's bootstrap resample
        self.train_tf, self.eval_tf = self._transforms()
        self.model, self.model_spec = self._build_model()
        self.optimizer = self._build_optimizer()
        self.trainer = self._build_trainer()

    def _load_data(self):
        from distnn.data import load_dataset

        data = _as_dict(self.cfg.data)
        # A "{rank}" in data.path names per-rank files (pre-sharded data, or a test of one rank failing).
        if isinstance(data.get("path"), str) and "{rank}" in data["path"]:
            data["path"] = data["path"].replace("{rank}", str(self.comm.rank))
        return load_dataset(data)

    def _transforms(self):
        from distnn.data.transforms import build_transforms

        return build_transforms(self.splits, _as_dict(self.cfg.data.get("augment")))

    def _build_model(self):
        from distnn.backend import gpu_available
        from distnn.models import build_model

        spec = _as_dict(self.cfg.model)
        name = spec.pop("name")
        k = self.splits.num_classes
        if spec.get("num_classes") not in (None, k):
            raise ValueError(f"model.num_classes is {spec['num_classes']} but dataset '{self.splits.name}' has labels "
                             f"0..{k - 1} ({k} classes): labels outside the model's classes")
        spec["num_classes"] = k
        spec["input_shape"] = list(self.splits.input_shape)
        if self.splits.meta.get("vocab_size") is not None and _accepts(name, "vocab_size"):
            spec.setdefault("vocab_size", int(self.splits.meta["vocab_size"]))
        distnn.manual_seed(int(self.cfg.run.seed))  # identical initial weights on every rank
        model = build_model(name, **spec)
        run = self.cfg.run
        if run.dtype == "float64":
            model.to(np.float64)
        device = run.device
        if device == "gpu" and not gpu_available():
            raise ValueError("run.device is 'gpu' but no GPU is usable here (cupy missing or no device); "
                             "use run.device = 'cpu' or 'auto'")
        if device == "gpu" or (device == "auto" and gpu_available()):
            model.to("cuda")
        if self.cfg.distributed.sync_batchnorm and self.comm.size > 1:
            from distnn.distributed import SyncBatchNorm

            model = SyncBatchNorm.convert_sync_batchnorm(model, self.comm)
        return model, {"name": name, "kwargs": spec}

    def _build_optimizer(self):
        from distnn import optim

        o = self.cfg.optimizer
        name = o.name
        params = self.model.parameters()
        wd = float(o.weight_decay)
        if wd and o.no_decay_bias_norm:
            params = optim.param_groups_no_decay(self.model, wd)  # no decay on biases and norm weights
        common = {"lr": float(o.lr), "weight_decay": wd}
        if name == "sgd":
            return optim.SGD(params, momentum=o.momentum, nesterov=o.nesterov, **common)
        if name in ("adam", "adamw"):
            cls = optim.Adam if name == "adam" else optim.AdamW
            return cls(params, betas=tuple(o.betas), eps=o.eps, **common)
        if name == "rmsprop":
            return optim.RMSprop(params, alpha=o.alpha, eps=o.eps, momentum=o.momentum, **common)
        if name == "adagrad":
            return optim.Adagrad(params, eps=o.eps, **common)
        if name == "lars":
            return optim.LARS(params, momentum=o.momentum, nesterov=o.nesterov, **common)
        if name == "lamb":
            return optim.LAMB(params, betas=tuple(o.betas), eps=o.eps, **common)
        raise ValueError(f"optimizer.name {name!r} is not supported")

    def _build_trainer(self):
        cfg, t, d = self.cfg, self.cfg.train, self.cfg.data
        callbacks = []
        es = cfg.early_stopping
        if es.enabled:
            callbacks.append(EarlyStopping(monitor=es.monitor, mode=es.mode, patience=es.patience,
                                           min_delta=es.min_delta, restore_best_weights=es.restore_best))
        callbacks.append(ProgressBar(quiet=self.quiet, log_every=t.log_every))
        dist = cfg.distributed
        ddp = {"bucket_mb": dist.bucket_mb, "check_every": dist.check_every,
               "compression": None if dist.compression == "none" else dist.compression}
        world = self.comm.size
        trainer = Trainer(self.model, self.optimizer, self.splits.train, self.splits.val, comm=self.comm,
                          batch_size=d.batch_size, epochs=t.epochs, callbacks=callbacks, transform=self.train_tf,
                          eval_transform=self.eval_tf, clip_grad_norm=t.grad_clip or None,
                          accumulation_steps=t.grad_accumulation, seed=cfg.run.seed, shuffle=d.shuffle,
                          drop_last=d.drop_last, eval_batch_size=-(-d.eval_batch_size // world),
                          eval_every=t.eval_every, max_steps=t.get("max_steps"), label_smoothing=t.label_smoothing,
                          monitor=es.monitor if es.enabled else "val_loss", ddp_kwargs=ddp)
        # LR schedules go first: EarlyStopping and the progress line then see the epoch's final state.
        for i, cb in enumerate(build_schedule(cfg, self.optimizer, trainer.steps_per_epoch)):
            trainer.callbacks.callbacks.insert(i, cb)
        return trainer

    def model_meta(self) -> dict:
        std = self.splits.standardizer
        return {"model": self.model_spec, "dataset": self.splits.name, "num_classes": self.splits.num_classes,
                "input_shape": list(self.splits.input_shape), "class_names": list(self.splits.class_names),
                "standardizer": std.state_dict() if std is not None else None,
                "dtype": self.cfg.run.dtype, "data": _as_dict(self.cfg.data), "meta": _json_safe(self.splits.meta)}


def _accepts(model_name, arg) -> bool:
    import inspect

    from distnn.models.registry import _MODELS

    cls = _MODELS.get(str(model_name).lower())
    return cls is not None and arg in inspect.signature(cls.__init__).parameters


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
    per_step = s.interval == "step" or warm > 0 or s.name == "onecycle"
    unit = steps_per_epoch if per_step and s.interval == "epoch" else 1   # epoch counts -> steps
    total = epochs * steps_per_epoch if per_step else epochs
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
    elif s.name == "onecycle":
        if warm:
            raise ValueError("schedule.name = 'onecycle' warms up by itself; leave schedule.warmup_* at 0")
        main = L.OneCycleLR(optimizer, max_lr=s.get("max_lr") or optimizer.param_groups[0]["lr"],
                            total_steps=epochs * steps_per_epoch)
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


def _json_safe(obj):
    import json

    try:
        json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
        return obj
    except (TypeError, ValueError):
        return {}


# --------------------------------------------------------------- train (CLI)
def run_training(config="digits_mlp", overrides=(), out=None, simulate_ranks=None, quiet=False, comm=None):
    """Run a training job; returns the summary dict on rank 0 and None elsewhere.

    ``simulate_ranks=N`` runs N ranks as threads of this process through the
    in-process communicator; otherwise ``comm`` (default: MPI when launched
    under mpiexec, else a single rank).
    """
    setup_logging()
    if simulate_ranks:
        from distnn.distributed import simulate

        results = simulate(int(simulate_ranks), _guarded, config, overrides, out, quiet, True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            raise errors[0]
        return results[0]
    return train_rank(comm or default_comm(), config, overrides, out, quiet)


def _default_path(job) -> str:
    run = job.cfg.run
    if run.get("run_name"):
        return os.path.join(run.out_dir, run.run_name)
    return rd.default_run_dir(job.config_name, root=run.out_dir)


def _guarded(comm, *args):
    # Agreed errors are values in simulated ranks: the driver re-raises rank 0's once.
    try:
        return train_rank(comm, *args)
    except JobError as e:
        return e


def train_rank(comm, config, overrides=(), out=None, quiet=False, simulated=False):
    """Phase 1-3 on one rank (see the module docstring)."""
    set_rank(comm.rank, thread_only=simulated)
    from . import ensemble

    if ensemble.requested(config, overrides):  # ensemble.members > 1: members on groups of ranks
        return ensemble.train_ensemble(comm, config, overrides, out, quiet)
    job, error = None, None
    try:
        job = Job(config, list(overrides or ()), comm, quiet=quiet)
    except (ValueError, OSError, KeyError, TypeError) as e:  # DataError/ConfigError are ValueErrors
        error = _one_line(e)
    agree_on_errors(comm, error)
    path = out or (_default_path(job) if comm.rank == 0 else None)
    if comm.size > 1:
        path = comm.broadcast_object(path, root=0)
    try:
        created = rd.prepare_run_dir(path, comm)
    except rd.RunDirError as e:
        raise JobError(str(e), report=comm.rank == 0) from None
    try:
        return _train(job, path)
    except BaseException:
        # Nothing half-written: a run that never finished one epoch leaves no directory behind.
        # (unless it holds a checkpoint: a preempted or failed run is resumed from there)
        if comm.rank == 0 and created and not job.trainer.history and not _has_checkpoint(path):
            rd.remove_run_dir(path)
        raise


def _has_checkpoint(path) -> bool:
    from .checkpoint import DEFAULT_DIRNAME, list_checkpoints

    return bool(list_checkpoints(os.path.join(path, DEFAULT_DIRNAME)))


def _train(job, path):
    from distnn.train.config import dump_config

    comm, trainer = job.comm, job.trainer
    if comm.rank == 0:
        rd.write_text(os.path.join(path, rd.CONFIG), dump_config(job.cfg))
        log.info("run directory %s", path)
        log.info("%s; %d rank(s), global batch %d (%d per rank), %d steps per epoch", job.splits.summary(),
                 comm.size, trainer.batch_size, trainer.local_batch, trainer.steps_per_epoch)
    trainer.callbacks.append(MetricsLogger(path))
    if job.cfg.run.plots:
        trainer.callbacks.append(PlotCurves(path, title=f"{job.config_name} ({comm.size} rank{'s' if comm.size > 1 else ''})"))
    # Checkpoints (the last callback), SIGTERM/SIGUSR1 preemption, the non-finite policy; resume (collective).
    from .callbacks.checkpoint import attach, extra_files_for

    attach(trainer, path, job.cfg.checkpoint, nonfinite=job.cfg.train.nonfinite,
           max_nonfinite=job.cfg.train.max_nonfinite, extra_files=extra_files_for(job.model_meta(), dump_config(job.cfg)))
    t0 = time.perf_counter()
    history = trainer.fit()
    wall = time.perf_counter() - t0
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
        "accumulation_steps": trainer.accumulation_steps, "global_steps": trainer.state.global_step,
        "samples_per_sec": float(np.mean([h["samples_per_sec"] for h in history])) if history else None,
        "wall_time": wall,
        "final_train_loss": history[-1]["train_loss"] if history else None,
        "final_val_accuracy": history[-1].get("val_accuracy") if history else None,
    }
    if comm.rank == 0:
        rd.save_model(path, job.model, job.model_meta())
        rd.write_json(os.path.join(path, rd.SUMMARY), summary)
        if summary["test_accuracy"] is not None:
            log.info("test accuracy %.4f, test loss %.4f", summary["test_accuracy"], summary["test_loss"])
    if comm.size > 1:
        comm.barrier()  # nobody leaves before rank 0 has written the results
    return summary if comm.rank == 0 else None


# ------------------------------------------------------- evaluate / predict
def _load_run_data(meta, path):
    """Read a data file for a trained run: ``(x, y or None)``, strictly validated.

    ``.npz``: arrays ``x``/``X`` and optionally ``y``/``Y``. ``.csv``: one row per
    sample, the features in the units of the run's training data, plus a
    label column (the last, unless the run's ``data.label_column`` says
    otherwise) or none. IDX: an ``*-images-idx3-ubyte[.gz]`` file (labels from
    its matching labels file), scaled to [0, 1] like the MNIST loader.
    """
    from distnn.data import DataError, check_labels, find_mnist_files, load_idx_pair
    from distnn.data.files import load_npz

    path = str(path)
    k = int(meta["num_classes"])
    n_features = int(np.prod(meta["input_shape"]))
    source = f"data file {path!r}"
    if not os.path.exists(path):
        raise DataError(f"{source} not found")
    if not os.path.isfile(path):
        raise DataError(f"{source} is not a file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{source} is not readable (permission denied)")
    lower = path.lower()
    if lower.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            keys = set(z.files)
        if keys & {"y", "Y"}:
            parts = load_npz(path, num_classes=k)
            x, y = parts["all"]
            return x, y
        if not keys & {"x", "X"}:
            raise DataError(f"{source} has no 'x' or 'X' array (keys: {sorted(keys)})")
        with np.load(path, allow_pickle=False) as z:
            x = z["x" if "x" in keys else "X"]
        if x.dtype.kind not in "iufb":
            raise DataError(f"{source} array 'x' must be numeric, got dtype {x.dtype}")
        return x.astype(np.float32), None
    if lower.endswith(".csv"):
        return _read_csv(path, source, n_features, k, (meta.get("data") or {}).get("label_column", -1),
                         check_labels, DataError)
    if "idx" in os.path.basename(lower) or "ubyte" in lower:
        pair = find_mnist_files(path)["train"]
        images, labels = load_idx_pair(*pair, num_classes=k)
        return images.astype(np.float32) / 255.0, labels
    raise DataError(f"{source}: unknown format (expected .csv, .npz or an IDX '*-images-idx3-ubyte' file)")


def _read_csv(path, source, n_features, k, label_column, check_labels, DataError):
    """A CSV of features with or without a label column (told apart by the number of columns)."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as f:
        try:
            rows = [(r.line_num, row) for r in [csv.reader(f)] for row in r if any(c.strip() for c in row)]
        except (csv.Error, UnicodeDecodeError) as e:
            raise DataError(f"{source} is not readable CSV: {e}") from None
    if rows and not all(_is_number(c) for c in rows[0][1]):
        rows = rows[1:]  # a header
    if not rows:
        raise DataError(f"{source} has no data rows")
    ncol = len(rows[0][1])
    if ncol not in (n_features, n_features + 1):
        raise DataError(f"{source} line {rows[0][0]}: expected {n_features} feature columns (plus an optional "
                        f"label column) for this model, got {ncol} columns")
    for line, row in rows:
        if len(row) != ncol:
            raise DataError(f"{source} line {line}: expected {ncol} columns, got {len(row)}")
        for j, cell in enumerate(row):
            if not _is_number(cell):
                what = "empty cell" if not cell.strip() else f"cannot parse {cell.strip()!r} as a number"
                raise DataError(f"{source} line {line} column {j + 1}: {what}")
    values = np.asarray([r for _, r in rows], dtype=np.float64)
    lines = [ln for ln, _ in rows]
    if ncol == n_features:
        x, y = values, None
    else:
        li = int(label_column) % ncol
        x = np.delete(values, li, axis=1)
        y, _ = check_labels(values[:, li], source, lambda i: f"line {lines[i]}", k)
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise DataError(f"{source} line {lines[i]}: non-finite feature value {x[i, j]}")
    return x.astype(np.float32), y


def _is_number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False


def _check_inputs(x, meta, what):
    shape = tuple(meta["input_shape"])
    if tuple(x.shape[1:]) != shape and int(np.prod(x.shape[1:])) == int(np.prod(shape)):
        x = x.reshape((len(x),) + shape)
    if tuple(x.shape[1:]) != shape:
        raise ValueError(f"{what}: samples have shape {tuple(x.shape[1:])} but the model expects {shape}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).reshape(len(x), -1).any(axis=1).argmax())
        raise ValueError(f"{what}: sample {bad} holds NaN or inf")
    return x


def _split_data(meta, split):
    from distnn.data import load_dataset

    splits = load_dataset(meta["data"])
    ds = splits[split]
    if ds is None:
        raise ValueError(f"dataset '{splits.name}' has no {split} split")
    return ds.x, ds.y


def evaluate_run(run_path, split=None, data=None) -> str:
    """Loss, accuracy, confusion matrix and per-class precision/recall/F1 of a run, as text."""
    model, meta, transform = rd.load_model(run_path)
    if data is not None:
        x, y = _load_run_data(meta, data)
        if y is None:
            raise ValueError(f"data file {data!r} has no labels; use 'distnn predict' for unlabelled inputs")
        what = repr(data)
    else:
        split = split or "test"
        x, y = _split_data(meta, split)
        what = f"{meta.get('dataset', 'dataset')} {split} split"
    x = _check_inputs(x, meta, what)
    k = int(meta["num_classes"])
    y = np.asarray(y)
    if y.ndim == 1 and y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"{what}: labels must be in [0, {k - 1}] for this {k}-class model; found "
                         f"{sorted(set(int(v) for v in y[(y < 0) | (y >= k)][:10]))}")
    dtype = np.float64 if meta.get("dtype") == "float64" else np.float32
    sums = evaluate_arrays(model, x, y, np.ones(len(x), bool), transform, 512, k if y.ndim == 1 else 0,
                           dtype=dtype)
    lines = [f"evaluated {what}: {sums['count']} samples",
             f"loss     {sums['loss'] / max(sums['count'], 1):.4f}",
             f"accuracy {sums['correct'] / max(sums['count'], 1):.4f}"]
    if sums["cm"] is not None:
        names = meta.get("class_names")
        lines += ["", "confusion matrix (rows: true class, columns: predicted class)",
                  format_confusion_matrix(sums["cm"], names), "", classification_report(sums["cm"], names)]
    return "\n".join(lines)


def predict_proba(model, x, transform, batch_size=512) -> np.ndarray:
    """Class probabilities (N, C) in eval mode."""
    from distnn.backend import to_numpy

    params = list(model.parameters()) if hasattr(model, "parameters") else []
    dtype = params[0].data.dtype if params and params[0].data.dtype.kind == "f" else None
    out = []
    with distnn.no_grad():
        for s in range(0, len(x), batch_size):
            xb = x[s:s + batch_size]
            if transform is not None:
                xb = transform(xb, None)
            if dtype is not None and xb.dtype.kind == "f" and xb.dtype != dtype:
                xb = xb.astype(dtype)
            out.append(to_numpy(model(distnn.Tensor(xb)).softmax(axis=-1).data))
    return np.concatenate(out) if out else np.zeros((0, 0))


def predict_run(run_path, input_path, output_path) -> int:
    """Write ``label,prob_<c>...`` rows for each input sample; returns the number written."""
    model, meta, transform = rd.load_model(run_path)
    x, _ = _load_run_data(meta, input_path)
    x = _check_inputs(x, meta, repr(input_path))
    probs = predict_proba(model, x, transform)
    names = [str(c) for c in meta.get("class_names") or range(probs.shape[1])]
    labels = probs.argmax(axis=1)
    out_dir = os.path.dirname(os.path.abspath(output_path))
    if not os.path.isdir(out_dir):
        raise ValueError(f"cannot write {output_path!r}: directory {out_dir!r} does not exist")
    tmp = output_path + ".tmp"
    try:
        with open(tmp, "w") as f:
            f.write(",".join(["predicted_label", "predicted_class"] + [f"prob_{n}" for n in names]) + "\n")
            for lab, p in zip(labels, probs):
                f.write(f"{int(lab)},{names[lab]}," + ",".join(f"{v:.6g}" for v in p) + "\n")
        os.replace(tmp, output_path)
    except OSError as e:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise ValueError(f"cannot write {output_path!r}: {e.strerror or e}") from None
    return len(labels)


def describe_datasets() -> str:
    from distnn.data import list_datasets
    from distnn.train.config import list_configs

    lines = ["datasets:"]
    for item in list_datasets():
        lines.append(f"  {item}" if isinstance(item, str) else f"  {item[0]:<16} {item[1]}")
    lines.append("")
    lines.append("built-in configs (python -m distnn train --config NAME):")
    for item in list_configs():
        lines.append(f"  {item}" if isinstance(item, str) else f"  {item[0]:<22} {item[1]}")
    return "\n".join(lines)
