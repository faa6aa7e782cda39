"""Rprop (``torch.optim.Rprop``): resilient backpropagation, steps from gradient signs only
(Riedmiller & Braun, 1993; PyTorch's variant, which skips the step after a sign change).

Per element, with ``d = g`` (``-g`` when maximizing) and ``prev`` the last step's ``d``::

    d * prev > 0:  step_size = min(step_size * etaplus, step_size_max)
    d * prev < 0:  step_size = max(step_size * etaminus, step_size_min);  d = 0 (no step this time)
    d * prev = 0:  step_size unchanged
    p = p - sign(d) * step_size;   prev = d

``step_size`` starts at the group's ``lr`` (when the parameter's state is
created); ``lr`` is not read again.
"""
from __future__ import annotations

from .optimizer import Optimizer, _is_real, check_hyperparameter, check_non_negative

__all__ = ["Rprop"]


def _rprop_kernel(xp, p, g, prev, step_size, s1, s2, s3, up, down, *, etaminus, etaplus, step_size_min,
                  step_size_max, maximize):
    d = xp.negative(g, out=s3) if maximize else g
    xp.multiply(d, prev, out=s1)
    xp.greater(s1, 0, out=up)
    xp.less(s1, 0, out=down)
    s2.fill(1)  # (also where d * prev is NaN: PyTorch's sign() maps NaN to 0)
    xp.copyto(s2, etaplus, where=up)
    xp.copyto(s2, etaminus, where=down)
    step_size *= s2
    xp.clip(step_size, step_size_min, step_size_max, out=step_size)
    xp.copyto(prev, d)
    xp.copyto(prev, 0, where=down)
    _sign(xp, prev, s1, up, down)
    s1 *= step_size
    p -= s1


def _sign(xp, a, out, pos, neg):
    """``sign(a)`` in ``out`` with PyTorch's ``sign(NaN) = 0`` (numpy's is NaN): a NaN gradient moves nothing."""
    xp.greater(a, 0, out=pos)
    xp.less(a, 0, out=neg)
    xp.copyto(out, pos)
    out -= neg


def _check_pair(value, name, what):
    check_hyperparameter(isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_is_real, value)),
                         name, value, f"must be a pair of numbers {what}")


class Rprop(Optimizer):
    """``Rprop(params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, maximize=False)``.

    State per parameter: ``step``, ``prev`` and ``step_size`` (PyTorch's names).
    """

    def __init__(self, params, lr: float = 1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, maximize: bool = False):
        defaults = dict(lr=lr, etas=tuple(etas) if isinstance(etas, list) else etas,
                        step_sizes=tuple(step_sizes) if isinstance(step_sizes, list) else step_sizes,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        check_non_negative(group, "lr")
        etas, sizes = group["etas"], group["step_sizes"]
        _check_pair(etas, "eta values etas", "(etaminus, etaplus)")
        check_hyperparameter(0.0 < etas[0] < 1.0 < etas[1], "eta values etas", etas,
                             "must satisfy 0 < etaminus < 1 < etaplus")
        _check_pair(sizes, "step_sizes", "(min, max)")
        check_hyperparameter(0.0 <= sizes[0] <= sizes[1], "step_sizes", sizes, "must satisfy 0 <= min <= max")

    def _step_group(self, group):
        etaminus, etaplus = group["etas"]
        step_size_min, step_size_max = group["step_sizes"]
        for p, state in self._params_with_grad(group):
            if not state:
                state["step"] = 0
                state["prev"] = self._zeros_like(p)
                state["step_size"] = self._zeros_like(p, group["lr"])
            state["step"] += 1
            self._foreach_chunk(_rprop_kernel, [p.data, self._grad_array(p), state["prev"], state["step_size"]], 3,
                                n_masks=2, etaminus=etaminus, etaplus=etaplus, step_size_min=step_size_min,
                                step_size_max=step_size_max, maximize=group["maximize"])
