"""PyTorch's ``torch.testing.assert_close`` (and its deprecated ``assert_allclose``) for distnn.

The inputs are compared pair by pair, through nested sequences (not strings) and mappings, as PyTorch's:
two ``None``, two bools, two numbers (Python's or numpy's), or two tensor-likes of one kind (distnn Tensors,
numpy arrays, cupy arrays: a Tensor against an array is refused, as PyTorch refuses a tensor against an array).
Tensor-likes must have the same shape, and unless switched off the same device and dtype (``check_stride``:
the same strides, in elements); their values are close when ``|actual - expected| <= atol + rtol *
|expected|`` everywhere (``equal_nan``: NaN equal to NaN). The default tolerances are PyTorch's, by dtype
(the looser of the two inputs'); integers and bools compare exactly. The first failing pair raises PyTorch's
error: an AssertionError "Tensor-likes are not close!" with the mismatched elements and the greatest absolute
and relative differences, "Scalars are not close!" for 0-d tensors and numbers, "The values for attribute
'dtype' do not match: ..." and so on; a TypeError for inputs no pair compares.
"""
from __future__ import annotations

import cmath
import collections.abc
import warnings

import numpy as np

from distnn.autograd.tensor import Tensor
from distnn.backend import default_dtype, device_of, to_numpy
from distnn.dtypes import promote_types
from distnn.functional.view_strides import torch_strides

__all__ = ["assert_close", "assert_allclose"]

# (rtol, atol) by dtype: PyTorch's table; a dtype not in it (integers, bool) compares exactly
_PRECISIONS = {np.dtype(np.float16): (0.001, 1e-5), np.dtype(np.float32): (1.3e-6, 1e-5),
               np.dtype(np.float64): (1e-7, 1e-7), np.dtype(np.complex64): (1.3e-6, 1e-5),
               np.dtype(np.complex128): (1e-7, 1e-7)}
_NUMBER_DTYPES = {int: np.dtype(np.int64), float: np.dtype(np.float64), complex: np.dtype(np.complex128)}


class _Mismatch(Exception):
    """A failed pair: the exception type and message to raise, and where in the inputs it is."""

    def __init__(self, kind, message, where=()):
        super().__init__(message)
        self.kind, self.message, self.where = kind, message, where

    def error(self, msg):
        if isinstance(msg, str):  # (a string replaces the whole message, as PyTorch's)
            return self.kind(msg)
        message = self.message
        if self.where:
            message += f"\n\nThe failure occurred for item {''.join(str([k]) for k in self.where)}"
        return self.kind(msg(message) if callable(msg) else message)


def assert_close(actual, expected, *, allow_subclasses=True, rtol=None, atol=None, equal_nan=False,
                 check_device=True, check_dtype=True, check_layout=True, check_stride=False, msg=None) -> None:
    """``torch.testing.assert_close``: raise unless ``actual`` and ``expected`` are close (see the module
    docstring). ``rtol`` and ``atol`` are given together or not at all. ``msg``: a string that replaces the
    failure message, or a callable given it that returns the one to raise. ``check_layout`` is accepted for
    PyTorch's signature (distnn has one layout)."""
    options = dict(allow_subclasses=allow_subclasses, rtol=rtol, atol=atol, equal_nan=equal_nan,
                   check_device=check_device, check_dtype=check_dtype, check_stride=check_stride)
    try:
        _compare(actual, expected, (), options)
    except _Mismatch as mismatch:
        raise mismatch.error(msg) from None


def assert_allclose(actual, expected, rtol=None, atol=None, equal_nan=True, msg="") -> None:
    """PyTorch's deprecated ``torch.testing.assert_allclose`` (with its FutureWarning): non-tensors become
    tensors (``expected`` in ``actual``'s dtype), dtypes need not match, and the default tolerances are the
    older, looser ones (float16 1e-3/1e-3, float32 1e-4/1e-5, float64 1e-5/1e-8)."""
    warnings.warn("`distnn.testing.assert_allclose()` is deprecated, as PyTorch's `torch.testing.assert_allclose()` "
                  "since 1.12, and will be removed in a future release. Please use "
                  "`distnn.testing.assert_close()` instead.", FutureWarning, stacklevel=2)
    if not isinstance(actual, Tensor):
        actual = _tensor(actual)
    if not isinstance(expected, Tensor):
        expected = _tensor(expected, dtype=actual.dtype)
    if rtol is None and atol is None:
        old = {np.dtype(np.float16): (1e-3, 1e-3), np.dtype(np.float32): (1e-4, 1e-5),
               np.dtype(np.float64): (1e-5, 1e-8)}
        rtol, atol = (max(t) for t in zip(*(old.get(np.dtype(x.dtype), (0.0, 0.0)) for x in (actual, expected))))
    assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan, check_device=True,
                 check_dtype=False, check_stride=False, msg=msg or None)


def _tensor(data, dtype=None):
    import distnn

    return distnn.tensor(data, dtype=dtype)


def _compare(actual, expected, where, options):
    """Compare a pair, recursing through sequences and mappings; raise :class:`_Mismatch` at the first fault."""
    seq = collections.abc.Sequence
    if isinstance(actual, seq) and isinstance(expected, seq) and not isinstance(actual, str) \
            and not isinstance(expected, str):
        if len(actual) != len(expected):
            raise _Mismatch(AssertionError, f"The length of the sequences mismatch: {len(actual)} != "
                                            f"{len(expected)}", where)
        for i in range(len(actual)):
            _compare(actual[i], expected[i], (*where, i), options)
    elif isinstance(actual, collections.abc.Mapping) and isinstance(expected, collections.abc.Mapping):
        keys, other = set(actual.keys()), set(expected.keys())
        if keys != other:
            raise _Mismatch(AssertionError, "The keys of the mappings do not match:\n"
                                            f"Missing keys in the actual mapping: {sorted(other - keys)}\n"
                                            f"Additional keys in the actual mapping: {sorted(keys - other)}", where)
        try:
            keys = sorted(keys)
        except TypeError:
            pass
        for key in keys:
            _compare(actual[key], expected[key], (*where, key), options)
    elif actual is None or expected is None:
        if actual is not expected:
            raise _Mismatch(AssertionError, f"None mismatch: {actual} is not {expected}", where)
    elif isinstance(actual, (bool, np.bool_)) and isinstance(expected, (bool, np.bool_)):
        if bool(actual) is not bool(expected):
            raise _Mismatch(AssertionError, f"Booleans mismatch: {bool(actual)} is not {bool(expected)}", where)
    elif _is_number(actual) and _is_number(expected):
        _compare_numbers(_item(actual), _item(expected), where, options)
    elif _is_tensor_like(actual) and _is_tensor_like(expected) and _related(actual, expected, options):
        _compare_tensors(actual, expected, where, options)
    else:
        raise _Mismatch(TypeError, f"No comparison pair was able to handle inputs of type {type(actual)} and "
                                   f"{type(expected)}.", where)


def _is_number(x) -> bool:
    return isinstance(x, (int, float, complex, np.number)) and not isinstance(x, (bool, np.bool_))


def _item(x):
    return x.item() if isinstance(x, np.number) else x


def _is_tensor_like(x) -> bool:
    return isinstance(x, (Tensor, np.ndarray)) or type(x).__module__.startswith("cupy")


def _related(actual, expected, options) -> bool:
    """PyTorch's rule: one's type an instance of the other's (a subclass only with ``allow_subclasses``)."""
    if not (isinstance(actual, type(expected)) or isinstance(expected, type(actual))):
        return False
    return options["allow_subclasses"] or type(actual) is type(expected)


def _tolerances(dtypes, options, where):
    rtol, atol = options["rtol"], options["atol"]
    if (rtol is None) != (atol is None):
        raise _Mismatch(ValueError, "Both 'rtol' and 'atol' must be either specified or omitted, but got no "
                                    f"{'rtol' if rtol is None else 'atol'}.", where)
    if rtol is not None:
        return rtol, atol
    rtols, atols = zip(*(_PRECISIONS.get(np.dtype(d), (0.0, 0.0)) for d in dtypes))
    return max(rtols), max(atols)


def _compare_numbers(actual, expected, where, options):
    rtol, atol = _tolerances([_NUMBER_DTYPES[type(x)] for x in (actual, expected)], options, where)
    if options["check_dtype"] and type(actual) is not type(expected):
        raise _Mismatch(AssertionError, f"The (d)types do not match: {type(actual)} != {type(expected)}.", where)
    if actual == expected or (options["equal_nan"] and cmath.isnan(actual) and cmath.isnan(expected)):
        return
    diff = abs(actual - expected)
    if cmath.isfinite(diff) and diff <= atol + rtol * abs(expected):
        return
    raise _Mismatch(AssertionError, _scalar_message(actual, expected, rtol, atol), where)


def _scalar_message(actual, expected, rtol, atol):
    diff = abs(actual - expected)
    relative = float("inf") if expected == 0 else diff / abs(expected)
    return _message("Scalars", f"Expected {expected} but got {actual}.", diff, None, relative, None, rtol, atol)


def _message(what, extra, diff, diff_at, relative, relative_at, rtol, atol):
    equality = rtol == 0 and atol == 0
    lines = [f"{what} are not {'equal' if equality else 'close'}!", "", extra]
    for kind, value, at, tol in (("absolute", diff, diff_at, atol), ("relative", relative, relative_at, rtol)):
        line = f"{kind.title()} difference: {value}" if at is None else \
            f"Greatest {kind} difference: {value} at index {at}"
        lines.append(line if equality else f"{line} (up to {tol} allowed)")
    return "\n".join(lines)


def _array(x):
    return x.data if isinstance(x, Tensor) else x


def _compare_tensors(actual, expected, where, options):
    a, e = _array(actual), _array(expected)
    rtol, atol = _tolerances([a.dtype, e.dtype], options, where)

    def differ(name, mine, theirs):
        raise _Mismatch(AssertionError, f"The values for attribute '{name}' do not match: {mine} != {theirs}.",
                        where)
    if a.shape != e.shape:
        differ("shape", tuple(a.shape), tuple(e.shape))
    if options["check_stride"] and torch_strides(a) != torch_strides(e):
        differ("stride()", torch_strides(a), torch_strides(e))
    if options["check_device"] and device_of(a) != device_of(e):
        differ("device", device_of(a), device_of(e))
    if options["check_dtype"] and a.dtype != e.dtype:
        differ("dtype", a.dtype, e.dtype)
    a, e = to_numpy(a), to_numpy(e)  # (the values are compared on the host, as PyTorch's across devices)
    if a.dtype != e.dtype:
        common = promote_types(a.dtype, e.dtype)
        a, e = a.astype(common), e.astype(common)
    matches = _close(a, e, rtol, atol, options["equal_nan"])
    if matches.all():
        return
    if a.ndim == 0:
        raise _Mismatch(AssertionError, _scalar_message(a.item(), e.item(), rtol, atol), where)
    raise _Mismatch(AssertionError, _tensor_message(a, e, matches, rtol, atol), where)


def _close(a, e, rtol, atol, equal_nan):
    """PyTorch's ``isclose``: exact for bools and integers at zero tolerance."""
    if a.dtype.kind in "biu" and rtol == 0 and atol == 0:
        return a == e
    if a.dtype.kind == "b":
        a, e = a.astype(np.int64), e.astype(np.int64)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=equal_nan)


def _tensor_message(a, e, matches, rtol, atol):
    total, bad = matches.size, int(matches.size - np.count_nonzero(matches))
    a, e, ok = a.reshape(-1), e.reshape(-1), matches.reshape(-1)
    integers = a.dtype.kind not in "fc"
    if integers:  # (integers and bools differ as int64, as PyTorch's)
        a, e = a.astype(np.int64), e.astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        diff = np.abs(a - e)
        diff[ok] = 0
        # (PyTorch divides integers in its default dtype: the relative difference prints as that float)
        relative = (diff.astype(default_dtype()) / np.abs(e).astype(default_dtype()) if integers
                    else diff / np.abs(e))
    relative[ok] = 0
    at_diff, at_relative = int(np.argmax(diff)), int(np.argmax(relative))  # (a NaN is the greatest, as torch.max)

    def index(flat):
        return tuple(int(i) for i in np.unravel_index(flat, matches.shape))
    return _message("Tensor-likes", f"Mismatched elements: {bad} / {total} ({bad / total:.1%})",
                    diff[at_diff].item(), index(at_diff), relative[at_relative].item(), index(at_relative),
                    rtol, atol)
