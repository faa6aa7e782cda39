"""Which scaled_dot_product_attention backends are enabled: the state behind ``nn.attention.sdpa_kernel``.

PyTorch picks one of several kernels (math, flash, memory-efficient, cuDNN, an overrideable one) for
F.scaled_dot_product_attention. distnn has one implementation, the math one (softmax of the scaled scores,
then the values), and runs it whatever is enabled: the numbers do not depend on the selection. What the
selection changes is whether a call is allowed, as in PyTorch 2.13 on CPU:

- MATH enabled: every call runs.
- only FLASH_ATTENTION among MATH and FLASH: PyTorch's CPU flash kernel runs when its input checks pass;
  when one fails PyTorch warns "Flash attention kernel not used because:" and the reason, and raises
  RuntimeError "No available kernel.  Aborting execution.". distnn makes the same checks (no dropout, 4-D
  inputs, equal batch sizes and numbers of heads, value's head dimension equal to the query's) with the same
  warnings and error, then runs its math implementation.
- neither MATH nor FLASH_ATTENTION: PyTorch's CPU has no kernel for any input ("No viable backend ...").

(PyTorch's CUDA kernels have further limits, on dtypes and head dimensions; distnn applies the CPU rules on
every device.)
"""
from __future__ import annotations

import enum
import warnings


class SDPBackend(enum.IntEnum):
    """PyTorch's SDPBackend (same names and values): ERROR, MATH, FLASH_ATTENTION, EFFICIENT_ATTENTION,
    CUDNN_ATTENTION, OVERRIDEABLE. Used with ``nn.attention.sdpa_kernel``; distnn computes with MATH's
    arithmetic whichever is selected (see the module docstring)."""

    ERROR = -1
    MATH = 0
    FLASH_ATTENTION = 1
    EFFICIENT_ATTENTION = 2
    CUDNN_ATTENTION = 3
    OVERRIDEABLE = 4

    __str__ = enum.Enum.__str__  # ("SDPBackend.MATH", as PyTorch prints it; IntEnum would print "0")


# PyTorch's defaults: every real backend enabled; flash, efficient, math, cudnn, overrideable in that order
_ENABLED = {SDPBackend.MATH, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
            SDPBackend.CUDNN_ATTENTION, SDPBackend.OVERRIDEABLE}
_PRIORITY = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH,
             SDPBackend.CUDNN_ATTENTION, SDPBackend.OVERRIDEABLE]


def enabled_backends(with_priority=False):
    """The enabled backends: in their value order, or in the priority order with ``with_priority``."""
    order = _PRIORITY if with_priority else sorted(_ENABLED - {SDPBackend.ERROR})
    return [b for b in order if b in _ENABLED]


def priority_order():
    """The backends' priority order (PyTorch's ``torch._C._get_sdp_priority_order``, as SDPBackend members)."""
    return list(_PRIORITY)


def set_backends(backends, set_priority=False):
    """Enable exactly the real backends in ``backends`` (other entries are ignored, as PyTorch ignores them);
    with ``set_priority`` they go first in the priority order, in their order."""
    wanted = {b for b in backends if isinstance(b, SDPBackend)}
    _ENABLED.clear()
    _ENABLED.update(wanted - {SDPBackend.ERROR})
    if set_priority:
        first = [b for b in dict.fromkeys(backends) if isinstance(b, SDPBackend) and b in _PRIORITY]
        _PRIORITY[:] = first + [b for b in _PRIORITY if b not in first]


def _flash_refusal(q, k, v, dropout_p):
    """Why PyTorch's CPU flash kernel would not take these inputs (its message), or None when it would."""
    if dropout_p > 0:
        return "Both fused kernels do not support non-zero dropout."
    if not q.ndim == k.ndim == v.ndim == 4:
        return (f"All fused kernels requires query, key and value to be 4 dimensional, but got Query dim: "
                f"{q.ndim}, Key dim: {k.ndim}, Value dim: {v.ndim} instead.")
    if not q.shape[0] == k.shape[0] == v.shape[0]:
        return (f"For dense inputs, both fused kernels require query, key and value to have the same batch_size. "
                f"Query.sizes(): {list(q.shape)}, Key.sizes(): {list(k.shape)}, Value.sizes(): {list(v.shape)} "
                f"instead. To broadcast dense inputs, try using unsqueeze and expand_to before passing them into "
                f"the kernel.")
    return None


def _flash_refusal_heads(q, k, v, enable_gqa):
    if not enable_gqa and not q.shape[1] == k.shape[1] == v.shape[1]:
        return (f"For dense input, both fused kernels require query, key and value to have the same num_heads. "
                f"Query.sizes(): {list(q.shape)}, Key sizes(): {list(k.shape)}, Value sizes(): {list(v.shape)} "
                f"instead. To broadcast dense inputs, try using unsqueeze and expand_to before passing them into "
                f"the kernel.")
    if v.shape[-1] != q.shape[-1]:
        return (f"Flash attention requires q,k,v to have the same last dimension. Got Query.size(-1): "
                f"{q.shape[-1]}, Key.size(-1): {k.shape[-1]}, Value.size(-1): {v.shape[-1]} instead.")
    return None


def check_backend(q, k, v, dropout_p, enable_gqa):
    """Refuse the call as PyTorch 2.13's CPU backend selection does (see the module docstring); q, k, v are
    the arrays (only their shapes are read)."""
    if SDPBackend.MATH in _ENABLED:
        return
    if SDPBackend.FLASH_ATTENTION not in _ENABLED:
        raise RuntimeError("No viable backend for scaled_dot_product_attention was found. This is likely due to "
                           "turning off both the math kernel and the fused kernels.")
    why = _flash_refusal(q, k, v, dropout_p) or _flash_refusal_heads(q, k, v, enable_gqa)
    if why is not None:
        warnings.warn("Flash attention kernel not used because:", UserWarning, stacklevel=3)
        warnings.warn(why, UserWarning, stacklevel=3)
        raise RuntimeError("No available kernel.  Aborting execution.")
