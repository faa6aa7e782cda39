"""The reverse-mode autograd engine: Tensor, Function, backward, grad mode."""
from .tensor import Tensor
from .function import Function
from .engine import backward, sum_to_shape
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = ["Tensor", "Function", "backward", "sum_to_shape", "no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled"]
