"""Gradient wire compression for :class:`~.data_parallel.DataParallel`: fp16 and bf16.

Each rank encodes its (already sample-weighted) bucket into one uint16 message::

    [scale: float32 as 2 x uint16][used flag per parameter][payload: one uint16 per value]

The messages are allgathered, and every rank decodes all of them and sums
them in its bucket's dtype in rank order, so every rank ends with the same
bits (no half-precision partial sums on the wire, no custom MPI op).

fp16 would overflow above 65504 and flush tiny values to zero, so each rank
multiplies its values by its own power of two ``scale`` that puts its largest
magnitude in [2**14, 2**15) and sends the scale along; receivers divide by it
(exactly: a power of two). bf16 has float32's range and needs no scale; it is
float32's top 16 bits, rounded to nearest even. Non-finite gradients stay
non-finite, so overflow checks downstream still see them.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.backend import get_array_module

HEADER = 2  # uint16 words holding the float32 scale


class _Codec:
    name = ""

    def message_size(self, numel: int, nflags: int) -> int:
        return HEADER + nflags + numel

    def encode(self, values, flags, out) -> None:
        """Write the message for ``values`` (1-D float) and ``flags`` (1-D, small ints) into ``out`` (uint16)."""
        xp = get_array_module(values)
        scale = self._scale(xp, values)
        out[:HEADER] = xp.asarray(np.array([scale], dtype=np.float32).view(np.uint16))
        out[HEADER:HEADER + flags.size] = flags
        self._pack(xp, values, scale, out[HEADER + flags.size:])

    def decode_sum(self, messages, values, flags) -> None:
        """Sum the decoded ``messages`` (size, message_size) into ``values`` and ``flags`` (overwritten)."""
        xp = get_array_module(values)
        nf = flags.size
        values[...] = 0
        flags[...] = 0
        for m in messages:  # rank order: every rank adds in the same order
            scale = float(np.asarray(m[:HEADER].get() if xp is not np else m[:HEADER]).copy().view(np.float32)[0])
            flags += m[HEADER:HEADER + nf]
            part = self._unpack(xp, m[HEADER + nf:]).astype(values.dtype, copy=False)
            if scale != 1.0:
                part = part / values.dtype.type(scale)
            values += part

    def _scale(self, xp, values) -> float:
        return 1.0


class FP16Codec(_Codec):
    name = "fp16"

    def _scale(self, xp, values) -> float:
        if values.size == 0:
            return 1.0
        peak = float(xp.max(xp.abs(values)))
        if not (peak > 0.0 and math.isfinite(peak)):
            return 1.0
        exponent = math.frexp(peak)[1]          # peak < 2**exponent
        return 2.0 ** min(100, max(-100, 15 - exponent))

    def _pack(self, xp, values, scale, out):
        scaled = values * values.dtype.type(scale) if scale != 1.0 else values
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


CODECS = {"fp16": FP16Codec, "bf16": BF16Codec}


def get_codec(name):
    """The codec for ``compression`` (None, "fp16" or "bf16")."""
    if name is None:
        return None
    if name not in CODECS:
        raise ValueError(f"unknown compression {name!r}; expected None, 'fp16' or 'bf16'")
    return CODECS[name]()
