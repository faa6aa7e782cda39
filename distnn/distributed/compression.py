"""Gradient wire compression for :class:`~.data_parallel.DataParallel`: fp16 and bf16.

A message is a run of half-precision values with a small header::

    [scale exponent: float32][meta: float32 each (used flags, sample count)][payload: one uint16 per value]

(each float32 as 2 x uint16).

:class:`CompressedExchange` sums a bucket over ranks with two collectives,
as a bandwidth-optimal allreduce does (reduce-scatter, then allgather), each
moving half-precision messages: every rank encodes chunk ``j`` of its
(already sample-weighted) bucket for rank ``j`` (one all-to-all); rank ``j``
decodes the W copies of its chunk, sums them in the bucket's dtype in rank
order and encodes the sum; an allgather gives every rank every summed chunk.
Each rank sends and receives about half the bytes of the uncompressed
allreduce on any number of ranks, and decodes about twice its bucket (an
earlier design allgathered whole buckets: W times the bytes and the decoding).
Every rank decodes the same messages, so the replicas get the same bits; no
partial sum is ever kept in half precision, and no custom MPI op is needed.
The sum is rounded to half precision once more than each rank's share is.

fp16 would overflow above 65504 and flush tiny values to zero, so each rank
multiplies its values by its own power of two ``2**e`` that puts its largest
magnitude in [2**14, 2**15) and sends ``e`` along; receivers divide by ``2**e``
(exactly). ``e`` is limited to what the bucket's dtype holds as a normal
number, which never limits scaling down: any finite float32 or float64
gradient fits. (The header holds the exponent, not the factor: for float64
gradients the factor can be far below float32's range.) bf16 has float32's
range and needs no scale; it is float32's top 16 bits, rounded to nearest
even (so float64 gradients pass through float32: magnitudes below about 1e-38
become 0 and above 3.4e38 inf; fp16's scaling has no such limit). Non-finite gradients stay non-finite, so overflow checks downstream
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
        total = np.zeros(meta.size)
        part = None
        for i, m in enumerate(messages):  # rank order: every rank adds in the same order
            head = np.ascontiguousarray(_host(m[:nh])).view(np.float32).astype(np.float64)
            total += head[1:]
            if i == 0:
                self._decode_into(xp, m[nh:], int(head[0]), values)
            else:
                part = xp.empty_like(values) if part is None else part
                self._decode_into(xp, m[nh:], int(head[0]), part)
                values += part
        meta[...] = xp.asarray(total, dtype=meta.dtype)

    def _scale_exponent(self, xp, values) -> int:
        return 0


class FP16Codec(_Codec):
    name = "fp16"

    def _scale_exponent(self, xp, values) -> int:
        if values.size == 0:
            return 0
        peak = max(float(values.max()), -float(values.min()))  # max |x| without an |x| array; nan stays nan
        if not (peak > 0.0 and math.isfinite(peak)):
            return 0
        info = np.finfo(values.dtype)
        # peak < 2**frexp(peak)[1]; scaling down always fits (15 - maxexp >= minexp for float16/32/64),
        # scaling up stops at the dtype's largest power of two (tiny values then become fp16 subnormals)
        return min(info.maxexp - 1, 15 - math.frexp(peak)[1])

    def _pack(self, xp, values, scale, out):
        xp.copyto(out.view(xp.float16), values * scale if scale != 1.0 else values, casting="same_kind")

    def _decode_into(self, xp, payload, exponent, out):
        xp.copyto(out, payload.view(xp.float16), casting="same_kind")
        if exponent:
            # 2**-exponent is exact in out's dtype (the exponent was limited to its normal range), so
            # the product is x / 2**exponent rounded once: the same bits as the division
            out *= out.dtype.type(2.0 ** -exponent)


class BF16Codec(_Codec):
    name = "bf16"

    def _pack(self, xp, values, scale, out):
        f = values.astype(xp.float32, copy=False)
        u = f.view(xp.uint32)
        # round to nearest even: u + 0x7FFF + (bit 16 of u), then the top 16 bits; in place, one
        # temporary (a pass per operation over the bucket is what this costs)
        t = xp.right_shift(u, 16)
        xp.bitwise_and(t, 1, out=t)
        xp.add(t, 0x7FFF, out=t)
        xp.add(t, u, out=t)
        xp.right_shift(t, 16, out=t)
        xp.copyto(out, t, casting="unsafe")
        with np.errstate(over="ignore", invalid="ignore"):
            finite = f.size == 0 or bool(xp.isfinite(f.sum()))  # a finite sum: no nan (one cheap pass)
        if not finite:  # a nan's low bits may round into inf or a sign flip: send the canonical nan
            nan = xp.isnan(f)
            if nan.any():
                out[nan] = 0x7FC0

    def _decode_into(self, xp, payload, exponent, out):
        if out.dtype == xp.float32:
            xp.left_shift(payload, 16, out=out.view(xp.uint32), dtype=xp.uint32)
        else:
            xp.copyto(out, xp.left_shift(payload, 16, dtype=xp.uint32).view(xp.float32), casting="same_kind")


class CompressedExchange:
    """The compressed sum of one bucket over ``comm`` (see the module docstring); buffers reused each step."""

    def __init__(self, codec: _Codec, comm, numel: int, nmeta: int, xp):
        self.codec, self.comm, self.nmeta = codec, comm, nmeta
        size = comm.size
        edges = [numel * j // size for j in range(size + 1)]
        self.bounds = list(zip(edges[:-1], edges[1:]))  # chunk j: values[a:b], for rank j
        width = codec.message_size(max(b - a for a, b in self.bounds), nmeta)
        self.outgoing = xp.zeros((size, width), dtype=xp.uint16)  # one message per destination rank
        self.summed = xp.zeros(width, dtype=xp.uint16)            # this rank's summed chunk

    def _used(self, j) -> int:
        a, b = self.bounds[j]
        return self.codec.message_size(b - a, self.nmeta)

    def start(self, values, meta):
        """Encode chunk ``j`` of ``values`` (with ``meta``) for each rank ``j``; start the all-to-all."""
        for j, (a, b) in enumerate(self.bounds):
            self.codec.encode(values[a:b], meta, self.outgoing[j, :self._used(j)])
        return self.comm.ialltoall(self.outgoing)

    def finish(self, received, values, meta) -> None:
        """From the all-to-all's result: sum this rank's chunk, allgather the sums, decode them into
        ``values`` and ``meta`` (overwritten: they were encoded at :meth:`start`)."""
        r = self.comm.rank
        a, b = self.bounds[r]
        used = self._used(r)
        self.codec.decode_sum(received[:, :used], values[a:b], meta)  # rank order: the same bits everywhere
        self.codec.encode(values[a:b], meta, self.summed[:used])
        gathered = self.comm.iallgather(self.summed).wait()
        for j, (a, b) in enumerate(self.bounds):  # every chunk's header holds the same summed meta
            self.codec.decode_sum(gathered[j:j + 1, :self._used(j)], values[a:b], meta)


def _host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


CODECS = {"fp16": FP16Codec, "bf16": BF16Codec}


def get_codec(name):
    """The codec for ``compression`` (None, "fp16" or "bf16"; "powersgd" is :mod:`.powersgd`'s)."""
    if name is None:
        return None
    if not isinstance(name, str) or name not in CODECS:
        raise ValueError(f"unknown compression {name!r}; expected None, 'fp16', 'bf16', 'powersgd' or a "
                         "PowerSGDState")
    return CODECS[name]()
