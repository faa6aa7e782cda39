"""``sdpa_kernel``, ``SDPAParams`` and ``can_use_flash_attention`` / ``can_use_efficient_attention``: PyTorch
2.13's torch.nn.attention API for choosing F.scaled_dot_product_attention's backend.

distnn has one implementation (the math backend's arithmetic); the selection decides which calls are allowed,
as PyTorch's CPU selection does (``functional.sdpa_backends`` says how). ``can_use_flash_attention`` and
``can_use_efficient_attention`` ask about PyTorch's CUDA kernels, which distnn does not have: they return
False, as PyTorch built without CUDA does.
"""
from __future__ import annotations

import contextlib
from typing import NamedTuple

from distnn.functional.sdpa_backends import SDPBackend, enabled_backends, priority_order, set_backends

__all__ = ["SDPBackend", "sdpa_kernel", "SDPAParams", "can_use_flash_attention", "can_use_efficient_attention"]


@contextlib.contextmanager
def sdpa_kernel(backends, set_priority=False):
    """Enable only ``backends`` (an SDPBackend or a list of them) for F.scaled_dot_product_attention inside the
    ``with`` block, as PyTorch's ``torch.nn.attention.sdpa_kernel``; with ``set_priority`` their order becomes
    the priority order. The previous selection (and order) comes back on exit, on an error too. Yields ``{}``
    as PyTorch's does.

    distnn computes every allowed call with the math backend's arithmetic: enabling only MATH or only
    FLASH_ATTENTION gives the same numbers; a selection PyTorch's CPU could not serve raises its RuntimeError
    at call time (see ``distnn.functional.sdpa_backends``).
    """
    if not isinstance(backends, (list, SDPBackend)):  # (PyTorch's AssertionError, a tuple refused too)
        raise AssertionError(f"Backend must be an instance of SDPBackend or a list of SDPBackend instances, got "
                             f"{type(backends).__name__}")
    if isinstance(backends, SDPBackend):
        backends = [backends]
    backends = list(dict.fromkeys(backends))
    previous, previous_order = enabled_backends(), priority_order()
    try:
        set_backends(backends, set_priority)
        yield {}
    finally:
        set_backends(previous_order, set_priority=True)  # (restores the order; then the enabled set)
        set_backends(previous)


class SDPAParams(NamedTuple):
    """PyTorch's ``SDPAParams(query, key, value, attn_mask, dropout, is_causal, enable_gqa)``: the arguments
    ``can_use_flash_attention`` / ``can_use_efficient_attention`` judge."""

    query: object
    key: object
    value: object
    attn_mask: object
    dropout: float
    is_causal: bool
    enable_gqa: bool


def _check_params(params, where):
    if not isinstance(params, SDPAParams):
        raise TypeError(f"{where}(): argument 'params' must be SDPAParams, not {type(params).__name__}")


def can_use_flash_attention(params, debug=False):
    """False: PyTorch's flash attention here means its CUDA kernel, which distnn does not have (PyTorch built
    without CUDA answers False too, and warns nothing with ``debug``)."""
    _check_params(params, "can_use_flash_attention")
    return False


def can_use_efficient_attention(params, debug=False):
    """False: PyTorch's memory-efficient attention is a CUDA kernel, which distnn does not have (PyTorch built
    without CUDA answers False too, and warns nothing with ``debug``)."""
    _check_params(params, "can_use_efficient_attention")
    return False
