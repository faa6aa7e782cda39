"""Ops that copy their input in the graph: dtype cast, device transfer, clone (the gradient passes back).

Split out of :mod:`distnn.functional.elementwise`, which still exports every name here.
"""
from __future__ import annotations

from distnn.autograd.complex_discard import discards_imaginary, silently_discarding
from distnn.autograd.function import Function
from distnn.autograd.half_rounding import cast

from ._elementwise_common import _ALL_IGNORED, _FP_STATE
from .torch_layout import _relaid

__all__ = ["Cast", "ToDevice", "Clone", "integer_cast"]


def integer_cast(array, dtype):
    """``array`` in an integer or bool ``dtype`` (no gradient: long(), int(), to(int64)). A float's NaN, inf and
    values past the integer's range give what x86 gives (INT64_MIN for long(), INT32_MIN for int(): PyTorch's
    values), silently as PyTorch's (numpy warns 'invalid value encountered in cast')."""
    if array.dtype.kind not in "fc":
        return array.astype(dtype)
    token = _FP_STATE.set(_ALL_IGNORED)
    try:
        return array.astype(dtype)
    finally:
        _FP_STATE.reset(token)


class Cast(Function):
    torch_name = "ToCopyBackward0"
    saves_tensors = False

    def forward(self, a, dtype):
        self.src = a.dtype
        if discards_imaginary(a.dtype, dtype):  # (PyTorch's warning, once a process; numpy's silenced)
            with silently_discarding():
                return cast(a, dtype)
        if dtype.itemsize >= a.dtype.itemsize and (dtype.kind == a.dtype.kind or a.dtype.kind in "biu"):
            return a.astype(dtype)  # (a wider float, an integer's float: exact or rounded, never out of range)
        # a narrower float (half(), autocast's; float64 -> complex64): inf past its range; a float's integer
        # (long(), int()): NaN, inf and values past the range give what x86 gives (INT64_MIN...): PyTorch's
        # values, silently, as PyTorch's (numpy warns 'invalid value encountered in cast': Function.apply
        # silences it); float64 to float16 through float32, as PyTorch's (half_rounding)
        return cast(a, dtype)

    def backward(self, g):
        return (cast(g, self.src),)

    supports_complex = True

    def backward_complex(self, g):
        # (a real source takes the real part, PyTorch's handle_r_to_c; a complex one gets the gradient + 0j)
        return (cast(g if self.src.kind == "c" else g.real, self.src),)


class ToDevice(Function):
    """A copy on another device (``Tensor.to("cuda")``); the gradient goes back to the source's device."""

    saves_tensors = False

    def forward(self, a, device):
        from distnn.backend import device_of, to_device

        self.source = device_of(a)
        return to_device(a, device)

    supports_complex = True

    def backward(self, g):
        from distnn.backend import to_device

        return (to_device(g, self.source),)


class Clone(Function):
    """A copy in the graph (``x.clone()``): the gradient passes through. Laid out as ``a`` (PyTorch's
    ``preserve_format``: a transpose's clone is not contiguous, so its ``view(-1)`` is refused there too). An ``a``
    with no dense layout to keep (an expand, overlapping unfold windows) is laid out by its strides as PyTorch's
    ``infer_dense_strides`` lays it (a stride of 0 orders nothing: ``expand``'s clone is row-major)."""

    silences_float_warnings = False  # (computes no float: numpy's error state is left alone, ~0.25 us less)
    torch_name = "CloneBackward0"
    saves_tensors = False
    supports_complex = True

    def forward(self, a):
        out = a.copy(order="K")
        if a.ndim < 2 or a.flags.c_contiguous or a.flags.f_contiguous:  # (the common cases: numpy's is PyTorch's)
            return out
        return _relaid(out, a)

    def backward(self, g):
        return (g,)
