"""Elementwise ops: arithmetic, matmul, exp/log/sqrt/abs, maximum/minimum, clip, where.

Broadcasting is handled by the engine: a backward may return a gradient of the
output's (broadcast) shape and ``engine.sum_to_shape`` reduces it.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.dtype_rules import torch_operands
from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.tensor import Tensor
from distnn.backend import get_array_module


def _shape(x):
    return getattr(x, "shape", ())


def _check_broadcast(a, b, op):
    sa, sb = _shape(a), _shape(b)
    if sa == sb or not sa or not sb:
        return
    for x, y in zip(reversed(sa), reversed(sb)):
        if x != y and x != 1 and y != 1:
            raise ValueError(f"operands could not be broadcast together for {op}: shapes {tuple(sa)} and {tuple(sb)}")


class Add(Function):
    saves_tensors = False

    def forward(self, a, b):
        try:
            return a + b
        except ValueError:
            _check_broadcast(a, b, "+")
            raise

    def backward(self, g):
        return g, g


class Sub(Function):
    saves_tensors = False

    def forward(self, a, b):
        try:
            return a - b
        except ValueError:
            _check_broadcast(a, b, "-")
            raise

    def backward(self, g):
        return g, (-g if self.needs_input_grad[1] else None)


class Mul(Function):
    reads = ((1,), (0,))  # (``reads``: what each input's gradient reads, as PyTorch saves it; see Function)

    def forward(self, a, b):
        self.a, self.b = (a if self.needs_input_grad[1] else None), (b if self.needs_input_grad[0] else None)
        try:
            return a * b
        except ValueError:
            _check_broadcast(a, b, "*")
            raise

    def backward(self, g):
        na, nb = self.needs_input_grad
        return (g * self.b if na else None), (g * self.a if nb else None)


class Div(Function):
    # Reads its inputs, not its output (PyTorch's formula): ``t /= w`` then ``t += 1`` backpropagates, as there.
    reads = ((1,), (0, 1))

    def forward(self, a, b):
        try:
            out = a / b
        except ValueError:
            _check_broadcast(a, b, "/")
            raise
        self.a, self.b = (a if self.needs_input_grad[1] else None), b
        return out

    def backward(self, g):
        na, nb = self.needs_input_grad
        ga = g / self.b if na else None
        gb = -g * (self.a / self.b) / self.b if nb else None
        return ga, gb


class Pow(Function):
    """``a ** b`` with a Tensor exponent, or a constant base (``2.0 ** x``)."""

    reads = ((0, 1, OUTPUT), (0, 1, OUTPUT))  # (PyTorch's pow.Tensor_Tensor keeps its result in either case)

    def forward(self, a, b):
        try:
            out = a**b
        except ValueError:
            _check_broadcast(a, b, "**")
            raise
        self.a, self.b = a, b
        self.out = out if self.needs_input_grad[1] else None
        return out

    def backward(self, g):
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        ga = gb = None
        xp = get_array_module(a)
        if na:
            if getattr(b, "ndim", 0) == 0 and b != 0:  # the common case, x ** 2
                with _quiet(xp):  # (x ** 0.5 at x = 0: an inf gradient, as PyTorch gives it, without numpy's warning)
                    ga = g * b * a ** (b - 1)
            else:  # d(a^0)/da is 0, also at a = 0 where b * a^(b-1) would be 0 * inf (PyTorch masks it too)
                with _quiet(xp):
                    d = b * a ** (b - 1)
                ga = g * xp.where(b == 0, 0, d)
        if nb:
            gb = g * self.out * xp.log(xp.where(a > 0, a, 1))  # (taken as 0 for a <= 0, where a^b is real only
            # for integer b and has no derivative in b)
        return ga, gb


def _on_device(xp, *values):
    """``values`` with host (numpy) arrays copied to the GPU when ``xp`` is cupy, which refuses a mix
    (a host constant beside GPU tensors: where's values, clamp's bounds, maximum's operand)."""
    if xp is np:
        return values
    return tuple(xp.asarray(v) if isinstance(v, np.ndarray) else v for v in values)


def _quiet(xp, over: bool = False):
    """numpy's floating-point warnings off (for values that are masked right after; ``over``: overflow too);
    cupy has none."""
    import contextlib

    if not hasattr(xp, "errstate"):
        return contextlib.nullcontext()
    return xp.errstate(divide="ignore", invalid="ignore", over="ignore" if over else None)  # (None: unchanged)


class PowConstant(Pow):
    """``a ** c`` with a constant exponent (``x ** 2``): its gradient reads ``a`` only, as PyTorch's."""

    reads = ((0,), ())


class ReciprocalScaled(Function):
    """``c / a`` for a constant ``c``, as PyTorch computes it: ``reciprocal(a) * c``, whose backward reads
    the reciprocal, its own array. So ``z = 3.0 / y; y += 1`` backpropagates, as in PyTorch (a ``Div``
    would read ``y``)."""

    saves_tensors = False

    def forward(self, a, c):
        self.r, self.c = 1 / a, c
        return self.r * c

    def backward(self, g):
        r = self.r
        return (-(g * self.c) * (r * r),)


class Neg(Function):
    saves_tensors = False

    def forward(self, a):
        return -a

    def backward(self, g):
        return (-g,)


class Cast(Function):
    saves_tensors = False

    def forward(self, a, dtype):
        self.src = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return (g.astype(self.src),)


class ToDevice(Function):
    """A copy on another device (``Tensor.to("cuda")``); the gradient goes back to the source's device."""

    saves_tensors = False

    def forward(self, a, device):
        from distnn.backend import device_of, to_device

        self.source = device_of(a)
        return to_device(a, device)

    def backward(self, g):
        from distnn.backend import to_device

        return (to_device(g, self.source),)


def _f_only(x):
    """A 2-D operand stored transposed (e.g. ``W.T``): F-contiguous but not C-contiguous."""
    return x.ndim == 2 and x.flags.f_contiguous and not x.flags.c_contiguous


class MatMul(Function):
    """Batched matrix product with numpy's 1-D promotion rules."""

    reads = ((1,), (0,))

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands must have at least one dimension; use * for scalars")
        ka = a.shape[-1]
        kb = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if ka != kb:
            raise ValueError(
                f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not align "
                f"(inner dimensions {ka} != {kb})"
            )
        na, nb = self.needs_input_grad
        self.a = a if nb else None
        self.b = b if na else None
        self.a_ndim, self.b_ndim = a.ndim, b.ndim
        # A transposed 2-D operand (x @ W.T) gets its gradient in the same layout,
        # so the Transpose node hands W a C-contiguous array and nothing is copied.
        self.a_t = na and _f_only(a)
        self.b_t = nb and _f_only(b)
        try:
            return a @ b
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be broadcast together"
            ) from None

    def backward(self, g):
        xp = get_array_module(g)
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        if self.a_t and g.ndim == 2 and b.ndim == 2:
            return (b @ g.T).T, (xp.swapaxes(a, -1, -2) @ g if nb else None)
        if self.b_t and g.ndim == 2 and a.ndim == 2:
            return (g @ b.T if na else None), (g.T @ a).T
        if self.a_ndim == 1 and self.b_ndim == 1:  # inner product: g is 0-d
            return (g * b if na else None), (g * a if nb else None)
        # Promote 1-D operands to matrices, as the forward did implicitly.
        if self.a_ndim == 1:
            g = xp.expand_dims(g, -2)
            a = a[None, :] if a is not None else None
        if self.b_ndim == 1:
            g = xp.expand_dims(g, -1)
            b = b[:, None] if b is not None else None
        ga = gb = None
        if na:
            ga = g @ xp.swapaxes(b, -1, -2)
            if self.a_ndim == 1:
                ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:])
        if nb:
            gb = xp.swapaxes(a, -1, -2) @ g
            if self.b_ndim == 1:
                gb = gb.reshape(gb.shape[:-1])
        return ga, gb


class Exp(Function):
    reads = ((OUTPUT,),)

    def forward(self, a):
        xp = get_array_module(a)
        self.out = xp.exp(a)
        return self.out

    def backward(self, g):
        return (g * self.out,)


class Log(Function):
    reads = ((0,),)

    def forward(self, a):
        self.a = a
        return get_array_module(a).log(a)

    def backward(self, g):
        return (g / self.a,)


class Sqrt(Function):
    reads = ((OUTPUT,),)

    def forward(self, a):
        self.out = get_array_module(a).sqrt(a)
        return self.out

    def backward(self, g):
        return (g / (2 * self.out),)


class Abs(Function):
    reads = ((0,),)  # (backward reads its own sign array; the input is PyTorch's, so both refuse a change of it)

    def forward(self, a):
        xp = get_array_module(a)
        self.sign = xp.sign(a)
        return xp.abs(a)

    def backward(self, g):
        return (g * self.sign,)


class _Select(Function):
    """maximum/minimum: the gradient goes to the chosen operand, split evenly on ties, and to both
    where one is NaN (the output is NaN then), as PyTorch's: each operand gets it except where it lost."""

    reads = ((0, 1), (0, 1))  # (its own masks: the inputs are what PyTorch's saves, so both refuse alike)

    lost_first = None  # (a, b) -> where ``a`` was not chosen (and ``b`` is the other way round)

    def forward(self, a, b):
        _check_broadcast(a, b, type(self).__name__.lower())
        xp = get_array_module(a, b)
        a, b = _on_device(xp, a, b)
        na, nb = self.needs_input_grad or (False, False)
        if na or nb:
            dtype = xp.result_type(a, b)
            tie = a == b
            half = dtype.type(0.5)
            self.wa = xp.where(tie, half, ~self.lost_first(a, b)) if na else None
            self.wb = xp.where(tie, half, ~self.lost_first(b, a)) if nb else None
        return xp.maximum(a, b) if type(self) is Maximum else xp.minimum(a, b)

    def backward(self, g):
        return (g * self.wa if self.wa is not None else None), (g * self.wb if self.wb is not None else None)


class Maximum(_Select):
    @staticmethod
    def lost_first(a, b):
        return a < b


class Minimum(_Select):
    @staticmethod
    def lost_first(a, b):
        return a > b


class Clip(Function):
    """``clamp(a, lo, hi)``: ``minimum(maximum(a, lo), hi)`` (all ``hi`` where ``lo > hi``), with
    numbers, arrays or Tensors as bounds. The gradient is PyTorch's: to ``a`` where
    ``lo <= a <= hi``; to a Tensor ``lo`` where ``a < lo`` (and ``lo < hi``); to a Tensor ``hi``
    where ``a > hi`` (or ``hi < lo``)."""

    reads = ((0, 1, 2),) * 3  # (its own masks: the inputs are what PyTorch's saves, so both refuse alike)

    def forward(self, a, lo=None, hi=None):
        xp = get_array_module(a)
        lo, hi = _on_device(xp, lo, hi)
        if xp is np or (lo is None and hi is None):
            out = xp.clip(a, lo, hi)
        else:  # cupy's clip kernel passes over a NaN bound (numpy's clip and PyTorch's clamp give NaN): its parts
            out = a
            if lo is not None:
                out = xp.maximum(out, lo)
            if hi is not None:
                out = xp.minimum(out, hi)
        na, nlo, nhi = self.needs_input_grad or (False, False, False)
        if na:
            self.mask = xp.ones(out.shape, dtype=bool)  # (the bounds may broadcast ``a`` to a larger shape)
            if lo is not None:
                self.mask &= a >= lo
            if hi is not None:
                self.mask &= a <= hi
        if nlo:
            self.mask_lo = (a < lo) if hi is None else (a < lo) & (lo < hi)
        if nhi:
            self.mask_hi = (a > hi) if lo is None else (a > hi) | (hi < lo)
        return out

    def backward(self, g):
        # where, not g * mask: an inf or NaN gradient arriving at a clamped entry gives 0 there, not NaN (inf * 0),
        # as PyTorch's clamp_backward (F.normalize's clamp of a 0 norm meets the inf of x / norm^2 there)
        xp = get_array_module(g)
        na, nlo, nhi = self.needs_input_grad
        return (xp.where(self.mask, g, 0) if na else None, xp.where(self.mask_lo, g, 0) if nlo else None,
                xp.where(self.mask_hi, g, 0) if nhi else None)


class Where(Function):
    reads = ((), (0,), (0,))  # (the condition only)

    def forward(self, cond, a, b):
        xp = get_array_module(cond, a, b)
        cond, a, b = _on_device(xp, cond, a, b)
        self.cond = cond
        try:
            return xp.where(cond, a, b)
        except ValueError:
            raise ValueError(
                f"where: condition, x and y could not be broadcast together: shapes {tuple(_shape(cond))}, "
                f"{tuple(_shape(a))} and {tuple(_shape(b))}"
            ) from None

    def backward(self, g):
        xp = get_array_module(g)
        _, na, nb = self.needs_input_grad
        zero = xp.zeros((), dtype=g.dtype)
        return None, (xp.where(self.cond, g, zero) if na else None), (xp.where(self.cond, zero, g) if nb else None)


# ---------------------------------------------------------------- public wrappers
# With a Tensor operand these are the operators, typed as PyTorch types them (a float32 tensor stays
# float32 beside a numpy float64 scalar or an integer tensor: see distnn.autograd.dtype_rules).
def add(a, b):
    return a + b if isinstance(a, Tensor) or isinstance(b, Tensor) else Add.apply(a, b)


def sub(a, b):
    return a - b if isinstance(a, Tensor) or isinstance(b, Tensor) else Sub.apply(a, b)


def mul(a, b):
    return a * b if isinstance(a, Tensor) or isinstance(b, Tensor) else Mul.apply(a, b)


def div(a, b):
    return a / b if isinstance(a, Tensor) or isinstance(b, Tensor) else Div.apply(a, b)


def pow(a, b):  # noqa: A001 - numpy/torch name
    return a ** b if isinstance(a, Tensor) or isinstance(b, Tensor) else Pow.apply(a, b)


def neg(a):
    return Neg.apply(a)


def matmul(a, b):
    return MatMul.apply(a, b)


def float_input(a):
    """PyTorch's rule for a float-valued function of integers or booleans: computed in the default float
    dtype (float32; numpy's would be float64). An integer tensor cannot require grad: its array is used."""
    raw = a.data if isinstance(a, Tensor) else a
    dtype = getattr(raw, "dtype", None)
    if dtype is not None and dtype.kind in "biu":
        from distnn.backend import DEFAULT_DTYPE

        return raw.astype(DEFAULT_DTYPE)
    return a


def exp(a):
    return Exp.apply(float_input(a))


def log(a):
    return Log.apply(float_input(a))


def sqrt(a):
    return Sqrt.apply(float_input(a))


def abs(a):  # noqa: A001
    return Abs.apply(a)


def maximum(a, b):
    return Maximum.apply(*torch_operands(a, b))


def minimum(a, b):
    return Minimum.apply(*torch_operands(a, b))


def clip(a, min=None, max=None):  # noqa: A002
    """``torch.clamp``: ``a`` limited to ``[min, max]``; either bound may be None, a number, an array or a Tensor."""
    return Clip.apply(*torch_operands(a, min, max))


def where(cond, a, b):
    """Elementwise ``a`` where ``cond`` else ``b``; ``cond`` carries no gradient (a Tensor ``cond`` is
    version-checked like the other inputs: changing it in place before backward is an error)."""
    return Where.apply(cond, *torch_operands(a, b))


class Clone(Function):
    """A copy in the graph (``x.clone()``): the gradient passes through."""

    saves_tensors = False

    def forward(self, a):
        return a.copy()

    def backward(self, g):
        return (g,)
