"""Gradient wire compression for :class:`~.data_parallel.DataParallel`: fp16 and bf16.

Each rank encodes its (already sample-weighted) bucket into one uint16 message::

    [scale exponent: float32][meta: float32 each (used flags, sample count)][payload: one uint16 per value]

(each float32 as 2 x uint16).

The messages are allgathered, and every rank decodes all of them and sums
them in its bucket's dtype in rank order, so every rank ends with the same
bits (no half-precision partial sums on the wire, no custom MPI op).

fp16 would overflow above 65504 and flush tiny values to zero, so each rank
multiplies its values by its own power of two ``2**e`` that puts its largest
magnitude in [2**14, 2**15) and sends ``e`` along; receivers divide by ``2**e``
(exactly). ``e`` is limited to what the bucket's dtype holds as a normal
number, which never limits scaling down: any finite float32 or float64
gradient fits. (The header holds the exponent, not the factor: for float64
gradients the factor can be far below float32's range.) bf16 has float32's
range and needs no scale; it is float32's top 16 bits, rounded to nearest
even. Non-finite gradients stay non-finite, so overflow checks downstream
still see them.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.backend import get_array_module

HEADER = 2  # uint16 words holding the scale's exponent as a float32


class _Codec:
    name = ""

    def message_size(self, numel: int, nmeta: int) -> int:
        return HEADER + 2 * nmeta + numel

    def encode(self, values, meta, out) -> None:
        """Write the message for ``values`` (1-D float) and ``meta`` (1-D, small counts) into ``out`` (uint16)."""
        xp = get_array_module(values)
        exponent = self._scale_exponent(xp, values)
        head = np.concatenate([[exponent], np.asarray(_host(meta), dtype=np.float64)]).astype(np.float32)
        out[:HEADER + 2 * meta.size] = xp.asarray(head.view(np.uint16))
        self._pack(xp, values, values.dtype.type(2.0 ** exponent), out[HEADER + 2 * meta.size:])

    def decode_sum(self, messages, values, meta) -> None:
        """Sum the decoded ``messages`` (size, message_size) into ``values`` and ``meta`` (overwritten)."""
        xp = get_array_module(values)
        nh = HEADER + 2 * meta.size
        values[...] = 0
        total = np.zeros(meta.size)
        for m in messages:  # rank order: every rank adds in the same order
            head = np.ascontiguousarray(_host(m[:nh])).view(np.float32).astype(np.float64)
            exponent = int(head[0])
            total += head[1:]
            part = self._unpack(xp, m[nh:]).astype(values.dtype, copy=False)
            if exponent:
                part = part / values.dtype.type(2.0 ** exponent)
            values += part
        meta[...] = xp.asarray(total, dtype=meta.dtype)

    def _scale_exponent(self, xp, values) -> int:
        return 0


class FP16Codec(_Codec):
    name = "fp16"

    def _scale_exponent(self, xp, values) -> int:
        if values.size == 0:
            return 0
        peak = float(xp.max(xp.abs(values)))
        if not (peak > 0.0 and math.isfinite(peak)):
            return 0
        info = np.finfo(values.dtype)
        # peak < 2**frexp(peak)[1]; scaling down always fits (15 - maxexp >= minexp for float16/32/64),
        # scaling up stops at the dtype's largest power of two (tiny values then become fp16 subnormals)
        return min(info.maxexp - 1, 15 - math.frexp(peak)[1])

    def _pack(self, xp, values, scale, out):
        scaled = values * scale if scale != 1.0 else values
        out[...] = scaled.astype(xp.float16).view(xp.uint16)

    def _unpack(self, xp, payload):
        return payload.view(xp.float16)


class BF16Codec(_Codec):
    name = "bf16"

    def _pack(self, xp, values, scale, out):
        f = values.astype(xp.float32, copy=False)
        u = f.view(xp.uint32)
        rounded = (u + (xp.uint32(0x7FFF) + ((u >> 16) & xp.uint32(1)))) >> 16  # round to nearest even
        out[...] = rounded.astype(xp.uint16)
        nan = xp.isnan(f)
        if nan.any():
            out[nan] = 0x7FC0

    def _unpack(self, xp, payload):
        return (payload.astype(xp.uint32) << 16).view(xp.float32)


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


CODECS = {"fp16": FP16Codec, "bf16": BF16Codec}


def get_codec(name):
    """The codec for ``compression`` (None, "fp16" or "bf16")."""
    if name is None:
        return None
    if name not in CODECS:
        raise ValueError(f"unknown compression {name!r}; expected None, 'fp16' or 'bf16'")
    return CODECS[name]()
