"""float16 softmax over a dimension that is not the last, as PyTorch's CPU kernel rounds it.

PyTorch's other-dimension kernel walks the (outer, inner) positions in blocks of one SIMD vector of Half
(32 lanes with AVX-512, 16 otherwise) along the inner (trailing) dimensions: a full block keeps the
exponentials and their sum in float32 and rounds ``exp / sum`` once; the positions left over at the end of
each inner row (fewer than a vector) go through its scalar loop, which stores each exponential in the Half
output first and divides that rounded value by the float32 sum, a second rounding (one float16 unit off in
about a third of those elements). Which positions are left over also depends on how PyTorch splits the
positions between its threads; this follows one thread, where its results are deterministic (with more
threads, positions near a thread's chunk boundary may take the other path and differ by a unit).
"""
from __future__ import annotations

import functools
import os
import platform

import numpy as np

from distnn.autograd.half_rounding import to_half

from ._elementwise_common import _quiet

_F32 = np.float32
HALF = np.dtype(np.float16)  # (a dtype compared with a dtype: ~25 ns; with the string "float16": ~240 ns)


def softmax_other_axis_half(xp, x, axis):
    """Softmax of a non-empty float16 array along ``axis`` (not its last), rounded as PyTorch's kernel."""
    axis %= x.ndim
    shape = x.shape
    outer, inner = int(np.prod(shape[:axis])), int(np.prod(shape[axis + 1:]))
    wide = x.reshape(outer, shape[axis], inner).astype(_F32)
    with _quiet(xp):  # (a row whose maximum is infinite: NaN, as PyTorch's, without numpy's warning)
        # (float32 exp rounded from float64: within the last bit PyTorch's float32 exps keep, numpy's not)
        e = xp.exp((wide - wide.max(axis=1, keepdims=True)).astype(np.float64)).astype(_F32)
        total = e.sum(axis=1, keepdims=True)
        out = to_half(e / total)
        vectorised = inner - inner % _half_lanes()
        if vectorised < inner:
            tail = to_half(e[:, :, vectorised:]).astype(_F32)
            out[:, :, vectorised:] = to_half(tail / total[:, :, vectorised:])
    return out.reshape(shape)


@functools.lru_cache(maxsize=1)
def _half_lanes():
    """The Half lanes of PyTorch's CPU vectors here: 32 with AVX-512 (its rule: AVX-512 F, BW, VL and DQ; or
    ATEN_CPU_CAPABILITY=avx512), else 16 (AVX2 and its default build), 8 on 64-bit ARM (NEON)."""
    chosen = os.environ.get("ATEN_CPU_CAPABILITY", "").lower()
    if chosen:
        return 32 if chosen.startswith("avx512") else 16
    if platform.machine().lower() in ("arm64", "aarch64"):
        return 8
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # (numpy 1.x)
        from numpy.core._multiarray_umath import __cpu_features__ as features
    return 32 if all(features.get(f, False) for f in ("AVX512F", "AVX512BW", "AVX512VL", "AVX512DQ")) else 16
