"""Phase 1 of a job: everything one rank needs to train, built from a config.

:class:`Job` loads the data (checked against the model's outputs), builds the
transforms, the model (on its device), the optimizer, the LR schedules
(:func:`~.schedule_setup.build_schedule`, in :mod:`.schedule_setup`) and the
:class:`~distnn.train.trainer.Trainer` with its callbacks, writing nothing.
Running the job (the agreed errors, the run directory, training and the
results) is :mod:`distnn.train.job`'s, which re-exports :class:`Job` and
:func:`build_schedule`.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np

import distnn
from distnn.nn.module import evaluating

from .callbacks import EarlyStopping, ProgressBar
from .host_checks import data_path_key, defer
from .schedule_setup import build_schedule  # (re-exported: importable from here as before)
from .trainer import Trainer


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


def _tag_config_keys(error: ValueError, cfg, about=(), unnamed=()) -> None:
    """Add to ``error``'s message which of the config keys it names came from --set, as the config's own
    checks say it (e.g. the trainer's "data.batch_size 700 is larger than the 600 training samples: with
    data.drop_last = true ...", found once the data is loaded); of ``about`` too, keys every error there is
    about (a resume's: ``checkpoint.resume``), and of ``unnamed`` when it names no key (a data file's "not
    found": ``data.path``). Once: an error tagged already is left as it is."""
    if getattr(error, "_keys_tagged", False) or not hasattr(cfg, "tag_message"):
        return
    if len(error.args) == 1 and isinstance(error.args[0], str):
        message = error.args[0]
        keys = [*cfg.named_keys(message), *about]
        error.args = (message + cfg.origins_tag(keys or unnamed),)
        error._keys_tagged = True


@contextlib.contextmanager
def tag_config_errors(cfg, about=(), unnamed=()):
    """Within it, a ValueError is tagged (:func:`_tag_config_keys`) before it goes on."""
    try:
        yield
    except ValueError as e:
        _tag_config_keys(e, cfg, about, unnamed)
        raise


def data_keys(cfg) -> tuple:
    """The key naming the data file a config reads (``data.path``, or ``data.name`` for a file named
    there), as a tuple: what a data file's own error is about."""
    found = data_path_key(_as_dict(cfg.data))
    return (found[0],) if found else ()


# ------------------------------------------------------------------ the setup
class Job:
    """Everything one rank needs to train, built from a config (phase 1: nothing is written)."""

    def __init__(self, config, overrides, comm, quiet=False, cfg=None):
        from distnn.data.datasets import as_token_ids
        from distnn.train.config import load_config
        from distnn.train.config_object import quiet_config_warnings
        from distnn.train.ensemble import member_splits

        self.comm = comm
        if cfg is None:  # (else an ensemble member's; a simulated rank other than 0 loads it quietly)
            with quiet_config_warnings(comm.rank != 0):
                cfg = load_config(config, overrides)
        self.cfg = cfg
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
        # A split key the data files' own splits leave unused is refused (MNIST's t10k files and a
        # test_fraction), but not on a resume: a run from before the refusal goes on as it trained.
        resuming = bool(_as_dict(self.cfg.checkpoint).get("resume"))
        with tag_config_errors(self.cfg, unnamed=data_keys(self.cfg)):  # ("data file '...' not found": data.path's)
            return load_dataset(data, check_split_keys=not resuming)

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
            vocab = int(self.splits.meta["vocab_size"])
            if "vocab_size" not in spec and spec.get("input_size") is not None:
                # (the model's own refusal named a vocab_size the config never gave: "or set vocab_size";
                # an explicit model.vocab_size = none reads the ids as features: input_size is its own)
                raise ValueError(f"model.input_size ({spec['input_size']!r}) is for feature inputs, but dataset "
                                 f"'{self.splits.name}' holds tokens (ids 0..{vocab - 1}), which model '{name}' "
                                 f"embeds (vocab_size = {vocab}, taken from the data): remove model.input_size")
            spec.setdefault("vocab_size", vocab)
        distnn.manual_seed(int(self.cfg.run.seed))  # identical initial weights on every rank
        model = build_model(name, **spec)
        self._check_outputs_fit_targets(model, name)
        run = self.cfg.run
        if run.dtype == "float64":
            model.to(np.float64)
        device = run.device
        on_gpu = device in ("gpu", "auto") and gpu_available()
        # (a check on a login node notes it and builds on the CPU: the job's nodes may have the GPU)
        if device == "gpu" and not on_gpu and not defer("run.device = 'gpu': no GPU is usable here (cupy missing "
                                                        "or no device)"):
            raise ValueError("run.device is 'gpu' but no GPU is usable here (cupy missing or no device); "
                             "use run.device = 'cpu' or 'auto'")
        if on_gpu:
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
        rng = distnn.random.get_state()
        try:
            with evaluating(model), distnn.no_grad():
                out = model(distnn.Tensor(x))
        except Exception:  # (a model that cannot read these inputs says so itself, at the first step)
            return
        finally:
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
        wd = float(o.get("weight_decay") or 0.0)  # (None: an optimizer without weight decay, rprop)
        adaptive = name in ("lars", "lamb")
        if o.no_decay_bias_norm and (wd or adaptive):
            # No decay on biases and norm weights; LARS/LAMB (You et al.) also leave them out of the trust
            # ratio, with or without weight decay, so for those the groups are built even when wd is 0.
            params = optim.param_groups_no_decay(self.model, wd, {"layer_adaptation": False} if adaptive else None)
        # (each optimizer's own keys: config_checks.OPTIMIZER_OPTIONS, which lists them for the config's checks)
        common = {"lr": float(o.lr), "weight_decay": wd}
        if name in ("adamax", "nadam", "radam"):
            extra = {"nadam": {"momentum_decay": o.momentum_decay}}.get(name, {})
            if name != "adamax":
                extra["decoupled_weight_decay"] = o.decoupled_weight_decay
            cls = {"adamax": optim.Adamax, "nadam": optim.NAdam, "radam": optim.RAdam}[name]
            return cls(params, betas=tuple(o.betas), eps=o.eps, **extra, **common)
        if name == "adadelta":
            return optim.Adadelta(params, rho=o.rho, eps=o.eps, **common)
        if name == "rprop":  # (no weight decay: the config's checks refuse one)
            return optim.Rprop(params, lr=common["lr"], etas=tuple(o.etas), step_sizes=tuple(o.step_sizes))
        if name == "asgd":
            return optim.ASGD(params, lambd=o.lambd, t0=o.t0, **common)
        if name == "adafactor":  # (its eps, a pair, stays PyTorch's: OPTIMIZER_NAMESAKES)
            return optim.Adafactor(params, beta2_decay=o.beta2_decay, d=o.d, **common)
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
            return optim.LARS(params, momentum=o.momentum, nesterov=o.nesterov, eps=o.eps, **common)
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
        if dist.compression == "powersgd":
            from distnn.distributed.powersgd import PowerSGDState

            ddp["compression"] = PowerSGDState(**_as_dict(dist.powersgd))
        trainer = Trainer(self.model, self.optimizer, self.splits.train, self.splits.val, comm=self.comm,
                          batch_size=d.batch_size, epochs=t.epochs, callbacks=callbacks, transform=self.train_tf,
                          eval_transform=self.eval_tf, clip_grad_norm=t.grad_clip or None,
                          accumulation_steps=t.grad_accumulation, seed=cfg.run.seed, shuffle=d.shuffle,
                          drop_last=d.drop_last, eval_batch_size=d.eval_batch_size,
                          eval_every=t.eval_every, max_steps=t.get("max_steps"), label_smoothing=t.label_smoothing,
                          l1=float(cfg.optimizer.l1), l1_params=self._l1_params(),
                          max_norm=float(cfg.optimizer.max_norm),
                          adversarial_eps=t.adversarial_eps, adversarial_weight=t.adversarial_weight,
                          monitor=es.monitor if es.enabled else "val_loss", ddp_kwargs=ddp,
                          precision=t.precision, grad_scaler=self._grad_scaler())
        # LR schedules go first: EarlyStopping and the progress line then see the epoch's final state.
        for i, cb in enumerate(build_schedule(cfg, self.optimizer, trainer.steps_per_epoch)):
            trainer.callbacks.callbacks.insert(i, cb)
        return trainer

    def _grad_scaler(self):
        """The loss scaler of precision '16-mixed', with [train.grad_scaler]'s settings (None with '32': those
        keys are unused then, and the config warns of one set off its default)."""
        if self.cfg.train.precision != "16-mixed":
            return None
        from distnn.amp import GradScaler
        from distnn.backend import get_array_module

        params = list(self.model.parameters())
        device = "cpu" if not params or get_array_module(params[0].data) is np else "cuda"
        return GradScaler(device, **_as_dict(self.cfg.train.grad_scaler))

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


def _json_safe(obj):
    import json

    try:
        json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
        return obj
    except (TypeError, ValueError):
        return {}
