"""RAdam (``torch.optim.RAdam``): Adam whose adaptive rate is switched on once its variance is tractable
(Liu et al., 2019).

At step t, with ``d = g + weight_decay * p`` (``-g`` when maximizing; with
``decoupled_weight_decay`` the weights decay as in AdamW and ``d = g``)::

    m = m + (1 - beta1) * (d - m);   v = beta2 * v + (1 - beta2) * d*d
    rho_inf = 2 / (1 - beta2) - 1;   rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
    r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
    p = p - lr * m / (1 - beta1^t) * sqrt(1 - beta2^t) / (sqrt(v) + eps) * r     if rho_t > 5
    p = p - lr * m / (1 - beta1^t)                                               otherwise (SGD with momentum)
"""
from __future__ import annotations

from .adam_family import AdamFamily, decayed_grad, update_moments
from .optimizer import betas_tuple

__all__ = ["RAdam"]


def _radam_kernel(xp, p, g, m, v, s1, s2, *, beta1, beta2, weight_decay, decoupled, maximize, lr, eps,
                  bias_correction1, bias_correction2_sqrt, rect):
    d = decayed_grad(xp, p, g, s1, lr=lr, weight_decay=weight_decay, decoupled=decoupled, maximize=maximize)
    update_moments(xp, d, m, v, s2, beta1, beta2)
    xp.divide(m, bias_correction1, out=s1)  # (d is no longer needed)
    s1 *= lr
    if rect is not None:  # PyTorch's order of operations: ((m / bc1) * lr) * (sqrt(bc2) / (sqrt(v) + eps)) * r
        xp.sqrt(v, out=s2)
        s2 += eps
        xp.divide(bias_correction2_sqrt, s2, out=s2)
        s1 *= s2
        s1 *= rect
    p -= s1


class RAdam(AdamFamily):
    """``RAdam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False,
    *, maximize=False)``. State per parameter: ``step``, ``exp_avg`` and ``exp_avg_sq`` (PyTorch's names)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, betas=betas_tuple(betas), eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _step_group(self, group):
        beta1, beta2 = group["betas"]
        rho_inf = 2 / (1 - beta2) - 1
        for p, state in self._params_with_grad(group):
            t = self._count_step(p, state)
            bias_correction2 = 1 - beta2 ** t
            rho_t = rho_inf - 2 * t * (beta2 ** t) / bias_correction2
            rect = None
            if rho_t > 5.0:
                rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5
            self._foreach_chunk(
                _radam_kernel, [p.data, self._grad_array(p), state["exp_avg"], state["exp_avg_sq"]], 2,
                beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                decoupled=group["decoupled_weight_decay"], maximize=group["maximize"], lr=group["lr"],
                eps=group["eps"], bias_correction1=1 - beta1 ** t, bias_correction2_sqrt=bias_correction2 ** 0.5,
                rect=rect)
