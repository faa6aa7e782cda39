"""``LinearCrossEntropyOptions``: PyTorch's (2.13) switch and knobs for the chunked ``linear_cross_entropy``.

The same frozen dataclass as ``torch.nn.LinearCrossEntropyOptions``: the same fields, defaults, checks and
``"auto"`` resolution, so a configuration written for PyTorch picks the same chunk size here. ``acc_dtype``
takes numpy's float dtypes (distnn's dtypes; bfloat16 has none). ``acc_policy`` picks among PyTorch's
mixed-precision buffer layouts; distnn's chunks have one layout (computed in the accumulation dtype, the
gradients stored in the parameters' dtype), so the policy is checked and resolved but changes no value.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

__all__ = ["LinearCrossEntropyOptions"]


class _AutoDefault(NamedTuple):
    acc_policy: str
    chunking_method: str


# PyTorch's picks for "auto", by (device type, input dtype); other pairs take the fallback.
_AUTO_DEFAULTS = {
    ("cuda", np.dtype(np.float16)): _AutoDefault("compact", "aspect_ratio:2"),
    ("cpu", np.dtype(np.float16)): _AutoDefault("accurate", "aspect_ratio"),
}
_AUTO_FALLBACK = _AutoDefault("compact", "aspect_ratio:2")
_ACC_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def _as_dtype(d):
    try:
        return np.dtype(d)
    except TypeError:
        return None


@dataclasses.dataclass(slots=True, frozen=True)
class LinearCrossEntropyOptions:
    """Opt-in chunking of :func:`distnn.functional.linear_cross_entropy` over the batch rows, so that the full
    ``(N, num_classes)`` logits are never held (useful when ``num_classes`` is much larger than ``in_features``).

    ``allow_retain_graph``: with 'mean'/'sum' the gradients are computed in forward and handed over by the
    first backward; a second backward is refused unless this is True (then they are kept and scaled per call).
    ``batch_chunk_size``: rows per chunk (None: all rows, or what ``chunking_method`` gives).
    ``chunking_method``: ``"auto"``, ``"aspect_ratio"`` or ``"aspect_ratio:N"``: a chunk's logits about the
    input's size (divided by N), rounded to a power of two; None: use ``batch_chunk_size``.
    ``acc_policy``: ``"auto"``, ``"accurate"``, ``"balanced"`` or ``"compact"`` (PyTorch's buffer layouts; see
    the module docstring). ``acc_dtype``: the dtype the chunks compute in (None: float32 for float16 inputs
    under ``"auto"``, else the input's dtype).
    """

    allow_retain_graph: bool = False
    batch_chunk_size: int | None = None
    chunking_method: str | None = "auto"
    acc_policy: str = "auto"
    acc_dtype: object = None

    def __post_init__(self):
        if self.acc_policy not in {"auto", "accurate", "balanced", "compact"}:
            raise ValueError(f"invalid acc_policy: {self.acc_policy!r}")
        if self.chunking_method is not None and self.chunking_method != "auto":
            name, sep, factor = str(self.chunking_method).partition(":")
            if not sep:
                factor = "1"
            if not (name == "aspect_ratio" and factor.isdigit() and int(factor) > 0):
                raise ValueError(f"invalid chunking_method: {self.chunking_method!r}")
        if not (self.batch_chunk_size is None or (isinstance(self.batch_chunk_size, int)
                                                  and not isinstance(self.batch_chunk_size, bool)
                                                  and self.batch_chunk_size > 0)):
            raise ValueError(f"batch_chunk_size must be positive int or None, got {self.batch_chunk_size!r}")
        if self.acc_dtype is not None and _as_dtype(self.acc_dtype) not in _ACC_DTYPES:
            raise ValueError(f"acc_dtype must be one of None, float16, float32 or float64, got {self.acc_dtype!r}. "
                             "Pass acc_dtype=None to let the op pick automatically.")

    @staticmethod
    def _chunk_for(method, num_batches, in_features, num_classes):
        """PyTorch's "aspect_ratio[:N]" rule: next_pow2(ceil(N / ceil(C / F))) // factor, at most N."""
        factor = int(method.split(":", 1)[1]) if ":" in method else 1
        inc = -(-num_classes // in_features)
        target = -(-num_batches // inc)
        return min((1 << (target - 1).bit_length()) // factor, num_batches)

    def _adjust(self, num_batches, in_features, num_classes, dtype, device="cpu"):
        """The concrete options for one call ("auto" and None resolved), as PyTorch's ``_adjust``."""
        dtype = np.dtype(dtype)
        acc_policy, method = self.acc_policy, self.chunking_method
        if method == "auto" and self.batch_chunk_size is not None:
            method = None  # an explicit chunk size wins over the automatic one
        auto = _AUTO_DEFAULTS.get((device, dtype), _AUTO_FALLBACK)
        if acc_policy == "auto":
            acc_policy = auto.acc_policy
        if method == "auto":
            method = auto.chunking_method
        chunk = num_batches if self.batch_chunk_size is None else min(self.batch_chunk_size, num_batches)
        if method is not None:
            chunk = self._chunk_for(method, num_batches, in_features, num_classes)
            if self.batch_chunk_size is not None and self.batch_chunk_size != chunk:
                raise ValueError(f"batch_chunk_size (={self.batch_chunk_size}) and chunking_method ('{method}') give "
                                 f"different chunk sizes ({self.batch_chunk_size} vs {chunk}); pass only one.")
        if self.acc_dtype is not None:
            acc = np.dtype(self.acc_dtype)
        elif self.acc_policy == "auto" and dtype == np.float16:
            acc = np.dtype(np.float32)  # (PyTorch's pick where a mixed-precision matmul exists: CPU and CUDA)
        else:
            acc = dtype
        if acc != dtype and not (dtype == np.float16 and acc == np.float32):
            raise RuntimeError(f"linear_cross_entropy supports float32 acc_dtype with float16 inputs, but got {acc} "
                               f"acc_dtype and {dtype} inputs.")
        return dataclasses.replace(self, acc_policy=acc_policy, chunking_method=method,
                                   batch_chunk_size=max(1, chunk), acc_dtype=acc)
