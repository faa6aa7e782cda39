"""Names a config writer may reach for that are not the config's own, each with where it leads.

``ALIASES``: other tools' names (and common misspellings) of a key, to suggest distnn's key.
``LIBRARY_ONLY``: values distnn has only as library API, or not at all, with why a config cannot choose them.
Kept apart from the table of keys (``config_schema.py``, which re-exports both) as they are about the words
around the schema, for the error messages, not about the keys.
"""
from __future__ import annotations


#: Values a config cannot choose, and why (the error of ``optimizer.name = "lbfgs"`` says it): distnn.optim's
#: library-only names, PyTorch Lightning's precisions that distnn has not (numpy has no bfloat16), and numpy
#: dtypes that are no run dtype
LIBRARY_ONLY = {
    "train.precision": {
        **{p: "numpy and cupy have no bfloat16; use '16-mixed' (float16 autocast with loss scaling)"
           for p in ("bf16-mixed", "bf16", "bf16-true")},
        **{p: "distnn keeps float32 master weights; use '16-mixed' (float16 autocast with loss scaling)"
           for p in ("16", "16-true", "half")},
        **{p: "set the parameters' dtype instead: run.dtype = 'float64' with precision '32'"
           for p in ("64", "64-true", "double")},
        "32-true": "distnn's name for it is '32'"},
    # (real dtypes that are no parameter dtype: else the "did you mean" offers 'float64' for 'float16')
    "run.dtype": {
        **{d: "float16 parameters lose the small updates of training and their gradients overflow; "
              "for float16 compute set train.precision = '16-mixed': float16 autocast over float32 master "
              "weights, with loss scaling" for d in ("float16", "half", "f2", "fp16")},
        **{d: "numpy and cupy have no bfloat16; for 16-bit compute set train.precision = '16-mixed': "
              "float16 autocast over float32 master weights" for d in ("bfloat16", "bf16")},
        **{d: "distnn computes in float32 or float64: cupy has no extended precision"
           for d in ("float128", "longdouble", "f16")}},
    "optimizer.name": {"lbfgs": "distnn.optim.LBFGS is library API only: its step(closure) re-evaluates the loss "
                                "through a closure, and distnn train steps without one"},
    "schedule.name": {name: f"distnn.optim.lr_scheduler.{cls} is library API only: it takes "
                            f"{what}, which a config cannot give"
                      for name, cls, what in (("multiplicative", "MultiplicativeLR", "a function"),
                                              ("chained", "ChainedScheduler", "a list of schedulers"))},
}

#: Common misspellings / names from other tools, to suggest the right key.
ALIASES = {
    "learning_rate": "optimizer.lr", "lr": "optimizer.lr", "wd": "optimizer.weight_decay",
    "weightdecay": "optimizer.weight_decay", "batchsize": "data.batch_size", "batch": "data.batch_size",
    "batch_size": "data.batch_size", "epoch": "train.epochs", "epochs": "train.epochs", "seed": "run.seed",
    "clip_grad_norm": "train.grad_clip", "max_grad_norm": "train.grad_clip", "gradient_clip": "train.grad_clip",
    "accumulation_steps": "train.grad_accumulation", "grad_accum": "train.grad_accumulation",
    "restore_best_weights": "early_stopping.restore_best", "optim": "optimizer", "scheduler": "schedule",
    "lr_schedule": "schedule", "output_dir": "run.out_dir", "outdir": "run.out_dir", "dataset": "data",
    "warmup": "schedule.warmup_steps", "step_size": "schedule.step_size",
    "maxnorm": "optimizer.max_norm", "max_epochs": "train.epochs", "num_epochs": "train.epochs",
    "rotation": "data.augment.rotate", "precision": "train.precision", "amp": "train.precision",
    "mixed_precision": "train.precision",
}
