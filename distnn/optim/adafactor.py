"""Adafactor (``torch.optim.Adafactor``): adaptive steps from a factored second moment, whose state for an
(..., m, n) parameter is one row and one column average, not a parameter-sized buffer (Shazeer & Stern,
2018), with PyTorch's use of ``lr`` and ``eps``.

At step t, with ``G`` the gradient (``-G`` when maximizing), ``w = t ** beta2_decay`` and ``eps1`` the
machine epsilon of the parameters' dtype unless given::

    rho   = min(lr, 1 / sqrt(t))
    alpha = max(eps2, RMS(p)) * rho                  (RMS(p) before the weight decay)
    p     = p * (1 - lr * weight_decay)
    >= 2-D:  R = lerp(R, mean(G*G, last dim), w)      (state 'row_var', shape (..., m, 1))
             C = lerp(C, mean(G*G, dim -2), w)        (state 'col_var', shape (..., 1, n))
             V = R @ C / max(mean(R, dim -2), eps1)
    else:    V = lerp(V, G*G, w)                      (state 'variance', the parameter's shape)
    U = G / sqrt(max(V, eps1 ** 2))
    p = p - alpha / max(1, RMS(U) / d) * U

The update is computed in chunks, twice (its RMS first, then the step), so that a step allocates nothing
parameter-sized on the CPU: Adafactor is chosen where memory is short.
"""
from __future__ import annotations

import math

import numpy as np

from distnn.backend import get_array_module

from .optimizer import CHUNK_BYTES, Optimizer, _is_real, check_hyperparameter, chunk_sum_of_squares, sum_of_squares

__all__ = ["Adafactor"]


def _lerp_(xp, a, end, weight: float, out) -> None:
    """``a = lerp(a, end, weight)`` in place, by PyTorch's two formulas (exact at ``weight == 1``);
    ``out`` is a scratch array of ``a``'s shape."""
    xp.subtract(end, a, out=out)
    if weight < 0.5:
        out *= weight
        a += out
    else:
        out *= 1 - weight
        xp.subtract(end, out, out=a)


class Adafactor(Optimizer):
    """``Adafactor(params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0, *,
    foreach=None, maximize=False)``.

    ``eps = (eps1, eps2)``: ``eps1`` keeps the variance estimate and its square root away from zero (None:
    the machine epsilon of the dtype of the group's first parameter with a gradient, as PyTorch takes it);
    ``eps2`` is the smallest RMS of a parameter that scales its step. ``d`` clips the update's RMS.
    ``weight_decay`` is decoupled, scaled by ``lr``. ``foreach`` is accepted for PyTorch's signature and
    changes nothing (one implementation, PyTorch's single-tensor arithmetic). A parameter without elements
    is skipped (PyTorch's step divides by its size, zero).

    State per parameter (PyTorch's names): ``step``, and ``row_var`` and ``col_var`` for a parameter of two
    or more dimensions (averaged over its last and its second-to-last dimension), ``variance`` for one of
    fewer.
    """

    def __init__(self, params, lr: float = 1e-2, beta2_decay: float = -0.8, eps=(None, 1e-3), d: float = 1.0,
                 weight_decay: float = 0.0, *, foreach: bool | None = None, maximize: bool = False):
        if foreach not in (None, True, False):
            raise TypeError(f"foreach must be None or a bool, got {foreach!r}")
        defaults = dict(lr=lr, beta2_decay=beta2_decay, eps=tuple(eps) if isinstance(eps, list) else eps, d=d,
                        weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        if isinstance(group["eps"], list):  # (a group added later, or a config's list)
            group["eps"] = tuple(group["eps"])
        for key, name, ok, requirement in (
                ("lr", "learning rate lr", lambda v: v >= 0, "must be >= 0"),
                ("beta2_decay", "beta2_decay", lambda v: v <= 0, "must be <= 0"),
                ("d", "clipping threshold d", lambda v: v >= 1, "must be >= 1"),
                ("weight_decay", "weight_decay", lambda v: v >= 0, "must be >= 0")):
            v = group[key]
            check_hyperparameter(_is_real(v), name, v, "must be a number")
            check_hyperparameter(ok(v), name, v, requirement)
        eps = group["eps"]
        check_hyperparameter(isinstance(eps, tuple) and len(eps) == 2, "eps", eps, "must be a pair (eps1, eps2)")
        check_hyperparameter(eps[0] is None or (_is_real(eps[0]) and eps[0] >= 0), "epsilon1 eps[0]", eps[0],
                             "must be None or a number >= 0")
        check_hyperparameter(_is_real(eps[1]) and eps[1] >= 0, "epsilon2 eps[1]", eps[1], "must be a number >= 0")

    def _state_shape(self, p, key):
        """The shape of state ``key`` of parameter ``p``: the row and column averages are reduced ones."""
        shape = list(p.data.shape)
        if key == "row_var" and len(shape) > 1:
            shape[-1] = 1
        elif key == "col_var" and len(shape) > 1:
            shape[-2] = 1
        return tuple(shape)

    def _step_group(self, group):
        lr, wd, d = group["lr"], group["weight_decay"], group["d"]
        eps1, eps2 = group["eps"]
        for p, state in self._params_with_grad(group, skip_empty=True):
            if eps1 is None:  # (PyTorch: the first parameter's dtype sets it for the whole group)
                eps1 = float(np.finfo(p.data.dtype).eps)
            if not state:
                state["step"] = 0
                if p.data.ndim > 1:
                    state["row_var"] = self._zeros_like_shape(p, self._state_shape(p, "row_var"))
                    state["col_var"] = self._zeros_like_shape(p, self._state_shape(p, "col_var"))
                else:
                    state["variance"] = self._zeros_like(p)
            state["step"] += 1
            t = float(state["step"])
            weight = t ** group["beta2_decay"]  # (1 - beta2_t)
            rho = min(lr, 1 / (t ** 0.5))
            alpha = max(eps2, math.sqrt(self._sum_of_squares(p.data)) / (p.data.size ** 0.5)) * rho
            g = self._grad_array(p)
            if p.data.ndim > 1:
                updates = self._factored_updates(g, state["row_var"], state["col_var"], weight, eps1)
            else:
                updates = self._unfactored_updates(g, state["variance"], weight, eps1)
            u_sq = sum(chunk_sum_of_squares(get_array_module(u), u, s) for _, u, s in updates())
            scale = -alpha / max(1.0, math.sqrt(u_sq) / ((p.data.size ** 0.5) * d))
            if group["maximize"]:
                scale = -scale  # (the update is odd in G; G*G is not changed by the sign)
            self._apply(p, updates, 1 - lr * wd if wd != 0 else None, scale)

    def _zeros_like_shape(self, p, shape):
        xp = get_array_module(p.data)
        return xp.zeros(shape, dtype=p.data.dtype)

    def _sum_of_squares(self, a) -> float:
        """``sum(a*a)`` chunk by chunk in a scratch vector (sum_of_squares allocates a chunk per call)."""
        xp = get_array_module(a)
        if not a.flags.c_contiguous:
            return sum_of_squares(a)
        flat, n = a.reshape(-1), a.size
        step = self._chunk_size(xp, a.dtype, n)
        out = self._scratch(xp, a.dtype, min(step, n), 2)[0]
        return sum(chunk_sum_of_squares(xp, flat[i:i + step], out[:min(step, n - i)]) for i in range(0, n, step))

    @staticmethod
    def _chunk_size(xp, dtype, n_elements):
        """Elements per chunk: the whole array on a GPU (one call per term, as the other optimizers)."""
        return max(1, CHUNK_BYTES // np.dtype(dtype).itemsize) if xp is np else n_elements

    def _unfactored_updates(self, g, variance, weight, eps1):
        """Updates ``variance`` and returns a generator function of ``(flat slice, U's chunk, scratch)``."""
        xp = get_array_module(g)
        gf, vf, n = g.reshape(-1), variance.reshape(-1), g.size
        step = self._chunk_size(xp, g.dtype, n)
        s1, s2 = self._scratch(xp, g.dtype, min(step, n), 2)[:2]
        for i in range(0, n, step):
            k = min(step, n - i)
            xp.multiply(gf[i:i + k], gf[i:i + k], out=s2[:k])
            _lerp_(xp, vf[i:i + k], s2[:k], weight, s1[:k])

        def updates():
            for i in range(0, n, step):
                k = min(step, n - i)
                u = s1[:k]
                xp.maximum(vf[i:i + k], eps1 * eps1, out=u)
                xp.sqrt(u, out=u)
                xp.divide(gf[i:i + k], u, out=u)
                yield slice(i, i + k), u, s2[:k]
        return updates

    def _factored_updates(self, g, row_var, col_var, weight, eps1):
        """Updates ``row_var`` and ``col_var`` and returns a generator function of ``(flat slice, U's chunk,
        scratch)``; a chunk is whole rows of the last dimension."""
        xp = get_array_module(g)
        *lead, m, n = g.shape
        g3 = g.reshape(-1, m, n)
        # mean(G*G) over a row and over a column without a G-sized temporary
        row_mean = xp.einsum("bij,bij->bi", g3, g3).reshape(row_var.shape) / n
        col_mean = xp.einsum("bij,bij->bj", g3, g3).reshape(col_var.shape) / m
        _lerp_(xp, row_var, row_mean, weight, xp.empty_like(row_var))
        _lerp_(xp, col_var, col_mean, weight, xp.empty_like(col_var))
        row_norm = xp.maximum(row_var.mean(axis=-2), eps1).reshape(-1)  # (one per (..., m, n) matrix)
        rows, cols = row_var.reshape(-1), col_var.reshape(-1, n)
        g2, n_rows = g.reshape(-1, n), g.size // n
        per = max(1, self._chunk_size(xp, g.dtype, g.size) // n)  # rows per chunk (one, at least, of a row longer than a chunk)
        s1, s2 = self._scratch(xp, g.dtype, min(per, n_rows) * n, 2)[:2]

        def updates():
            for r in range(0, n_rows, per):
                k = min(per, n_rows - r)
                u = s1[:k * n].reshape(k, n)
                matrix = xp.arange(r, r + k) // m
                # V = R @ C / max(mean(R), eps1), row by row (numpy's take buffers its out unless mode='clip')
                xp.take(cols, matrix, axis=0, out=u, **({"mode": "clip"} if xp is np else {}))
                u *= rows[r:r + k, None]
                u /= row_norm[matrix][:, None]
                xp.maximum(u, eps1 * eps1, out=u)
                xp.sqrt(u, out=u)
                xp.divide(g2[r:r + k], u, out=u)
                yield slice(r * n, (r + k) * n), u.reshape(-1), s2[:k * n]
        return updates

    @staticmethod
    def _apply(p, updates, decay, scale):
        """``p = p * decay + scale * U``, chunk by chunk (``decay`` None: no weight decay)."""
        xp = get_array_module(p.data)
        data = p.data if p.data.flags.c_contiguous else xp.ascontiguousarray(p.data)
        flat = data.reshape(-1)
        for sl, u, _ in updates():
            if decay is not None:
                flat[sl] *= decay
            u *= scale
            flat[sl] += u
        if data is not p.data:  # (a non-contiguous parameter: worked on a copy)
            p.data[...] = data
