"""NAdam (``torch.optim.NAdam``): Adam with Nesterov momentum (Dozat, 2016).

At step t, with ``d = g + weight_decay * p`` (``-g`` when maximizing; with
``decoupled_weight_decay`` the weights decay as in AdamW, ``p *= 1 - lr * weight_decay``,
and ``d = g``)::

    mu_t = beta1 * (1 - 0.5 * 0.96^(t * momentum_decay))       (the momentum schedule)
    prod = prod * mu_t                                          (state 'mu_product')
    m    = m + (1 - beta1) * (d - m);   v = beta2 * v + (1 - beta2) * d*d
    den  = sqrt(v / (1 - beta2^t)) + eps
    p    = p - lr (1 - mu_t) / (1 - prod) * d / den - lr mu_{t+1} / (1 - prod mu_{t+1}) * m / den

``mu_product`` is a Python float (double precision); PyTorch keeps it as a
0-d tensor of its default dtype, float32 unless that is set to float64.
"""
from __future__ import annotations

from .adam_family import AdamFamily, decayed_grad, update_moments
from .optimizer import betas_tuple, check_betas, check_non_negative

__all__ = ["NAdam"]


def _nadam_kernel(xp, p, g, m, v, s1, s2, s3, *, beta1, beta2, weight_decay, decoupled, maximize, lr, eps,
                  bias_correction2, grad_coef, avg_coef):
    d = decayed_grad(xp, p, g, s1, lr=lr, weight_decay=weight_decay, decoupled=decoupled, maximize=maximize)
    update_moments(xp, d, m, v, s2, beta1, beta2)
    xp.divide(v, bias_correction2, out=s2)
    xp.sqrt(s2, out=s2)
    s2 += eps
    xp.divide(d, s2, out=s3)
    s3 *= grad_coef
    p += s3
    xp.divide(m, s2, out=s3)
    s3 *= avg_coef
    p += s3


class NAdam(AdamFamily):
    """``NAdam(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
    decoupled_weight_decay=False, *, maximize=False)``.

    State per parameter: ``step``, ``mu_product`` (a float), ``exp_avg`` and ``exp_avg_sq`` (PyTorch's names).
    """

    _scalar_state = ("mu_product",)

    def __init__(self, params, lr: float = 2e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, betas=betas_tuple(betas), eps=eps, weight_decay=weight_decay,
                        momentum_decay=momentum_decay, decoupled_weight_decay=decoupled_weight_decay,
                        maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        check_non_negative(group, "lr", "eps", "weight_decay", "momentum_decay")
        check_betas(group["betas"])

    def _new_state(self, p):
        state = super()._new_state(p)
        return {"step": state.pop("step"), "mu_product": 1.0, **state}  # PyTorch's order

    def _step_group(self, group):
        beta1, beta2 = group["betas"]
        lr, psi = group["lr"], group["momentum_decay"]
        for p, state in self._params_with_grad(group):
            t = self._count_step(p, state)
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
            state["mu_product"] = mu_product = float(state["mu_product"]) * mu
            self._foreach_chunk(
                _nadam_kernel, [p.data, self._grad_array(p), state["exp_avg"], state["exp_avg_sq"]], 3,
                beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"],
                decoupled=group["decoupled_weight_decay"], maximize=group["maximize"], lr=lr, eps=group["eps"],
                bias_correction2=1 - beta2 ** t, grad_coef=-lr * (1.0 - mu) / (1.0 - mu_product),
                avg_coef=(-lr * mu_next) / (1.0 - mu_product * mu_next))
