"""Numerical gradient checking for ops, layers and models.

``check_grad(fn, *inputs)`` compares the engine's gradient with a central finite
difference along random directions, in float64: for a random output weighting
``u`` and input direction ``v``, the analytic ``<grad(sum(u * fn(x))), v>`` must
match ``(L(x + h v) - L(x - h v)) / 2h``.
"""
from __future__ import annotations

import numpy as np

from distnn.autograd.grad_mode import no_grad
from distnn.autograd.tensor import Tensor
from distnn.backend import to_numpy


def check_grad(fn, *inputs, eps=1e-6, rtol=1e-5, atol=1e-7, n_directions=3, seed=0, wrt=None):
    """Check ``fn``'s gradients with respect to its floating-point ``inputs``.

    ``inputs`` are arrays or Tensors; they are cast to float64 copies. ``wrt``
    selects which input positions to differentiate (default: all floating ones).
    Integer inputs (labels, indices) pass through unchanged. Returns True, or
    raises AssertionError with the mismatch.
    """
    rng = np.random.default_rng(seed)
    arrays = [to_numpy(x.data if isinstance(x, Tensor) else x) for x in inputs]
    if wrt is None:
        wrt = [i for i, a in enumerate(arrays) if np.asarray(a).dtype.kind == "f"]
    base = [np.array(a, dtype=np.float64) if i in wrt else a for i, a in enumerate(arrays)]

    def evaluate(values, record):
        tensors = [
            Tensor(v.copy(), requires_grad=record) if i in wrt else (Tensor(v) if isinstance(v, np.ndarray) else v)
            for i, v in enumerate(values)
        ]
        out = fn(*tensors)
        return out, tensors

    out, tensors = evaluate(base, True)
    u = rng.standard_normal(out.shape)
    (out * Tensor(u)).sum().backward()
    grads = [tensors[i].grad if tensors[i].grad is not None else np.zeros_like(base[i]) for i in wrt]

    for _ in range(n_directions):
        dirs = {i: rng.standard_normal(np.shape(base[i])) for i in wrt}
        analytic = sum(float(np.sum(g * dirs[i])) for g, i in zip(grads, wrt))
        with no_grad():
            plus = [b + eps * dirs[i] if i in dirs else b for i, b in enumerate(base)]
            minus = [b - eps * dirs[i] if i in dirs else b for i, b in enumerate(base)]
            lp = float(np.sum(u * to_numpy(evaluate(plus, False)[0].data)))
            lm = float(np.sum(u * to_numpy(evaluate(minus, False)[0].data)))
        numeric = (lp - lm) / (2 * eps)
        if not abs(analytic - numeric) <= atol + rtol * max(abs(analytic), abs(numeric)):
            raise AssertionError(
                f"gradient check failed: analytic directional derivative {analytic:.10g} "
                f"vs numeric {numeric:.10g} (difference {abs(analytic - numeric):.3g})"
                + _blame(evaluate, base, grads, wrt, dirs, u, eps, rtol, atol)
            )
    return True


def _blame(evaluate, base, grads, wrt, dirs, u, eps, rtol, atol):
    """Re-check one input at a time, to say which gradient is wrong."""
    bad = []
    for g, i in zip(grads, wrt):
        analytic = float(np.sum(g * dirs[i]))
        with no_grad():
            plus = [b + eps * dirs[i] if k == i else b for k, b in enumerate(base)]
            minus = [b - eps * dirs[i] if k == i else b for k, b in enumerate(base)]
            lp = float(np.sum(u * to_numpy(evaluate(plus, False)[0].data)))
            lm = float(np.sum(u * to_numpy(evaluate(minus, False)[0].data)))
        numeric = (lp - lm) / (2 * eps)
        if not abs(analytic - numeric) <= atol + rtol * max(abs(analytic), abs(numeric)):
            bad.append(f"input {i} (shape {np.shape(base[i])}): analytic {analytic:.6g} vs numeric {numeric:.6g}")
    return ("; wrong: " + ", ".join(bad)) if bad else ""
