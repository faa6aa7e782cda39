"""Adamax (``torch.optim.Adamax``): Adam with the infinity norm in place of the second moment.

At step t, with ``d = g + weight_decay * p`` (``-g`` when maximizing)::

    m = m + (1 - beta1) * (d - m)
    u = max(beta2 * u, |d| + eps)
    p = p - lr / (1 - beta1^t) * m / u
"""
from __future__ import annotations

from .adam_family import AdamFamily, update_first_moment
from .optimizer import betas_tuple, grad_with_decay

__all__ = ["Adamax"]


def _adamax_kernel(xp, p, g, m, u, s1, s2, *, beta1, beta2, eps, weight_decay, maximize, clr):
    d = grad_with_decay(xp, p, g, weight_decay, maximize, s1)
    update_first_moment(xp, d, m, s2, beta1)
    u *= beta2
    xp.absolute(d, out=s2)
    s2 += eps
    xp.maximum(u, s2, out=u)  # (NaN propagates, as torch.maximum)
    xp.divide(m, u, out=s2)
    s2 *= -clr
    p += s2


class Adamax(AdamFamily):
    """``Adamax(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, *, maximize=False)``.

    State per parameter: ``step``, ``exp_avg`` and ``exp_inf`` (PyTorch's names).
    """

    _second_moment = "exp_inf"

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 *, maximize: bool = False):
        defaults = dict(lr=lr, betas=betas_tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _step_group(self, group):
        beta1, beta2 = group["betas"]
        for p, state in self._params_with_grad(group):
            t = self._count_step(p, state)
            self._foreach_chunk(_adamax_kernel, [p.data, self._grad_array(p), state["exp_avg"], state["exp_inf"]], 2,
                                beta1=beta1, beta2=beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                                maximize=group["maximize"], clr=group["lr"] / (1 - beta1 ** t))
