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

import numpy as np

import distnn

from . import run_dir as rd
from .callbacks import EarlyStopping, LRSchedulerCallback, MetricsLogger, PlotCurves, ProgressBar
from .logging_utils import get_logger, set_rank, setup_logging
from .trainer import Trainer, default_comm

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


def data_fingerprint(splits) -> str:
    """SHA-256 of every split's samples and labels (shapes and dtypes included)."""
    import hashlib

    h = hashlib.sha256()
    for name, part in splits.items():
        for a in (part.x, part.y):
            a = np.ascontiguousarray(a)
            h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
            h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def agree_on_same_data(comm, job) -> None:
    """Collective: per-rank data files (``{rank}`` in data.path) must hold the same data on every rank.
    A no-op for one rank or one data file (the same config on every rank: all of them or none).

    distnn shards ONE dataset across the ranks itself (each rank takes its part of every global
    batch); files that differ per rank would be sharded again (each rank training on a fraction of
    its own file, statistics fitted per rank, a crash when their sizes differ).
    """
    if comm.size == 1 or not job.per_rank_data:
        return
    path = job.cfg.data.path
    prints = comm.allgather_object(data_fingerprint(job.splits))
    differ = [r for r, f in enumerate(prints) if f != prints[0]]
    if differ:
        raise JobError(f"data.path {path!r} gives rank {differ[0]} other data than rank 0; distnn shards one "
                       "dataset across the ranks itself, so every rank must read the same data (pre-sharded "
                       "per-rank files are not supported): give one file, or identical copies",
                       report=comm.rank == 0)


def memory_error_text(exc: MemoryError) -> str:
    """One line for a MemoryError while the job is set up (a config asking for more than this machine has)."""
    return (f"not enough memory to set up the job (load the data, build the model and optimizer): {_one_line(exc)}; "
            "check the sizes in the config (data.n_samples, model sizes, data.batch_size)")


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


def _apply_collective_timeout(comm, seconds):
    """``distributed.timeout`` from the config; DISTNN_COLLECTIVE_TIMEOUT in the environment wins."""
    if "DISTNN_COLLECTIVE_TIMEOUT" in os.environ:
        return
    setter = getattr(comm, "set_timeout", None)
    if setter is not None:
        setter(seconds)
    elif hasattr(comm, "timeout"):
        comm.timeout = seconds


def _tag_config_keys(error: ValueError, cfg) -> None:
    """Add to ``error``'s message which of the config keys it names came from --set, as the config's own
    checks say it (e.g. the trainer's "data.batch_size 700 is larger than the 600 training samples: with
    data.drop_last = true ...", found once the data is loaded)."""
    if hasattr(cfg, "tag_message") and len(error.args) == 1 and isinstance(error.args[0], str):
        error.args = (cfg.tag_message(error.args[0]),)


# ------------------------------------------------------------------ the setup
class Job:
    """Everything one rank needs to train, built from a config (phase 1: nothing is written)."""

    def __init__(self, config, overrides, comm, quiet=False, cfg=None):
        from distnn.data.datasets import as_token_ids
        from distnn.train.config import load_config
        from distnn.train.ensemble import member_splits

        self.comm = comm
        self.cfg = cfg if cfg is not None else load_config(config, overrides)  # cfg: an ensemble member's
        self.config_name = self.cfg.get("name") or os.path.splitext(os.path.basename(str(config)))[0]
        self.quiet = bool(quiet or self.cfg.run.quiet)
        _apply_collective_timeout(comm, self.cfg.distributed.timeout)
        try:
            splits = self._load_data()
            self.token_vocab = self._token_vocab(splits)  # recorded in model.json's data table
            if self.token_vocab is not None:
                # A model that reads token ids gets int64 ids, checked exactly and never standardized: the
                # npz/csv loaders give float32 features, which an Embedding refuses.
                splits = as_token_ids(splits, self.token_vocab)
            self.splits = member_splits(self.cfg, splits)  # an ensemble member's bootstrap resample
            self._check_validation_monitors()
            self.train_tf, self.eval_tf = self._transforms()
            self.model, self.model_spec = self._build_model()
            self.optimizer = self._build_optimizer()
            self.trainer = self._build_trainer()
        except ValueError as e:  # (DataError too)
            _tag_config_keys(e, self.cfg)
            raise

    def _load_data(self):
        from distnn.data import load_dataset

        data = _as_dict(self.cfg.data)
        # A "{rank}" in data.path names per-rank files (copies on node-local disks, or a test of one rank's
        # file failing); train_rank then checks they hold the same data (see agree_on_same_data).
        self.per_rank_data = isinstance(data.get("path"), str) and "{rank}" in data["path"]
        if self.per_rank_data:
            data["path"] = data["path"].replace("{rank}", str(self.comm.world_rank))  # (an ensemble member's too)
        return load_dataset(data)

    @property
    def device_rank(self) -> int:
        """This process's index among the ranks on its host: which of the host's GPUs it takes.

        The communicator's local rank, unless the job trains on a sub-communicator (an ensemble
        member's group: its local ranks restart at 0 in every group, which would put every group on GPU 0)."""
        rank = getattr(self, "_device_rank", None)
        return self.comm.local_rank if rank is None else rank

    def _token_vocab(self, splits):
        """The vocabulary size when the configured model reads token ids, else None.

        ``model.vocab_size``, or the dataset's when the model takes one (as ``_build_model`` fills it in).
        """
        model = _as_dict(self.cfg.model)
        if model.get("vocab_size") is not None:
            return int(model["vocab_size"])
        if splits.meta.get("vocab_size") is not None and _accepts(model.get("name"), "vocab_size"):
            return int(splits.meta["vocab_size"])
        return None

    def _check_validation_monitors(self):
        """A ``val_*`` monitor needs a validation split that exists once the data is loaded.

        config.py refuses ``data.val_fraction = 0`` up front; this catches a split that turns out
        empty only after loading (an npz's empty ``x_val``), which would otherwise fail after the
        first epoch ("monitored metric 'val_loss' is not available") with a run directory left behind.
        """
        if self.splits.val is not None:
            return
        es, s = self.cfg.early_stopping, self.cfg.schedule
        users = []
        if es.enabled and str(es.monitor).startswith("val_"):
            users.append(("early_stopping.monitor", es.monitor, "early_stopping.enabled = true"))
        if s.name == "plateau" and str(s.monitor).startswith("val_"):
            users.append(("schedule.monitor", s.monitor, "schedule.name = 'plateau'"))
        if users:
            key, monitor, setting = users[0]
            sizes = " / ".join(f"{k} {len(d)}" for k, d in self.splits.items())
            raise ValueError(f"{key} is {monitor!r} ({setting}) but dataset '{self.splits.name}' has no validation "
                             f"split once loaded ({sizes}): give it validation data, or monitor "
                             f"'{monitor.replace('val_', 'train_', 1)}'")

    def _transforms(self):
        from distnn.data.transforms import build_transforms

        return build_transforms(self.splits, _as_dict(self.cfg.data.get("augment")))

    def _build_model(self):
        from distnn.backend import gpu_available, select_gpu
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
        self._check_outputs_fit_targets(model, name)
        run = self.cfg.run
        if run.dtype == "float64":
            model.to(np.float64)
        device = run.device
        if device == "gpu" and not gpu_available():
            raise ValueError("run.device is 'gpu' but no GPU is usable here (cupy missing or no device); "
                             "use run.device = 'cpu' or 'auto'")
        if device == "gpu" or (device == "auto" and gpu_available()):
            select_gpu(self.device_rank)  # one GPU per rank on a node, not every rank on GPU 0
            model.to("cuda")
        if self.cfg.distributed.sync_batchnorm and self.comm.size > 1:
            from distnn.distributed import SyncBatchNorm

            model = SyncBatchNorm.convert_sync_batchnorm(model, self.comm)
        return model, {"name": name, "kwargs": spec}

    def _check_outputs_fit_targets(self, model, name):
        """One training sample through the new model (eval mode, no gradient, no random draw kept): its
        output must be what the loss takes for the dataset's targets, (C,) logits for a label, (T, C) for
        T per-position targets. Otherwise the first step would fail inside cross_entropy, naming shapes
        instead of the model and dataset that do not go together (charlm text into the default MLP)."""
        train = self.splits.train
        if train is None or not len(train):
            return
        x, y = train.x[:1], np.asarray(train.y[:1])
        if x.dtype.kind == "f":
            x = x.astype(np.float32)
        rng, was_training = distnn.random.get_state(), model.training
        model.eval()
        try:
            with distnn.no_grad():
                out = model(distnn.Tensor(x))
        except Exception:  # (a model that cannot read these inputs says so itself, at the first step)
            return
        finally:
            model.train(was_training)
            distnn.random.set_state(rng)
        if not hasattr(out, "shape"):
            return
        got = tuple(out.shape[1:])
        k = self.splits.num_classes
        want = tuple(y.shape[1:]) + (k,)
        if got == want:
            return
        what = (f"{y.shape[1]} targets per sample (one per position: expects ({y.shape[1]}, {k}) logits, as "
                f"model 'charlm' gives)" if y.ndim == 2 else f"one label per sample (expects ({k},) logits)")
        raise ValueError(f"model {name!r} gives outputs of shape {got} per sample, but dataset '{self.splits.name}' "
                         f"has {what}: choose a model that fits the dataset (model.name)")

    def _build_optimizer(self):
        from distnn import optim

        o = self.cfg.optimizer
        name = o.name
        params = self.model.parameters()
        wd = float(o.weight_decay)
        adaptive = name in ("lars", "lamb")
        if o.no_decay_bias_norm and (wd or adaptive):
            # No decay on biases and norm weights; LARS/LAMB (You et al.) also leave them out of the trust
            # ratio, with or without weight decay, so for those the groups are built even when wd is 0.
            params = optim.param_groups_no_decay(self.model, wd, {"layer_adaptation": False} if adaptive else None)
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

    def _l1_params(self):
        """The parameters optimizer.l1 penalizes: the weights alone with no_decay_bias_norm (the notes: never
        the intercepts), else every trainable parameter."""
        from distnn.optim import split_decay_parameters

        if self.cfg.optimizer.no_decay_bias_norm:
            return split_decay_parameters(self.model)[0]
        return [p for p in self.model.parameters() if getattr(p, "requires_grad", True)]

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
        trainer = Trainer(self.model, self.optimizer, self.splits.train, self.splits.val, comm=self.comm,
                          batch_size=d.batch_size, epochs=t.epochs, callbacks=callbacks, transform=self.train_tf,
                          eval_transform=self.eval_tf, clip_grad_norm=t.grad_clip or None,
                          accumulation_steps=t.grad_accumulation, seed=cfg.run.seed, shuffle=d.shuffle,
                          drop_last=d.drop_last, eval_batch_size=d.eval_batch_size,
                          eval_every=t.eval_every, max_steps=t.get("max_steps"), label_smoothing=t.label_smoothing,
                          l1=float(cfg.optimizer.l1), l1_params=self._l1_params(),
                          max_norm=float(cfg.optimizer.max_norm),
                          adversarial_eps=t.adversarial_eps, adversarial_weight=t.adversarial_weight,
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
                "dtype": self.cfg.run.dtype, "data": self._saved_data(), "meta": _json_safe(self.splits.meta)}

    def _saved_data(self) -> dict:
        """The [data] table for model.json; with ``token_vocab`` when the model reads ids, so that
        ``load_dataset`` of it (evaluate on a split) gives the int64 ids the model was trained on."""
        data = _as_dict(self.cfg.data)
        if self.token_vocab is not None:
            data["token_vocab"] = self.token_vocab
        return data


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
    from .preemption import caller_signals

    if quiet:  # (as run.quiet = true: the run's config.toml then says what the run did)
        overrides = [*(overrides or ()), ("run.quiet", True)]
    with caller_signals():  # the caller's signal handlers back afterwards (see caller_signals)
        try:
            return _run_training(config, overrides, out, simulate_ranks, quiet, comm)
        finally:
            # The job's DataParallel sits in reference cycles (its hooks hold it through the model): collected
            # now, it hands its communicator and shared-memory windows back to the pool for the next job of a
            # sweep, which otherwise made new ones (8.6 MB of /dev/shm a job, measured under mpiexec -n 2).
            _collect_garbage()


def _collect_garbage() -> None:
    """``gc.collect()``, with a Ctrl-C that comes during it acted on once it returns.

    The collection runs the job's finalizers (DataParallel's ``_release``) in this thread. Python acts
    on a signal at the next Python code it runs, which during a collection is a finalizer, and a
    KeyboardInterrupt raised in a finalizer is only printed ("Exception ignored in ..."): the Ctrl-C was
    lost, and the job returned as if none had come (a sweep went on with its next job). So SIGINT is
    only noted during the collection, then given to its handler (KeyboardInterrupt) outside any finalizer.
    """
    import gc
    import signal
    import threading

    previous = signal.getsignal(signal.SIGINT)
    # (handlers live in the main thread; SIG_IGN, SIG_DFL or a handler not set from Python: nothing to defer)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        gc.collect()
        return
    noted = []
    signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    try:
        gc.collect()
    finally:
        signal.signal(signal.SIGINT, previous)
    if noted:
        previous(signal.SIGINT, None)


def _run_training(config, overrides, out, simulate_ranks, quiet, comm):
    setup_logging()
    if simulate_ranks:
        from distnn.distributed import simulate

        from .preemption import Preempted, PreemptionHandler, ignore_further_signals

        # Signal handlers live in the main thread, not in the ranks' threads: SIGTERM/SIGUSR1 then
        # preempt the simulated ranks as they would MPI ranks (when they checkpoint).
        try:
            with PreemptionHandler(only_when_watched=True):
                results = simulate(int(simulate_ranks), _guarded, config, overrides, out, quiet, True)
        except Preempted:
            # (the ranks' own call did nothing off the main thread: a duplicate SIGTERM while the process
            # exits would kill it with 143 instead of the 75 the checkpoint earned)
            ignore_further_signals()
            raise
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


def run_dir_for(cfg, out, comm, default) -> str:
    """The run directory, the same on every rank: ``out``, or rank 0's ``default()`` (a new timestamped one).

    ``checkpoint.resume = "auto"`` continues the run in a known directory, so it needs ``out`` (or
    ``run.run_name``, which names the directory): a fresh default directory has nothing to continue.
    """
    if dict(cfg.checkpoint).get("resume") == "auto" and not out and not cfg.run.get("run_name"):
        raise JobError("--resume auto (checkpoint.resume = \"auto\") needs --out RUN_DIR: the run directory "
                       "whose checkpoints to continue", report=comm.rank == 0)
    path = out or (default() if comm.rank == 0 else None)
    return comm.broadcast_object(path, root=0) if comm.size > 1 else path


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
        if comm.rank == 0:  # (the rank that resolves --resume and writes the checkpoints)
            preflight(job.cfg)
    except (ValueError, OSError, KeyError, TypeError) as e:  # DataError/ConfigError are ValueErrors
        error = _one_line(e)
    except MemoryError as e:  # sizes in the config too large for this machine (numpy says how much)
        error = memory_error_text(e)
    agree_on_errors(comm, error)
    agree_on_same_data(comm, job)
    from .preemption import inject_startup_fault

    inject_startup_fault(comm.rank)
    path = run_dir_for(job.cfg, out, comm, lambda: _default_path(job))
    _record_checkpoint_dir_in_run(job.cfg, path)
    try:
        created = rd.prepare_run_dir(path, comm, resuming=bool(dict(job.cfg.checkpoint).get("resume")))
    except rd.RunDirError as e:
        raise JobError(str(e), report=comm.rank == 0) from None
    try:
        agree_on_errors(comm, _finished_without_checkpoint(path, job.cfg) if comm.rank == 0 else None)
        return _train(job, path)
    except BaseException:
        # Nothing half-written: a run that never finished one epoch leaves no directory behind.
        # (unless it holds a checkpoint: a preempted or failed run is resumed from there)
        if comm.rank == 0 and created and not job.trainer.history and not has_checkpoint(path, job.cfg):
            rd.remove_run_dir(path)
        raise
    finally:
        if comm.rank == 0:  # (simulated ranks share the process: only the holder gives it back)
            rd.release_run_dir(path)


def _record_checkpoint_dir_in_run(cfg, path) -> None:
    """An absolute ``checkpoint.dir`` inside the run directory ``path`` becomes relative to it (in the run's
    config.toml and its checkpoints' copies): a copy of the run directory then resumes from and writes to its
    own checkpoints, not the original's. One outside the run stays as given (see ``attach``'s warning)."""
    directory = _as_dict(cfg.checkpoint).get("dir")
    if not directory or not os.path.isabs(str(directory)):
        return
    inside = os.path.relpath(os.path.realpath(str(directory)), os.path.realpath(str(path)))
    if inside != os.pardir and not inside.startswith(os.pardir + os.sep):
        cfg.checkpoint["dir"] = inside


def preflight(cfg) -> None:
    """Raise ValueError for what is known wrong before anything is written, but would otherwise only
    fail once the run directory exists (a ``--resume`` path that does not exist) or after the first
    epoch (an absolute ``checkpoint.dir`` that cannot be made: its config and metrics left behind).
    Checks only; nothing is created. Relative checkpoint dirs live in the run directory, checked
    when it is made."""
    ck = cfg.checkpoint
    resume = ck.get("resume")
    if resume and resume != "auto" and not os.path.exists(str(resume)):
        raise ValueError(f"--resume {str(resume)!r}: no such checkpoint or run directory")
    directory = ck.get("dir")
    if ck.enabled and ck.on_error == "stop" and directory and os.path.isabs(directory):
        problem = _cannot_make_files_under(directory)
        if problem:
            raise ValueError(f"checkpoint.dir {directory!r} cannot hold checkpoints: {problem} (checkpoint.on_error "
                             "= \"stop\"; set it to \"continue\" to train on without checkpoints)")


def _cannot_make_files_under(directory: str) -> str | None:
    """Why files could not be written under ``directory`` (made if missing), or None."""
    p = os.path.abspath(directory)
    while not os.path.lexists(p) and os.path.dirname(p) != p:
        p = os.path.dirname(p)
    if not os.path.isdir(p):
        return f"{p!r} is not a directory"
    if not os.access(p, os.W_OK | os.X_OK):
        return f"{p!r} is not writable"
    return None


def _finished_without_checkpoint(path, cfg) -> str | None:
    """Why ``--resume auto`` must not go on in ``path``: it holds a finished run's results and no checkpoint
    (checkpointing was off, or they were deleted), so "a fresh start" would train it again and overwrite
    them. None when it may."""
    if _as_dict(cfg.checkpoint).get("resume") != "auto":
        return None
    results = [n for n in (rd.MODEL_WEIGHTS, rd.SUMMARY) if os.path.exists(os.path.join(str(path), n))]
    if not results or has_checkpoint(path, cfg, valid=True):
        return None  # (a run stopped before its first checkpoint: nothing finished to lose, it starts over)
    return (f"--resume auto: run directory {str(path)!r} holds a finished run ({', '.join(results)}) and no "
            f"valid checkpoint to continue from; training it again from the start would overwrite its results "
            f"(choose another --out, or name a checkpoint with --resume PATH)")


def has_checkpoint(path, cfg, valid: bool = False) -> bool:
    """Whether the run in ``path`` (config ``cfg``) has left a checkpoint (in its ``checkpoint.dir``);
    ``valid``: one whose checksums verify (newest first, until one does)."""
    from .callbacks.checkpoint_setup import checkpoint_dir
    from .checkpoint import list_checkpoints, verify_checkpoint

    found = list_checkpoints(checkpoint_dir(path, _as_dict(cfg.checkpoint)))
    return any(not verify_checkpoint(c.path) for c in reversed(found)) if valid else bool(found)


def _train(job, path):
    from distnn.train.config import dump_config

    comm, trainer = job.comm, job.trainer
    if comm.rank == 0:
        log.info("run directory %s", path)
        log.info("%s; %d rank%s, global batch %d (%d per rank), %d steps per epoch", job.splits.summary(),
                 comm.size, "s" if comm.size > 1 else "", trainer.batch_size, trainer.local_batch,
                 trainer.steps_per_epoch)
    trainer.callbacks.append(MetricsLogger(path))
    if job.cfg.run.plots:
        ranks = f"{comm.size} rank" + ("s" if comm.size > 1 else "")
        trainer.callbacks.append(PlotCurves(path, title=f"{job.config_name} ({ranks})"))
    # Checkpoints (the last callback), SIGTERM/SIGUSR1 preemption, the non-finite policy; resume (collective).
    from .callbacks.checkpoint_setup import attach, extra_files_for

    attach(trainer, path, job.cfg.checkpoint, nonfinite=job.cfg.train.nonfinite,
           max_nonfinite=job.cfg.train.max_nonfinite, extra_files=extra_files_for(job.model_meta(), dump_config(job.cfg)))
    if comm.rank == 0:  # after a resume was accepted: a refused one leaves the run's config.toml as it was
        rd.write_text(os.path.join(path, rd.CONFIG), dump_config(job.cfg))
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
        "accumulation_steps": trainer.accumulation_steps, "global_steps": trainer.state.global_step,
        "skipped_steps": trainer.state.skipped_steps,  # non-finite steps skipped (train.nonfinite = "skip")
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


# evaluate/predict live in distnn.train.inference; re-exported for callers of this module
from .inference import describe_datasets, evaluate_run, predict_proba, predict_run  # noqa: E402,F401
