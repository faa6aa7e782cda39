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
def _cfg_get(cfg, dotted: str, default=None):
    """``cfg["a"]["b"]`` or ``cfg.a.b`` for "a.b" (configs are nested tables)."""
    cur = cfg
    for part in dotted.split("."):
        if cur is None:
            return default
        if isinstance(cur, dict):
            cur = cur.get(part, None)
        else:
            cur = getattr(cur, part, None)
    return default if cur is None else cur


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
    """Everything one rank needs to train, built from a config (phase 1)."""

    def __init__(self, config, overrides, comm, quiet=False, cfg=None):
        from distnn.train.config import load_config
        from distnn.train.ensemble import member_splits

        self.comm = comm
        self.cfg = cfg if cfg is not None else load_config(config, overrides)  # cfg: an ensemble member's
        self.config_name = _cfg_get(self.cfg, "name", None) or os.path.splitext(os.path.basename(str(config)))[0]
        self.splits = member_splits(self.cfg, self._load_data())  # an ensemble member's bootstrap resample
        self.train_tf, self.eval_tf = self._transforms()
        self.model, self.model_spec = self._build_model()
        self.optimizer, self.callbacks = self._build_optimizer()
        self.trainer = self._build_trainer(quiet)

    def _load_data(self):
        from distnn.data import load_dataset

        data = _as_dict(_cfg_get(self.cfg, "data"))
        # A "{rank}" in a data path names per-rank files (pre-sharded data, or a test of one rank failing).
        for key in ("path", "train_path", "test_path", "val_path"):
            if isinstance(data.get(key), str) and "{rank}" in data[key]:
                data[key] = data[key].replace("{rank}", str(self.comm.rank))
        return load_dataset(data)

    def _transforms(self):
        from distnn.data.transforms import build_transforms

        return build_transforms(self.splits, _as_dict(_cfg_get(self.cfg, "data.augment")))

    def _build_model(self):
        from distnn.models import build_model

        spec = _as_dict(_cfg_get(self.cfg, "model"))
        name = spec.pop("name")
        spec.setdefault("num_classes", self.splits.num_classes)
        spec.setdefault("input_shape", list(self.splits.input_shape))
        distnn.manual_seed(int(_cfg_get(self.cfg, "train.seed", 0)))  # identical initial weights on every rank
        model = build_model(name, **spec)
        return model, {"name": name, "kwargs": spec}

    def _build_optimizer(self):
        from distnn import optim

        o = _as_dict(_cfg_get(self.cfg, "optim"))
        name = o.pop("name", "adam")
        lr = float(o.pop("lr", 1e-3))
        B = int(_cfg_get(self.cfg, "data.batch_size"))
        scaling = o.pop("lr_scaling", None)
        base_batch = o.pop("base_batch_size", None)
        if scaling == "linear" and base_batch:
            lr = lr * B / float(base_batch)  # the linear scaling rule (Goyal et al.)
        optimizer = optim.build_optimizer(name, self.model.parameters(), lr=lr, **o)
        callbacks = []
        sched = _as_dict(_cfg_get(self.cfg, "scheduler"))
        if sched:
            callbacks.extend(self._schedulers(optimizer, sched))
        return optimizer, callbacks

    def _schedulers(self, optimizer, s):
        from distnn.optim import lr_scheduler as L

        out = []
        warmup = int(s.get("warmup_epochs", 0) or 0)
        kind = s.get("name", "none")
        if kind == "plateau":
            out.append(LRSchedulerCallback(L.ReduceLROnPlateau(optimizer, mode=s.get("mode", "min"),
                                                               factor=s.get("factor", 0.5),
                                                               patience=s.get("patience", 3)),
                                           monitor=s.get("monitor", "val_loss")))
        elif kind == "cosine":
            out.append(LRSchedulerCallback(L.CosineAnnealingLR(optimizer, T_max=int(_cfg_get(self.cfg, "train.epochs")))))
        elif kind == "step":
            out.append(LRSchedulerCallback(L.StepLR(optimizer, step_size=s.get("step_size", 10), gamma=s.get("gamma", 0.1))))
        if warmup:
            out.insert(0, LRSchedulerCallback(L.LinearWarmup(optimizer, warmup_steps=warmup), interval="step"))
        return out

    def _build_trainer(self, quiet):
        t = _as_dict(_cfg_get(self.cfg, "train"))
        callbacks = list(self.callbacks)
        es = _as_dict(_cfg_get(self.cfg, "early_stopping"))
        if es and es.pop("enabled", True):
            callbacks.insert(0, EarlyStopping(**es))
        callbacks.append(ProgressBar(quiet=quiet))
        return Trainer(self.model, self.optimizer, self.splits.train, self.splits.val, comm=self.comm,
                       batch_size=int(_cfg_get(self.cfg, "data.batch_size")), epochs=int(t.get("epochs", 10)),
                       callbacks=callbacks, transform=self.train_tf, eval_transform=self.eval_tf,
                       clip_grad_norm=t.get("clip_grad_norm") or None,
                       accumulation_steps=int(t.get("accumulation_steps", 1)), seed=int(t.get("seed", 0)))

    def model_meta(self) -> dict:
        std = self.splits.standardizer
        return {"model": self.model_spec, "dataset": self.splits.name, "num_classes": self.splits.num_classes,
                "input_shape": list(self.splits.input_shape), "class_names": list(self.splits.class_names),
                "standardizer": std.state_dict() if std is not None else None,
                "data": _as_dict(_cfg_get(self.cfg, "data")), "meta": _json_safe(self.splits.meta)}


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
    path = out or (rd.default_run_dir(job.config_name) if comm.rank == 0 else None)
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
        if comm.rank == 0 and created and not job.trainer.history:
            rd.remove_run_dir(path)
        raise


def _train(job, path):
    from distnn.train.config import dump_config

    comm, trainer = job.comm, job.trainer
    if comm.rank == 0:
        rd.write_text(os.path.join(path, rd.CONFIG), dump_config(job.cfg))
        log.info("run directory %s", path)
        log.info("%s; %d rank(s), global batch %d (%d per rank), %d steps per epoch", job.splits.summary(),
                 comm.size, trainer.batch_size, trainer.local_batch, trainer.steps_per_epoch)
    trainer.callbacks.append(MetricsLogger(path))
    trainer.callbacks.append(PlotCurves(path, title=f"{job.config_name} ({comm.size} rank(s))"))
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
    """Load a data file in the run's format: (x, y or None)."""
    from distnn.data import load_file

    return load_file(path, meta)


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
    sums = evaluate_arrays(model, x, y, np.ones(len(x), bool), transform, 512, k if y.ndim == 1 else 0)
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

    out = []
    with distnn.no_grad():
        for s in range(0, len(x), batch_size):
            xb = x[s:s + batch_size]
            if transform is not None:
                xb = transform(xb, None)
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
