"""The reverse-mode autograd engine: Tensor, Function, backward, grad mode; PyTorch's ``torch.autograd``
user API on it: ``grad``, ``backward`` (``inputs=``, ``create_graph=``: double backward through the ops of
:mod:`.derivatives`), ``functional.jacobian``/``vjp``/``hessian``/``hvp``/``vhp``/``jvp``, ``gradcheck``,
``gradgradcheck``, ``detect_anomaly``/``set_detect_anomaly``, ``inference_mode``; ``graph``
(torch.autograd.graph: the Node API, saved-tensor hooks, multi-grad hooks); ``profiler`` (torch's legacy
``torch.autograd.profiler``, loaded on first use)."""
from .tensor import Tensor
from .function import Function
from .engine import sum_to_shape
from .grad_mode import (enable_grad, inference_mode, is_grad_enabled, is_inference_mode_enabled, no_grad,
                        set_grad_enabled)
from .grad_api import backward, grad
from .anomaly import detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled, set_detect_anomaly
from .grad_check import GradcheckError, gradcheck, gradgradcheck
from . import functional, graph

__all__ = ["Tensor", "Function", "backward", "grad", "sum_to_shape", "no_grad", "enable_grad", "is_grad_enabled",
           "set_grad_enabled", "inference_mode", "is_inference_mode_enabled", "detect_anomaly",
           "set_detect_anomaly", "is_anomaly_enabled", "is_anomaly_check_nan_enabled", "gradcheck", "gradgradcheck",
           "GradcheckError", "functional", "graph"]


def __getattr__(name):
    if name == "profiler":  # (loaded on first use, as distnn.profiler itself)
        import importlib

        return importlib.import_module("distnn.autograd.profiler")
    raise AttributeError(f"module 'distnn.autograd' has no attribute {name!r}")
