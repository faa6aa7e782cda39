"""``distnn.nn.attention``: PyTorch's torch.nn.attention (``sdpa_kernel``, ``SDPBackend``, ``SDPAParams``,
``can_use_flash_attention``, ``can_use_efficient_attention``; ``flex_attention`` in the submodule of that
name) and distnn's ``MultiheadAttention`` with ``causal_mask`` (``multihead``), importable from here as
they were when this package was one module."""
from .multihead import MultiheadAttention, causal_mask
from .sdpa_kernel import (SDPAParams, SDPBackend, can_use_efficient_attention, can_use_flash_attention,
                          sdpa_kernel)

__all__ = ["MultiheadAttention", "causal_mask", "SDPBackend", "sdpa_kernel", "SDPAParams",
           "can_use_flash_attention", "can_use_efficient_attention"]
