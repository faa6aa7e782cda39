"""The config schema: every key of a distnn run configuration, in one table.

Each entry of :data:`SCHEMA` maps a dotted key (``optimizer.lr``) to a
:class:`Key`: its type, default, one-line meaning, and optional bounds or
choices. ``distnn.train.config`` validates TOML files against it; a new
feature adds its keys here and nowhere else. ``describe_schema()`` prints the
whole table. Tables in :data:`OPEN_TABLES` (``model``) also accept keys not
listed (the model's keyword arguments); ``[data]`` also accepts the chosen
dataset's own options (checked in ``config.py`` against ``distnn.data``).

:class:`Key` and the words for its types and bounds are ``config_key.py``; the names a config may reach for
that are not its own (``ALIASES``, ``LIBRARY_ONLY``) are ``config_other_names.py``; all are importable from
here as before.
"""
from __future__ import annotations

from .config_key import TYPE_WORDS, Key, bound_text  # noqa: F401  (importable from here as before)
from .config_other_names import ALIASES, LIBRARY_ONLY  # noqa: F401  (importable from here as before)


def _k(type_, default, doc, *bounds, choices=None, optional=False, length=None, allow_inf=False, display=False):
    return Key(type_, default, doc, tuple(bounds), tuple(choices) if choices else None, optional, length, allow_inf,
               display)


POS = (">", 0)
NONNEG = (">=", 0)
MONITORS = ("val_loss", "val_accuracy", "train_loss", "train_accuracy")
MODES = ("auto", "min", "max")

SCHEMA: dict[str, Key] = {
    # --- top level
    "name": _k("str", "", "config name (default: the built-in name or the file's stem)"),
    "description": _k("str", "", "one-line description"),
    # --- run
    "run.seed": _k("int", 0, "seed of weight init, data order, augmentation and dropout", NONNEG),
    "run.out_dir": _k("str", "runs", "parent directory of run directories"),
    "run.run_name": _k("str", None, "run directory name: the run goes to run.out_dir/NAME, so one name, no path "
                       "(--out DIR puts a run elsewhere); default: config name + timestamp", optional=True),
    "run.device": _k("str", "auto", "where to compute: auto (GPU when cupy sees one), cpu, gpu",
                     choices=("auto", "cpu", "gpu")),
    "run.dtype": _k("str", "float32", "floating-point type of parameters and inputs",
                    choices=("float32", "float64")),
    "run.quiet": _k("bool", False, "no progress bars: one log line per epoch (as --quiet, which sets it)",
                    display=True),
    "run.plots": _k("bool", True, "write curves.png (needs matplotlib)", display=True),
    "run.profile": _k("str", None, "profile a few training steps (distnn.profiler) into this directory: every "
                      "rank writes rank-R.json (a Chrome trace), rank 0 summary-rank0.txt (the ops by self CPU "
                      "time, collectives included); made absolute (from the working directory) when the config is "
                      "loaded; unset: no profiling (as --profile DIR)", optional=True, display=True),
    "run.profile_steps": _k("list[int]", [1, 1, 3], "[wait, warmup, active]: run.profile skips wait steps, runs "
                            "warmup steps unrecorded, records the next active (>= 1) steps, then stops (as "
                            "--profile-steps W,U,A)", NONNEG, length=3, display=True),
    # --- data
    "data.name": _k("str", "digits", "dataset name (distnn datasets lists them) or a .npz/.csv path"),
    "data.path": _k("str", None, "file or directory for file-based datasets (mnist, npz, csv, charlm); "
                    "made absolute (from the working directory) when the config is loaded", optional=True),
    "data.batch_size": _k("int", 64, "GLOBAL samples per optimizer step (split evenly over ranks)", (">=", 1)),
    "data.eval_batch_size": _k("int", 512, "samples per evaluation batch (ranks take whole batches in turn, "
                               "so metrics match 1 rank bitwise)", (">=", 1)),
    "data.val_fraction": _k("float", 0.1, "fraction of samples held out for validation", NONNEG, ("<", 1)),
    "data.test_fraction": _k("float", 0.2, "fraction of samples held out for the final test", NONNEG, ("<", 1)),
    "data.split_seed": _k("int", 0, "seed of the fixed stratified split (independent of run.seed; a dataset that "
                          "brings its own split, xor or charlm, refuses one)", NONNEG),
    "data.standardize": _k("str", "feature", "statistics fitted on the training split: per feature, per "
                           "channel, one global mean/std, or none",
                           choices=("feature", "channel", "global", "none")),
    "data.shuffle": _k("bool", True, "reshuffle the training data every epoch"),
    "data.drop_last": _k("bool", False, "drop the last incomplete training batch of each epoch"),
    "data.augment.shift": _k("int", 0, "random image shifts of up to this many pixels (0 = off)", NONNEG),
    "data.augment.rotate": _k("float", 0.0, "random rotations of up to this many degrees (0 = off)",
                              NONNEG, ("<=", 180)),
    "data.augment.noise": _k("float", 0.0, "std of gaussian noise added after standardization (0 = off)",
                             NONNEG),
    "data.augment.flip": _k("float", 0.0, "probability of mirroring an image left-right (0 = off; not "
                            "label-preserving for digits or letters)", NONNEG, ("<=", 1)),
    "data.augment.brightness": _k("float", 0.0, "colour jitter: pixels times a factor drawn from "
                                  "[max(0, 1 - b), 1 + b] per image (0 = off)", NONNEG),
    "data.augment.contrast": _k("float", 0.0, "colour jitter: the image blended with its mean grey by a factor "
                                "drawn from [max(0, 1 - c), 1 + c] per image (0 = off)", NONNEG),
    # --- model (open: other keys are the model's keyword arguments)
    "model.name": _k("str", "mlp", "model name in distnn.models (mlp, lenet, resnet, lstm, transformer, charlm)"),
    "model.init": _k("str", "default", "initialisation of the Linear and Conv weights (distnn.nn.init; biases "
                     "zero): the layers' own, kaiming (fan_in, for ReLUs) or xavier; drawn from run.seed",
                     choices=("default", "kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal")),
    # --- optimizer
    "optimizer.name": _k("str", "sgd", "optimizer (distnn.optim.LBFGS, which steps through a closure, is library "
                         "API only)", choices=("sgd", "adam", "adamw", "rmsprop", "adagrad",
                                                            "lars", "lamb", "adamax", "nadam", "radam",
                                                            "adadelta", "rprop", "asgd", "adafactor")),
    "optimizer.lr": _k("float", None, "base learning rate (before linear scaling)", POS, optional=True),
    # (lr, momentum, weight_decay and eps: unset, the chosen optimizer's own default; see OPTIMIZER_OWN_DEFAULTS)
    "optimizer.momentum": _k("float", None, "momentum (sgd, rmsprop, lars)", NONNEG, ("<", 1), optional=True),
    "optimizer.nesterov": _k("bool", False, "Nesterov momentum (sgd, lars; needs momentum > 0). An option the chosen "
                               "optimizer does not take is an error (in the config file or by --set); when --set "
                               "gives optimizer.name, the config file's go back to their defaults"),
    "optimizer.weight_decay": _k("float", None, "L2 weight decay (decoupled for adamw and adafactor, as PyTorch's)", NONNEG, optional=True),
    "optimizer.l1": _k("float", 0.0, "L1 regularization: adds l1 * sign(w) to each gradient (the gradient of "
                       "l1 * sum |w|; the logged loss leaves it out); no_decay_bias_norm exempts biases and norm "
                       "weights", NONNEG),
    "optimizer.max_norm": _k("float", 0.0, "max-norm constraint: after each step, rescale each unit's incoming "
                             "weight vector (a Linear row, a Conv filter) whose L2 norm exceeds this back to it; "
                             "weights only, never biases (0 = off)", NONNEG),
    "optimizer.betas": _k("list[float]", [0.9, 0.999], "(beta1, beta2): the decay rates of the moment averages (adam, "
                          "adamw, lamb, adamax, nadam, radam)", NONNEG, ("<", 1), length=2),
    "optimizer.eps": _k("float", None, "denominator epsilon (adam, adamw, rmsprop, adagrad, lamb, adamax, "
                        "nadam, radam, adadelta; lars: of its trust ratio)", POS, optional=True),
    "optimizer.alpha": _k("float", 0.99, "smoothing constant of the squared-gradient average (rmsprop)", POS, ("<", 1)),
    "optimizer.rho": _k("float", 0.9, "decay rate of the running averages of squared gradients and updates "
                        "(adadelta)", NONNEG, ("<=", 1)),
    "optimizer.momentum_decay": _k("float", 4e-3, "decay of the momentum schedule (nadam)", NONNEG),
    "optimizer.decoupled_weight_decay": _k("bool", False, "decay the weights directly, w *= 1 - lr * weight_decay, "
                                           "instead of adding weight_decay * w to the gradient (nadam, radam)"),
    "optimizer.etas": _k("list[float]", [0.5, 1.2], "(etaminus, etaplus): the step size's factor after a sign "
                         "change and after none, 0 < etaminus < 1 < etaplus (rprop)", POS, length=2),
    "optimizer.step_sizes": _k("list[float]", [1e-6, 50.0], "(min, max): bounds of the step size (rprop)", NONNEG,
                               length=2),
    "optimizer.lambd": _k("float", 1e-4, "decay term of the rate and the weights (asgd)", NONNEG),
    "optimizer.t0": _k("float", 1e6, "the step from which the iterates are averaged (asgd)", NONNEG),
    "optimizer.beta2_decay": _k("float", -0.8, "the decay rate of the squared-gradient averages: step t weighs "
                                "the new gradient by t ** beta2_decay (adafactor)", ("<=", 0)),
    "optimizer.d": _k("float", 1.0, "clipping threshold: an update whose RMS exceeds d is scaled down to it "
                      "(adafactor)", (">=", 1)),
    "optimizer.no_decay_bias_norm": _k("bool", True, "exempt biases and normalization weights from weight decay "
                                             "and the l1 penalty (and, for lars/lamb, from layer adaptation)"),
    # --- schedule
    "schedule.name": _k("str", "constant", "learning-rate schedule. An option (step_size, gamma, ...) the chosen "
                        "schedule does not take is an error (in the config file or by --set); when --set gives "
                        "schedule.name, the config file's go back to their defaults. MultiplicativeLR and "
                        "ChainedScheduler (a function, a list of schedulers) are library API only "
                        "(distnn.optim.lr_scheduler)",
                        choices=("constant", "step", "multistep", "exponential", "cosine", "plateau", "onecycle",
                                 "polynomial", "cyclic", "constant_factor")),
    "schedule.interval": _k("str", "epoch", "advance the schedule every epoch or every optimizer step (constant, "
                            "plateau and onecycle ignore it: 'step' is refused there)",
                            choices=("epoch", "step")),
    "schedule.warmup_steps": _k("int", 0, "linear warmup over this many optimizer steps (0 = none)", NONNEG),
    "schedule.warmup_epochs": _k("int", 0, "linear warmup over this many epochs (alternative to warmup_steps)",
                                 NONNEG),
    "schedule.warmup_start_factor": _k("float", 0.1, "warmup starts at lr * this factor", POS, ("<=", 1)),
    "schedule.step_size": _k("int", None, "step: decay every step_size intervals", (">=", 1), optional=True),
    "schedule.gamma": _k("float", None, "step/multistep/exponential decay factor; cyclic: the amplitude's factor per "
                         "optimizer step with cycle_mode exp_range (given with another cycle_mode: refused)", POS, ("<=", 1), optional=True),
    # (gamma and factor: unset, the chosen schedule's own default; see SCHEDULE_OWN_DEFAULTS)
    "schedule.milestones": _k("list[int]", [], "multistep: intervals at which to decay", (">=", 1)),
    "schedule.T_max": _k("int", None, "cosine: intervals of one half-period (default: the whole run after "
                         "warmup: train.epochs, or train.max_steps when it ends the run sooner)", (">=", 1),
                         optional=True),
    "schedule.eta_min": _k("float", 0.0, "cosine: final learning rate", NONNEG),
    "schedule.max_lr": _k("float", None, "onecycle: peak learning rate (default: optimizer.lr); cyclic: the top of "
                          "each cycle (required; optimizer.lr is its bottom)", POS, optional=True),
    "schedule.power": _k("float", 1.0, "polynomial: lr * (1 - t / T) ** power over the whole run after warmup",
                         POS),
    "schedule.step_size_up": _k("int", None, "cyclic: intervals from the bottom rate to the top (required)",
                                (">=", 1), optional=True),
    "schedule.step_size_down": _k("int", None, "cyclic: intervals from the top rate back down (default: "
                                  "step_size_up)", NONNEG, optional=True),
    "schedule.cycle_mode": _k("str", "triangular", "cyclic: the amplitude per cycle: triangular (the same), "
                              "triangular2 (halved each cycle), exp_range (times gamma every update); "
                              "momentum or beta1 cycles inversely from 0.9 to 0.8 where the optimizer has one",
                              choices=("triangular", "triangular2", "exp_range")),
    "schedule.monitor": _k("str", "val_loss", "plateau: metric watched", choices=MONITORS),
    "schedule.mode": _k("str", "auto", "plateau: min or max (auto: from the metric name)", choices=MODES),
    "schedule.patience": _k("int", 5, "plateau: validations without improvement before decaying (one per "
                            "train.eval_every epochs)", NONNEG),
    "schedule.factor": _k("float", None, "plateau: decay factor; constant_factor (ConstantLR): lr * factor for the "
                          "first total_iters intervals, then lr", POS, ("<", 1), optional=True),
    "schedule.total_iters": _k("int", 5, "constant_factor: intervals at lr * factor", (">=", 1)),
    "schedule.threshold": _k("float", 1e-4, "plateau: relative improvement that counts", NONNEG),
    "schedule.cooldown": _k("int", 0, "plateau: epochs to wait after a decay", NONNEG),
    "schedule.min_lr": _k("float", 0.0, "plateau: lower bound of the learning rate", NONNEG),
    "schedule.linear_scaling": _k("bool", False, "scale lr by data.batch_size / reference_batch (Goyal et al.)"),
    "schedule.reference_batch": _k("int", 256, "global batch at which optimizer.lr was tuned", (">=", 1)),
    # --- train
    "train.epochs": _k("int", 20, "number of passes over the training data", (">=", 1)),
    "train.max_steps": _k("int", None, "stop after this many optimizer steps (schedules that span the whole run "
                          "end there too, and that last epoch is validated; a run resumed with a larger "
                          "max_steps from its end checkpoint (checkpoint.save_last) goes on with the cut epoch)", (">=", 1), optional=True),
    "train.grad_clip": _k("float", 0.0, "clip the global gradient L2 norm to this (0 = off)", NONNEG),
    "train.grad_accumulation": _k("int", 1, "micro-batches per optimizer step (per-rank batch must divide)",
                                  (">=", 1)),
    "train.label_smoothing": _k("float", 0.0, "cross-entropy label smoothing of the training loss (val_loss and "
                                "the test loss are plain cross-entropy)", NONNEG, ("<", 1)),
    "train.adversarial_eps": _k("float", 0.0, "adversarial training (Goodfellow et al.): each step also trains on "
                                "FGSM inputs x + eps * sign(grad_x loss), x after the data transforms, so eps is "
                                "in standardized units (0 = off; needs real-valued inputs)", NONNEG),
    "train.adversarial_weight": _k("float", 0.5, "adversarial training: the clean loss's share w of the loss "
                                   "w * J(x) + (1 - w) * J(x_adv)", NONNEG, ("<=", 1)),
    "train.log_every": _k("int", 0, "log every N steps rank 0's loss at that step, on its shard of the batch "
                                     "(no collective; 0 = once per epoch, whose line has the all-rank mean)", NONNEG,
                          display=True),
    "train.eval_every": _k("int", 1, "evaluate on the validation split every N epochs (and the last epoch, "
                           "as a report that early stopping and plateau schedules skip; it scores the final "
                           "weights: at the end, better, they are the run's best and its best checkpoint)",
                           (">=", 1)),
    "train.nonfinite": _k("str", "skip", "a NaN/inf loss or gradient: skip the step on every rank, or stop",
                          choices=("skip", "error")),
    "train.max_nonfinite": _k("int", 10, "stop after this many consecutive skipped steps (with nonfinite = 'skip')",
                               (">=", 1)),
    "train.precision": _k("str", "32", "PyTorch Lightning's precision: '32' (the parameters' dtype throughout), "
                          "'16-mixed' (the training forward pass and loss under float16 autocast, float32 "
                          "master weights, dynamic loss scaling: a step whose gradients overflow is skipped by "
                          "the scaler, not counted by train.nonfinite; needs run.dtype = 'float32'); "
                          "'bf16-mixed' is refused (numpy has no bfloat16)", choices=("32", "16-mixed")),
    # (torch.amp.GradScaler's arguments and defaults; Lightning's "16-mixed" builds one with them)
    "train.grad_scaler.init_scale": _k("float", 65536.0, "16-mixed: the loss scale of the first step (2**16)", POS),
    "train.grad_scaler.growth_factor": _k("float", 2.0, "16-mixed: the scale's factor after growth_interval clean "
                                          "steps in a row", (">", 1)),
    "train.grad_scaler.backoff_factor": _k("float", 0.5, "16-mixed: the scale's factor after a step whose "
                                           "gradients overflow (skipped)", (">", 0), ("<", 1)),
    "train.grad_scaler.growth_interval": _k("int", 2000, "16-mixed: clean steps in a row before the scale grows "
                                            "(a resume continues the checkpoint's scaler: its scale, count and "
                                            "these settings)", (">=", 1)),
    # --- early stopping
    "early_stopping.enabled": _k("bool", False, "stop when the monitored metric stops improving (off: the other "
                                "early_stopping keys are unused, and a config that sets one warns)"),
    "early_stopping.monitor": _k("str", "val_loss", "metric watched", choices=MONITORS),
    "early_stopping.mode": _k("str", "auto", "min or max (auto: from the metric name)", choices=MODES),
    "early_stopping.patience": _k("int", 10, "evaluations without improvement before stopping", (">=", 1)),
    "early_stopping.min_delta": _k("float", 0.0, "smallest improvement that resets patience (any improvement "
                                   "still makes the best epoch)", NONNEG),
    "early_stopping.restore_best": _k("bool", True, "end with the weights of the best epoch (any improvement: "
                                      "summary.json's best_epoch)"),
    # --- checkpoint
    "checkpoint.enabled": _k("bool", True, "write checkpoints (off: the keys of how they are written are unused, and a "
                          "config that sets one warns; dir and resume still say where a resume reads)"),
    "checkpoint.dir": _k("str", None, "checkpoint directory (default: <run dir>/checkpoints); a relative path is "
                          "relative to the run directory, not to the working directory", optional=True),
    "checkpoint.every_steps": _k("int", 0, "also save every N optimizer steps (0 = off)", NONNEG),
    "checkpoint.every_epochs": _k("int", 1, "save every N epochs (0 = off)", NONNEG),
    "checkpoint.every_seconds": _k("float", 0.0, "also save once this many seconds have passed since the last "
                                   "save, at the next step (rank 0's clock; 0 = off)", NONNEG),
    "checkpoint.keep_last": _k("int", 2, "keep this many most recent checkpoints (0 = all)", NONNEG),
    "checkpoint.keep_best": _k("bool", True, "also save whenever checkpoint.monitor improves, and keep that best checkpoint"),
    "checkpoint.save_last": _k("bool", True, "also save the state training ends in (the last epoch, max_steps or "
                               "an early stop) when that step has no checkpoint yet, so --resume auto with more "
                               "epochs continues from the end"),
    "checkpoint.monitor": _k("str", "val_loss", "metric that picks the best checkpoint", choices=MONITORS),
    "checkpoint.mode": _k("str", "auto", "min or max (auto: from the metric name)", choices=MODES),
    "checkpoint.resume": _k("str", None, "resume from 'auto' (latest in the run dir) or a checkpoint path",
                            optional=True),
    "checkpoint.on_error": _k("str", "stop", "a checkpoint that cannot be written: stop the job, or train on",
                              choices=("stop", "continue")),
    "checkpoint.async_save": _k("bool", False, "write checkpoint files in a background thread on rank 0 while "
                                "training continues (the ranks agree on the outcome a step or two after the "
                                "write ends, not before training goes on)"),
    # --- ensemble
    "ensemble.members": _k("int", 1, "number of independently trained members (1 = no ensemble)", (">=", 1)),
    "ensemble.vary": _k("list[str]", ["seed"], "what differs between members: seed, bootstrap",
                        choices=("seed", "bootstrap")),
    "ensemble.overrides": _k("list[table]", [], "per-member overrides: a list of {\"dotted.key\" = value} tables"),
    "ensemble.member": _k("int", None, "index of the member this config trains (set by the ensemble runner)",
                          NONNEG, optional=True),
    # --- distributed
    "distributed.bucket_mb": _k("float", 25.0, "gradient bucket size in MiB for overlapped allreduce", POS),
    "distributed.compression": _k("str", "none", "gradient compression on the wire: fp16/bf16 values, or powersgd's "
                                  "low-rank approximations (then on one rank too; [distributed.powersgd])",
                                  choices=("none", "fp16", "bf16", "powersgd")),
    # torch's PowerSGDState arguments and defaults (distnn.distributed.PowerSGDState)
    "distributed.powersgd.matrix_approximation_rank": _k("int", 1, "powersgd: the rank of each gradient's "
                                                         "approximation", (">=", 1)),
    "distributed.powersgd.start_powerSGD_iter": _k("int", 1000, "powersgd: optimizer steps with plain allreduce "
                                                   "before compression starts", NONNEG),
    "distributed.powersgd.min_compression_rate": _k("float", 2.0, "powersgd: compress a gradient only if its size "
                                                    "over (rows + cols) * rank exceeds this", NONNEG),
    "distributed.powersgd.use_error_feedback": _k("bool", True, "powersgd: carry each rank's compression error "
                                                  "into its next step"),
    "distributed.powersgd.warm_start": _k("bool", True, "powersgd: start each step's power iteration from the "
                                          "last step's Q"),
    "distributed.powersgd.orthogonalization_epsilon": _k("float", 0.0, "powersgd: added to column norms when "
                                                         "orthogonalizing", NONNEG),
    "distributed.powersgd.random_seed": _k("int", 0, "powersgd: seed of Q's first values (the same on every "
                                           "rank)", NONNEG),
    "distributed.check_every": _k("int", 0, "check replicas are identical every N steps (0 = off)", NONNEG),
    # At least a second: below that, ordinary jitter (a slow rank, a checkpoint save) aborts the job.
    # inf means no limit, as DISTNN_COLLECTIVE_TIMEOUT=inf does.
    "distributed.timeout": _k("float", 300.0, "seconds a collective may take before the job is aborted "
                              "(inf = no limit)", (">=", 1), allow_inf=True),
    "distributed.sync_batchnorm": _k("bool", False, "batch-norm statistics over all ranks"),
}

#: [optimizer] keys whose default is the chosen optimizer's own, its constructor's (torch.optim's where PyTorch
#: has the optimizer): Adam's lr 1e-3, Adadelta's 1.0, Adagrad's eps 1e-10, LAMB's 1e-6, LARS's momentum 0.9,
#: AdamW's weight_decay 0.01. One number for all (lr 0.01, eps 1e-8, 0, 0) gave them other defaults than their
#: own (Adadelta, whose lr scales its unit-free step, barely moved). LARS has no lr of its own: 0.01, the one
#: number of before. A resolved config records the value a run used ([defaults.optimizer.NAME], see
#: RECORDED_DEFAULTS), and a run's config.toml from before holds the old number in [optimizer]: it re-runs and
#: resumes as it ran.
OPTIMIZER_OWN_DEFAULTS = ("lr", "momentum", "weight_decay", "eps")
#: [schedule] keys whose default is the chosen schedule's own, PyTorch's: gamma 0.1 for StepLR, MultiStepLR and
#: ExponentialLR but 1.0 for CyclicLR, factor 0.1 for ReduceLROnPlateau but 1/3 for ConstantLR
#: (``schedule_defaults.SCHEDULE_DEFAULTS``). Recorded as the optimizer's are ([defaults.schedule.NAME]), so a
#: re-run with another schedule.name gets that schedule's own; a config.toml from before holds the value in
#: [schedule] and re-runs and resumes with it.
SCHEDULE_OWN_DEFAULTS = ("gamma", "factor")
#: Keys that change only what is shown, never the training (a resume ignores a change of one).
DISPLAY_KEYS = frozenset(k for k, key in SCHEMA.items() if key.display)
#: Keys a resume does not compare with the saved config: how the resume is asked for, and the display keys.
NOT_COMPARED_ON_RESUME = DISPLAY_KEYS | {"checkpoint.resume"}
#: Tables whose other keys are passed through (the model's keyword arguments).
OPEN_TABLES = frozenset({"model"})
#: The top-level table of a run's config.toml that records the model's, the dataset's, the optimizer's and the
#: schedule's defaults the run used: ``[defaults.model.NAME]``, ``[defaults.data.NAME]``,
#: ``[defaults.optimizer.NAME]`` and ``[defaults.schedule.NAME]``. They apply while ``model.name``
#: (``data.name``, ``optimizer.name``, ``schedule.name``) names that model (dataset, optimizer, schedule), and
#: only then: a config re-run with another model gets that model's own.
RECORDED_DEFAULTS = "defaults"
#: Keys the trainer fills from the data; a config must not set them.
MODEL_RESERVED = frozenset({"num_classes", "input_shape", "generator"})

# Every proper prefix of a key is a table: "data", "data.augment", ...
TABLES = list(dict.fromkeys(".".join(k.split(".")[:i]) for k in SCHEMA for i in range(1, k.count(".") + 1)))

#: What each section holds, in a line (``distnn config-keys`` lists them; every table has one).
SECTIONS = {
    "run": "seed, output directory, device, dtype, progress display, plots, profiling",
    "data": "dataset, GLOBAL batch size, split fractions and seed, standardization; plus the chosen dataset's "
            "own options (data.*, see distnn datasets)",
    "data.augment": "random shifts, rotations, flips, brightness/contrast jitter and noise of the training "
                    "inputs",
    "model": "the model's name, its initialisation scheme, plus its keyword arguments (model.*, see distnn.models)",
    "optimizer": "optimizer name, learning rate, momentum, weight decay, L1, max-norm, Adam-family settings",
    "schedule": "learning-rate schedule, warmup, plateau settings, linear scaling",
    "train": "epochs, max steps, gradient clipping and accumulation, label smoothing, logging, evaluation, "
             "non-finite policy, precision (mixed float16)",
    "train.grad_scaler": "the loss scaler of precision '16-mixed' (torch.amp.GradScaler's arguments and defaults)",
    "early_stopping": "stop when a monitored metric stops improving",
    "checkpoint": "when and where to save, what to keep, resuming",
    "ensemble": "members, what varies between them, per-member overrides",
    "distributed": "gradient buckets and compression, replica checks, collective timeout, synchronized batch norm",
    "distributed.powersgd": "options of compression 'powersgd' (torch's PowerSGDState arguments and defaults)",
}


def describe_sections() -> str:
    """The top-level keys (as :func:`describe_schema` gives them) and every section with what it holds."""
    lines = [line for line in describe_schema().splitlines() if "." not in line.split()[0]]
    lines += [f"{'[' + table + ']':<34} {doc}" for table, doc in SECTIONS.items()]  # (the keys' first column)
    return "\n".join(lines)


def describe_schema() -> str:
    """Every key: dotted name, type, default, allowed values, meaning (for ``--help`` screens)."""
    lines = []
    for path, key in SCHEMA.items():
        default = "(unset)" if key.default is None else repr(key.default)
        section, _, name = path.partition(".")
        doc = key.doc
        if section == "optimizer" and name in OPTIMIZER_OWN_DEFAULTS:
            from .optimizer_defaults import optimizer_defaults_text

            default, doc = "(optimizer's)", f"{doc}; default: the optimizer's own ({optimizer_defaults_text(name)})"
        elif section == "schedule" and name in SCHEDULE_OWN_DEFAULTS:
            from .schedule_defaults import schedule_defaults_text

            default, doc = "(schedule's)", f"{doc}; default: the schedule's own ({schedule_defaults_text(name)})"
        allowed = ""
        if key.choices:
            allowed = "{" + "|".join(key.choices) + "}"
        elif key.bounds:
            allowed = bound_text(key.bounds)
        lines.append(f"{path:<34} {key.type:<11} {default:<14} {allowed:<12} {doc}")  # (columns line up)
    lines.append(f"{'model.*':<34} {'any':<11} {'':<14} {'':<12} keyword arguments of the model (see distnn.models; "
                 "'config-keys model.NAME': which models take NAME, their defaults)")
    lines.append(f"{'data.*':<34} {'any':<11} {'':<14} {'':<12} options of the chosen dataset (distnn datasets; "
                 "'config-keys data.NAME': which datasets take NAME)")
    return "\n".join(lines)
