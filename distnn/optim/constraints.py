"""Max-norm weight constraint: a hard bound on the L2 norm of each unit's incoming weights.

Srivastava et al. (the dropout paper) and Keras' ``MaxNorm``: after every
optimizer step, each unit whose incoming weight vector has an L2 norm above
``c`` is scaled back onto the ball of radius ``c``; smaller ones are left
alone. It is applied to weights, never biases (the notes: no penalty or
constraint on the intercepts).

Which slices are "a unit's incoming weights" follows ``torch.renorm(w, 2,
dim, maxnorm)``: ``dim`` indexes the units, and each slice ``w.select(dim, i)``
is one unit's vector. distnn stores weights output-first, as PyTorch does, so
``dim=0`` is right for them all: a Linear weight ``(out, in)`` has row ``i``
feeding unit ``i``; a Conv weight ``(out, in, kh, kw)`` has filter ``i``
(``in * kh * kw`` values) feeding channel ``i``; recurrent ``weight_ih``
``(gates * hidden, in)`` and an Embedding ``(vocab, dim)`` have rows too.
(Keras stores Dense kernels input-first, ``(in, out)``, which is why its
``MaxNorm`` defaults to ``axis=0`` as the axis it REDUCES over: the same unit
vectors as ``dim=0`` here on an output-first weight.)
"""
from __future__ import annotations

import math

from distnn.autograd.mutation_guard import will_write
from distnn.backend import get_array_module

__all__ = ["max_norm_"]

#: added to the norm before dividing, as torch.renorm does: a clipped slice ends just inside the ball
_EPS = 1e-7


def _as_parameters(parameters) -> list:
    if hasattr(parameters, "data") and not isinstance(parameters, (list, tuple)):
        return [parameters]  # a single Tensor
    return list(parameters)


def max_norm_(parameters, max_norm: float, dim: int = 0) -> int:
    """Rescale, in place, each slice of each parameter along ``dim`` whose L2 norm exceeds ``max_norm``.

    A slice ``w.select(dim, i)`` with norm ``n > max_norm`` becomes
    ``w_i * max_norm / (n + 1e-7)``, as ``torch.renorm(w, 2, dim, max_norm)``
    gives; others are unchanged. ``parameters`` is a Tensor
    or an iterable of them (pass weights only: e.g.
    ``split_decay_parameters(model)[0]``; a 1-D parameter is one slice per
    element, which is rarely what is wanted). Returns how many slices were
    rescaled. Deterministic and local: on data-parallel replicas holding the
    same weights, every rank computes the same result.
    """
    max_norm = float(max_norm)
    if not (max_norm > 0 and math.isfinite(max_norm)):
        raise ValueError(f"max_norm must be a finite number > 0, got {max_norm!r}")
    clipped = 0
    for p in _as_parameters(parameters):
        w = p.data
        if w.ndim == 0:
            raise ValueError("max_norm_: a 0-d parameter has no units to constrain")
        d = dim % w.ndim
        xp = get_array_module(w)
        others = tuple(a for a in range(w.ndim) if a != d)
        # the norms accumulated in float64 (float32 sums of many squares lose digits), kept broadcastable
        # (one float64 buffer per step: squared in place when the cast made a copy, none for float64 weights)
        w64 = w.astype(xp.float64, copy=False)
        if others:
            norms = xp.sqrt((w64 * w64 if w64 is w else xp.square(w64, out=w64)).sum(axis=others, keepdims=True))
        else:
            norms = xp.abs(w64)
        over = norms > max_norm
        n_over = int(over.sum())
        if not n_over:
            continue
        scale = xp.where(over, max_norm / (norms + _EPS), 1.0).astype(w.dtype)
        will_write(w)
        w *= scale
        if hasattr(p, "_bump_version"):  # (the autograd engine's record that p changed in place)
            p._bump_version()
        clipped += n_over
    return clipped
