"""Variance and standard deviation, as PyTorch's: ``var``, ``std``, ``var_mean``, ``std_mean``.

Split out of :mod:`distnn.functional.reduce` (which still exports ``Var``, ``Std``, ``var`` and ``std``).

PyTorch (CPU) accumulates a float32 or float16 variance in float64. Reduced to one value (a float32 or float64
tensor), it is two passes: the mean in the input's dtype (``x.mean()``: inf past float32's range), then the
squared deviations summed in float64; with more than one value, and for var_mean/std_mean and float16 always,
Welford's update in float64, the mean included. So ``std([1e20, -1e20])`` is 1.41e20 (its variance, 2e40, is
inf in float32), ``std_mean([3e38, 3e38, 1e5, -1e5])`` is (1.73e38, 1.5e38), and that tensor's ``std()`` is inf
(its float32 mean is). distnn computes float32 in float32 (the common case, at float32's speed) with overflow
raising, and only where it overflows computes again in float64, the mean as PyTorch's; float16 is computed in
float32 (its squares pass 65504 from deviations of 256). float64 overflows to inf, silently. var_mean and
std_mean (numpy arrays) give PyTorch's Welford results, its update order's artifacts included (a float64 slice
near 1e308, an inf before other values): :mod:`._welford`.

The gradients are PyTorch's formulas (``var_backward``/``std_backward``), including where they give inf or
NaN: the input's deviation from its mean in the input's own dtype (a float32 mean that overflows gives an inf
gradient, as PyTorch's), ``2 / (n - correction)`` along a dim (negative past zero degrees of freedom), and over
every element with none left, ``grad * where(x == mean, nan, inf)``.
"""
from __future__ import annotations

import builtins
import math
import warnings

import numpy as np

from distnn._stacklevel import caller_stacklevel
from distnn.autograd.function import OUTPUT, Function
from distnn.autograd.unset_defaults import EVERY_DIM, NOT_KEPT, UNBIASED
from distnn.backend import get_array_module

from ._elementwise_common import _ALL_IGNORED, _FP_STATE, _OVERFLOW_RAISES
from ._welford import to_dtype_as_torch, welford_var_mean
from .reduce import Mean, _axes, _dtype_of, _every_dim_if_empty, _resolve, _torch_name
from .torch_layout import row_major

__all__ = ["Var", "Std", "var", "std", "var_mean", "std_mean"]

# the dtype a variance is computed in again when it overflows its own (float16: always, see the docstring)
_WIDER = {np.dtype(np.float32): np.dtype(np.float64), np.dtype(np.float16): np.dtype(np.float32)}


class Var(Function):
    """Variance with ``ddof`` (numpy's convention: 0 is the population variance)."""

    torch_name = "VarBackward0"
    reads = ((0,),)  # (its own centered array; the input is what PyTorch's saves, so both refuse alike)
    # (its forward sets numpy's error state itself, overflow raising in float32 to be retried in float64:
    # Function.apply's silence around it would be a second set and reset)
    silences_float_warnings = False

    def forward(self, a, axis=None, ddof=0, keepdims=False, name="var", paired=False):
        return row_major(self._variance(a, axis, ddof, keepdims, name, root=False, paired=paired))

    def _variance(self, a, axis, ddof, keepdims, name, root, paired):
        """The variance (its square root with ``root``) in ``a``'s dtype; keeps what the backward reads.
        ``paired``: var_mean's or std_mean's (PyTorch's Welford results), a dict that takes the mean too."""
        axes = _axes(axis, a.ndim)
        n = kept = 1
        for ax, size in enumerate(a.shape):
            if ax in axes:
                n *= size
            else:
                kept *= size
        # (PyTorch's backward over every element, or a 0-d tensor, is another formula than along a dim)
        self.full = axis is None or a.ndim == 0
        self.axes, self.keepdims, self.dof, self.ddof = axes, keepdims, n - ddof, ddof
        self.denom = builtins.max(self.dof, 0)
        if not self.denom:
            # No degrees of freedom left (one element, correction 1): NaN or inf, with PyTorch's UserWarning in
            # place of numpy's RuntimeWarnings (``name``: the function PyTorch's warning names, std() or var_mean())
            warnings.warn(f"{name}(): degrees of freedom is <= 0. Correction should be strictly less than the "
                          "reduction factor (input numel divided by output numel).", UserWarning,
                          stacklevel=caller_stacklevel())
        if paired and get_array_module(a) is np and a.dtype.kind == "f":
            return self._as_welford(a, axes, n, keepdims, root, paired)
        wider = _WIDER.get(a.dtype) if get_array_module(a) is np else None  # (cupy: no floating-point traps)
        if wider is None or a.dtype == np.float32:
            token = _FP_STATE.set(_ALL_IGNORED if wider is None else _OVERFLOW_RAISES)
            try:
                self.mean = a.sum(axis=axes, keepdims=True) / n  # (0 / 0: NaN for no elements, as PyTorch's)
                self.centered = a - self.mean  # two-pass: no E[x^2] - mean^2 cancellation
                out = _squares(self.centered).sum(axis=axes, keepdims=keepdims) / self.denom
                return get_array_module(a).sqrt(out) if root else out
            except FloatingPointError:
                pass  # past float32's range: in float64 below, as PyTorch's accumulator
            finally:
                _FP_STATE.reset(token)
        token = _FP_STATE.set(_ALL_IGNORED)
        try:
            wide = a.astype(wider)
            if kept == 1 and not paired and a.dtype == np.float32:  # (one value: PyTorch's mean in float32)
                centered = wide - (a.sum(axis=axes, keepdims=True) / n).astype(wider)
            else:
                centered = wide - wide.sum(axis=axes, keepdims=True) / n
            out = (centered * centered).sum(axis=axes, keepdims=keepdims) / self.denom
            # the backward's deviations, as PyTorch's: from the mean in the input's dtype (inf where it overflows)
            self.mean = a.mean(axis=axes, keepdims=True) if n else a.sum(axis=axes, keepdims=True) / n
            self.centered = a - self.mean
            return (get_array_module(a).sqrt(out) if root else out).astype(a.dtype)
        finally:
            _FP_STATE.reset(token)

    def _as_welford(self, a, axes, n, keepdims, root, paired):
        """var_mean's and std_mean's spread: PyTorch's Welford accumulator's (:mod:`._welford`), cast as its."""
        token = _FP_STATE.set(_ALL_IGNORED)
        try:
            # (no degrees of freedom: m2 / 0, inf or NaN, as PyTorch's)
            out, mean = welford_var_mean(a, axes, correction=self.ddof, root=root)
            if isinstance(paired, dict):  # (handed to MeanBesideVar, the same call's mean: one pass for both)
                paired.update(source=a, axes=axes, mean=mean)
            if not keepdims:
                out = out.reshape([size for d, size in enumerate(a.shape) if d not in axes])
            # the backward's deviations, as PyTorch's var_backward: from the mean in the input's dtype
            self.mean = a.mean(axis=axes, keepdims=True) if n else a.sum(axis=axes, keepdims=True) / n
            self.centered = a - self.mean
            return to_dtype_as_torch(out, a.dtype)
        finally:
            _FP_STATE.reset(token)

    def backward(self, g):
        if not self.keepdims and self.centered.ndim:
            g = get_array_module(g).expand_dims(g, self.axes)
        return (self._var_backward(g),)

    def _var_backward(self, g):
        """PyTorch's ``var_backward`` for ``g`` shaped as the kept-dims result (inf and NaN where its are)."""
        xp = get_array_module(g)
        token = _FP_STATE.set(_ALL_IGNORED)
        try:
            if self.full and self.dof <= 0:  # (2 / 0 = inf; x == mean: inf * 0 = NaN; NaN: inf, as PyTorch's)
                nan, inf = g.dtype.type(math.nan), g.dtype.type(math.inf)
                return g * xp.where((self.centered == 0) | (xp.isnan(self.centered) & xp.isinf(self.mean)), nan, inf)
            return g * (2.0 / self.dof if self.dof else math.inf) * self.centered
        finally:
            _FP_STATE.reset(token)


class Std(Var):
    """sqrt(Var); its gradient is 0 where the deviation is 0 (a constant slice), as in PyTorch."""

    torch_name = "StdBackward0"
    reads = ((0, OUTPUT),)

    def forward(self, a, axis=None, ddof=0, keepdims=False, name="std", paired=False):
        self.s = row_major(self._variance(a, axis, ddof, True, name, root=True, paired=paired))
        self.keepdims = keepdims
        return self.s if keepdims else self.s.reshape([n for i, n in enumerate(a.shape) if i not in self.axes])

    def backward(self, g):
        xp = get_array_module(g)
        if not self.keepdims and self.centered.ndim:
            g = xp.expand_dims(g, self.axes)
        token = _FP_STATE.set(_ALL_IGNORED)
        try:  # (PyTorch's std_backward: grad / (2 std), 0 where std is 0, then var_backward)
            g = xp.where(self.s == 0, g.dtype.type(0), g / (self.s * 2))
        finally:
            _FP_STATE.reset(token)
        return (self._var_backward(g),)


def _squares(centered):
    """The squared distances of ``centered`` from 0: ``|z|^2`` of a complex array (its real dtype, as PyTorch's
    complex variance, the real part's plus the imaginary part's), else its square."""
    if centered.dtype.kind == "c":
        real, imag = centered.real, centered.imag
        return real * real + imag * imag
    return centered * centered


def _refuse_non_float(name, a):
    """PyTorch's var/std (and var_mean/std_mean) are defined for floating and complex tensors only: an integer
    or bool tensor is refused (numpy would quietly answer in float64)."""
    if _dtype_of(a).kind in "biu":
        raise RuntimeError(f"{name} only support floating point and complex dtypes, got "
                           f"{_torch_name(_dtype_of(a))}")


def _ddof(numpy_style, unbiased, correction, ddof):
    given = [v is not None for v in (unbiased, correction, ddof)]
    if builtins.sum(given) > 1:
        raise TypeError("give one of unbiased, correction (PyTorch) or ddof (numpy)")
    if ddof is not None:
        return ddof
    if correction is not None:
        return correction
    if unbiased is not None:
        return int(bool(unbiased))
    return 0 if numpy_style else 1  # numpy's default with numpy's keywords, PyTorch's (unbiased) otherwise


def var(a, dim=EVERY_DIM, unbiased=UNBIASED, keepdim=NOT_KEPT, *, axis=None, ddof=None, correction=None,
        keepdims=None, out=None, _op="var", _paired=False):
    """Variance: unbiased by default (PyTorch); with numpy's ``axis``/``ddof``/``keepdims``, ``ddof=0``. No degrees
    of freedom left (one element, unbiased) gives NaN with PyTorch's UserWarning (``_op``: the name it gives).
    ``out``: the variance cast into it, PyTorch's rules (:mod:`.reduce_out_more`)."""
    if unbiased is UNBIASED and keepdim is not None:  # (the common calls: nothing to refuse)
        unbiased = None
    else:
        unbiased = _flags(_op, a, dim, unbiased, keepdim, correction, axis, ddof, keepdims, out, _paired)
    dim, keepdim = None if dim is EVERY_DIM else dim, keepdim is not NOT_KEPT and keepdim
    if out is not None:
        from .reduce_out_more import spread_into_out

        return spread_into_out("var", lambda x: var(x, dim, _given(unbiased), keepdim, axis=axis, ddof=ddof,
                                                    correction=correction, keepdims=keepdims), a, out, dim,
                               _folding(var, dim, unbiased, keepdim, axis, ddof, correction, keepdims))
    if isinstance(dim, (bool, np.bool_)):  # (PyTorch's overload (bool unbiased): over all dims)
        dim, unbiased = None, _bool_unbiased(_op, dim, unbiased, keepdim, correction, ddof, axis, keepdims)
    _refuse_non_float("std and var", a)
    axis, keepdims, numpy_style = _resolve(dim, keepdim, axis, keepdims)
    return Var.apply(a, axis=axis, ddof=_ddof(numpy_style or ddof is not None, unbiased, correction, ddof),
                     keepdims=keepdims, name=_op, paired=_paired)


def std(a, dim=EVERY_DIM, unbiased=UNBIASED, keepdim=NOT_KEPT, *, axis=None, ddof=None, correction=None,
        keepdims=None, out=None, _op="std", _paired=False):
    """Standard deviation: the square root of :func:`var` (same arguments and defaults, ``out`` included)."""
    if unbiased is UNBIASED and keepdim is not None:  # (the common calls: nothing to refuse)
        unbiased = None
    else:
        unbiased = _flags(_op, a, dim, unbiased, keepdim, correction, axis, ddof, keepdims, out, _paired)
    dim, keepdim = None if dim is EVERY_DIM else dim, keepdim is not NOT_KEPT and keepdim
    if out is not None:
        from .reduce_out_more import spread_into_out

        return spread_into_out("std", lambda x: std(x, dim, _given(unbiased), keepdim, axis=axis, ddof=ddof,
                                                    correction=correction, keepdims=keepdims), a, out, dim,
                               _folding(std, dim, unbiased, keepdim, axis, ddof, correction, keepdims))
    if isinstance(dim, (bool, np.bool_)):  # (PyTorch's overload (bool unbiased): over all dims)
        dim, unbiased = None, _bool_unbiased(_op, dim, unbiased, keepdim, correction, ddof, axis, keepdims)
    _refuse_non_float("std and var", a)
    axis, keepdims, numpy_style = _resolve(dim, keepdim, axis, keepdims)
    return Std.apply(a, axis=axis, ddof=_ddof(numpy_style or ddof is not None, unbiased, correction, ddof),
                     keepdims=keepdims, name=_op, paired=_paired)


def _flags(op, a, dim, unbiased, keepdim, correction, axis, ddof, keepdims, out, paired):
    """``unbiased`` (given, or a None ``keepdim``) once PyTorch's parser's refusals of None for a bool and of
    ``unbiased`` beside ``correction`` or beside ``keepdim`` without ``dim`` are passed (numpy's keywords, and
    var_mean/std_mean's own call, take them); None where left out."""
    if (unbiased is not UNBIASED or keepdim is None) and not paired and axis is None and ddof is None \
            and keepdims is None:
        from .method_out_refusal import refuse_spread_flags

        refuse_spread_flags(op, dim, unbiased, keepdim, correction, a=a, out=out)
    return None if unbiased is UNBIASED else unbiased


def _given(unbiased):
    """``unbiased`` passed on as given (left out where None, which the parser would refuse)."""
    return UNBIASED if unbiased is None else unbiased


def _bool_unbiased(op, flag, unbiased, keepdim, correction, ddof, axis, keepdims):
    """``flag`` (a bool given as ``dim``) as ``unbiased``; PyTorch's refusal where anything else was given."""
    from .method_out_refusal import bool_unbiased

    bool_unbiased(op, False, flag, (("unbiased", unbiased), ("keepdim", keepdim), ("correction", correction),
                                    ("ddof", ddof), ("axis", axis), ("keepdims", keepdims)))
    return bool(flag)


def _folding(op, dim, unbiased, keepdim, axis, ddof, correction, keepdims):
    """``folded(x, repeated)``: ``op`` (var or std) of ``x`` as PyTorch's kernel writes it into an expanded
    ``out``: ``repeated`` are the dims of the result along which ``out`` repeats one location (stride 0), which its
    reduction folds in as more dims to reduce (the same correction over all of them). Returns each location's
    value once: size 1 along the repeated dims, which the caller broadcasts. (The arguments are resolved when
    called: the unfolded call's checks come first.)"""
    def folded(x, repeated):
        axes, kept, numpy_style = _resolve(dim, keepdim, axis, keepdims)
        ddof_value = _ddof(numpy_style or ddof is not None, unbiased, correction, ddof)
        reduced = _axes(axes, x.ndim)
        # (the input dims the result's dims stand for: all of them with keepdim, else the ones not reduced)
        result_dims = list(range(x.ndim)) if kept else [d for d in range(x.ndim) if d not in reduced]
        over = tuple(sorted(set(reduced) | {result_dims[i] for i in repeated}))
        values = op(x, over, keepdim=True, correction=ddof_value)
        return values.data if kept else values.data.reshape([s for d, s in enumerate(values.shape)
                                                               if d in result_dims])
    return folded


class MeanBesideVar(Mean):
    """The mean var_mean/std_mean give: PyTorch's Welford accumulator's, in float64 and cast to the input's dtype
    (:mod:`._welford`: a float32 mean past the float's range is finite, an inf before other values is NaN); on
    cupy as :class:`Mean`, a float32 mean past the range summed again in float64."""

    def forward(self, a, axis=None, keepdims=False, shared=None):
        self.axis_given = axis is not None
        out = super().forward(a, axis=axis, keepdims=keepdims)
        xp = get_array_module(a)
        if xp is np and a.dtype.kind == "f":
            if shared and shared.get("source") is a and shared.get("axes") == self.axes:
                mean = shared["mean"]
            else:
                token = _FP_STATE.set(_ALL_IGNORED)
                try:
                    _, mean = welford_var_mean(a, self.axes)
                finally:
                    _FP_STATE.reset(token)
            return row_major(to_dtype_as_torch(mean, a.dtype).reshape(out.shape))
        if a.dtype != np.float32 or not bool(xp.isinf(out).any()):
            return out
        token = _FP_STATE.set(_ALL_IGNORED)
        try:
            return row_major(a.astype(np.float64).mean(axis=self.axes, keepdims=keepdims).astype(a.dtype))
        finally:
            _FP_STATE.reset(token)

    def torch_name_of_call(self) -> str:
        return "MeanBackward1" if self.axis_given else "MeanBackward0"


def _paired(op, first, input, dim, correction, keepdim, unbiased):  # noqa: A002
    from .shape_more import as_tensor

    x = as_tensor(input)
    if isinstance(dim, (bool, np.bool_)):  # (PyTorch's overload (bool unbiased); a correction of 1 is the default)
        from .method_out_refusal import bool_unbiased

        bool_unbiased(op, False, dim, (("unbiased", unbiased), ("keepdim", keepdim),
                                       ("correction", None if correction == 1 else correction)))
        dim, unbiased = None, bool(dim)
    _refuse_non_float(op, x)
    shared = {"paired": True}  # (the spread's Welford mean, for the mean: computed once, used at once)
    spread = first(x, dim, unbiased, keepdim, correction=None if unbiased is not None else correction, _op=op,
                   _paired=shared)
    return spread, MeanBesideVar.apply(x, axis=_every_dim_if_empty(dim), keepdims=bool(keepdim), shared=shared)


def var_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=1):  # noqa: A002
    """``torch.var_mean``: ``(var, mean)`` over ``dim`` (``correction=1``: Bessel's, as PyTorch)."""
    return _paired("var_mean", var, input, dim, correction, keepdim, unbiased)


def std_mean(input, dim=None, unbiased=None, keepdim=False, *, correction=1):  # noqa: A002
    """``torch.std_mean``: ``(std, mean)`` over ``dim``."""
    return _paired("std_mean", std, input, dim, correction, keepdim, unbiased)
