"""Adamax (``torch.optim.Adamax``): Adam with the infinity norm in place of the second moment.

At step t, with ``d = g + weight_decay * p`` (``-g`` when maximizing)::

    m = m + (1 - beta1) * (d - m)
    u = max(beta2 * u, |d| + eps)
    p = p - lr / (1 - beta1^t) * m / u
"""
from __future__ import annotations

from .optimizer import Optimizer, betas_tuple, check_betas, check_non_negative, grad_with_decay

__all__ = ["Adamax"]


def _adamax_kernel(xp, p, g, m, u, s1, s2, *, beta1, beta2, eps, weight_decay, maximize, clr):
    d = grad_with_decay(xp, p, g, weight_decay, maximize, s1)
    xp.subtract(d, m, out=s2)
    s2 *= 1 - beta1
    m += s2
    u *= beta2
    xp.absolute(d, out=s2)
    s2 += eps
    xp.maximum(u, s2, out=u)  # (NaN propagates, as torch.maximum)
    xp.divide(m, u, out=s2)
    s2 *= -clr
    p += s2


class Adamax(Optimizer):
    """``Adamax(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, *, maximize=False)``.

    State per parameter: ``step``, ``exp_avg`` and ``exp_inf`` (PyTorch's names).
    """

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 *, maximize: bool = False):
        defaults = dict(lr=lr, betas=betas_tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        check_non_negative(group, "lr", "eps", "weight_decay")
        check_betas(group["betas"])

    def _step_group(self, group):
        beta1, beta2 = group["betas"]
        for p, state in self._params_with_grad(group):
            if not state:
                state["step"] = 0
                state["exp_avg"] = self._zeros_like(p)
                state["exp_inf"] = self._zeros_like(p)
            state["step"] += 1
            self._foreach_chunk(_adamax_kernel, [p.data, self._grad_array(p), state["exp_avg"], state["exp_inf"]], 2,
                                beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                                maximize=group["maximize"], clr=group["lr"] / (1 - beta1 ** state["step"]))
