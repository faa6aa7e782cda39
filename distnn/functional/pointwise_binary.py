"""PyTorch's binary pointwise math (``torch.atan2``, ``hypot``, ``logaddexp``, ``xlogy``, ``copysign``, ``lerp``,
``fmax``/``fmin``, ...), broadcasting, with PyTorch's dtype promotion
(:func:`~distnn.autograd.dtype_rules.torch_operands`) and its derivative formulas (``derivatives.yaml``) written
as it writes them, so that the edge points agree: ``atan2``'s gradients at (0, 0) are 0 and ``hypot``'s NaN,
``xlogy``'s gradient at ``x = 0, y <= 0`` is 0, ``fmax``'s ties go to the first operand.

Either operand may be a number (PyTorch's function form wants a tensor second operand for ``atan2``, ``hypot``,
``logaddexp`` and ``fmax``/``fmin``; a number there is accepted here). Division and its remainders:
:mod:`.pointwise_division`; ``lerp``: :mod:`.lerp` (re-exported here).
"""
from __future__ import annotations

import math

import numpy as np

from distnn.autograd.dtype_rules import torch_operands
from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import as_array, default_dtype, get_array_module

from ._elementwise_common import _check_broadcast, _on_device, _quiet
from .torch_layout import torch_layout

_LN2 = math.log(2.0)


class _Binary(Function):
    """``compute(xp, a, b)`` the value; ``grads(xp, g, a, b, out)`` both gradients (the engine sums them down to
    each operand's shape and drops the one not needed)."""

    reads = ((0, 1), (0, 1))

    def forward(self, a, b):
        _check_broadcast(a, b, type(self).__name__.lower())
        xp = get_array_module(a, b)
        a, b = _arrays(xp, *_on_device(xp, a, b))
        with _quiet(xp, over=True):  # (inf and NaN where PyTorch gives them, without numpy's warnings)
            out = torch_layout(self.compute(xp, a, b), a, b)
        self.a, self.b, self.out = a, b, out
        return out

    def backward(self, g):
        xp = get_array_module(g)
        with _quiet(xp, over=True):
            ga, gb = self.grads(xp, g, self.a, self.b, self.out)
        na, nb = self.needs_input_grad
        return (ga if na else None), (gb if nb else None)


def _arrays(xp, a, b):
    """``a`` and ``b`` as arrays: a number becomes a 0-d array of the other operand's dtype (the dtype it is
    computed in, as PyTorch converts a scalar), so that every kernel sees arrays (cupy's want them)."""
    if not hasattr(a, "shape"):
        a = xp.asarray(a, dtype=b.dtype)
    elif not hasattr(b, "shape"):
        b = xp.asarray(b, dtype=a.dtype)
    return a, b


class Atan2(_Binary):
    torch_name = "Atan2Backward0"

    @staticmethod
    def compute(xp, a, b):
        return xp.arctan2(a, b)

    @staticmethod
    def grads(xp, g, a, b, out):
        recip = 1 / (a * a + b * b)
        recip = xp.where(xp.isinf(recip), 0, recip)  # (PyTorch's: zero at (0, 0), and where a^2 + b^2 underflows)
        return g * b * recip, g * -a * recip


class Hypot(_Binary):
    torch_name = "HypotBackward0"
    reads = ((0, OUTPUT), (1, OUTPUT))

    @staticmethod
    def compute(xp, a, b):
        return xp.hypot(a, b)

    @staticmethod
    def grads(xp, g, a, b, out):
        return g * a / out, g * b / out  # (0 / 0 at the origin: NaN, as PyTorch's)


class LogAddExp(_Binary):
    torch_name = "LogaddexpBackward0"
    reads = ((0, 1), (0, 1))
    base_e = True

    def compute(self, xp, a, b):
        m = xp.maximum(a, b)
        d = -xp.abs(a - b)
        soft = xp.log1p(xp.exp(d)) if self.base_e else xp.log1p(xp.exp2(d)) / _LN2
        return xp.where(xp.isinf(a) & (a == b), a, m + soft)  # (inf - inf would be NaN)

    def grads(self, xp, g, a, b, out):
        if self.base_e:
            return g / (1 + xp.exp(b - a)), g / (1 + xp.exp(a - b))
        return g / (1 + xp.exp2(b - a)), g / (1 + xp.exp2(a - b))


class LogAddExp2(LogAddExp):
    torch_name = "Logaddexp2Backward0"
    base_e = False


class Xlogy(_Binary):
    """``x log(y)``, 0 where ``x == 0`` (unless ``y`` is NaN). Gradients (PyTorch's): ``xlogy(g, y)`` with 0
    where ``x == 0 and y <= 0``, and ``g x / y``."""

    @staticmethod
    def compute(xp, a, b):
        return xp.where(xp.isnan(b), xp.nan, xp.where(a == 0, 0, a * xp.log(b))).astype(
            xp.result_type(a, b), copy=False)

    @staticmethod
    def grads(xp, g, a, b, out):
        ga = xp.where(xp.isnan(b), xp.nan, xp.where(g == 0, 0, g * xp.log(b)))
        return xp.where((a == 0) & (b <= 0), 0, ga), g * a / b


class Copysign(_Binary):
    """``|a|`` with ``b``'s sign. Gradients (PyTorch's): ``g * out / a`` (0 where ``a == 0``), and zero."""

    reads = ((0, OUTPUT), ())

    @staticmethod
    def compute(xp, a, b):
        return xp.copysign(a, b)

    @staticmethod
    def grads(xp, g, a, b, out):
        return g * xp.where(a == 0, 0, out / a), xp.zeros_like(g)


class Fmax(_Binary):
    """The larger, a NaN losing to a number. Gradients (PyTorch's): to ``a`` where ``a >= b`` or ``b`` is NaN
    (ties and two NaNs: all to ``a``), else to ``b``."""

    larger = True

    def compute(self, xp, a, b):
        return xp.where(self.first(xp, a, b), a, b).astype(xp.result_type(a, b), copy=False)  # (ties: ``a``'s zero)

    def grads(self, xp, g, a, b, out):
        first = self.first(xp, a, b)
        return xp.where(first, g, 0), xp.where(first, 0, g)

    def first(self, xp, a, b):
        return ((a >= b) if self.larger else (a <= b)) | xp.isnan(b)


class Fmin(Fmax):
    larger = False


# ---------------------------------------------------------------- dtypes and the public functions
def _operands(a, b, name, floats=True, integers=True):
    """``a`` and ``b`` promoted as PyTorch promotes them; with ``floats``, integer and bool results computed in the
    default float dtype (float32); without ``integers``, integer and bool operands refused, as PyTorch's kernels."""
    a, b = torch_operands(a, b)
    kind = _result_kind(a, b)
    if not integers and kind in "biu":
        raise NotImplementedError(f'"{name}" not implemented for integer or bool tensors (PyTorch\'s takes '
                                  "floating ones)")
    if floats and kind in "biu":
        a, b = (_to_float(a), _to_float(b))
    return a, b


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _result_kind(*ops):
    import numpy as np

    return np.result_type(*[_raw(o) for o in ops if o is not None]).kind


def _to_float(x):
    if isinstance(x, (bool, int)):
        return float(x)
    return _raw(x).astype(default_dtype())  # (an integer tensor carries no gradient: a constant)


def atan2(input, other):  # noqa: A002 - PyTorch's names
    """``torch.atan2``: the angle of (``other``, ``input``), in (-pi, pi]."""
    return Atan2.apply(*_operands(input, other, "atan2"))


def hypot(input, other):  # noqa: A002
    """``torch.hypot``: ``sqrt(input^2 + other^2)`` without overflow; floating inputs only, as PyTorch's."""
    return Hypot.apply(*_operands(input, other, "hypot", integers=False))


def multiply(input, other, *, out=None):  # noqa: A002
    """``torch.multiply`` (``torch.mul``); ``out``: PyTorch's rules (:mod:`.out_common`)."""
    from .elementwise import mul

    if out is not None:
        from .out_common import pointwise_into_out

        return pointwise_into_out("multiply", multiply, out, input, other, grad_name="mul")

    return mul(input, other)


def subtract(input, other, *, alpha=1, out=None):  # noqa: A002
    """``torch.subtract`` (``torch.sub``): ``input - alpha * other``; ``out``: PyTorch's rules
    (:mod:`.out_common`)."""
    from .method_forms import sub

    if out is not None:
        from .out_common import pointwise_into_out

        return pointwise_into_out("subtract", lambda a, b: subtract(a, b, alpha=alpha), out, input, other,
                                  grad_name="sub")
    return sub(input, other, alpha=alpha)  # (torch.sub's path: a bool operand refused, alpha's single rounding)


def logaddexp(input, other):  # noqa: A002
    """``torch.logaddexp``: ``log(e^input + e^other)`` without overflow; floating inputs only."""
    return LogAddExp.apply(*_operands(input, other, "logaddexp", integers=False))


def logaddexp2(input, other):  # noqa: A002
    """``torch.logaddexp2``: ``log2(2^input + 2^other)`` without overflow; floating inputs only."""
    return LogAddExp2.apply(*_operands(input, other, "logaddexp2", integers=False))


def xlogy(input, other):  # noqa: A002
    """``torch.xlogy``: ``input * log(other)``, 0 where ``input == 0`` (NaN where ``other`` is NaN)."""
    return Xlogy.apply(*_operands(input, other, "xlogy"))


def copysign(input, other):  # noqa: A002
    """``torch.copysign``: ``|input|`` with the sign of ``other`` (-0.0 counts as negative)."""
    return Copysign.apply(*_operands(input, other, "copysign"))


def fmax(input, other):  # noqa: A002
    """``torch.fmax``: the larger, a NaN losing to a number (``maximum`` propagates it)."""
    return Fmax.apply(*_operands(input, other, "fmax", floats=False))


def fmin(input, other):  # noqa: A002
    """``torch.fmin``: the smaller, a NaN losing to a number (``minimum`` propagates it)."""
    return Fmin.apply(*_operands(input, other, "fmin", floats=False))


def float_power(input, exponent):  # noqa: A002
    """``torch.float_power``: ``input ** exponent`` computed in float64 (complex128 where either operand is
    complex). As PyTorch's, each tensor operand not of that dtype is cast first (a ``ToCopyBackward0`` node where
    it requires grad) and the power is ``pow``'s, so the graph shows ``PowBackward0`` (a number exponent),
    ``PowBackward1`` (two tensors) or ``PowBackward2`` (a number base)."""
    if not isinstance(input, Tensor) and not isinstance(exponent, Tensor):
        raise TypeError(f"float_power(): expected a Tensor as the input or the exponent, got "
                        f"{type(input).__name__} and {type(exponent).__name__}")
    wide = np.complex128 if any(_is_complex(x) for x in (input, exponent)) else np.float64

    def widened(x):
        if isinstance(x, Tensor):
            return x if x.dtype == wide else x.astype(wide)  # (PyTorch's ``to``: no node when already wide)
        if isinstance(x, (bool, int, float, complex, np.number)):
            return complex(x) if wide is np.complex128 else float(x)
        from ._tensor_args import as_tensor

        return as_tensor(x).astype(wide)

    from .elementwise import pow as power

    return power(widened(input), widened(exponent))


def _is_complex(x):
    if isinstance(x, Tensor):
        return x.dtype.kind == "c"
    if isinstance(x, (bool, int, float)):  # (the common number exponent, first)
        return False
    return isinstance(x, (complex, np.complexfloating)) or as_array(x).dtype.kind == "c"  # (a raw cupy array too)


def clamp_min(input, *args, **kwargs):  # noqa: A002
    """``torch.clamp_min(input, min, *, out=None)``: ``clamp(input, min=min)`` (``min`` required: None is
    PyTorch's TypeError, its message listing the bound as given, by position or keyword)."""
    return _clamp_one("clamp_min", input, args, kwargs, "min")


def clamp_max(input, *args, **kwargs):  # noqa: A002
    """``torch.clamp_max(input, max, *, out=None)``: ``clamp(input, max=max)`` (``max`` required, as
    :func:`clamp_min`'s)."""
    return _clamp_one("clamp_max", input, args, kwargs, "max")


def _clamp_one(name, input, args, kwargs, which):  # noqa: A002
    from .clamp_arguments import one_bound_call
    from .elementwise_choice import _clamp_into, clamp_checked

    bound, out = one_bound_call(name, input, args, kwargs, which, out_allowed=True)
    lo, hi = (bound, None) if which == "min" else (None, bound)
    if out is not None:
        return _clamp_into(name, input, lo, hi, out, None, op=name)
    return clamp_checked(input, lo, hi)


def addcmul(input, tensor1, tensor2, *, value=1):  # noqa: A002
    """``torch.addcmul``: ``input + value * tensor1 * tensor2``. As PyTorch's kernel, computed in the tensors'
    dtype: integer tensors take a float ``value`` truncated (refused outside their range), bool ones are refused."""
    import numpy as np

    from .half_addc import HalfAddcmul, takes_half_path

    if takes_half_path(input, tensor1, tensor2, value):  # (float16: PyTorch's float32 kernel, one rounding)
        return HalfAddcmul.apply(input, tensor1, tensor2, value=value)
    dtypes = [_raw(x).dtype for x in (input, tensor1, tensor2) if hasattr(_raw(x), "dtype")]
    result = np.result_type(*dtypes) if dtypes else None
    if result is not None and (result.kind == "b" or result.kind == "u" and result.itemsize > 1):
        from distnn.autograd.tensor_inplace_methods import torch_dtype_name

        raise NotImplementedError(f"\"addcmul_cpu_out\" not implemented for '{torch_dtype_name(result)}'")
    if result is not None and result.kind in "iu" and isinstance(value, (float, complex, np.inexact)):
        from .checked_scalar import integer_scalar

        value = integer_scalar(value, result)
    return input + value * tensor1 * tensor2  # (PyTorch's order of operations: the same rounding)


def addcdiv(input, tensor1, tensor2, *, value=1):  # noqa: A002
    """``torch.addcdiv``: ``input + value * tensor1 / tensor2``; integer ``tensor1`` and ``tensor2`` are
    refused, as PyTorch refuses them."""
    if _result_kind(tensor1, tensor2) in "biu":
        raise RuntimeError("Integer division with addcdiv is no longer supported, and in a future release addcdiv "
                           "will perform a true division of tensor1 and tensor2. Use torch.addcmul or a true "
                           "division instead.")
    from .half_addc import HalfAddcdiv, takes_half_path

    if takes_half_path(input, tensor1, tensor2, value):  # (float16: PyTorch's float32 kernel, one rounding)
        return HalfAddcdiv.apply(input, tensor1, tensor2, value=value)
    return input + value * tensor1 / tensor2


arctan2 = atan2
__all__ = ["atan2", "arctan2", "hypot", "multiply", "subtract", "logaddexp", "logaddexp2", "xlogy", "copysign",
           "fmax", "fmin", "lerp", "float_power", "clamp_min", "clamp_max", "addcmul", "addcdiv"]


from .lerp import Lerp, LerpTensorWeight, lerp, lerp_array  # noqa: E402,F401 - (moved: still importable here)
