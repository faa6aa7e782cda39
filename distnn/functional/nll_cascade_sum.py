"""The float16 total weight of a weighted NLL 'mean', added up as PyTorch's CPU ``nll_loss`` adds it.

PyTorch's kernel keeps its running sums in the input's own type (Half), each addition computed in float32 and
rounded to float16, in a cascade of 8 partial sums: sample ``b`` (counted from the first of the batch,
ignored ones included) is added to level 0, and whenever ``b`` is a multiple of ``16 ** (j + 1)`` level ``j``
is then added into level ``j + 1`` and cleared (an ignored sample is skipped whole: it flushes nothing). The
total is the 8 levels added from level 0 up. ``nll_loss_backward`` divides the upstream gradient by that total,
so a gradient bitwise PyTorch's needs it, even where the float32 total rounded once (distnn's forward divisor,
the more accurate: within half a unit of the exact total, PyTorch's a few units off in large batches) differs.
"""
from __future__ import annotations

import numpy as np

from ._elementwise_common import _quiet

_LEVELS = 8
_STEP = 16  # (2 ** max(4, ceil(log2(batch)) // 8): 16 for any batch under 2 ** 40 samples)
_F32 = np.float32


def nll_total_weight(xp, w_t, valid):
    """PyTorch's float16 total weight of the samples where ``valid``: ``w_t`` their (M,) float16 weights."""
    positions = xp.nonzero(valid)[0]
    values = w_t[positions].astype(_F32)
    parts = []
    for level in range(_LEVELS - 1):
        flush = positions % (_STEP ** (level + 1)) == 0
        group = xp.cumsum(flush) - flush  # (a flushing sample closes the group it belongs to)
        n_flushes = int(flush.sum())
        sums = _grouped_half_sums(xp, values, group, n_flushes + 1)
        parts.append(sums[n_flushes])  # (what came after the last flush stays in this level)
        positions, values = positions[flush], sums[:n_flushes]
    parts.append(_grouped_half_sums(xp, values, xp.zeros(values.shape, np.int64), 1)[0])
    total = _F32(0)
    with _quiet(np, over=True):
        for part in parts:
            total = _F32(np.float16(total + _F32(float(part))))
    return np.float16(total)


def _grouped_half_sums(xp, values, group, n_groups):
    """The float16 running sum of each group of float32 ``values`` (``group``: ascending ids, each group's
    members in order), one float16 rounding per addition, as float32 values."""
    sums = xp.zeros(n_groups, _F32)
    if values.size == 0:
        return sums
    starts = xp.searchsorted(group, xp.arange(n_groups))
    lengths = xp.diff(starts, append=values.size)
    live = xp.nonzero(lengths)[0]
    with _quiet(xp, over=True):  # (a total past 65504 is inf, as PyTorch's, without numpy's warning)
        for k in range(int(lengths.max())):  # (the k-th values of every group at once)
            live = live[lengths[live] > k]
            sums[live] = (sums[live] + values[starts[live] + k]).astype(np.float16).astype(_F32)
    return sums
