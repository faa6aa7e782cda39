"""bench_op_overhead's rows for clamp, sort and lerp, and for the functional forms that take ``out=``
(``sum(a, 1)``, ``mean``, ``prod``, ``amax``, ``abs``, ``sqrt``, ``where``, ``linalg.matmul``, ``nansum``,
``nanmean``, ``std``, ``logsumexp``, ``norm``, ``all``), called without it,
for ``y[...] = v`` and ``masked_fill``, and for the calls whose numbers or arguments are checked as PyTorch's
(``a.mean()``, ``a.logsumexp(1)``, ``fill_``, ``clamp_``, ``full``, ``tensor(..., dtype=)``): the calls whose
``out is None`` (or no-error) path must stay as cheap as it was. 64x64 float32 tensors that require no grad (a
16x16 product); distnn and torch run the same calls, the numpy floor the same arithmetic on bare arrays. The rows
of ``add``/``sub`` with ``alpha`` come with these (:mod:`op_overhead_alpha`).
"""
from __future__ import annotations

import numpy as np
import op_overhead_alpha  # (this script's folder)
import op_overhead_half_opmath  # (this script's folder)
import op_overhead_half_scalar  # (this script's folder)

SHAPE = (64, 64)


def _arrays():
    rng = np.random.default_rng(4)
    a = rng.uniform(0.1, 0.9, SHAPE).astype(np.float32)
    b = rng.uniform(0.1, 0.9, SHAPE).astype(np.float32)
    m = rng.standard_normal((16, 16)).astype(np.float32)
    return a, b, m


def clamp_sort_lerp_rows(a, ag, lerp_backward):
    """clamp (its argument checks), sort along the last dim, lerp's forward and backward with a number weight:
    the same calls for distnn and torch."""
    return {
        "a.clamp(0, 1)": lambda: a.clamp(0, 1),
        "a.clamp(min=0) (grad)": lambda: ag.clamp(min=0),
        "a.sort(-1)": lambda: a.sort(-1),
        "lerp(a, b, 0.1) + backward": lerp_backward,
    }


def tensor_rows(lib, make):
    """The rows for distnn or torch (module ``lib``; ``make(array)`` wraps an array as its tensor)."""
    a_np, b_np, m_np = _arrays()
    a, b, m, y = make(a_np), make(b_np), make(m_np), make(a_np.copy())
    cond = a > 0.5
    return {
        "sum(a, 1)": lambda: lib.sum(a, 1),
        "mean(a, 1)": lambda: lib.mean(a, 1),
        "prod(a, 1)": lambda: lib.prod(a, 1),
        "amax(a, 1)": lambda: lib.amax(a, 1),
        "abs(a)": lambda: lib.abs(a),
        "sqrt(a)": lambda: lib.sqrt(a),
        "where(c, a, b)": lambda: lib.where(cond, a, b),
        "linalg.matmul(m, m) 16x16": lambda: lib.linalg.matmul(m, m),
        "y[...] = b": lambda: y.__setitem__(Ellipsis, b),
        "a.masked_fill(c, 0.5)": lambda: a.masked_fill(cond, 0.5),
        "a < b": lambda: a < b,
        "a == b": lambda: a == b,
        "y[0, 0] = 0.5": lambda: y.__setitem__((0, 0), 0.5),
        "a.prod()": lambda: a.prod(),
        "a.mean()": lambda: a.mean(),
        "a.logsumexp(1)": lambda: a.logsumexp(1),
        "y.fill_(0.5)": lambda: y.fill_(0.5),
        "y.clamp_(0, 1)": lambda: y.clamp_(0, 1),
        "full((16, 16), 0.5)": lambda: lib.full((16, 16), 0.5),
        "tensor([1, 2, 3], dtype=int64)": lambda: lib.tensor([1, 2, 3], dtype=lib.int64),
        # (the functional reductions that take out=: these rows are their calls without it)
        "nansum(a, 1)": lambda: lib.nansum(a, 1),
        "nanmean(a, 1)": lambda: lib.nanmean(a, 1),
        "std(a, 1)": lambda: lib.std(a, 1),
        "logsumexp(a, 1)": lambda: lib.logsumexp(a, 1),
        "norm(a, 2, 1)": lambda: lib.norm(a, 2, 1),
        "all(c, 1)": lambda: lib.all(cond, 1),
        **op_overhead_alpha.tensor_rows(lib, make), **op_overhead_half_scalar.tensor_rows(lib, make),
        **op_overhead_half_opmath.tensor_rows(lib, make),
    }


def numpy_rows():
    """The floor: the same arithmetic on bare arrays."""
    a, b, m = _arrays()
    y, cond = a.copy(), a > 0.5
    return {
        "sum(a, 1)": lambda: a.sum(1),
        "mean(a, 1)": lambda: a.mean(1),
        "prod(a, 1)": lambda: a.prod(1),
        "amax(a, 1)": lambda: a.max(1),
        "abs(a)": lambda: np.abs(a),
        "sqrt(a)": lambda: np.sqrt(a),
        "where(c, a, b)": lambda: np.where(cond, a, b),
        "linalg.matmul(m, m) 16x16": lambda: m @ m,
        "y[...] = b": lambda: y.__setitem__(Ellipsis, b),
        "a.masked_fill(c, 0.5)": lambda: np.where(cond, np.float32(0.5), a),
        "a < b": lambda: a < b,
        "a == b": lambda: a == b,
        "y[0, 0] = 0.5": lambda: y.__setitem__((0, 0), 0.5),
        "a.prod()": lambda: a.prod(),
        "a.mean()": lambda: a.mean(),
        "a.logsumexp(1)": lambda: np.log(np.exp(a).sum(1)),
        "y.fill_(0.5)": lambda: y.fill(0.5),
        "y.clamp_(0, 1)": lambda: np.clip(y, 0, 1, out=y),
        "full((16, 16), 0.5)": lambda: np.full((16, 16), 0.5, np.float32),
        "tensor([1, 2, 3], dtype=int64)": lambda: np.array([1, 2, 3], np.int64),
        "nansum(a, 1)": lambda: np.nansum(a, 1),
        "nanmean(a, 1)": lambda: np.nanmean(a, 1),
        "std(a, 1)": lambda: a.std(1, ddof=1),
        "logsumexp(a, 1)": lambda: np.log(np.exp(a).sum(1)),
        "norm(a, 2, 1)": lambda: np.sqrt((a * a).sum(1)),
        "all(c, 1)": lambda: cond.all(1),
        **op_overhead_alpha.numpy_rows(), **op_overhead_half_scalar.numpy_rows(),
        **op_overhead_half_opmath.numpy_rows(),
    }


def no_grad_view_rows(x, no_grad):
    """Views made under no_grad (an optimizer's or a metric's): the same calls for distnn and torch (the numpy floor
    reuses its ``x.t()`` and ``x[0]``)."""
    def t_no_grad():
        with no_grad():
            return x.t()

    def select_no_grad():
        with no_grad():
            return x[0]

    return {"x.t() (no_grad)": t_no_grad, "x[0] (no_grad)": select_no_grad}
