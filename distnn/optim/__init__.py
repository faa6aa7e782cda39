"""Optimizers (``distnn.optim``) with ``torch.optim``'s names, defaults and update formulas.

Every rank of a data-parallel run applies the same step to the same averaged
gradient, so the updates here are deterministic and in place (no per-step
allocation of parameter-sized temporaries). ``lr_scheduler`` holds the rate
schedules; ``scaling`` the linear scaling rule; ``regularization`` L1/L2
penalties and no-decay parameter groups; ``constraints`` the max-norm weight
constraint (``max_norm_``, applied after a step). Gradient clipping is in
``distnn.nn.utils`` (``clip_grad_norm_``, ``clip_grad_value_``), as in PyTorch. ``LBFGS`` steps through a
closure (``opt.step(closure)``): library API only, the trainer steps without one. ``swa_utils`` holds
Stochastic Weight Averaging and EMA of the weights (``AveragedModel``, ``SWALR``, ``update_bn``).
"""
from . import lr_scheduler, swa_utils
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .constraints import max_norm_
from .lamb import LAMB
from .lars import LARS
from .lbfgs import LBFGS
from .muon import Muon
from .nadam import NAdam
from .optimizer import Optimizer, flatten_state, sum_of_squares, unflatten_state
from .radam import RAdam
from .regularization import l1_penalty, l2_penalty, param_groups_no_decay, split_decay_parameters
from .rmsprop import RMSprop
from .rprop import Rprop
from .scaling import global_batch_size, linear_scaling_warmup, scale_lr_, scaled_lr
from .sgd import SGD
from .sparse_adam import SparseAdam

__all__ = [
    "Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "LARS", "LAMB", "Adamax", "NAdam", "RAdam",
    "Adadelta", "Rprop", "ASGD", "Adafactor", "LBFGS", "Muon", "SparseAdam", "lr_scheduler", "swa_utils",
    "l1_penalty", "l2_penalty", "param_groups_no_decay", "split_decay_parameters", "max_norm_",
    "scaled_lr", "scale_lr_", "linear_scaling_warmup", "global_batch_size",
    "flatten_state", "unflatten_state", "sum_of_squares",
]
