"""Mixed precision (PyTorch's ``torch.amp``): :class:`autocast` runs the matmul family in float16 and the losses
in float32; :class:`GradScaler` scales the loss so float16 gradients do not underflow, and skips steps whose
gradients overflowed (every data-parallel rank alike). :func:`custom_fwd`/:func:`custom_bwd` give a custom
:class:`distnn.autograd.Function` its own autocast dtype.
"""
from .autocast_mode import autocast, get_autocast_dtype, is_autocast_enabled
from .custom_function import custom_bwd, custom_fwd, is_autocast_available
from .grad_scaler import GradScaler

__all__ = ["GradScaler", "autocast", "get_autocast_dtype", "is_autocast_enabled", "custom_fwd", "custom_bwd",
           "is_autocast_available"]
