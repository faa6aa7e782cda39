"""The arithmetic of ``add``/``sub`` with ``alpha``, as PyTorch's CPU kernel: ``a + alpha * b`` a fused multiply-add.

float16 is computed in float32 (alpha rounded to float16 first) and rounded to float16, as PyTorch's half vectors;
float64 rounds twice (numpy has no fma, and an emulated one cost 5-14x the plain form); integers wrap, bools are a
logical or.


PyTorch computes ``a + alpha * b`` as ``fmadd(b, alpha, a)`` in float32 (``sub`` is ``add`` with ``-alpha``):
one rounding. ``a + (alpha * b)`` in numpy rounds twice and differs in ~30 % of the elements for ``alpha=3``.
Here ``alpha * b`` is exact in float64 (24-bit times 24-bit significands), and the float64 sum is made
round-to-odd (its TwoSum error decides the last bit) so that the final rounding to float32 is the correctly
rounded one: 53 bits >= 24 + 2 make round-to-odd followed by round-to-nearest a single rounding.
"""
import numpy as np

from distnn.autograd.float_errors import ALL_IGNORED as _ALL_IGNORED, FP_STATE as _FP_STATE

_F16, _F32, _F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
_get_fp_state, _set_fp_state, _reset_fp_state = _FP_STATE.get, _FP_STATE.set, _FP_STATE.reset
_LOW_28 = 0x0FFFFFFF  # (a float64's significand bits below a float32 halfway point's)
_ONE_CHUNK = 32768  # (PyTorch's GRAIN_SIZE: a loop longer than this is split among its threads)


def fused_scaled_sum(a, b, alpha, out=None):
    """``a + alpha * b`` rounded once to float32 (``a``, ``b`` float32 arrays or 0-d; ``alpha`` a real number,
    taken as float32, as PyTorch's opmath for float); written into ``out`` when given."""
    with np.errstate(all="ignore"):  # (inf * 0, inf - inf: NaN, an alpha beyond float32: inf, silently, as PyTorch's)
        factor = np.float64(np.float32(alpha))
        if np.ndim(b) == 0:
            step = np.float64(b) * factor  # (exact)
            if np.float32(step) == step:  # (a float32 step: the float32 sum is the one rounding, no wider pass)
                return np.asarray(np.add(a, np.float32(step), out=out))
        total = np.array(b, np.float64)  # (a copy of its own, written in place below)
        np.multiply(total, factor, out=total)  # (exact: 24-bit times 24-bit significands)
        if total.shape == np.shape(a) and total.ndim:
            np.add(total, a, out=total)  # (the common case, no broadcasting: no new array)
        else:
            total = np.asarray(total + a)
        # The float64 sum rounded to float32 is the single rounding except where it lies exactly halfway
        # between two float32s (a tie the exact sum may not be): such values, and exact ones, have their low 28
        # significand bits zero. Random data almost never do; where any do, the exact round-to-odd path runs.
        low_bits = np.bitwise_and(total.view(np.int64), _LOW_28)
        if np.count_nonzero(low_bits) != low_bits.size:
            total = _rounded_to_odd(np.asarray(a, np.float64), np.asarray(b, np.float64) * factor)
        if out is None:
            return total.astype(_F32)
        np.copyto(out, total, casting="same_kind")
        return out


def _rounded_to_odd(wide_a, product):
    """``wide_a + product`` (float64, ``product`` exact) rounded to odd: the float64 sum whose later rounding to
    float32 is the correctly rounded one (53 bits >= 24 + 2)."""
    total = np.asarray(wide_a + product)
    # TwoSum: the exact rounding error of ``total`` (NaN where total is inf or NaN)
    b_virtual = total - wide_a
    error = (wide_a - (total - b_virtual)) + (product - b_virtual)
    bits = total.view(np.int64)
    inexact_even = (error != 0) & np.isfinite(error) & ((bits & 1) == 0)
    if inexact_even.any():
        # round-to-odd: an inexact even result moves one ulp toward the exact sum (either way it is odd)
        step = np.where((error > 0) == (total > 0), 1, -1)
        total = (bits + np.where(inexact_even, step, 0)).view(np.float64)
    return total


def scaled_sum(a, b, alpha, out=None):
    """``a + alpha * b`` for ``a``, ``b`` numpy arrays of the result's dtype (broadcastable), as PyTorch's CPU
    kernel computes it; ``alpha`` a real number already checked against the dtype (:func:`check_integer_alpha`
    too). Written into ``out`` (an array of the result's dtype and shape; it may be ``a``) when given, and
    returned. None for complex dtypes.

    PyTorch's vector loop is one fma per element; the scalar loop it leaves the last few elements of a row to
    rounds some of them twice: followed for float16 operands of one contiguous row (:func:`_half_scalar_tail`),
    not where ``b`` is a number or broadcast, nor for float32 (as its compiler schedules it)."""
    dtype = a.dtype
    if dtype is _F64 or dtype == _F64:  # (first, by identity where it can: a float64 add_ takes ~4 us in all)
        # (rounded twice, where PyTorch's fma rounds once: within an ulp of the product's size. An emulated fma
        # (Boldo-Melquiond, h40-alpha) was 5-14x slower than this for 64x64 (62.6 / 57.4 us against 11.8 / 4.1),
        # a cost every float64 ``p.add_(g, alpha=-lr)`` loop would pay for a last bit)
        # (overflow, inf * 0: silently, as PyTorch's; np.errstate would cost ~1 us, and the callers that write in
        # place have silenced numpy already)
        token = None if _get_fp_state() is _ALL_IGNORED else _set_fp_state(_ALL_IGNORED)
        try:
            # (a Python float is a float64 already: np.float64() of it would cost ~70 ns of the ~4 us)
            total = np.add(a, b * (alpha if type(alpha) is float else np.float64(alpha)), out=out)
        finally:
            if token is not None:
                _reset_fp_state(token)
        return out if out is not None else np.asarray(total)
    if dtype == _F32:
        return fused_scaled_sum(a, b, alpha, out=out)
    if dtype == _F16:  # (PyTorch's half vectors: alpha rounded to float16, the fma in float32)
        with np.errstate(over="ignore", invalid="ignore"):  # (beyond float16's range: inf, silently, as PyTorch's)
            factor = np.float16(alpha)
            tail = _half_scalar_tail(a, b, factor)  # (before out, which may be a, is written)
            result = _written(fused_scaled_sum(a.astype(_F32), b.astype(_F32), float(factor)), dtype, out)
            if tail is not None:
                result.reshape(-1)[-tail.size:] = tail  # (C-contiguous: reshape is a view)
            return result
    if dtype.kind in "iu":
        factor = np.array(int(alpha), np.int64).astype(dtype)  # (alpha cast to the dtype, as PyTorch's)
        with np.errstate(all="ignore"):
            return np.asarray(np.add(a, b * factor, out=out))
    if dtype.kind == "b":
        return np.asarray(np.bitwise_or(a, b & bool(alpha), out=out))
    return None


def _half_scalar_tail(a, b, factor):
    """The last ``n % 32`` elements of a float16 ``a + alpha * b`` as PyTorch's scalar loop computes them, or None.

    PyTorch's CPU loop takes two 16-lane float16 vectors a turn (an fma in float32, rounded once) and leaves the
    last ``n % 32`` elements to its scalar code, which computes ``self + alpha * other`` in ``c10::Half``
    arithmetic: the product rounded to float16, then the sum (~20 % of those elements differ from the fma by a
    step). Followed where that split is known: ``a`` and ``b`` of the result's shape, both C-contiguous (the loop
    is one row), at most 32768 elements (past that PyTorch splits the row among its threads, as many as it has)."""
    n = a.size
    if not (b.shape == a.shape and 0 < n <= _ONE_CHUNK and a.flags.c_contiguous and b.flags.c_contiguous):
        return None
    count = n % 32
    if not count:
        return None
    return a.reshape(-1)[-count:] + factor * b.reshape(-1)[-count:]  # (numpy's float16 operators round each)


def _written(result, dtype, out):
    """``result`` rounded to ``dtype``: a new array, or written into ``out`` and ``out`` returned."""
    if out is None:
        return result.astype(dtype)
    np.copyto(out, result, casting="unsafe")  # (the cast astype makes, into out)
    return out


def check_integer_alpha(dtype, alpha):
    """PyTorch's conversion of ``alpha`` to an integer result's C type: beyond its range (an unsigned type takes
    down to minus its maximum) a RuntimeError with PyTorch's message."""
    info = np.iinfo(dtype)
    low = -int(info.max) if info.min == 0 else int(info.min)
    if not low <= int(alpha) <= int(info.max):
        raise RuntimeError(f"value cannot be converted to type {'u' if info.min == 0 else ''}int{info.bits}_t "
                           "without overflow")
