"""Exact sums of floating-point values that reduce over ranks without rounding.

A float64 sum depends on the order of its terms, so a loss summed per rank and
then over ranks differs in the last bits from the same losses summed by one
process. :class:`ExactSum` keeps the sum with no rounding at all: every finite
float64 is an integer multiple of 2**-1126 once its 53-bit mantissa is shifted
by its exponent, so the sum is one Python integer (``scaled``) in those units.
The value is rounded once, when it is read, so any split of the same terms
over any number of ranks, in any order, gives the same float bit for bit.

Over ranks the integer travels as a fixed-length float64 array of signed
32-bit limbs (:meth:`ExactSum.to_array`): summing such arrays in float64 (an
ordinary allreduce, alongside other sums and counts) is exact for up to
2**20 ranks, and :meth:`ExactSum.from_array` carries the limbs back into one
integer. Non-finite terms are counted apart (NaN, +inf, -inf) and decide the
value as IEEE addition would.
"""
from __future__ import annotations

import numpy as np

from distnn.backend import to_numpy

_UNIT_EXP = 1126    # the sum is kept in units of 2**-1126 (a subnormal's mantissa shifted to an integer)
_LIMB_BITS = 32
_LIMBS = 72         # 2304 bits: the largest finite float64 (2**1024) in these units is 2**2150, with room
#                     for 2**150 such terms
_SPLIT = 26         # mantissas are summed in two int64 halves of at most 27 bits: no overflow below 2**36 terms


class ExactSum:
    """The exact sum of the values passed to :meth:`add`; ``value()`` rounds it once to float64."""

    __slots__ = ("scaled", "nan", "posinf", "neginf")

    def __init__(self):
        self.scaled = 0  # the sum of the finite terms, in units of 2**-1126
        self.nan = self.posinf = self.neginf = 0

    def add(self, values) -> "ExactSum":
        """Add every element of ``values`` (a number or an array, float16/32/64 or integer; any device)."""
        x = np.asarray(to_numpy(values), dtype=np.float64).ravel()
        finite = np.isfinite(x)
        if not finite.all():
            bad = x[~finite]
            self.nan += int(np.isnan(bad).sum())
            self.posinf += int((bad == np.inf).sum())
            self.neginf += int((bad == -np.inf).sum())
            x = x[finite]
        x = x[x != 0]
        if x.size == 0:
            return self
        mantissa, exponent = np.frexp(x)  # x = mantissa * 2**exponent, 0.5 <= |mantissa| < 1
        m = np.ldexp(mantissa, 53).astype(np.int64)  # exact: at most 53 significant bits
        exps, where = np.unique(exponent, return_inverse=True)
        hi = np.zeros(len(exps), np.int64)
        lo = np.zeros(len(exps), np.int64)
        np.add.at(hi, where, m >> _SPLIT)  # m == (m >> 26) * 2**26 + (m & (2**26 - 1)), also for m < 0
        np.add.at(lo, where, m & ((1 << _SPLIT) - 1))
        for e, h, l in zip(exps.tolist(), hi.tolist(), lo.tolist()):
            self.scaled += ((h << _SPLIT) + l) << (e - 53 + _UNIT_EXP)  # e >= -1073: never a negative shift
        return self

    def merge(self, other: "ExactSum") -> "ExactSum":
        """Add another exact sum's terms to this one."""
        self.scaled += other.scaled
        self.nan += other.nan
        self.posinf += other.posinf
        self.neginf += other.neginf
        return self

    def value(self) -> float:
        """The sum rounded once to the nearest float64 (NaN/inf as IEEE addition of the terms gives)."""
        if self.nan or (self.posinf and self.neginf):
            return float("nan")
        if self.posinf or self.neginf:
            return float("inf") if self.posinf else float("-inf")
        try:
            return self.scaled / (1 << _UNIT_EXP)  # Python's int / int is correctly rounded
        except OverflowError:
            return float("inf") if self.scaled > 0 else float("-inf")

    __float__ = value

    # -------------------------------------------------------- across ranks
    ARRAY_SIZE = 3 + _LIMBS

    def to_array(self) -> np.ndarray:
        """This sum as ``ARRAY_SIZE`` float64 values whose elementwise sum over ranks is exact."""
        out = np.zeros(self.ARRAY_SIZE, np.float64)
        out[:3] = self.nan, self.posinf, self.neginf
        magnitude, sign = abs(self.scaled), (-1 if self.scaled < 0 else 1)
        if magnitude >> (_LIMB_BITS * _LIMBS):
            raise OverflowError("ExactSum: the sum is too large to send")
        mask = (1 << _LIMB_BITS) - 1
        for i in range(_LIMBS):
            if not magnitude:
                break
            out[3 + i] = sign * (magnitude & mask)
            magnitude >>= _LIMB_BITS
        return out

    @classmethod
    def from_array(cls, array) -> "ExactSum":
        """The exact sum that :meth:`to_array` arrays (or their elementwise sum over ranks) stand for."""
        a = np.asarray(array, dtype=np.float64)
        if a.shape != (cls.ARRAY_SIZE,):
            raise ValueError(f"ExactSum.from_array: expected {cls.ARRAY_SIZE} values, got shape {a.shape}")
        s = cls()
        s.nan, s.posinf, s.neginf = (int(v) for v in a[:3])
        s.scaled = sum(int(v) << (_LIMB_BITS * i) for i, v in enumerate(a[3:].tolist()) if v)
        return s

    def allreduce(self, comm) -> "ExactSum":
        """Collective: the exact sum over every rank's terms (this object is left unchanged)."""
        if comm is None or comm.size == 1:
            return ExactSum().merge(self)
        return ExactSum.from_array(comm.allreduce(self.to_array(), "sum"))

    def __repr__(self):
        return f"ExactSum({self.value()!r})"
