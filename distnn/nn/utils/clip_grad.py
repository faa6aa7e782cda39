"""Gradient clipping (``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``).

Clipping by the global norm (lecture notes: ``g -> C * g / ||g||`` when
``||g|| > C``) rescales all gradients together, so their direction is kept.
In a data-parallel run call it after the gradients are averaged across
ranks: every rank then sees the same norm and clips identically.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from distnn.backend import default_dtype, get_array_module
from distnn.optim.optimizer import _raw, sum_of_squares

__all__ = ["clip_grad_norm", "clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
           "grad_norm"]


def _grads(parameters):
    """The gradient arrays themselves (a Tensor stored as ``.grad`` is unwrapped, as the optimizers do), so
    ``g *= coef`` and ``clip(..., out=g)`` change the gradient the optimizer will read, in place."""
    if hasattr(parameters, "grad") and hasattr(parameters, "data"):
        parameters = [parameters]
    grads = []
    for p in parameters:
        if p.grad is None:
            continue
        g = _raw(p.grad)
        if getattr(g, "is_sparse", False) is True:  # (as PyTorch 2.13, which has no sparse norm or clamp kernel)
            raise NotImplementedError(
                "gradient clipping does not support sparse gradients (nn.Embedding(sparse=True)), as in PyTorch "
                "(\"Could not run 'aten::linalg_vector_norm' with arguments from the 'SparseCPU' backend\"); use "
                "sparse=False to clip that parameter's gradient")
        if isinstance(g, (np.generic, int, float)):  # a scalar set by hand cannot change in place: use a 0-d array
            g = np.asarray(g, dtype=p.data.dtype)
            p.grad = g
        grads.append(g)
    return grads


def _norm_type(norm_type) -> float:
    if isinstance(norm_type, str):
        if norm_type.lower() != "inf":
            raise ValueError(f"norm_type must be a positive number or 'inf', got {norm_type!r}")
        return math.inf
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"norm_type must be a positive number or 'inf', got {norm_type!r}")
    return norm_type


def _grad_norm_of(grads, p: float) -> float:
    if p == math.inf:
        norms = [float(abs(g).max()) if g.size else 0.0 for g in grads]
        return float(np.max(norms)) if norms else 0.0  # np.max propagates NaN; builtin max() may not
    if p == 2.0:
        return math.sqrt(sum(sum_of_squares(g) for g in grads))
    total = 0.0
    for g in grads:  # rare norms: plain array expressions (temporaries are fine here)
        xp = get_array_module(g)
        total += float(xp.sum(xp.abs(g).astype("float64") ** p))
    return total ** (1.0 / p)


def grad_norm(parameters, norm_type=2.0) -> float:
    """The norm of all gradients taken together, as if concatenated into one vector."""
    return _grad_norm_of(_grads(parameters), _norm_type(norm_type))


def clip_grad_norm_(parameters, max_norm: float, norm_type=2.0, error_if_nonfinite: bool = False,
                    foreach=None):
    """Rescale gradients in place so their global ``norm_type``-norm is at most ``max_norm``.

    Gradients are multiplied by ``min(1, max_norm / (total_norm + 1e-6))``
    (PyTorch's formula), in place: a ``.grad`` holding a Tensor has its
    ``.data`` array scaled, so the optimizer sees the clipped values; returns
    ``total_norm`` (before clipping) as a 0-d Tensor, as PyTorch's: of the gradients' dtype (float64 ones give
    float64), ``tensor(0.)`` of the default dtype when there are no gradients.
    A non-finite norm raises ``RuntimeError`` with ``error_if_nonfinite=True``;
    otherwise, as in PyTorch, the gradients are scaled anyway (an infinite norm
    zeroes the finite entries and makes the infinite ones NaN; a NaN norm makes
    all NaN), so a NaN/inf check downstream still sees the problem.
    ``foreach`` is accepted for PyTorch's signature (one code path here).
    """
    grads = _grads(parameters)
    max_norm = float(max_norm)
    p = _norm_type(norm_type)
    if not grads:
        return _as_norm(0.0, [])
    total = _grad_norm_of(grads, p)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from `parameters` is non-finite "
                           f"({total}), so it cannot be clipped. To disable this error and scale the gradients "
                           f"by the non-finite norm anyway, set `error_if_nonfinite=False`")
    coef = max_norm / (total + 1e-6)
    if coef < 1.0 or math.isnan(coef):  # multiplying by exactly 1 is a no-op; skip it
        coef = min(coef, 1.0) if not math.isnan(coef) else coef
        with np.errstate(invalid="ignore"):  # inf * 0 -> NaN is the documented outcome, not a surprise
            for g in grads:
                g *= coef
    return _as_norm(total, grads)


def _as_norm(total: float, arrays):
    """``total`` as PyTorch returns a total norm: a 0-d Tensor of the arrays' (promoted) float dtype, the default
    dtype when there are none (or they are not floats)."""
    from distnn.autograd.tensor import Tensor

    dtype = np.result_type(*[a.dtype for a in arrays]) if arrays else np.dtype(default_dtype())
    xp = get_array_module(arrays[0]) if arrays else np
    return Tensor(xp.asarray(total, dtype=dtype if dtype.kind == "f" else default_dtype()))


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]`` in place (a Tensor ``.grad``'s array);
    ``foreach`` is accepted for PyTorch's signature."""
    clip_value = float(clip_value)
    if clip_value < 0:
        raise ValueError(f"clip_value must be >= 0, got {clip_value!r}")
    for g in _grads(parameters):
        get_array_module(g).clip(g, -clip_value, clip_value, out=g)


def clip_grad_norm(parameters, max_norm: float, norm_type=2.0, error_if_nonfinite: bool = False, foreach=None) -> float:
    """Deprecated (PyTorch's): :func:`clip_grad_norm_`, with a FutureWarning."""
    warnings.warn("`torch.nn.utils.clip_grad_norm` is now deprecated in favor of `torch.nn.utils.clip_grad_norm_`.",
                  FutureWarning, stacklevel=2)
    return clip_grad_norm_(parameters, max_norm, norm_type, error_if_nonfinite)


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite: bool = False, foreach=None):
    """The ``norm_type``-norm of ``tensors`` taken together (as if concatenated), as a 0-d Tensor, as
    ``torch.nn.utils.get_total_norm``: the first half of :func:`clip_grad_norm_`, on any tensors (pass the
    gradients). ``foreach`` is accepted for PyTorch's signature (one code path here)."""
    from distnn.autograd.tensor import Tensor

    if isinstance(tensors, Tensor) or (hasattr(tensors, "shape") and hasattr(tensors, "dtype")):
        tensors = [tensors]
    arrays = [_raw(t) for t in tensors]
    p = _norm_type(norm_type)
    if not arrays:  # (PyTorch's tensor(0.): the default dtype)
        return _as_norm(0.0, [])
    total = _grad_norm_of(arrays, p)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"The total norm of order {float(p)} for gradients from `parameters` is non-finite, so "
                           "it cannot be clipped. To disable this error and scale the gradients by the non-finite "
                           "norm anyway, set `error_if_nonfinite=False`")
    return _as_norm(total, arrays)


def clip_grads_with_norm_(parameters, max_norm: float, total_norm, foreach=None) -> None:
    """Scale the gradients of ``parameters`` in place by ``min(1, max_norm / (total_norm + 1e-6))``, with
    ``total_norm`` given (from :func:`get_total_norm`), as ``torch.nn.utils.clip_grads_with_norm_``: the second
    half of :func:`clip_grad_norm_`, for a norm computed elsewhere (over several groups, or across ranks)."""
    grads = _grads(parameters)
    if not grads:
        return
    total = float(_raw(total_norm))
    coef = float(max_norm) / (total + 1e-6)
    coef = coef if math.isnan(coef) else min(coef, 1.0)
    with np.errstate(invalid="ignore"):
        for g in grads:
            g *= coef
